package authcache

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

func TestCloseStopsBackgroundWork(t *testing.T) {
	before := runtime.NumGoroutine()

	h := &hybrid{clk: testutil.NewClock(t0)}
	h.next = newFake(h.clk.Now)
	h.reval = newFake(h.clk.Now)
	c, err := New(h.next, Config{Now: h.clk.Now, Revalidator: h.reval})
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c, "cached")
	c.Wait()

	// A revalidation and a shared miss, both blocked until their context
	// (the cache's) ends.
	h.reval.block()
	h.next.block()
	h.clk.Advance(45 * time.Second) // due, not yet past MaxStaleness
	mustValid(t, c, "cached")
	testutil.WaitFor(t, "the re-check to start", func() bool { return h.reval.calls.Load() == 1 })
	missErr := make(chan error, 1)
	go func() {
		_, err := c.Validate(context.Background(), []byte("uncached"))
		missErr <- err
	}()
	testutil.WaitFor(t, "the miss to start", func() bool { return h.next.calls.Load() == 2 })

	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: background work was not cancelled")
	}
	if err := <-missErr; !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("miss in flight at Close got %v, want ErrUnavailable", err)
	}
	if s := c.Stats(); s.Revoked != 0 {
		t.Errorf("a revalidation cancelled by Close revoked an entry: %+v", s)
	}

	// Every goroutine the cache started (ristretto's, revalidations) is
	// gone, and so is the caller that led the cancelled miss.
	testutil.WaitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before+1 })
}

func TestValidateAfterClose(t *testing.T) {
	f := newFake(time.Now)
	c, err := New(f, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c, "tok")
	c.Wait()
	c.Close()
	c.Close() // idempotent

	for i := range 3 {
		mustValid(t, c, "tok")
		if got := f.calls.Load(); got != int64(2+i) {
			t.Fatalf("validator called %d times, want %d (uncached after Close)", got, 2+i)
		}
	}
	c.Wait() // returns at once
	if s := c.Stats(); s.Cost != 0 || s.Validations != 4 {
		t.Errorf("Stats after Close = %+v, want cost 0 and 4 validations", s)
	}

	// A caller's ctx still bounds the uncached call.
	release := f.block()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Validate(ctx, []byte("tok")); !errors.Is(err, context.Canceled) {
		t.Errorf("uncached Validate with a cancelled ctx: %v", err)
	}
}

// TestCloseConcurrentWithValidate closes the cache under load: nothing
// panics (ristretto must not be used after its Close) and every answer is
// right.
func TestCloseConcurrentWithValidate(t *testing.T) {
	f := newFake(time.Now)
	c, err := New(f, Config{Revalidator: f, RevalidateAfter: time.Nanosecond, MaxStaleness: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		mustValid(t, c, "tok-"+strconv.Itoa(i))
	}
	c.Wait()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := "tok-" + strconv.Itoa((w+i)%12) // some hits, some misses
				p, err := c.Validate(context.Background(), []byte(tok))
				if err != nil {
					if !errors.Is(err, auth.ErrUnavailable) { // a miss cut short by Close
						t.Errorf("Validate(%s): %v", tok, err)
					}
					continue
				}
				if p.Subject != "sub-"+tok {
					t.Errorf("Validate(%s) = %+v", tok, p)
				}
			}
		})
	}
	testutil.WaitFor(t, "some traffic", func() bool { return c.Stats().Hits > 100 })
	c.Close()
	after := c.Stats().Validations
	testutil.WaitFor(t, "traffic after Close", func() bool { return c.Stats().Validations > after+100 })
	close(stop)
	wg.Wait()
}
