package auth

import (
	"sync/atomic"
	"time"
)

// logLimiter lets at most one line a logInterval through at its own level;
// the lines in between go to debug level, and the next line let through
// says how many those were. It takes no lock.
type logLimiter struct {
	last       atomic.Int64  // UnixNano (on the owner's clock) of the last line let through; 0 before the first
	suppressed atomic.Uint64 // lines sent to debug level since then
}

// logInterval is the least time between two lines a logLimiter lets
// through.
const logInterval = time.Second

// allow reports whether a line at now may go out at its own level and, if
// so, how many lines were suppressed since the previous one. A clock that
// went back also allows a line, so that a wall-clock step cannot silence
// the log for as long as it stepped.
func (l *logLimiter) allow(now time.Time) (suppressed uint64, ok bool) {
	n := now.UnixNano()
	last := l.last.Load()
	if d := n - last; (d >= int64(logInterval) || d < 0) && l.last.CompareAndSwap(last, n) {
		return l.suppressed.Swap(0), true
	}
	l.suppressed.Add(1)
	return 0, false
}
