//go:build !race

package authcache

import (
	"context"
	"github.com/tokengate/tokengate/internal/testutil"
	"testing"
	"time"
)

// TestMemoDoesNotAllocate guards the memo's hot path: a memo hit
// allocates nothing, and neither does a hit through the cache that
// remembers a token of the length the memo's buffer already holds (a
// client alternating two tokens on one connection), with or without a
// revalidator that is not yet due or a key set.
func TestMemoDoesNotAllocate(t *testing.T) {
	configs := []struct {
		name string
		cfg  Config
		keys bool
	}{
		{name: "plain"},
		{name: "hybrid, revalidation not due", cfg: Config{RevalidateAfter: time.Hour}},
		{name: "key set", keys: true},
	}
	a := []byte(token713)
	b := append(append([]byte(nil), a[:712]...), 'x') // same length, another token
	for _, cc := range configs {
		for _, mode := range []struct {
			name   string
			tokens [][]byte // validated in turn each run
		}{
			{"memo hit", [][]byte{a}},
			{"hit re-remembering a same-length token", [][]byte{a, b}},
		} {
			t.Run(cc.name+"/"+mode.name, func(t *testing.T) {
				f := newFake(time.Now)
				cfg := cc.cfg
				if cfg.RevalidateAfter != 0 {
					cfg.Revalidator = f
				}
				if cc.keys {
					cfg.SigningKeys = testutil.NewKeys("key-e") // the keyed principal of a token starting with 'e'
					f.set(keyed(time.Now))
				}
				c := newTestCache(t, f, cfg)
				ctx := context.Background()
				var m Memo
				for _, tok := range mode.tokens {
					if _, err := c.Validate(ctx, tok); err != nil {
						t.Fatal(err)
					}
				}
				c.Wait()
				for _, tok := range mode.tokens { // grow the memo's buffer
					c.ValidateMemo(ctx, tok, &m)
				}
				var failed error
				allocs := testing.AllocsPerRun(10_000, func() {
					for _, tok := range mode.tokens {
						if p, err := c.ValidateMemo(ctx, tok, &m); err != nil || p == nil {
							failed = err
						}
					}
				})
				if failed != nil {
					t.Fatalf("ValidateMemo failed: %v", failed)
				}
				if allocs > 0 {
					t.Errorf("%s allocates %v times, want 0", mode.name, allocs)
				}
				if m.e == nil || m.c != c {
					t.Error("the memo remembers nothing")
				}
				if got := f.calls.Load(); got != int64(len(mode.tokens)) {
					t.Errorf("validator called %d times, want %d (every run a hit)", got, len(mode.tokens))
				}
			})
		}
	}
}
