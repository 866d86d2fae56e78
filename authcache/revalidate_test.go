package authcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// hybrid is a cache with a revalidator, both fakes, on an injected clock.
type hybrid struct {
	clk   *testutil.Clock
	next  *fake
	reval *fake
	c     *Cache
}

func newHybrid(tb testing.TB, cfg Config) *hybrid {
	tb.Helper()
	h := &hybrid{clk: testutil.NewClock(t0)}
	h.next = newFake(h.clk.Now)
	h.reval = newFake(h.clk.Now)
	cfg.Now = h.clk.Now
	cfg.Revalidator = h.reval
	if cfg.RevalidateAfter == 0 {
		cfg.RevalidateAfter = 30 * time.Second
	}
	h.c = newTestCache(tb, h.next, cfg)
	return h
}

// warm validates token once and waits until it is cached.
func (h *hybrid) warm(tb testing.TB, token string) {
	tb.Helper()
	mustValid(tb, h.c, token)
	h.c.Wait()
}

func TestRevalidationServesFromCache(t *testing.T) {
	h := newHybrid(t, Config{})
	h.warm(t, "tok")

	// Not yet due: no re-check.
	h.clk.Advance(29 * time.Second)
	mustValid(t, h.c, "tok")
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 0 {
		t.Fatalf("revalidator called %d times before RevalidateAfter", got)
	}

	// Due: 50 concurrent hits are all served from the cache while the one
	// re-check they started is blocked.
	release := h.reval.block()
	h.clk.Advance(time.Second)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { mustValid(t, h.c, "tok") })
	}
	wg.Wait()
	testutil.WaitFor(t, "the re-check to start", func() bool { return h.reval.calls.Load() >= 1 })
	mustValid(t, h.c, "tok") // still served while it runs
	if got := h.reval.calls.Load(); got != 1 {
		t.Fatalf("revalidator called %d times by 51 due hits, want exactly 1", got)
	}
	if got := h.next.calls.Load(); got != 1 {
		t.Fatalf("validator called %d times, want 1 (every hit served from the cache)", got)
	}
	release()
	h.c.Wait()

	// The re-check succeeded: the entry is fresh again.
	h.clk.Advance(29 * time.Second)
	mustValid(t, h.c, "tok")
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 1 {
		t.Fatalf("revalidator called %d times, want 1 (entry was revalidated 29s ago)", got)
	}
	h.clk.Advance(time.Second)
	mustValid(t, h.c, "tok")
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 2 {
		t.Fatalf("revalidator called %d times, want 2 (a second re-check after RevalidateAfter)", got)
	}
	if s := h.c.Stats(); s.Revalidations != 2 || s.Revoked != 0 || s.Validations != 1 {
		t.Errorf("Stats = %+v, want 2 revalidations, 0 revoked, 1 validation", s)
	}
}

func TestRevalidationRevokes(t *testing.T) {
	for _, negTTL := range []time.Duration{5 * time.Second, -1} {
		name := "negative entry"
		if negTTL < 0 {
			name = "negative caching off"
		}
		t.Run(name, func(t *testing.T) {
			h := newHybrid(t, Config{NegativeTTL: negTTL})
			h.warm(t, "tok")
			d := sha256.Sum256([]byte("tok"))
			old, _ := h.c.rc.Get(d[:])

			h.reval.set(invalid(auth.ReasonInactive))
			h.clk.Advance(31 * time.Second)
			mustValid(t, h.c, "tok") // served once more while the re-check runs
			h.c.Wait()
			if s := h.c.Stats(); s.Revoked != 1 || s.Revalidations != 1 {
				t.Fatalf("Stats = %+v, want 1 revalidation, 1 revoked", s)
			}

			h.next.set(invalid(auth.ReasonInactive)) // what the full validator says now
			p, err := h.c.Validate(context.Background(), []byte("tok"))
			if p != nil || !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Validate after revocation = %v, %v; want ErrInvalidToken", p, err)
			}
			wantNext := int64(1) // served from the negative entry
			if negTTL < 0 {
				wantNext = 2 // entry deleted: asked again
			}
			if got := h.next.calls.Load(); got != wantNext {
				t.Errorf("validator called %d times, want %d", got, wantNext)
			}

			// A hit that found the old entry before its replacement must
			// not serve it: put the stale pointer back and look.
			h.c.rc.Set(d[:], old, old.cost)
			h.c.Wait()
			if got, _ := h.c.rc.Get(d[:]); got != old {
				t.Fatal("test setup: stale entry not stored")
			}
			p, err = h.c.Validate(context.Background(), []byte("tok"))
			if p != nil || !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("stale revoked entry served: %v, %v", p, err)
			}
		})
	}
}

func TestRevalidationUnavailableKeepsEntry(t *testing.T) {
	h := newHybrid(t, Config{})
	h.warm(t, "tok")
	h.reval.set(unavailable())
	h.clk.Advance(31 * time.Second)
	mustValid(t, h.c, "tok")
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 1 {
		t.Fatalf("revalidator called %d times, want 1", got)
	}
	// Kept, still due: the next hit is served and retries.
	mustValid(t, h.c, "tok")
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 2 {
		t.Fatalf("revalidator called %d times, want 2 (a later hit retries)", got)
	}
	if got := h.next.calls.Load(); got != 1 {
		t.Errorf("validator called %d times, want 1 (entry kept)", got)
	}
	if s := h.c.Stats(); s.Revoked != 0 {
		t.Errorf("Revoked = %d, want 0", s.Revoked)
	}
}

func TestRevalidationBounded(t *testing.T) {
	h := newHybrid(t, Config{MaxRevalidations: 1})
	h.warm(t, "a")
	h.warm(t, "b")
	release := h.reval.block()
	h.clk.Advance(31 * time.Second)
	mustValid(t, h.c, "a") // takes the only slot
	testutil.WaitFor(t, "the first re-check to start", func() bool { return h.reval.calls.Load() == 1 })
	mustValid(t, h.c, "b") // no slot: served, not re-checked
	if s := h.c.Stats(); s.Revalidations != 1 {
		t.Fatalf("Revalidations = %d with one slot busy, want 1", s.Revalidations)
	}
	release()
	h.c.Wait()
	mustValid(t, h.c, "b") // a later hit retries
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 2 {
		t.Errorf("revalidator called %d times, want 2", got)
	}
}

func TestRevalidationSkipsNegativeEntries(t *testing.T) {
	h := newHybrid(t, Config{NegativeTTL: time.Hour})
	h.next.set(invalid(auth.ReasonMalformed))
	if _, err := h.c.Validate(context.Background(), []byte("bad")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Validate: %v", err)
	}
	h.c.Wait()
	h.clk.Advance(time.Minute)
	if _, err := h.c.Validate(context.Background(), []byte("bad")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Validate: %v", err)
	}
	h.c.Wait()
	if got := h.reval.calls.Load(); got != 0 {
		t.Errorf("revalidator called %d times for a negative entry, want 0", got)
	}
}

// TestStaleEntryIsNotServed: a token revoked just after its last
// introspection, idle past MaxStaleness (2 × RevalidateAfter by default),
// then used by a burst of 1,000 concurrent requests: none is served the
// stale principal, and they share one re-check.
func TestStaleEntryIsNotServed(t *testing.T) {
	h := newHybrid(t, Config{})
	h.warm(t, "tok")
	h.reval.set(invalid(auth.ReasonInactive))
	h.next.set(invalid(auth.ReasonInactive))
	h.clk.Advance(61 * time.Second) // idle past 2 × 30s

	const n = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	served := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			<-start
			p, err := h.c.Validate(context.Background(), []byte("tok"))
			served[i], errs[i] = p != nil, err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if served[i] || !errors.Is(errs[i], auth.ErrInvalidToken) {
			t.Fatalf("request %d: served %v, err %v; want ErrInvalidToken and no principal", i, served[i], errs[i])
		}
	}
	if got := h.reval.calls.Load(); got != 1 {
		t.Errorf("revalidator called %d times by %d requests, want 1 (merged)", got, n)
	}
	if got := h.next.calls.Load(); got != 1 {
		t.Errorf("validator called %d times, want 1 (the warm-up)", got)
	}
}
