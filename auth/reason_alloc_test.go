//go:build !race

package auth

import (
	"errors"
	"fmt"
	"testing"
)

// TestReasonOfDoesNotAllocate guards the request path of a rejection and
// of a negative-cache hit: reading the Reason of an error, and matching it
// against a sentinel, allocate nothing, however the error is wrapped.
func TestReasonOfDoesNotAllocate(t *testing.T) {
	expired := Invalid(ReasonExpired)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"token error", expired},
		{"wrapped", fmt.Errorf("layer: %w", expired)},
		{"joined", errors.Join(errors.New("x"), expired)},
		{"sentinel", ErrExpired},
		{"unavailable", &UnavailableError{Reason: "down", Err: errors.New("x")}},
		{"nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(1000, func() {
				ReasonOf(tc.err)
				errors.Is(tc.err, ErrExpired)
			})
			if allocs != 0 {
				t.Errorf("ReasonOf and errors.Is allocate %v times, want 0", allocs)
			}
		})
	}
}
