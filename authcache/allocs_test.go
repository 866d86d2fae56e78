//go:build !race

package authcache

import (
	"context"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// TestHitDoesNotAllocate guards the hot path: a cache hit, positive or
// negative, with or without a revalidator that is not yet due, allocates
// nothing, and neither does auth.ReasonOf, with which a caller counts a
// negative hit by its reason.
//
// (ristretto's access buffer allocates one 512-byte stripe per 64 Gets that
// it hands to its admission policy; AllocsPerRun reports the integer average,
// so that amortised 1/64 rounds to 0, as allocs/op does in the benchmarks.)
func TestHitDoesNotAllocate(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		token string
		setup func(f *fake)
	}{
		{name: "positive hit", token: "good"},
		{name: "negative hit", token: "bad", setup: func(f *fake) { f.set(invalid(auth.ReasonSignature)) }},
		{name: "hybrid hit, revalidation not due", cfg: Config{RevalidateAfter: time.Hour}, token: "good"},
		{name: "hit with a second level", cfg: Config{SecondLevel: newFakeL2(time.Now)}, token: "good"},
		{name: "hit with a key set", cfg: Config{SigningKeys: testutil.NewKeys("key-g")}, token: "good",
			setup: func(f *fake) { f.set(keyed(time.Now)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(time.Now)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := tc.cfg
			if cfg.RevalidateAfter != 0 {
				cfg.Revalidator = f
			}
			c := newTestCache(t, f, cfg)
			tok := []byte(tc.token)
			ctx := context.Background()
			c.Validate(ctx, tok)
			c.Wait()
			var reason auth.Reason
			var rejected bool
			allocs := testing.AllocsPerRun(10_000, func() {
				_, err := c.Validate(ctx, tok)
				reason, rejected = auth.ReasonOf(err)
			})
			if allocs > 0 {
				t.Errorf("a cache hit allocates %v times, want 0", allocs)
			}
			if wantRejected := tc.token == "bad"; rejected != wantRejected || rejected && reason != auth.ReasonSignature {
				t.Errorf("ReasonOf = (%v, %v), want a rejection %v, for signature", reason, rejected, wantRejected)
			}
			if got := f.calls.Load(); got != 1 {
				t.Errorf("validator called %d times, want 1 (every run a hit)", got)
			}
		})
	}
}
