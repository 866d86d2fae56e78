package authcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fake is an auth.Validator that counts calls and answers what it is told.
type fake struct {
	calls atomic.Int64
	// entered, when non-nil, receives one value as each call starts.
	entered chan struct{}

	mu sync.Mutex // guards answer and gate
	// answer decides the result; nil means "valid for an hour from now".
	answer func(token []byte) (*auth.Principal, error)
	// gate, when non-nil, blocks every call until it is closed or the
	// call's ctx ends (then the call returns an *auth.UnavailableError).
	gate chan struct{}
	now  func() time.Time
}

func newFake(now func() time.Time) *fake { return &fake{now: now} }

// set replaces the answer.
func (f *fake) set(answer func(token []byte) (*auth.Principal, error)) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

// block makes every later call wait until the returned func is called.
func (f *fake) block() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

func (f *fake) Validate(ctx context.Context, token []byte) (*auth.Principal, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	f.mu.Lock()
	answer, gate := f.answer, f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, &auth.UnavailableError{Reason: "fake: cancelled", Err: ctx.Err()}
		}
	}
	// Read the token only now, after the wait: a cache that handed us its
	// caller's buffer would show the caller's later writes here.
	tok := string(token)
	if answer != nil {
		return answer([]byte(tok))
	}
	return principalFor(tok, f.now().Add(time.Hour)), nil
}

// principalFor is a typical principal for token expiring at exp.
func principalFor(token string, exp time.Time) *auth.Principal {
	return &auth.Principal{
		Subject:   "sub-" + token,
		ClientID:  "client",
		Issuer:    "https://issuer.example/oauth2/default",
		Audience:  []string{"api://default"},
		Scopes:    []string{"items"},
		TokenID:   "jti-" + token,
		IssuedAt:  t0,
		ExpiresAt: exp,
	}
}

// valid answers "valid until exp" for every token.
func valid(exp time.Time) func([]byte) (*auth.Principal, error) {
	return func(tok []byte) (*auth.Principal, error) { return principalFor(string(tok), exp), nil }
}

// invalid answers ErrInvalidToken, for reason, for every token.
func invalid(reason auth.Reason) func([]byte) (*auth.Principal, error) {
	return func([]byte) (*auth.Principal, error) { return nil, auth.Invalid(reason) }
}

// unavailable answers ErrUnavailable for every token.
func unavailable() func([]byte) (*auth.Principal, error) {
	return func([]byte) (*auth.Principal, error) {
		return nil, &auth.UnavailableError{Reason: "fake: down"}
	}
}

// newTestCache returns a cache over next, closed at the end of the test.
func newTestCache(tb testing.TB, next auth.Validator, cfg Config) *Cache {
	tb.Helper()
	c, err := New(next, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// mustValid validates token and fails unless it is good.
func mustValid(tb testing.TB, c *Cache, token string) *auth.Principal {
	tb.Helper()
	p, err := c.Validate(context.Background(), []byte(token))
	if err != nil {
		tb.Fatalf("Validate(%q): %v", token, err)
	}
	if p == nil || p.Subject != "sub-"+token {
		tb.Fatalf("Validate(%q) = %+v, want the principal of that token", token, p)
	}
	return p
}
