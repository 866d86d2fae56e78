//go:build !race

package auth

import "testing"

// TestMetricsDoNotAllocate: rendering a key set's or an introspection
// client's families into a buffer with room allocates nothing, with and
// without the issuer label.
func TestMetricsDoNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 1<<14)
	keys := []issuerStats[KeySetStats]{{"a", KeySetStats{Fetches: 1}}, {"b", KeySetStats{}}}
	remotes := []issuerStats[RemoteStats]{{"a", RemoteStats{Active: 1}}, {"b", RemoteStats{}}}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"KeySetStats.AppendMetrics", func() { KeySetStats{Fetches: 1}.AppendMetrics(dst) }},
		{"RemoteStats.AppendMetrics", func() { RemoteStats{Active: 1}.AppendMetrics(dst) }},
		{"key sets by issuer", func() { appendKeySetMetrics(dst, keys) }},
		{"introspection clients by issuer", func() { appendRemoteMetrics(dst, remotes) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tc.f); allocs > 0 {
				t.Errorf("%v allocations, want 0", allocs)
			}
		})
	}
}
