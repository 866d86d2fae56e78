package harness

import (
	"context"
	"time"
)

// Clock is the time source of a run. Tests inject a fake one; nil means the
// wall clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// SleepUntil returns when t is reached or ctx is done, whichever comes
	// first; in the second case it returns ctx.Err().
	SleepUntil(ctx context.Context, t time.Time) error
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
