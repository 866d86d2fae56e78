package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestIntrospectionErrorText(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *IntrospectionError
		want string
	}{
		{"kind only", &IntrospectionError{Kind: RemoteOverflow}, "auth: introspection failed: overflow"},
		{"status and code", &IntrospectionError{Kind: RemoteBadResponse, StatusCode: 400, ErrorCode: "invalid_request"},
			"auth: introspection failed: bad_response, status 400, error invalid_request"},
		{"cause", &IntrospectionError{Kind: RemoteCancelled, Err: context.Canceled}, "auth: introspection failed: cancelled: context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if errors.Unwrap(tc.err) != tc.err.Err {
				t.Errorf("Unwrap does not give the cause %v", tc.err.Err)
			}
		})
	}
}

// TestIntrospectFailure: the *UnavailableError around an
// *IntrospectionError takes the server's RetryAfter when it gave one, and
// errors.Is/As see through it.
func TestIntrospectFailure(t *testing.T) {
	asked := introspectFailure("r", time.Second, &IntrospectionError{Kind: RemoteStatus429, RetryAfter: 9 * time.Second})
	silent := introspectFailure("r", time.Second, &IntrospectionError{Kind: RemoteStatus5xx})
	if asked.RetryAfter != 9*time.Second || silent.RetryAfter != time.Second {
		t.Errorf("RetryAfter %v and %v, want 9s and 1s", asked.RetryAfter, silent.RetryAfter)
	}
	var err error = silent
	if ie, ok := errors.AsType[*IntrospectionError](err); !ok || ie.Kind != RemoteStatus5xx || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Errorf("%v: errors.As/Is do not see the IntrospectionError inside an UnavailableError", err)
	}
}
