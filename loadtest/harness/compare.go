package harness

import (
	"io"
	"slices"
	"strconv"
)

// Comparison is how one scenario fared against a reference scenario run
// under the same model: for each round in which both ran, the ratio of
// the scenario's figure to the reference's, and of those the median. With
// interleaved rounds each ratio pairs figures measured a few seconds
// apart, so that drift in the machine's load cancels out.
type Comparison struct {
	Scenario  string `json:"scenario"`
	Model     Model  `json:"model"`
	Reference string `json:"reference"`
	Rounds    int    `json:"rounds"` // rounds in which both ran
	// RPSRatio is the median of scenario req/s ÷ reference req/s.
	RPSRatio float64 `json:"rps_ratio"`
	// CPURatio is the median of the scenario's server CPU per request ÷
	// the reference's, over the rounds in which both are known; 0 when
	// none is.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
}

// Compare sets every scenario other than reference against reference,
// model by model, in the order the scenarios first appear in results. A
// scenario with no round beside the reference gets no Comparison.
func Compare(results []*Result, reference string) []Comparison {
	type key struct {
		model Model
		round int
	}
	refs := map[key]*Result{}
	for _, r := range results {
		if r.Scenario == reference {
			refs[key{r.Model, r.Round}] = r
		}
	}
	type group struct {
		scenario string
		model    Model
		rps, cpu []float64
	}
	var groups []*group
	index := map[[2]string]*group{}
	for _, r := range results {
		ref := refs[key{r.Model, r.Round}]
		if r.Scenario == reference || ref == nil || ref.RPS <= 0 {
			continue
		}
		g := index[[2]string{r.Scenario, string(r.Model)}]
		if g == nil {
			g = &group{scenario: r.Scenario, model: r.Model}
			index[[2]string{r.Scenario, string(r.Model)}] = g
			groups = append(groups, g)
		}
		g.rps = append(g.rps, r.RPS/ref.RPS)
		if r.ServerCPUPerRequestUS > 0 && ref.ServerCPUPerRequestUS > 0 {
			g.cpu = append(g.cpu, r.ServerCPUPerRequestUS/ref.ServerCPUPerRequestUS)
		}
	}
	out := make([]Comparison, 0, len(groups))
	for _, g := range groups {
		out = append(out, Comparison{
			Scenario: g.scenario, Model: g.model, Reference: reference,
			Rounds: len(g.rps), RPSRatio: median(g.rps), CPURatio: median(g.cpu),
		})
	}
	return out
}

// median returns the median of v (the mean of the middle two for an even
// count), 0 for none. It sorts v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// FormatRatio formats a ratio as "0.84×", or "-" for 0 (unknown).
func FormatRatio(x float64) string {
	if x <= 0 {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

// WriteComparisons writes one row per scenario and model with its
// throughput and CPU-per-request ratios to each reference (labels name
// the references in the heading, one per reference), the medians of
// comparisons. It writes nothing when there is nothing to compare.
func WriteComparisons(w io.Writer, comparisons []Comparison, references, labels []string) error {
	type rowKey struct {
		scenario string
		model    Model
	}
	var order []rowKey
	cells := map[rowKey]map[string]Comparison{}
	for _, c := range comparisons {
		k := rowKey{c.Scenario, c.Model}
		if cells[k] == nil {
			cells[k] = map[string]Comparison{}
			order = append(order, k)
		}
		cells[k][c.Reference] = c
	}
	if len(order) == 0 {
		return nil
	}
	head := []string{"scenario", "model", "rounds"}
	for _, l := range labels {
		head = append(head, "req/s ÷ "+l, "cpu/req ÷ "+l)
	}
	rows := [][]string{head}
	for _, k := range order {
		rounds := 0
		row := []string{k.scenario, string(k.model), ""}
		for _, ref := range references {
			c, ok := cells[k][ref]
			if !ok {
				row = append(row, "-", "-")
				continue
			}
			rounds = max(rounds, c.Rounds)
			row = append(row, FormatRatio(c.RPSRatio), FormatRatio(c.CPURatio))
		}
		row[2] = strconv.Itoa(rounds)
		rows = append(rows, row)
	}
	return writeAligned(w, rows, false, "comparisons")
}
