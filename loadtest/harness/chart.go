package harness

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartTicks are the percentiles marked on the chart's x axis.
var chartTicks = []float64{0, 50, 90, 99, 99.9, 99.99}

// palette is the ten-colour "tab10" set: distinct at a glance, also in
// print.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
	color.RGBA{0xbc, 0xbd, 0x22, 0xff}, color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// nines maps a percentile to the chart's x axis: 0 → 0, 90 → 1, 99 → 2,
// 99.9 → 3, so that the tail gets as much room as the body.
func nines(p float64) float64 { return -math.Log10(1 - p/100) }

// Kind classifies a scenario by the prefix of its name, for line styles:
// "baseline", "local", "remote", "hybrid" or "" for anything else.
func Kind(scenario string) string {
	for _, k := range []string{"baseline", "local", "remote", "hybrid"} {
		if strings.HasPrefix(scenario, k) {
			return k
		}
	}
	return ""
}

// dashes per kind: baseline dotted, local solid, remote dashed, hybrid
// dash-dot.
func dashesFor(kind string) []vg.Length {
	switch kind {
	case "baseline":
		return []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	case "remote":
		return []vg.Length{vg.Points(7), vg.Points(3)}
	case "hybrid":
		return []vg.Length{vg.Points(7), vg.Points(2), vg.Points(1.5), vg.Points(2)}
	default:
		return nil
	}
}

// CheckChartPath reports whether SaveChart can write path: its extension
// must name a format (.png, .svg or .pdf, in any case).
func CheckChartPath(path string) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png", ".svg", ".pdf":
		return nil
	}
	return fmt.Errorf("harness: chart %q: extension must be .png, .svg or .pdf", path)
}

// SaveChart draws the latency distribution of every result (percentile on
// a "nines" axis, latency in milliseconds on a log axis) and saves it to
// path; the extension picks the format (.png, .svg, .pdf). Local scenarios
// are drawn solid, remote ones dashed, hybrid dash-dotted and the baseline
// dotted, so local against remote reads at a glance.
func SaveChart(path, title string, results []*Result) error {
	if err := CheckChartPath(path); err != nil {
		return err
	}
	models := map[Model]bool{}
	for _, r := range results {
		models[r.Model] = true
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	ticks := make(plot.ConstantTicks, len(chartTicks))
	for i, t := range chartTicks {
		ticks[i] = plot.Tick{Value: nines(t), Label: trimFloat(t) + "%"}
	}
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = 0, nines(99.99)
	p.Add(plotter.NewGrid())
	// The legend goes in a strip right of the plot, where it hides no line.
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true

	drawn := 0
	for i, r := range results {
		var pts plotter.XYs
		for _, pt := range r.Latency.Distribution {
			if pt.Percentile > 99.99 {
				continue // max has no place on a nines axis; the table has it
			}
			pts = append(pts, plotter.XY{X: nines(pt.Percentile), Y: math.Max(pt.MS, 0.001)})
		}
		if len(pts) < 2 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("harness: chart line %s: %w", r.Scenario, err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.6)
		line.Dashes = dashesFor(Kind(r.Scenario))
		p.Add(line)
		label := r.Scenario
		if len(models) > 1 {
			label += " (" + string(r.Model) + ")"
		}
		legend.Add(label, line)
		drawn++
	}
	if drawn == 0 {
		return errors.New("harness: chart: no result has latencies to draw")
	}
	return saveWithLegend(p, &legend, path)
}

// saveWithLegend draws p and, in a strip on its right, legend, and writes
// the picture to path in the format its extension names.
func saveWithLegend(p *plot.Plot, legend *plot.Legend, path string) (err error) {
	const (
		width  = 11 * vg.Inch
		height = 5.5 * vg.Inch
		strip  = 2.6 * vg.Inch
	)
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	c, err := draw.NewFormattedCanvas(width, height, format)
	if err != nil {
		return fmt.Errorf("harness: chart: %w", err)
	}
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -strip, 0, 0))
	legend.YOffs = -p.Title.TextStyle.Height(p.Title.Text) - vg.Points(10)
	legend.Draw(draw.Crop(dc, width-strip+vg.Points(8), 0, 0, 0))

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("harness: save chart: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("harness: save chart: %w", cerr)
		}
	}()
	if _, err := c.WriteTo(f); err != nil {
		return fmt.Errorf("harness: save chart: %w", err)
	}
	return nil
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
