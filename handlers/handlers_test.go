package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	itemsJSON = `[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`
	ctJSON    = "application/json"
)

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// httpCase is one request against a gate and the response it must get.
type httpCase struct {
	name string
	g    *gate
	call call
	want want
}

func (tc httpCase) run(t *testing.T) {
	t.Parallel()
	tc.want.check(t, tc.g.do(t, tc.call))
}

func jsonHeader(extra ...string) map[string]string {
	h := map[string]string{"Content-Type": ctJSON}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

// TestEndpoints drives every row of the endpoint table, plus the router's
// own answers, through the real handler.
func TestEndpoints(t *testing.T) {
	g := newGate(t, handlers.Config{})
	ok := jsonHeader()
	cases := []httpCase{
		{name: "hello", call: call{path: "/"}, want: want{status: 200, body: `{"Hello":"World"}`, header: ok}},
		{name: "hello ignores tokens", call: call{path: "/", header: bearer("garbage")}, want: want{status: 200, body: `{"Hello":"World"}`}},
		{name: "items", call: call{path: "/items", header: bearer(tokGood)}, want: want{status: 200, body: itemsJSON, header: ok}},
		{name: "item 1", call: call{path: "/items/1", header: bearer(tokGood)}, want: want{status: 200, body: `{"id":1,"name":"red ball"}`, header: ok}},
		{name: "item 2", call: call{path: "/items/2", header: bearer(tokGood)}, want: want{status: 200, body: `{"id":2,"name":"blue square"}`}},
		{name: "item 3", call: call{path: "/items/3", header: bearer(tokGood)}, want: want{status: 200, body: `{"id":3,"name":"purple ellipse"}`}},
		{name: "item 99", call: call{path: "/items/99", header: bearer(tokGood)}, want: want{status: 404, body: `{"detail":"Item not found"}`, header: ok}},
		{name: "item -1", call: call{path: "/items/-1", header: bearer(tokGood)}, want: want{status: 404, body: `{"detail":"Item not found"}`}},
		{name: "item huge integer", call: call{path: "/items/123456789012345678901234567890", header: bearer(tokGood)}, want: want{status: 404, body: `{"detail":"Item not found"}`}},
		{name: "item abc", call: call{path: "/items/abc", header: bearer(tokGood)}, want: want{
			status: 422, header: ok,
			body: `{"detail":[{"type":"int_parsing","loc":["path","id"],"msg":"Input should be a valid integer, unable to parse string as an integer"}]}`,
		}},
		// The router hands the id over as the client spelt it; "%32" is
		// the integer 2 (RFC 3986 section 2.3), as FastAPI reads it.
		{name: "item percent-encoded", call: call{path: "/items/%32", header: bearer(tokGood)}, want: want{status: 200, body: `{"id":2,"name":"blue square"}`}},
		{name: "item percent-encoded non-integer", call: call{path: "/items/%41", header: bearer(tokGood)}, want: want{status: 422, bodyHas: []string{"int_parsing"}}},
		{name: "item 1.5", call: call{path: "/items/1.5", header: bearer(tokGood)}, want: want{status: 422, bodyHas: []string{"int_parsing"}}},
		{name: "item id checked after auth", call: call{path: "/items/abc"}, want: want{status: 401}},
		{name: "healthz", call: call{path: "/healthz"}, want: want{status: 200, body: `{"status":"ok"}`, header: ok}},
		{name: "readyz", call: call{path: "/readyz"}, want: want{status: 200, body: `{"status":"ready"}`, header: ok}},
		{name: "unknown path", call: call{path: "/nope"}, want: want{status: 404, body: `{"detail":"Not Found"}`, header: ok}},
		{name: "wrong method on items", call: call{method: "DELETE", path: "/items", header: bearer(tokGood)}, want: want{
			status: 405, body: `{"detail":"Method Not Allowed"}`, header: jsonHeader("Allow", "GET, HEAD, OPTIONS"),
		}},
		{name: "GET on token", call: call{path: "/token"}, want: want{
			status: 405, body: `{"detail":"Method Not Allowed"}`, header: jsonHeader("Allow", "OPTIONS, POST"),
		}},
		{name: "options", call: call{method: "OPTIONS", path: "/items"}, want: want{status: 204, header: map[string]string{"Allow": "GET, HEAD, OPTIONS"}}},
		{name: "principal reaches the handler", call: call{path: "/whoami", header: bearer(tokGood)}, want: want{status: 200, body: "svc-a/client-a"}},
	}
	for _, tc := range cases {
		tc.g = g
		t.Run(tc.name, tc.run)
	}
}

// TestAuthFailures covers RFC 6750 behaviour and the failure semantics
// table: each way a request can fail authentication, and the response.
func TestAuthFailures(t *testing.T) {
	g := newGate(t, handlers.Config{})
	const realm = `Bearer realm="tokengate"`
	cases := []httpCase{
		{name: "no token", call: call{path: "/items"}, want: want{
			status: 401, body: `{"detail":"Not authenticated"}`, header: jsonHeader("WWW-Authenticate", realm),
		}},
		{name: "basic scheme is no token", call: call{path: "/items", header: []string{"Authorization", "Basic ZGV2OnNlY3JldA=="}}, want: want{
			status: 401, body: `{"detail":"Not authenticated"}`, header: map[string]string{"WWW-Authenticate": realm},
		}},
		{name: "lower-case bearer", call: call{path: "/items", header: []string{"Authorization", "bearer " + tokGood}}, want: want{status: 200, body: itemsJSON}},
		{name: "upper-case BEARER", call: call{path: "/items", header: []string{"Authorization", "BEARER  " + tokGood + " "}}, want: want{status: 200, body: itemsJSON}},
		{name: "empty bearer", call: call{path: "/items", header: []string{"Authorization", "Bearer"}}, want: want{
			status: 401, body: `{"detail":"empty bearer token"}`,
			header: map[string]string{"WWW-Authenticate": realm + `, error="invalid_token", error_description="empty bearer token"`},
		}},
		{name: "unknown token", call: call{path: "/items", header: bearer("forged")}, want: want{
			status: 401, body: `{"detail":"signature invalid"}`,
			header: jsonHeader("WWW-Authenticate", realm+`, error="invalid_token", error_description="signature invalid"`),
		}},
		{name: "expired token", call: call{path: "/items/1", header: bearer(tokExpired)}, want: want{
			status: 401, body: `{"detail":"token expired"}`,
			header: map[string]string{"WWW-Authenticate": realm + `, error="invalid_token", error_description="token expired"`},
		}},
		// The client sees the reason's fixed description, never the cause
		// (which may quote what the token said).
		{name: "the cause stays out of the response", call: call{path: "/items", header: bearer(tokCause)}, want: want{
			status: 401, body: `{"detail":"unknown signing key"}`,
			header: map[string]string{"WWW-Authenticate": realm + `, error="invalid_token", error_description="unknown signing key"`},
		}},
		{name: "a reason beyond the vocabulary reads invalid token", call: call{path: "/items", header: bearer(tokOdd)}, want: want{
			status: 401, body: `{"detail":"invalid token"}`,
			header: map[string]string{"WWW-Authenticate": realm + `, error="invalid_token", error_description="invalid token"`},
		}},
		{name: "valid without scope", call: call{path: "/items", header: bearer(tokNoScope)}, want: want{
			status: 403, body: `{"detail":"insufficient scope: items required"}`,
			header: jsonHeader("WWW-Authenticate", realm+`, error="insufficient_scope", scope="items"`),
		}},
		{name: "valid without scope on item", call: call{path: "/items/2", header: bearer(tokNoScope)}, want: want{status: 403}},
		{name: "unavailable rounds Retry-After up", call: call{path: "/items", header: bearer(tokDown)}, want: want{
			status: 503, body: `{"detail":"token cannot be validated now: keys not loaded"}`,
			header: jsonHeader("Retry-After", "2", "WWW-Authenticate", ""),
		}},
		{name: "unavailable without hint", call: call{path: "/items", header: bearer(tokDownZero)}, want: want{
			status: 503, body: `{"detail":"token cannot be validated now: introspection endpoint returned 500"}`,
			header: map[string]string{"Retry-After": "5"},
		}},
		{name: "unavailable wrapped", call: call{path: "/items", header: bearer(tokDownWrap)}, want: want{
			status: 503, body: `{"detail":"token cannot be validated now: jwks fetch failed"}`,
			header: map[string]string{"Retry-After": "3"},
		}},
		{name: "server context canceled", call: call{path: "/items", header: bearer(tokCanceled)}, want: want{
			status: 503, bodyHas: []string{"shutting down"}, header: map[string]string{"Retry-After": "5"},
		}},
		{name: "validator deadline", call: call{path: "/items", header: bearer(tokDeadline)}, want: want{
			status: 503, body: `{"detail":"token cannot be validated now: validation timed out"}`, header: map[string]string{"Retry-After": "5"},
		}},
		{name: "unexpected error", call: call{path: "/items", header: bearer(tokWeird)}, want: want{
			status: 500, body: `{"detail":"Internal Server Error"}`, header: jsonHeader("WWW-Authenticate", ""),
		}},
		{name: "validator returns nothing", call: call{path: "/items", header: bearer(tokNil)}, want: want{
			status: 500, body: `{"detail":"Internal Server Error"}`,
		}},
		{name: "validator panics", call: call{path: "/items", header: bearer(tokPanic)}, want: want{
			status: 500, body: `{"detail":"Internal Server Error"}`,
		}},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			tc.g = g
			t.Run(tc.name, tc.run)
		}
	})
	// Every token above went through the middleware with debug logging on:
	// none may appear in a log line.
	noLogContains(t, g.logs, tokGood, tokNoScope, tokExpired, tokDown, tokWeird, tokPanic, "forged")
	if n := g.logs.FilterMessage("handlers: invalid token").FilterFieldKey("token").Len(); n < 3 {
		t.Errorf("invalid-token debug logs with a fingerprint = %d, want >= 3", n)
	}
}

// TestInternalErrorCarriesRequestID checks that a 500 names the request id
// it was logged under, and never shows the stack.
func TestInternalErrorCarriesRequestID(t *testing.T) {
	for _, tc := range []struct {
		name, path, token, logMsg string
	}{
		{"handler panic", "/boom", "", "handlers: panic serving request"},
		{"validator panic", "/items", tokPanic, "handlers: panic serving request"},
		{"unexpected validator error", "/items", tokWeird, "handlers: token validation failed unexpectedly"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGate(t, handlers.Config{})
			c := call{path: tc.path}
			if tc.token != "" {
				c.header = bearer(tc.token)
			}
			resp := g.do(t, c)
			want{status: 500, body: `{"detail":"Internal Server Error"}`, header: jsonHeader()}.check(t, resp)
			for _, leak := range []string{"goroutine", "exploded", ".go:"} {
				if strings.Contains(string(resp.Body()), leak) {
					t.Errorf("body %s leaks %q", resp.Body(), leak)
				}
			}
			id := string(resp.Header.Peek("X-Request-Id"))
			if id == "" {
				t.Fatal("no X-Request-Id on the 500")
			}
			entries := g.logs.FilterMessage(tc.logMsg).All()
			if len(entries) != 1 {
				t.Fatalf("%d log entries %q, want 1", len(entries), tc.logMsg)
			}
			fields := entries[0].ContextMap()
			if got := anyString(fields["request_id"]); got != id {
				t.Errorf("logged request_id = %q, response X-Request-Id = %q", got, id)
			}
			if strings.Contains(tc.logMsg, "panic") && !strings.Contains(anyString(fields["stack"]), "goroutine") &&
				!strings.Contains(anyString(fields["stack"]), ".go:") {
				t.Errorf("panic log has no stack: %v", fields)
			}
		})
	}
}

// TestReadyz: /readyz is unauthenticated, so a 503 names a fixed class of
// reason and never the error chain (hosts, addresses, URLs); the chain goes
// to the log.
func TestReadyz(t *testing.T) {
	const secretHost = "idp.internal.example:8443"
	fetchFailed := fmt.Errorf("discovery: GET https://%s/.well-known/openid-configuration: dial tcp 10.1.2.3:8443: connection refused", secretHost)
	cases := []struct {
		name  string
		ready func() error
		want  want
	}{
		{"nil means ready", nil, want{status: 200, body: `{"status":"ready"}`}},
		{"ready", func() error { return nil }, want{status: 200, body: `{"status":"ready"}`, header: jsonHeader()}},
		{"keys not loaded yet", func() error { return fmt.Errorf("%w: first fetch in progress", auth.ErrKeysNotLoaded) }, want{
			status: 503, body: `{"detail":"not ready: keys not loaded yet"}`, header: jsonHeader("Retry-After", "5"),
		}},
		{"key fetch failed", func() error {
			return fmt.Errorf("%w: %w", auth.ErrKeysNotLoaded, &auth.UnavailableError{Reason: "jwks", Err: fetchFailed})
		}, want{
			status: 503, body: `{"detail":"not ready: authorization server unavailable"}`, header: jsonHeader("Retry-After", "5"),
		}},
		{"discovery failed", func() error {
			return &auth.UnavailableError{Reason: "authorization server metadata unavailable", Err: fetchFailed}
		}, want{
			status: 503, body: `{"detail":"not ready: authorization server unavailable"}`, header: jsonHeader("Retry-After", "5"),
		}},
		{"shutting down", func() error { return fmt.Errorf("app: %w", handlers.ErrShuttingDown) }, want{
			status: 503, body: `{"detail":"not ready: shutting down"}`, header: jsonHeader("Retry-After", "5"),
		}},
		{"cancelled", func() error { return fmt.Errorf("app: %w", context.Canceled) }, want{
			status: 503, body: `{"detail":"not ready: shutting down"}`,
		}},
		{"anything else", func() error { return fmt.Errorf("app: %s is odd: %w", secretHost, fetchFailed) }, want{
			status: 503, body: `{"detail":"not ready"}`, header: jsonHeader("Retry-After", "5"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGate(t, handlers.Config{Ready: tc.ready})
			for range 3 {
				tc.want.check(t, g.do(t, call{path: "/readyz"}))
			}
			if tc.ready == nil || tc.ready() == nil {
				if n := g.logs.Len(); n != 0 {
					t.Errorf("%d log lines while ready", n)
				}
				return
			}
			// The detail is logged, once at warn level while it stays the same.
			warns := g.logs.FilterMessage("handlers: not ready").FilterLevelExact(zapcore.WarnLevel).All()
			if len(warns) != 1 {
				t.Fatalf("%d warn lines for three probes with one reason, want 1", len(warns))
			}
			if got := anyString(warns[0].ContextMap()["error"]); got != tc.ready().Error() {
				t.Errorf("logged error %q, want %q", got, tc.ready().Error())
			}
		})
	}
}

// TestReadyzLogsEachChange: a new reason is logged at warn level again,
// and so is the first after the server was ready in between.
func TestReadyzLogsEachChange(t *testing.T) {
	errs := []error{
		fmt.Errorf("%w: first fetch in progress", auth.ErrKeysNotLoaded),
		fmt.Errorf("%w: first fetch in progress", auth.ErrKeysNotLoaded),
		errors.New("reason b"),
		nil,
		errors.New("reason b"),
	}
	var i int
	g := newGate(t, handlers.Config{Ready: func() error { return errs[i] }})
	for i = range errs {
		g.do(t, call{path: "/readyz"})
	}
	if n := g.logs.FilterMessage("handlers: not ready").FilterLevelExact(zapcore.WarnLevel).Len(); n != 3 {
		t.Fatalf("%d warn lines, want 3: one per change of reason", n)
	}
}

func TestConfigDefaultsAndOverrides(t *testing.T) {
	g := newGate(t, handlers.Config{RequiredScope: "widgets:read", Realm: `my "api"`})
	want{status: 401, header: map[string]string{"WWW-Authenticate": `Bearer realm="my \"api\""`}}.check(t, g.do(t, call{path: "/items"}))
	want{status: 403, body: `{"detail":"insufficient scope: widgets:read required"}`, header: map[string]string{
		"WWW-Authenticate": `Bearer realm="my \"api\"", error="insufficient_scope", scope="widgets:read"`,
	}}.check(t, g.do(t, call{path: "/items", header: bearer(tokGood)}))
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  handlers.Config
		want string
	}{
		{"no validator", handlers.Config{}, "Validator is required"},
		{"scope with space", handlers.Config{Validator: newAuthStub(), RequiredScope: "items admin"}, "RequiredScope"},
		{"scope with quote", handlers.Config{Validator: newAuthStub(), RequiredScope: `it"ems`}, "RequiredScope"},
		{"realm with newline", handlers.Config{Validator: newAuthStub(), Realm: "a\nb"}, "Realm"},
		{"negative token timeout", handlers.Config{Validator: newAuthStub(), TokenTimeout: -1}, "TokenTimeout"},
		{"negative token bound", handlers.Config{Validator: newAuthStub(), TokenMaxConcurrent: -1}, "TokenMaxConcurrent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := handlers.New(tc.cfg)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "handlers: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q with the package prefix", err, tc.want)
			}
		})
	}
}

// TestPrincipalOutsideMiddleware checks that Principal is nil where no
// middleware ran.
func TestPrincipalOutsideMiddleware(t *testing.T) {
	var ctx fasthttp.RequestCtx
	if p := handlers.Principal(&ctx); p != nil {
		t.Fatalf("Principal = %+v, want nil", p)
	}
}

// TestBaseContextReachesValidator checks that Validate gets the server's
// context, never the request.
func TestBaseContextReachesValidator(t *testing.T) {
	type key struct{}
	base := context.WithValue(context.Background(), key{}, "server")
	got := make(chan any, 1)
	v := validatorFunc(func(ctx context.Context, _ []byte) error {
		got <- ctx.Value(key{})
		return nil
	})
	g := newGate(t, handlers.Config{Validator: v, BaseContext: base, Logger: zap.NewNop()})
	want{status: 200}.check(t, g.do(t, call{path: "/items", header: bearer("x")}))
	if v := <-got; v != "server" {
		t.Errorf("Validate saw context value %v, want the base context", v)
	}
}

// TestRequestError: what fasthttp could not read gets a JSON detail with
// the status that names the problem, echoing nothing of the request.
func TestRequestError(t *testing.T) {
	s, err := handlers.New(handlers.Config{Validator: newAuthStub()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"body too large", fasthttp.ErrBodyTooLarge, 413, `{"detail":"request body too large"}`},
		{"body too large, wrapped", fmt.Errorf("read: %w", fasthttp.ErrBodyTooLarge), 413, `{"detail":"request body too large"}`},
		{"header too large", &fasthttp.ErrSmallBuffer{}, 431, `{"detail":"request header too large"}`},
		{"read timeout", timeoutErr{}, 408, `{"detail":"request timeout"}`},
		{"anything else", errors.New(`cannot parse "Authorization: Bearer s3cr3t"`), 400, `{"detail":"malformed request"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			s.RequestError(&ctx, tc.err)
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if got := string(ctx.Response.Body()); got != tc.body {
				t.Errorf("body %s, want %s", got, tc.body)
			}
			if got := string(ctx.Response.Header.ContentType()); got != ctJSON {
				t.Errorf("Content-Type %q", got)
			}
		})
	}
}

// TestHeadAnswersAsGet: every GET route answers HEAD (RFC 9110 section
// 9.3.2) with the GET's status and headers, auth included, and no body.
func TestHeadAnswersAsGet(t *testing.T) {
	g := newGate(t, handlers.Config{})
	for _, c := range []call{
		{path: "/"},
		{path: "/healthz"},
		{path: "/readyz"},
		{path: "/metrics"},
		{path: "/items"},
		{path: "/items", header: bearer(tokGood)},
		{path: "/items", header: bearer("forged")},
		{path: "/items/2", header: bearer(tokGood)},
		{path: "/items/99", header: bearer(tokGood)},
		{path: "/openapi.json"},
		{path: "/docs"},
	} {
		t.Run(c.path+" "+strings.Join(c.header, " "), func(t *testing.T) {
			get := g.do(t, c)
			head := c
			head.method = fasthttp.MethodHead
			resp := g.do(t, head)
			if resp.StatusCode() != get.StatusCode() {
				t.Fatalf("HEAD status %d, GET %d", resp.StatusCode(), get.StatusCode())
			}
			if len(resp.Body()) != 0 {
				t.Errorf("HEAD body %q, want none", resp.Body())
			}
			for _, h := range []string{"Content-Type", "WWW-Authenticate"} {
				if got, want := resp.Header.Peek(h), get.Header.Peek(h); string(got) != string(want) {
					t.Errorf("HEAD %s %q, GET %q", h, got, want)
				}
			}
			if c.path != "/metrics" { // the figures move between the two requests
				if got, want := resp.Header.ContentLength(), len(get.Body()); got != want {
					t.Errorf("HEAD Content-Length %d, GET body %d bytes", got, want)
				}
			}
		})
	}
}

// TestRedirectsStayOnTheOrigin: a path that differs from a route only by
// a trailing slash is redirected to the route, as FastAPI does, by its
// path and query alone (RFC 9110 section 10.2.2 allows a relative
// Location). An absolute Location would be built from the request's Host
// header and the scheme tokengate sees: behind a proxy that terminates
// TLS it sent the client to plain http, and behind one that passes its
// upstream address as Host, to that internal address. A HEAD is
// redirected as its GET is (301); other methods keep theirs (308). Other
// spellings (letter case, doubled slashes) are 404, as in FastAPI.
func TestRedirectsStayOnTheOrigin(t *testing.T) {
	g := newGate(t, handlers.Config{})
	internal := []string{"Host", "10.0.0.7:8000"}
	notFound := `{"detail":"Not Found"}`
	for _, tc := range []struct {
		call     call
		status   int
		location string
		body     string
	}{
		{call{path: "/items/", header: internal}, 301, "/items", ""},
		{call{path: "/items/?a=1&b=2", header: internal}, 301, "/items?a=1&b=2", ""},
		{call{path: "/items/2/", header: internal}, 301, "/items/2", ""},
		{call{path: "/healthz/"}, 301, "/healthz", ""},
		{call{path: "/docs/", header: internal}, 301, "/docs", ""},
		{call{method: "HEAD", path: "/items/", header: internal}, 301, "/items", ""},
		{call{method: "HEAD", path: "/docs/"}, 301, "/docs", ""},
		{call{method: "POST", path: "/token/", header: internal}, 308, "/token", ""},
		{call{path: "/ITEMS", header: internal}, 404, "", notFound},
		{call{path: "/items//", header: internal}, 404, "", notFound},
		{call{path: "//items/", header: internal}, 404, "", notFound},
		{call{method: "DELETE", path: "/items/"}, 404, "", notFound},
	} {
		t.Run(tc.call.method+" "+tc.call.path, func(t *testing.T) {
			want{status: tc.status, body: tc.body, header: map[string]string{"Location": tc.location}}.check(t, g.do(t, tc.call))
		})
	}
}
