package testutil_test

import (
	"sync/atomic"
	"testing"

	"github.com/tokengate/tokengate/internal/testutil"
)

func TestWaitForReturnsWhenTheConditionHolds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		polls int64 // cond holds from this call on
	}{
		{"at once", 1},
		{"after polls", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			testutil.WaitFor(t, "the condition", func() bool { return calls.Add(1) >= tc.polls })
			if got := calls.Load(); got != tc.polls {
				t.Fatalf("cond called %d times, want %d", got, tc.polls)
			}
		})
	}
}
