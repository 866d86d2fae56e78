package testutil

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when told to: Now returns the time it
// was set to, Advance and Set move it, and the channels of After fire
// when the clock reaches their deadline. Its methods are safe for
// concurrent use; Now and After have the shapes of the Now and After
// fields that tokengate's Configs accept.
type Clock struct {
	mu     sync.Mutex // guards the fields below
	now    time.Time
	timers []timer
	// afters, when non-nil, receives the duration of every After call;
	// the call blocks until the test reads it.
	afters chan time.Duration
}

// timer is one pending After.
type timer struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d and fires the After channels now due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t (forwards or backwards) and fires the After
// channels now due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

// setLocked sets the time and fires the due timers; c.mu is held.
func (c *Clock) setLocked(t time.Time) {
	c.now = t
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.now // buffered, fired once
	}
	clear(c.timers[len(kept):])
	c.timers = kept
}

// After is time.After on the clock: the channel receives the clock's time
// once Advance or Set reaches now+d (at once when d <= 0).
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	if d <= 0 {
		ch <- c.now
	} else {
		c.timers = append(c.timers, timer{at: c.now.Add(d), ch: ch})
	}
	afters := c.afters
	c.mu.Unlock()
	if afters != nil {
		afters <- d
	}
	return ch
}

// WatchAfter makes every later After call report its duration on the
// returned channel and wait until the test has received it, so that a
// test knows when the code under test is waiting, and for how long.
// Call it before the code under test starts calling After.
func (c *Clock) WatchAfter() <-chan time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.afters == nil {
		c.afters = make(chan time.Duration)
	}
	return c.afters
}
