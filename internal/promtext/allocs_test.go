//go:build !race

package promtext_test

import (
	"math"
	"testing"

	"github.com/tokengate/tokengate/internal/promtext"
)

// TestAllocs: appending into a buffer with room allocates nothing, label
// pairs included (the variadic slice stays on the caller's stack).
func TestAllocs(t *testing.T) {
	dst := make([]byte, 0, 4096)
	value := "q\"b\\n\nx"
	for _, tc := range []struct {
		name string
		f    func() []byte
	}{
		{"header", func() []byte { return promtext.AppendHeader(dst, "a_total", promtext.Counter, "Help\\ text.\n") }},
		{"sample with labels", func() []byte { return promtext.AppendSample(dst, "a", math.Pi, "k", value, "l", "v") }},
		{"uint sample with a label", func() []byte { return promtext.AppendUintSample(dst, "a_total", 1<<60, "reason", value) }},
		{"int sample", func() []byte { return promtext.AppendIntSample(dst, "a", -1<<40) }},
		{"counter", func() []byte { return promtext.AppendCounter(dst, "a_total", "Help.", 1<<40) }},
		{"gauge", func() []byte { return promtext.AppendGauge(dst, "a", "Help.", 1<<40) }},
		{"float", func() []byte { return promtext.AppendFloat(dst, 1e-300) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out []byte
			if allocs := testing.AllocsPerRun(100, func() { out = tc.f() }); allocs > 0 {
				t.Errorf("%v allocations, want 0", allocs)
			}
			if len(out) == 0 || &out[0] != &dst[:1][0] {
				t.Errorf("wrote %q outside dst", out)
			}
		})
	}
}
