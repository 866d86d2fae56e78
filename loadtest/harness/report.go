package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SchemaVersion identifies the JSON report format; it changes when a field
// changes meaning or disappears.
const SchemaVersion = "tokengate.loadtest/v1"

// Report is the JSON file a load test writes.
type Report struct {
	Schema     string            `json:"schema"`
	Started    time.Time         `json:"started"`
	Target     string            `json:"target"` // "in-process" or the URL tested
	GoVersion  string            `json:"go_version"`
	GOOS       string            `json:"goos"`
	GOARCH     string            `json:"goarch"`
	CPUs       int               `json:"cpus"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	Settings   map[string]string `json:"settings"` // the options of the run
	Results    []*Result         `json:"results"`
	// Comparisons set each scenario against the run's reference scenarios
	// (GET / and, when run, bare fasthttp): see Compare.
	Comparisons []Comparison `json:"comparisons,omitempty"`
}

// NewReport returns a Report stamped with the schema and this machine.
func NewReport(started time.Time, target string, settings map[string]string) *Report {
	return &Report{
		Schema:     SchemaVersion,
		Started:    started.UTC(),
		Target:     target,
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Settings:   settings,
	}
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("harness: write JSON: %w", err)
	}
	return nil
}

// FormatLatency formats milliseconds compactly: "850µs", "1.23ms", "20.4ms",
// "1.50s".
func FormatLatency(msec float64) string {
	switch {
	case msec <= 0:
		return "0"
	case msec < 1:
		return strconv.FormatFloat(msec*1000, 'f', 0, 64) + "µs"
	case msec < 10:
		return strconv.FormatFloat(msec, 'f', 2, 64) + "ms"
	case msec < 1000:
		return strconv.FormatFloat(msec, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(msec/1000, 'f', 2, 64) + "s"
	}
}

// FormatStatuses lists the outcomes other than expect, most frequent first,
// as "401×3 timeout×1"; "-" when there are none.
func FormatStatuses(statuses map[string]uint64, expect int) string {
	type kv struct {
		k string
		v uint64
	}
	var bad []kv
	want := strconv.Itoa(expect)
	for k, v := range statuses {
		if k != want && v > 0 {
			bad = append(bad, kv{k, v})
		}
	}
	if len(bad) == 0 {
		return "-"
	}
	sort.Slice(bad, func(i, j int) bool {
		if bad[i].v != bad[j].v {
			return bad[i].v > bad[j].v
		}
		return bad[i].k < bad[j].k
	})
	parts := make([]string, len(bad))
	for i, e := range bad {
		parts[i] = e.k + "×" + strconv.FormatUint(e.v, 10)
	}
	return strings.Join(parts, " ")
}

// WriteTable writes one aligned row per result: the scenario left-aligned,
// the figures right-aligned. Open-loop rows show the target rate after the
// model ("open@2000"). cpu/req is the server's CPU time per request ("-"
// when unknown); a round column appears when the run had several rounds.
func WriteTable(w io.Writer, results []*Result) error {
	rounds := false
	for _, r := range results {
		rounds = rounds || r.Round > 0
	}
	head := []string{"scenario", "model", "conns", "req/s", "cpu/req", "p50", "p90", "p99", "p99.9", "max", "errors"}
	if rounds {
		head = slices.Insert(head, 1, "round")
	}
	rows := [][]string{head}
	for _, r := range results {
		model := string(r.Model)
		if r.Model == Open {
			model += "@" + strconv.FormatFloat(r.TargetRate, 'f', 0, 64)
		}
		row := []string{
			r.Scenario, model, strconv.Itoa(r.Workers), strconv.FormatFloat(r.RPS, 'f', 0, 64),
			FormatCPU(r.ServerCPUPerRequestUS),
			FormatLatency(r.Latency.P50MS), FormatLatency(r.Latency.P90MS),
			FormatLatency(r.Latency.P99MS), FormatLatency(r.Latency.P999MS),
			FormatLatency(r.Latency.MaxMS), errorsCell(r),
		}
		if rounds {
			row = slices.Insert(row, 1, strconv.Itoa(r.Round))
		}
		rows = append(rows, row)
	}
	return writeAligned(w, rows, true, "table")
}

// FormatCPU formats a CPU time per request in microseconds: "25.4µs", or
// "-" when it is unknown (0).
func FormatCPU(us float64) string {
	if us <= 0 {
		return "-"
	}
	return strconv.FormatFloat(us, 'f', 1, 64) + "µs"
}

// writeAligned writes rows as columns two spaces apart: the first
// left-aligned, the others right-aligned but for the last when lastLeft
// (then unpadded, so that no line has trailing spaces).
func writeAligned(w io.Writer, rows [][]string, lastLeft bool, what string) error {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			case i == len(row)-1 && lastLeft:
				b.WriteString("  " + c)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("harness: write %s: %w", what, err)
	}
	return nil
}

func errorsCell(r *Result) string {
	s := FormatStatuses(r.Statuses, r.ExpectStatus)
	if r.Unsent > 0 {
		if s == "-" {
			s = ""
		} else {
			s += " "
		}
		s += "unsent×" + strconv.FormatUint(r.Unsent, 10)
	}
	return s
}
