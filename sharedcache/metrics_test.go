package sharedcache

import (
	"strings"
	"testing"
)

func TestAppendMetrics(t *testing.T) {
	s := Stats{Hits: 1, Misses: 2, Errors: 3, MACFailures: 4, LeasesAcquired: 5, LeaseWaits: 6, LeaseWaitHits: 7, RevocationsPublished: 8, RevocationsReceived: 9}
	out := string(s.AppendMetrics([]byte("before\n")))
	if !strings.HasPrefix(out, "before\n") {
		t.Fatal("AppendMetrics did not append")
	}
	for i, name := range []string{
		"tokengate_l2_hits_total", "tokengate_l2_misses_total", "tokengate_l2_errors_total",
		"tokengate_l2_mac_failures_total", "tokengate_l2_leases_acquired_total",
		"tokengate_l2_lease_waits_total", "tokengate_l2_lease_wait_hits_total",
		"tokengate_l2_revocations_published_total", "tokengate_l2_revocations_received_total",
	} {
		for _, line := range []string{
			"# TYPE " + name + " counter\n",
			name + " " + string(rune('1'+i)) + "\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("missing %q in:\n%s", line, out)
			}
		}
	}
	if n := strings.Count(out, "# HELP "); n != 9 {
		t.Errorf("%d families, want 9", n)
	}
}
