package authcache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// keyed answers valid with the principal naming the key thumbprint of the
// token's first byte ("a…" → "key-a"); tokens starting with "r" get a
// remote principal, which names no key.
func keyed(now func() time.Time) func([]byte) (*auth.Principal, error) {
	return func(tok []byte) (*auth.Principal, error) {
		p := principalFor(string(tok), now().Add(time.Hour))
		if tok[0] != 'r' {
			p.KeyThumbprint = "key-" + string(tok[:1])
		}
		return p, nil
	}
}

// TestRetiredKeyIsNotServed: after the key set drops a key, an entry that
// key verified is not served (the validator is asked again and refuses),
// while entries of the other keys, and remote ones, keep being hits after
// one slow-path check.
func TestRetiredKeyIsNotServed(t *testing.T) {
	clk := testutil.NewClock(t0)
	f := newFake(clk.Now)
	f.set(keyed(clk.Now))
	keys := testutil.NewKeys("key-a", "key-b")
	c := newTestCache(t, f, Config{Now: clk.Now, SigningKeys: keys})
	for _, tok := range []string{"a-tok", "b-tok", "r-tok"} {
		mustValid(t, c, tok)
	}
	c.Wait()

	keys.Drop("key-a")
	f.set(func(tok []byte) (*auth.Principal, error) {
		if tok[0] == 'a' {
			return nil, auth.Invalid(auth.ReasonUnknownKey)
		}
		return keyed(clk.Now)(tok)
	})
	for range 2 {
		p, err := c.Validate(context.Background(), []byte("a-tok"))
		if p != nil || !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("token of the retired key: %v, %v; want ErrInvalidToken", p, err)
		}
		c.Wait()
	}
	if got := f.calls.Load(); got != 3+2 {
		t.Errorf("validator called %d times, want 5 (each request with the retired key's token)", got)
	}
	before := f.calls.Load()
	for range 3 {
		mustValid(t, c, "b-tok")
		mustValid(t, c, "r-tok")
	}
	if got := f.calls.Load() - before; got != 0 {
		t.Errorf("validator called %d times for the remaining key's and the remote token, want 0", got)
	}
	// b-tok: one HoldsKey after the generation change, then the fast path.
	// a-tok: one per request.
	if got := keys.HoldsKeyCalls(); got != 3 {
		t.Errorf("HoldsKey called %d times, want 3", got)
	}
	if s := c.Stats(); s.RetiredKeys != 2 {
		t.Errorf("RetiredKeys = %d, want 2", s.RetiredKeys)
	}
}

// TestKeyDroppedDuringValidation: the generation is read before the
// validation, so a key dropped while it ran is checked at the next hit.
func TestKeyDroppedDuringValidation(t *testing.T) {
	clk := testutil.NewClock(t0)
	f := newFake(clk.Now)
	keys := testutil.NewKeys("key-a")
	f.set(func(tok []byte) (*auth.Principal, error) {
		p, err := keyed(clk.Now)(tok)
		keys.Drop("key-a") // the refresh lands while the token is checked
		return p, err
	})
	c := newTestCache(t, f, Config{Now: clk.Now, SigningKeys: keys})
	mustValid(t, c, "a-tok")
	c.Wait()
	f.set(func([]byte) (*auth.Principal, error) { return nil, auth.Invalid(auth.ReasonUnknownKey) })
	if p, err := c.Validate(context.Background(), []byte("a-tok")); p != nil || !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Validate = %v, %v; want ErrInvalidToken", p, err)
	}
}

// TestStaleEntryOutcomes: what the callers of an entry older than
// MaxStaleness get, for each answer of its re-check.
func TestStaleEntryOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    func(now func() time.Time) func([]byte) (*auth.Principal, error)
		busySlot  bool // the one re-check slot is held by another token's re-check
		wantValid bool
		wantErr   error
		wantReval int64 // the most calls to the revalidator
	}{
		{name: "still valid", answer: func(now func() time.Time) func([]byte) (*auth.Principal, error) { return valid(now().Add(time.Hour)) },
			wantValid: true, wantReval: 1},
		{name: "revoked", answer: func(func() time.Time) func([]byte) (*auth.Principal, error) { return invalid(auth.ReasonInactive) },
			wantErr: auth.ErrInvalidToken, wantReval: 1},
		{name: "introspection down", answer: func(func() time.Time) func([]byte) (*auth.Principal, error) { return unavailable() },
			wantErr: auth.ErrUnavailable, wantReval: 50},
		{name: "no re-check slot", busySlot: true, wantErr: auth.ErrUnavailable, wantReval: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHybrid(t, Config{MaxRevalidations: 1})
			h.warm(t, "tok")
			if tc.busySlot {
				h.warm(t, "other")
				release := h.reval.block()
				defer release()
				h.clk.Advance(40 * time.Second)
				mustValid(t, h.c, "other") // due: its background re-check takes the slot
				testutil.WaitFor(t, "the other re-check to start", func() bool { return h.reval.calls.Load() == 1 })
				h.clk.Advance(21 * time.Second)
			} else {
				h.reval.set(tc.answer(h.clk.Now))
				h.clk.Advance(61 * time.Second)
			}

			const n = 50
			var wg sync.WaitGroup
			ps := make([]*auth.Principal, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { ps[i], errs[i] = h.c.Validate(context.Background(), []byte("tok")) })
			}
			wg.Wait()
			for i := range n {
				if tc.wantValid {
					if errs[i] != nil || ps[i] == nil || ps[i].Subject != "sub-tok" {
						t.Fatalf("request %d: %v, %v; want the principal", i, ps[i], errs[i])
					}
					continue
				}
				if ps[i] != nil || !errors.Is(errs[i], tc.wantErr) {
					t.Fatalf("request %d: %v, %v; want %v and no principal", i, ps[i], errs[i], tc.wantErr)
				}
			}
			// Settled answers end the staleness: later callers are plain
			// hits. Failed re-checks leave the entry stale, so a caller that
			// comes after one ended starts the next.
			if got := h.reval.calls.Load(); got < 1 || got > tc.wantReval {
				t.Errorf("revalidator called %d times, want 1 to %d", got, tc.wantReval)
			}
			if got := h.next.calls.Load(); got != int64(1+btoi(tc.busySlot)) {
				t.Errorf("validator called %d times; the stale entry must be re-checked, not validated afresh", got)
			}
			if s := h.c.Stats(); s.StaleWaits < 1 || s.StaleWaits > n || (tc.wantErr == auth.ErrUnavailable && s.StaleWaits != n) {
				t.Errorf("StaleWaits = %d, want 1 to %d (%d when no re-check can answer)", s.StaleWaits, n, n)
			}
			if tc.wantValid {
				// Re-checked: fresh again, a plain hit.
				h.c.Wait()
				before := h.reval.calls.Load()
				mustValid(t, h.c, "tok")
				if h.reval.calls.Load() != before {
					t.Error("a fresh entry was re-checked again")
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
