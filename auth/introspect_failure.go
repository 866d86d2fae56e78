package auth

import (
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// IntrospectionError says why an introspection gave no verdict, with what
// the authorization server said about it. Remote returns it as the Err of
// the *UnavailableError it returns for every such failure: find it with
// errors.As (errors.Is(err, ErrUnavailable) holds as before). The
// UnavailableError's Reason and RetryAfter stay what a client is shown;
// an IntrospectionError carries what a caller may act on, as
// golang.org/x/oauth2's RetrieveError does for a token request.
type IntrospectionError struct {
	// Kind classifies the failure; it is the label Remote counts it under
	// in RemoteStats.Failures.
	Kind RemoteFailureKind
	// StatusCode is the HTTP status of the answer (200 for a body that is
	// malformed or too large); 0 when there was no answer.
	StatusCode int
	// ErrorCode is the RFC 6749 section 5.2 "error" member of a non-200
	// answer's JSON body ("invalid_client", "unsupported_token_type"),
	// when it is at most 64 bytes of the characters that section allows
	// there (no space, quote or backslash); "" otherwise. It is safe to log
	// and to show.
	ErrorCode string
	// RetryAfter is the delay the server asked for in Retry-After
	// (delta-seconds or an HTTP date) or Okta's X-Rate-Limit-Reset (Unix
	// seconds), rounded up to a whole second within [1s,
	// RemoteMaxRetryAfter]; 0 when it asked for none.
	RetryAfter time.Duration
	// Err is the underlying cause (a transport, discovery, context or
	// decoding error); nil when the answer itself is the failure.
	Err error
}

func (e *IntrospectionError) Error() string {
	msg := "auth: introspection failed: " + e.Kind.String()
	if e.StatusCode != 0 {
		msg += ", status " + strconv.Itoa(e.StatusCode)
	}
	if e.ErrorCode != "" {
		msg += ", error " + e.ErrorCode
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *IntrospectionError) Unwrap() error { return e.Err }

// introspectFailure returns the *UnavailableError for the failure ie,
// shown to clients as reason, with the RetryAfter the server asked for,
// else retry.
func introspectFailure(reason string, retry time.Duration, ie *IntrospectionError) *UnavailableError {
	if ie.RetryAfter > 0 {
		retry = ie.RetryAfter
	}
	return &UnavailableError{Reason: reason, RetryAfter: retry, Err: ie}
}

// fail counts and logs ue, a validation that gave no verdict, under the
// kind of its *IntrospectionError, and returns it. ue must come from
// introspectFailure.
//
// The log cannot amplify an outage or a flood: per kind, at most one line
// per logInterval (on the injected clock) goes out at the kind's level
// (ERROR when our own credentials were refused, a configuration problem;
// WARN otherwise), carrying in "suppressed" the number of lines of that
// kind logged at debug level since the previous one.
func (r *Remote) fail(token []byte, ep *remoteEndpoint, ue *UnavailableError) error {
	ie := ue.Err.(*IntrospectionError)
	kind := ie.Kind
	r.failures[kind].Add(1)
	level := zap.WarnLevel
	if kind == RemoteCredentialsRejected {
		level = zap.ErrorLevel
	}
	suppressed, ok := r.logs[kind].allow(r.now())
	if !ok {
		level = zap.DebugLevel
	}
	ce := r.log.Check(level, "auth: introspection failed")
	if ce == nil {
		return ue
	}
	fields := make([]zap.Field, 0, 9)
	fields = append(fields,
		zap.String("token_fp", Fingerprint(token)), zap.Stringer("kind", kind),
		zap.String("reason", ue.Reason), zap.Duration("retry_after", ue.RetryAfter))
	if ep != nil {
		fields = append(fields, zap.String("endpoint_host", ep.host))
	}
	if ie.StatusCode != 0 {
		fields = append(fields, zap.Int("status", ie.StatusCode))
	}
	switch kind {
	case RemoteOverflow:
		fields = append(fields, zap.Int("max_concurrent", cap(r.sem)))
	case RemoteClientOverflow:
		fields = append(fields, zap.Int("max_per_client", r.perClient.max))
	}
	if ok {
		fields = append(fields, zap.Uint64("suppressed", suppressed))
	}
	ce.Write(append(fields, zap.Error(ue))...)
	return ue
}

// introspectTransportFailure classifies and names a failed call.
func introspectTransportFailure(err error) (RemoteFailureKind, string) {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrDialTimeout):
		return RemoteTimeout, "connecting to the introspection endpoint timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return RemoteUnreachable, "introspection endpoint refused the connection"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return RemoteOversize, "introspection response too large"
	case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return RemoteTimeout, "introspection timed out"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return RemoteUnreachable, "no free connection to the introspection endpoint"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return RemoteUnreachable, "introspection endpoint closed the connection"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return RemoteUnreachable, "cannot connect to the introspection endpoint"
	}
	return RemoteUnreachable, "introspection request failed"
}

// introspectStatusFailure classifies and names a non-200 answer whose
// body carried the RFC 6749 error code code ("" for none). For a
// 400-class answer the reason adds the code (node oidc-provider, for one,
// answers a JWT access token with 400 "unsupported_token_type"): it says
// what to fix, and introspectOAuthErrorCode let through only a short
// token from a fixed character set, safe to show.
func introspectStatusFailure(status int, code string) (RemoteFailureKind, string) {
	s := strconv.Itoa(status)
	switch {
	case status == fasthttp.StatusUnauthorized || status == fasthttp.StatusForbidden:
		return RemoteCredentialsRejected, "introspection endpoint rejected our client credentials (" + s + ")"
	case status == fasthttp.StatusTooManyRequests:
		return RemoteStatus429, "introspection endpoint is rate limiting us (429)"
	case status >= 500:
		return RemoteStatus5xx, "introspection endpoint returned " + s
	}
	if code != "" {
		return RemoteBadResponse, "introspection endpoint returned " + s + " " + code
	}
	return RemoteBadResponse, "introspection endpoint returned unexpected status " + s
}

// introspectOAuthErrorCode returns the "error" member of an RFC 6749
// error body, or "" unless it is present, at most 64 bytes long and made
// only of the characters section 5.2 allows there.
func introspectOAuthErrorCode(body []byte) string {
	if len(body) == 0 || len(body) > 4096 {
		return ""
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" || len(e.Error) > 64 {
		return ""
	}
	for i := 0; i < len(e.Error); i++ {
		// %x20-21 / %x23-5B / %x5D-7E, less the space for a single token.
		if c := e.Error[i]; c <= 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return e.Error
}

// introspectRetryAfter reads Retry-After (delta-seconds or HTTP date), then
// X-Rate-Limit-Reset (Unix seconds, Okta), and clamps the result; 0 when
// neither header is present and well-formed.
func introspectRetryAfter(h *fasthttp.ResponseHeader, now time.Time) time.Duration {
	if v := strings.TrimSpace(string(h.Peek("Retry-After"))); v != "" {
		if secs, ok := introspectDigits(v); ok {
			return introspectClampRetry(secs, 0)
		}
		if t, err := http.ParseTime(v); err == nil {
			return introspectClampRetry(0, t.Sub(now))
		}
	}
	if v := strings.TrimSpace(string(h.Peek("X-Rate-Limit-Reset"))); v != "" {
		if secs, ok := introspectDigits(v); ok {
			return introspectClampRetry(0, time.Unix(secs, 0).Sub(now))
		}
	}
	return 0
}

// introspectDigits parses a non-negative decimal integer, saturating
// instead of overflowing.
func introspectDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < math.MaxInt64/100 {
			n = n*10 + int64(c-'0')
		}
	}
	return n, true
}

// introspectClampRetry turns seconds, or else d, into a RetryAfter of
// whole seconds within [1s, RemoteMaxRetryAfter].
func introspectClampRetry(secs int64, d time.Duration) time.Duration {
	maxSecs := int64(RemoteMaxRetryAfter / time.Second)
	if secs == 0 && d > 0 {
		secs = int64(d / time.Second) // round up without overflowing
		if d%time.Second != 0 {
			secs++
		}
	}
	switch {
	case secs < 1:
		secs = 1
	case secs > maxSecs:
		secs = maxSecs
	}
	return time.Duration(secs) * time.Second
}
