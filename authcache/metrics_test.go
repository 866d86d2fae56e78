package authcache_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

func ExampleStats_AppendMetrics() {
	s := authcache.Stats{Hits: 41, NegativeHits: 2, Misses: 3, Validations: 3, Forgotten: 1, StaleWaits: 5, RetiredKeys: 7, Cost: 1536, MaxCost: 64 << 20}
	os.Stdout.Write(s.AppendMetrics(nil))
	// Output:
	// # HELP tokengate_cache_hits_total Token checks answered from a cached valid answer.
	// # TYPE tokengate_cache_hits_total counter
	// tokengate_cache_hits_total 41
	// # HELP tokengate_cache_negative_hits_total Token checks answered from a cached invalid (or revoked) answer.
	// # TYPE tokengate_cache_negative_hits_total counter
	// tokengate_cache_negative_hits_total 2
	// # HELP tokengate_cache_misses_total Token checks not answered from the cache (they started or joined a validation).
	// # TYPE tokengate_cache_misses_total counter
	// tokengate_cache_misses_total 3
	// # HELP tokengate_cache_validations_total Calls to the validator behind the cache.
	// # TYPE tokengate_cache_validations_total counter
	// tokengate_cache_validations_total 3
	// # HELP tokengate_cache_revalidations_total Background re-checks of cached valid tokens (hybrid mode).
	// # TYPE tokengate_cache_revalidations_total counter
	// tokengate_cache_revalidations_total 0
	// # HELP tokengate_cache_revoked_total Cached valid tokens found revoked by a background re-check.
	// # TYPE tokengate_cache_revoked_total counter
	// tokengate_cache_revoked_total 0
	// # HELP tokengate_cache_forgotten_total Cached valid tokens dropped because a revocation was published (by this replica or another).
	// # TYPE tokengate_cache_forgotten_total counter
	// tokengate_cache_forgotten_total 1
	// # HELP tokengate_cache_stale_waits_total Token checks that found a cached valid answer older than the maximum staleness and waited for its re-check.
	// # TYPE tokengate_cache_stale_waits_total counter
	// tokengate_cache_stale_waits_total 5
	// # HELP tokengate_cache_retired_keys_total Token checks that found a cached answer signed by a key the issuer no longer publishes, and validated afresh.
	// # TYPE tokengate_cache_retired_keys_total counter
	// tokengate_cache_retired_keys_total 7
	// # HELP tokengate_cache_evictions_total Entries removed by the cost bound or expiry.
	// # TYPE tokengate_cache_evictions_total counter
	// tokengate_cache_evictions_total 0
	// # HELP tokengate_cache_rejections_total Entries refused by the cache's admission policy.
	// # TYPE tokengate_cache_rejections_total counter
	// tokengate_cache_rejections_total 0
	// # HELP tokengate_cache_cost_bytes Estimated bytes held by the cache.
	// # TYPE tokengate_cache_cost_bytes gauge
	// tokengate_cache_cost_bytes 1536
	// # HELP tokengate_cache_max_cost_bytes The cache's bound, in bytes.
	// # TYPE tokengate_cache_max_cost_bytes gauge
	// tokengate_cache_max_cost_bytes 67108864
}

// TestAppendMetricsFromACache: a live cache's figures reach the text, which
// appends to dst without touching what was there.
func TestAppendMetricsFromACache(t *testing.T) {
	v := validatorFunc(func(_ context.Context, token []byte) (*auth.Principal, error) {
		if string(token) != "good" {
			return nil, auth.Invalid(auth.ReasonSignature)
		}
		return &auth.Principal{Subject: "s", ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	c, err := authcache.New(v, authcache.Config{MaxCost: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tok := range []string{"good", "good", "good", "bad", "bad"} {
		_, _ = c.Validate(context.Background(), []byte(tok))
		c.Wait()
	}
	out := string(c.Stats().AppendMetrics([]byte("# before\n")))
	for _, want := range []string{
		"# before\n# HELP tokengate_cache_hits_total ",
		"\ntokengate_cache_hits_total 2\n",
		"\ntokengate_cache_negative_hits_total 1\n",
		"\ntokengate_cache_misses_total 2\n",
		"\ntokengate_cache_validations_total 2\n",
		"\ntokengate_cache_max_cost_bytes 1048576\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\ntokengate_cache_cost_bytes 0\n") {
		t.Errorf("cost is 0 with two entries cached:\n%s", out)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "# TYPE ") != 13 || strings.Count(out, "# HELP ") != 13 {
		t.Errorf("want 13 families, each with HELP and TYPE, ending in a newline:\n%s", out)
	}
}
