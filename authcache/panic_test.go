package authcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// TestValidatorPanicIsAnError: a validator that panics on some token (a
// parser bug reached by crafted input) must cost that request an error —
// which the handlers answer with 500 — not the whole process. The cache
// recovers it, since the leader's answer also goes to every caller waiting
// for it. Nothing is cached, and the cache keeps working.
func TestValidatorPanicIsAnError(t *testing.T) {
	f := newFake(time.Now)
	f.set(func(tok []byte) (*auth.Principal, error) {
		if string(tok) == "boom" {
			panic("parser exploded")
		}
		return principalFor(string(tok), time.Now().Add(time.Hour)), nil
	})
	c := newTestCache(t, f, Config{})
	for range 2 {
		p, err := c.Validate(context.Background(), []byte("boom"))
		if p != nil || err == nil {
			t.Fatalf("Validate = %v, %v; want an error", p, err)
		}
		if errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("panic reported as %v: it is neither a verdict nor an outage", err)
		}
		c.Wait()
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("validator called %d times, want 2 (a panic is never cached)", got)
	}
	mustValid(t, c, "fine")
}

// TestRevalidatorPanicKeepsEntry: the same for a background re-check, which
// runs on a goroutine of the cache's own: the entry is kept, as for any
// re-check that could not answer.
func TestRevalidatorPanicKeepsEntry(t *testing.T) {
	clk := testutil.NewClock(t0)
	next := newFake(clk.Now)
	reval := newFake(clk.Now)
	reval.set(func([]byte) (*auth.Principal, error) { panic("introspection parser exploded") })
	c := newTestCache(t, next, Config{Now: clk.Now, Revalidator: reval, RevalidateAfter: time.Minute})
	mustValid(t, c, "tok")
	c.Wait()
	clk.Advance(90 * time.Second) // due, not yet past MaxStaleness
	mustValid(t, c, "tok")        // starts the re-check
	c.Wait()
	if got := reval.calls.Load(); got != 1 {
		t.Fatalf("revalidator called %d times, want 1", got)
	}
	mustValid(t, c, "tok")
	if s := c.Stats(); s.Revoked != 0 || s.Validations != 1 {
		t.Errorf("stats %+v: want the entry kept (no revocation, one validation)", s)
	}
}

// TestValidatorPanicReleasesWaiters: when the leader's validation panics,
// every caller waiting for it gets the same error instead of waiting
// forever, and the next caller for the token starts a new validation.
func TestValidatorPanicReleasesWaiters(t *testing.T) {
	const n = 10
	f := newFake(time.Now)
	f.set(func([]byte) (*auth.Principal, error) { panic("parser exploded") })
	release := f.block()
	c := newTestCache(t, f, Config{})

	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Validate(context.Background(), []byte("boom"))
			errs <- err
		}()
	}
	testutil.WaitFor(t, "every caller to join", func() bool { return c.Stats().Misses == n })
	release()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, errValidatorPanicked) {
				t.Errorf("caller got %v, want %v", err, errValidatorPanicked)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a caller still waits for a validation that panicked")
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("validator called %d times, want 1 (one shared validation)", got)
	}

	f.set(nil) // the next caller starts afresh, and is answered
	mustValid(t, c, "boom")
	if got := f.calls.Load(); got != 2 {
		t.Errorf("validator called %d times, want 2", got)
	}
}
