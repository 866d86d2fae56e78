package testutil_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestClockMoves(t *testing.T) {
	for _, tc := range []struct {
		name string
		move func(c *testutil.Clock)
		want time.Time
	}{
		{"still", func(*testutil.Clock) {}, start},
		{"advance", func(c *testutil.Clock) { c.Advance(time.Minute) }, start.Add(time.Minute)},
		{"advance twice", func(c *testutil.Clock) { c.Advance(time.Second); c.Advance(time.Second) }, start.Add(2 * time.Second)},
		{"set forwards", func(c *testutil.Clock) { c.Set(start.Add(time.Hour)) }, start.Add(time.Hour)},
		{"set backwards", func(c *testutil.Clock) { c.Set(start.Add(-time.Hour)) }, start.Add(-time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewClock(start)
			tc.move(c)
			if got := c.Now(); !got.Equal(tc.want) {
				t.Fatalf("Now = %v, want %v", got, tc.want)
			}
		})
	}
}

// fired reports whether ch has a value ready.
func fired(ch <-chan time.Time) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestClockAfter(t *testing.T) {
	c := testutil.NewClock(start)
	now := c.After(0)
	past := c.After(-time.Second)
	soon := c.After(time.Second)
	later := c.After(time.Minute)
	if !fired(now) || !fired(past) {
		t.Fatal("After(d <= 0) did not fire at once")
	}
	if fired(soon) || fired(later) {
		t.Fatal("After fired before the clock moved")
	}
	c.Advance(999 * time.Millisecond)
	if fired(soon) {
		t.Fatal("After(1s) fired at 999ms")
	}
	c.Advance(time.Millisecond)
	if !fired(soon) {
		t.Fatal("After(1s) did not fire at 1s")
	}
	if fired(later) {
		t.Fatal("After(1m) fired at 1s")
	}
	c.Set(start.Add(time.Hour))
	select {
	case got := <-later:
		if !got.Equal(start.Add(time.Hour)) {
			t.Fatalf("After(1m) sent %v, want the clock's time %v", got, start.Add(time.Hour))
		}
	default:
		t.Fatal("After(1m) did not fire when Set passed it")
	}
	c.Advance(time.Hour)
	if fired(soon) {
		t.Fatal("After fired twice")
	}
}

func TestClockWatchAfter(t *testing.T) {
	c := testutil.NewClock(start)
	afters := c.WatchAfter()
	got := make(chan (<-chan time.Time))
	go func() { got <- c.After(5 * time.Minute) }()
	if d := <-afters; d != 5*time.Minute {
		t.Fatalf("WatchAfter reported %v, want 5m", d)
	}
	ch := <-got
	c.Advance(5 * time.Minute)
	if !fired(ch) {
		t.Fatal("the watched After did not fire")
	}
}

// TestClockConcurrent is for the race detector: every method at once.
func TestClockConcurrent(t *testing.T) {
	c := testutil.NewClock(start)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				c.After(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(400*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}
