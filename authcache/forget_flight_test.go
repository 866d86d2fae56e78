package authcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// TestForgetDetachesValidationInFlight: a caller that arrives after Forget
// never joins a validation (or stale re-check) that started before it.
// That validation asked the authorization server before the revocation, so
// its valid answer must not reach a request that came after the
// revocation was known: the late caller validates afresh and gets the
// server's new answer.
func TestForgetDetachesValidationInFlight(t *testing.T) {
	t.Run("miss", func(t *testing.T) {
		f := newFake(time.Now)
		c := newTestCache(t, f, Config{})
		release := f.block()
		first := make(chan error, 1)
		go func() {
			_, err := c.Validate(context.Background(), []byte("tok"))
			first <- err
		}()
		testutil.WaitFor(t, "the validation to start", func() bool { return f.calls.Load() == 1 })

		f.set(invalid(auth.ReasonInactive)) // the server now says revoked
		c.Forget(sha256.Sum256([]byte("tok")))
		second := make(chan error, 1)
		go func() {
			_, err := c.Validate(context.Background(), []byte("tok"))
			second <- err
		}()
		testutil.WaitFor(t, "the second caller to miss", func() bool { return c.Stats().Misses == 2 })
		release()

		if err := <-first; err != nil {
			t.Errorf("caller before the revocation: %v, want its validation's answer (valid)", err)
		}
		if err := <-second; !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("caller after the revocation: err = %v, want ErrInvalidToken (not the answer of a validation begun before it)", err)
		}
	})
	t.Run("stale re-check", func(t *testing.T) {
		clk := testutil.NewClock(t0)
		f := newFake(clk.Now)
		rv := newFake(clk.Now)
		c := newTestCache(t, f, Config{Now: clk.Now, Revalidator: rv, RevalidateAfter: time.Minute, MaxTTL: time.Hour})
		mustValid(t, c, "tok")
		c.Wait()
		clk.Advance(3 * time.Minute) // past MaxStaleness (2m)

		release := rv.block()
		first := make(chan error, 1)
		go func() {
			_, err := c.Validate(context.Background(), []byte("tok"))
			first <- err
		}()
		testutil.WaitFor(t, "the re-check to start", func() bool { return rv.calls.Load() == 1 })

		f.set(invalid(auth.ReasonInactive))
		rv.set(invalid(auth.ReasonInactive))
		s := c.Stats()
		before := s.Misses + s.StaleWaits // the first miss and the stale wait
		c.Forget(sha256.Sum256([]byte("tok")))
		second := make(chan error, 1)
		go func() {
			_, err := c.Validate(context.Background(), []byte("tok"))
			second <- err
		}()
		testutil.WaitFor(t, "the second caller to miss", func() bool { s := c.Stats(); return s.Misses+s.StaleWaits == before+1 })
		release()

		<-first
		if err := <-second; !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("caller after the revocation: err = %v, want ErrInvalidToken", err)
		}
	})
}

// TestForgetOfAnotherTokenStoresAnswer: a revocation of one token does not
// stop a validation of another from storing its answer, here or in the
// second level. (A flood of replayed revocation messages, which anyone who
// can publish on Redis can send, would otherwise keep every replica's
// cache empty and send every request to the authorization server.)
func TestForgetOfAnotherTokenStoresAnswer(t *testing.T) {
	clk := testutil.NewClock(t0)
	l2 := newFakeL2(clk.Now)
	f := newFake(clk.Now)
	c := newTestCache(t, f, Config{Now: clk.Now, SecondLevel: l2})
	release := f.block()
	done := make(chan struct{})
	go func() { defer close(done); mustValid(t, c, "tok") }()
	testutil.WaitFor(t, "the validation to start", func() bool { return f.calls.Load() == 1 })
	c.Forget(sha256.Sum256([]byte("another token")))
	release()
	<-done
	c.Wait()
	if _, _, ok := l2.entry("tok"); !ok {
		t.Error("the answer was not shared with the second level")
	}
	mustValid(t, c, "tok")
	if got := f.calls.Load(); got != 1 {
		t.Errorf("validator calls = %d, want 1 (the answer is stored despite another token's revocation)", got)
	}
}
