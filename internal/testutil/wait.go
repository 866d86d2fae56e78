package testutil

import (
	"testing"
	"time"
)

// waitLimit is how long WaitFor polls before it fails the test. It only
// turns a hang into a failure, so it is generous: a loaded machine
// running the race detector must never reach it.
const waitLimit = 10 * time.Second

// WaitFor polls cond every 100µs until it holds, and fails the test
// (naming what) if it does not hold within 10s. It waits for observable
// state that offers no notification (another goroutine's progress, an
// outside process), never for a fixed time.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if cond() {
		return
	}
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	for range tick.C {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}
