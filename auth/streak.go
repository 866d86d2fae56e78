package auth

import (
	"time"

	"go.uber.org/zap/zapcore"
)

// failureStreak turns a run of failures of one background task into state
// changes for the log: the first failure of a run goes out at warn level,
// then at most one summary per interval while the run lasts, and the
// recovery at info level; the failures in between go to debug level. Its
// owner's lock guards it.
type failureStreak struct {
	count    int       // failures in the current run; 0 while healthy
	since    time.Time // when the run began
	lastWarn time.Time // when its last warn-level line went out
}

// fail records a failure at now and returns the level to log it at.
func (s *failureStreak) fail(now time.Time, interval time.Duration) zapcore.Level {
	s.count++
	if s.count == 1 {
		s.since, s.lastWarn = now, now
		return zapcore.WarnLevel
	}
	// A clock that went back also allows a line, so that a step of the
	// wall clock cannot silence the log.
	if d := now.Sub(s.lastWarn); d >= interval || d < 0 {
		s.lastWarn = now
		return zapcore.WarnLevel
	}
	return zapcore.DebugLevel
}

// succeed ends the run, if any, and returns how many failures it had
// (0: there was none) and when it began.
func (s *failureStreak) succeed() (failures int, since time.Time) {
	failures, since = s.count, s.since
	*s = failureStreak{}
	return failures, since
}
