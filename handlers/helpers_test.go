package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Tokens the stub validator knows.
const (
	tokGood      = "good-token"      // scope items
	tokNoScope   = "no-scope-token"  // valid, scope other
	tokNoSubject = "no-sub-token"    // valid, scope items, no subject
	tokExpired   = "expired-token"   // *TokenError "token expired"
	tokCause     = "cause-token"     // *TokenError whose cause has " and \ in it
	tokOdd       = "odd-token"       // *TokenError with a Reason beyond NumReasons
	tokDown      = "down-token"      // *UnavailableError, RetryAfter 1.5s
	tokDownZero  = "down-zero-token" // *UnavailableError, RetryAfter 0
	tokDownWrap  = "down-wrap-token" // *UnavailableError joined with another error
	tokCanceled  = "canceled-token"  // context.Canceled
	tokDeadline  = "deadline-token"  // wrapped context.DeadlineExceeded
	tokWeird     = "weird-token"     // an unexpected error
	tokNil       = "nil-token"       // (nil, nil): a broken validator
	tokPanic     = "panic-token"     // the validator panics
	secretPrefix = "s3cr3t-"         // every client secret in the tests starts so
)

var (
	principalGood    = &auth.Principal{Subject: "svc-a", ClientID: "client-a", Scopes: []string{"openid", "items"}}
	principalNoScope = &auth.Principal{Subject: "svc-b", ClientID: "client-b", Scopes: []string{"other"}}
	principalNoSub   = &auth.Principal{ClientID: "client-c", Scopes: []string{"items"}}
)

type stubResult struct {
	p   *auth.Principal
	err error
}

// authStub is a fake auth.Validator answering from a fixed table. It is
// read-only after construction, and a hit allocates nothing.
type authStub struct {
	results map[string]stubResult
}

var _ auth.Validator = (*authStub)(nil)

func newAuthStub() *authStub {
	return &authStub{results: map[string]stubResult{
		tokGood:      {p: principalGood},
		tokNoScope:   {p: principalNoScope},
		tokNoSubject: {p: principalNoSub},
		tokExpired:   {err: auth.Invalid(auth.ReasonExpired)},
		tokCause:     {err: &auth.TokenError{Reason: auth.ReasonUnknownKey, Err: errors.New(`bad "kid" \ here`)}},
		tokOdd:       {err: &auth.TokenError{Reason: auth.NumReasons + 1}},
		tokDown:      {err: &auth.UnavailableError{Reason: "keys not loaded", RetryAfter: 1500 * time.Millisecond}},
		tokDownZero:  {err: &auth.UnavailableError{Reason: "introspection endpoint returned 500"}},
		tokDownWrap:  {err: errors.Join(errors.New("cache"), &auth.UnavailableError{Reason: "jwks fetch failed", RetryAfter: 3 * time.Second})},
		tokCanceled:  {err: context.Canceled},
		tokDeadline:  {err: fmt.Errorf("remote: %w", context.DeadlineExceeded)},
		tokWeird:     {err: errors.New("something odd")},
		tokNil:       {},
	}}
}

func (a *authStub) Validate(_ context.Context, token []byte) (*auth.Principal, error) {
	if string(token) == tokPanic {
		panic("validator exploded")
	}
	r, ok := a.results[string(token)]
	if !ok {
		return nil, auth.Invalid(auth.ReasonSignature)
	}
	return r.p, r.err
}

// gate is a handlers.Server served over an in-memory listener.
type gate struct {
	srv    *handlers.Server
	client *fasthttp.Client
	logs   *observer.ObservedLogs
}

// newGate builds a Server from cfg (Validator defaults to the stub, the
// logger to an observer at debug level) and serves it until the test ends.
func newGate(tb testing.TB, cfg handlers.Config) *gate {
	tb.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	if cfg.Validator == nil {
		cfg.Validator = newAuthStub()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.New(core)
	}
	s, err := handlers.New(cfg)
	if err != nil {
		tb.Fatalf("handlers.New: %v", err)
	}
	g := &gate{srv: s, logs: logs}
	// Mount the test-only routes before serving starts.
	s.Router().GET("/boom", func(*fasthttp.RequestCtx) { panic("handler exploded") })
	s.Router().GET("/whoami", s.RequireScopeForTest("items", func(ctx *fasthttp.RequestCtx) {
		p := handlers.Principal(ctx)
		if p == nil {
			ctx.SetStatusCode(fasthttp.StatusTeapot)
			return
		}
		ctx.SetBodyString(p.Subject + "/" + p.ClientID)
	}))
	g.client = serveInMemory(tb, s.Handler())
	return g
}

// serveUntilCleanup serves ln with server until the test ends, then shuts
// it down and reports a failed shutdown or serve.
func serveUntilCleanup(tb testing.TB, server *fasthttp.Server, ln net.Listener) {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- server.Serve(ln) }()
	tb.Cleanup(func() {
		if err := server.Shutdown(); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
}

// serveInMemory serves h on an in-memory listener until the test ends and
// returns a client dialling it.
func serveInMemory(tb testing.TB, h fasthttp.RequestHandler) *fasthttp.Client {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	serveUntilCleanup(tb, &fasthttp.Server{Handler: h, NoDefaultDate: true}, ln)
	return &fasthttp.Client{
		Dial:                func(string) (net.Conn, error) { return ln.Dial() },
		MaxResponseBodySize: 1 << 20,
		// Send each path as the test spells it: the client sets every
		// request's URI.DisablePathNormalizing from this field.
		DisablePathNormalizing: true,
	}
}

// call is one request to a gate.
type call struct {
	method string
	path   string
	header []string // name, value, name, value…
	extra  []string // header lines added after header (a second line of one name), name, value…
	form   string   // form-urlencoded body, sent with its content type
}

// do sends c and returns the response, released when the test ends.
func (g *gate) do(tb testing.TB, c call) *fasthttp.Response {
	tb.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	tb.Cleanup(func() { fasthttp.ReleaseResponse(resp) })
	if c.method == "" {
		c.method = fasthttp.MethodGet
	}
	req.Header.SetMethod(c.method)
	req.SetRequestURI("http://tokengate.test" + c.path)
	req.URI().DisablePathNormalizing = true // send the path as written
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
		if strings.EqualFold(c.header[i], "Host") {
			req.UseHostHeader = true
		}
	}
	for i := 0; i+1 < len(c.extra); i += 2 {
		req.Header.Add(c.extra[i], c.extra[i+1])
	}
	if c.form != "" {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(c.form)
	}
	if err := g.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		tb.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	return resp
}

// want is what a response must look like; empty fields are not checked.
type want struct {
	status  int
	body    string            // exact
	bodyHas []string          // substrings
	header  map[string]string // exact values; "" means must be absent
}

func (w want) check(tb testing.TB, resp *fasthttp.Response) {
	tb.Helper()
	if got := resp.StatusCode(); got != w.status {
		tb.Errorf("status = %d, want %d (body %s)", got, w.status, resp.Body())
	}
	if w.body != "" && string(resp.Body()) != w.body {
		tb.Errorf("body = %s, want %s", resp.Body(), w.body)
	}
	for _, sub := range w.bodyHas {
		if !strings.Contains(string(resp.Body()), sub) {
			tb.Errorf("body %s does not contain %q", resp.Body(), sub)
		}
	}
	for k, v := range w.header {
		if got := string(resp.Header.Peek(k)); got != v {
			tb.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// noLogContains fails if any logged message or field mentions secret.
func noLogContains(tb testing.TB, logs *observer.ObservedLogs, secrets ...string) {
	tb.Helper()
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + anyString(v)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				tb.Errorf("log %q leaks %q", text, s)
			}
		}
	}
}

func anyString(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

// validatorFunc adapts a function to auth.Validator: nil error means the
// token is principalGood's.
type validatorFunc func(ctx context.Context, token []byte) error

func (f validatorFunc) Validate(ctx context.Context, token []byte) (*auth.Principal, error) {
	if err := f(ctx, token); err != nil {
		return nil, err
	}
	return principalGood, nil
}
