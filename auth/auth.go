package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"time"
)

// Principal is what a valid token says about its bearer.
//
// A Principal returned by a Validator may be shared between requests and
// goroutines (caches hand out the same pointer): treat it as read-only.
type Principal struct {
	Subject   string    // sub
	ClientID  string    // cid (Okta) or client_id (RFC 9068 / RFC 7662)
	Issuer    string    // iss
	Audience  []string  // aud
	Scopes    []string  // scp (array or string) or scope (space-separated)
	TokenID   string    // jti
	IssuedAt  time.Time // iat; zero when absent
	ExpiresAt time.Time // exp; zero only for remote results that carry none

	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of the
	// JWKS key that verified the token; "" when no key did (introspection).
	// A cache keeps it to stop serving the token once the issuer retires
	// that key (KeySet.HoldsKey).
	KeyThumbprint string
}

// HasScope reports whether the principal was granted scope. It does not
// allocate.
func (p *Principal) HasScope(scope string) bool {
	return slices.Contains(p.Scopes, scope)
}

// Validator checks a bearer access token.
//
// Validate returns the token's Principal when the token is good. It does
// not check route-level scopes; callers do that with Principal.HasScope.
// Otherwise the error says which of two different things happened:
//
//   - the token is bad: the error matches ErrInvalidToken and the
//     sentinel of its Reason (errors.Is, e.g. ErrExpired), and is, or
//     wraps, a *TokenError whose Reason's Description is safe to show the
//     client (ReasonOf reads it without allocating);
//   - the token could not be checked (keys not loaded, authorization server
//     unreachable or failing): the error matches ErrUnavailable and is, or
//     wraps, an *UnavailableError. Such a token may well be good: never
//     answer it with 401.
//
// token is only valid during the call: the caller may reuse its bytes after
// Validate returns, so an implementation copies whatever it keeps. ctx bounds
// the caller's wait; implementations also bound every outbound call with
// their own timeout. Implementations are safe for concurrent use.
type Validator interface {
	Validate(ctx context.Context, token []byte) (*Principal, error)
}

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNoToken means the request carried no bearer token at all (no
	// Authorization header, or one with another scheme). RFC 6750 answers
	// it with a bare challenge and no error code.
	ErrNoToken = errors.New("auth: no bearer token")

	// ErrInvalidToken means the token was checked and is not acceptable.
	ErrInvalidToken = errors.New("auth: invalid token")

	// ErrUnavailable means the token could not be checked right now.
	ErrUnavailable = errors.New("auth: token cannot be validated now")

	// ErrKeysNotLoaded means a KeySet has no keys yet: its first fetch has
	// not succeeded (KeySet.Ready).
	ErrKeysNotLoaded = errors.New("auth: keys not loaded yet")
)

// TokenError says why a token was rejected. Reason is one of a fixed set
// (see Reason); its Description is safe to send to the client (RFC 6750
// error_description): it never contains token bytes or claim values chosen
// by the client. Err, the underlying cause, is for logs only.
//
// errors.Is(err, ErrInvalidToken) is true for every *TokenError, and
// errors.Is(err, ErrExpired) (and each other reason's sentinel) for one
// whose Reason is that reason.
type TokenError struct {
	Reason Reason // e.g. ReasonExpired, ReasonSignature
	Err    error  // optional underlying cause, for logs
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return "auth: invalid token: " + e.Reason.Description() + ": " + e.Err.Error()
	}
	return "auth: invalid token: " + e.Reason.Description()
}

// Unwrap returns the underlying cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidToken) true for every *TokenError, and
// errors.Is(err, sentinel) true for the sentinel of e.Reason.
func (e *TokenError) Is(target error) bool {
	if target == ErrInvalidToken {
		return true
	}
	s, ok := target.(reasonError)
	return ok && Reason(s) == e.Reason
}

// Invalid returns a *TokenError with the given reason and no cause.
func Invalid(reason Reason) error { return &TokenError{Reason: reason} }

// UnavailableError says why a token could not be checked.
type UnavailableError struct {
	Reason     string        // short, for logs and the 503 detail, e.g. "introspection endpoint returned 500"
	RetryAfter time.Duration // how long the client should wait; 0 when unknown
	Err        error         // underlying cause
}

func (e *UnavailableError) Error() string {
	if e.Err != nil {
		return "auth: token cannot be validated now: " + e.Reason + ": " + e.Err.Error()
	}
	return "auth: token cannot be validated now: " + e.Reason
}

// Unwrap returns the underlying cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true for every *UnavailableError.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// ParseBearer extracts the token from an Authorization header value
// without copying: the result aliases header.
//
// The scheme is matched case-insensitively (RFC 7235). An empty header, or
// one with another scheme, yields ErrNoToken; "Bearer" followed by nothing
// (or only spaces) yields a *TokenError. Surrounding spaces are trimmed.
// ParseBearer does not allocate.
func ParseBearer(header []byte) ([]byte, error) {
	const scheme = "bearer"
	h := trimLeftOWS(header)
	if len(h) == 0 {
		return nil, ErrNoToken
	}
	if len(h) < len(scheme) || !asciiEqualFold(h[:len(scheme)], scheme) {
		return nil, ErrNoToken
	}
	rest := h[len(scheme):]
	if len(rest) == 0 {
		return nil, errEmptyBearer
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		// "Bearerx..." is another scheme.
		return nil, ErrNoToken
	}
	tok := trimRightOWS(trimLeftOWS(rest))
	if len(tok) == 0 {
		return nil, errEmptyBearer
	}
	return tok, nil
}

var errEmptyBearer = &TokenError{Reason: ReasonEmpty}

// trimLeftOWS returns b without its leading optional white space (RFC 9110
// §5.6.3: SP and HTAB). A loop, not bytes.TrimLeft, which builds its set
// of cut bytes on every call: this runs on every protected request.
func trimLeftOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// trimRightOWS returns b without its trailing SP and HTAB.
func trimRightOWS(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Fingerprint returns the first 8 hex characters of the token's SHA-256:
// the only form in which a token may appear in a log.
func Fingerprint(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:4])
}
