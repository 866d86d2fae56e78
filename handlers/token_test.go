package handlers_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/internal/testutil"
)

// seen is what the fake token endpoint received, copied out of the request.
type seen struct {
	method, contentType, authorization string
	form                               url.Values
}

// basicCreds decodes the Basic header the proxy sent, undoing the RFC 6749
// form-encoding the way an authorization server does.
func (s seen) basicCreds(tb testing.TB) (id, secret string) {
	tb.Helper()
	raw, ok := strings.CutPrefix(s.authorization, "Basic ")
	if !ok {
		tb.Fatalf("upstream Authorization = %q, want Basic", s.authorization)
	}
	dec, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		tb.Fatalf("upstream Basic does not decode: %v", err)
	}
	eid, esecret, ok := strings.Cut(string(dec), ":")
	if !ok {
		tb.Fatalf("upstream Basic has no colon")
	}
	if id, err = url.QueryUnescape(eid); err != nil {
		tb.Fatalf("client id not form-encoded: %v", err)
	}
	if secret, err = url.QueryUnescape(esecret); err != nil {
		tb.Fatalf("client secret not form-encoded: %v", err)
	}
	return id, secret
}

// upstream is a fake authorization-server token endpoint on 127.0.0.1.
type upstream struct {
	url     string
	respond fasthttp.RequestHandler // what to answer; set before use
	release chan struct{}           // closed at cleanup: unblocks slow answers

	mu   sync.Mutex // guards reqs
	reqs []seen
}

func newUpstream(tb testing.TB, respond fasthttp.RequestHandler) *upstream {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	u := &upstream{url: "http://" + ln.Addr().String() + "/oauth2/default/v1/token", respond: respond, release: make(chan struct{})}
	serveUntilCleanup(tb, &fasthttp.Server{Handler: u.serve}, ln)
	tb.Cleanup(func() { close(u.release) }) // runs first
	return u
}

func (u *upstream) serve(ctx *fasthttp.RequestCtx) {
	form, _ := url.ParseQuery(string(ctx.PostBody()))
	u.mu.Lock()
	u.reqs = append(u.reqs, seen{
		method:        string(ctx.Method()),
		contentType:   string(ctx.Request.Header.ContentType()),
		authorization: string(ctx.Request.Header.Peek("Authorization")),
		form:          form,
	})
	u.mu.Unlock()
	u.respond(ctx)
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// answer returns a handler that always answers status and body.
func answer(status int, body string, header ...string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json;charset=UTF-8")
		for i := 0; i+1 < len(header); i += 2 {
			ctx.Response.Header.Set(header[i], header[i+1])
		}
		ctx.SetBodyString(body)
	}
}

const tokenJSON = `{"token_type":"Bearer","expires_in":3600,"access_token":"eyJ.fake.token","scope":"items"}`

func basicHeader(id, secret string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
}

func tokenGate(tb testing.TB, u *upstream) *gate {
	return newGate(tb, handlers.Config{
		TokenEndpoint: func(context.Context) (string, error) { return u.url, nil },
		TokenTimeout:  5 * time.Second,
	})
}

// tokenCase is one POST /token and what the client and the upstream see.
type tokenCase struct {
	name     string
	call     call
	upstream fasthttp.RequestHandler // default: 200 tokenJSON
	want     want
	// check inspects what the upstream received (nil: it must receive nothing).
	check func(t *testing.T, got seen)
}

func (tc tokenCase) run(t *testing.T) {
	t.Parallel()
	if tc.upstream == nil {
		tc.upstream = answer(200, tokenJSON)
	}
	u := newUpstream(t, tc.upstream)
	g := tokenGate(t, u)
	tc.call.method = fasthttp.MethodPost
	tc.call.path = "/token"
	resp := g.do(t, tc.call)
	tc.want.check(t, resp)
	if got := resp.Header.Peek("Cache-Control"); string(got) != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := resp.Header.Peek("Pragma"); string(got) != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
	reqs := u.requests()
	switch {
	case tc.check == nil && len(reqs) != 0:
		t.Errorf("upstream received %d requests, want none", len(reqs))
	case tc.check != nil && len(reqs) != 1:
		t.Errorf("upstream received %d requests, want 1", len(reqs))
	case tc.check != nil:
		got := reqs[0]
		if got.method != "POST" || got.contentType != "application/x-www-form-urlencoded" {
			t.Errorf("upstream got %s with Content-Type %q", got.method, got.contentType)
		}
		if g := got.form.Get("grant_type"); g != "client_credentials" {
			t.Errorf("upstream grant_type = %q", g)
		}
		tc.check(t, got)
	}
	noLogContains(t, g.logs, secretPrefix)
}

func TestTokenProxy(t *testing.T) {
	basicOK := func(id, secret string) func(*testing.T, seen) {
		return func(t *testing.T, got seen) {
			gid, gsecret := got.basicCreds(t)
			if gid != id || gsecret != secret {
				t.Errorf("upstream credentials = %q/%q, want %q/%q", gid, gsecret, id, secret)
			}
			if got.form.Has("client_secret") || got.form.Has("client_id") {
				t.Errorf("Basic client also sent form credentials upstream: %v", got.form)
			}
		}
	}
	const sec = secretPrefix + "abc"
	cases := []tokenCase{
		{
			name: "basic credentials, default scope",
			call: call{header: basicHeader("client-a", sec)},
			want: want{status: 200, body: tokenJSON, header: map[string]string{"Content-Type": "application/json;charset=UTF-8"}},
			check: func(t *testing.T, got seen) {
				basicOK("client-a", sec)(t, got)
				if s := got.form.Get("scope"); s != "items" {
					t.Errorf("scope = %q, want the default items", s)
				}
				if got.form.Has("audience") {
					t.Errorf("audience sent though none asked: %v", got.form)
				}
			},
		},
		{
			name:  "basic credentials form-encoded per RFC 6749",
			call:  call{header: basicHeader(url.QueryEscape("my client"), url.QueryEscape(secretPrefix+"p@ss:w+rd%"))},
			want:  want{status: 200, body: tokenJSON},
			check: basicOK("my client", secretPrefix+"p@ss:w+rd%"),
		},
		{
			name:  "basic credentials not encoded (curl -u) with a stray percent",
			call:  call{header: basicHeader("client-a", secretPrefix+"a%zz:b")},
			want:  want{status: 200, body: tokenJSON},
			check: basicOK("client-a", secretPrefix+"a%zz:b"),
		},
		{
			name: "form credentials stay form credentials",
			call: call{form: "grant_type=client_credentials&client_id=client-b&client_secret=" + url.QueryEscape(sec+"+/=")},
			want: want{status: 200, body: tokenJSON},
			check: func(t *testing.T, got seen) {
				if got.authorization != "" {
					t.Errorf("form client sent upstream with Authorization %q", got.authorization)
				}
				if got.form.Get("client_id") != "client-b" || got.form.Get("client_secret") != sec+"+/=" {
					t.Errorf("upstream form = %v", got.form)
				}
			},
		},
		{
			name: "scope and audience forwarded",
			call: call{header: basicHeader("client-a", sec), form: "scope=items+admin&audience=" + url.QueryEscape("api://default")},
			want: want{status: 200, body: tokenJSON},
			check: func(t *testing.T, got seen) {
				if s := got.form.Get("scope"); s != "items admin" {
					t.Errorf("scope = %q", s)
				}
				if a := got.form.Get("audience"); a != "api://default" {
					t.Errorf("audience = %q", a)
				}
			},
		},
		{
			name: "resource indicators forwarded, repeated (RFC 8707)",
			call: call{header: basicHeader("client-a", sec), form: "resource=" + url.QueryEscape("api://a") + "&resource=" + url.QueryEscape("https://b.example/api")},
			want: want{status: 200, body: tokenJSON},
			check: func(t *testing.T, got seen) {
				if r := got.form["resource"]; len(r) != 2 || r[0] != "api://a" || r[1] != "https://b.example/api" {
					t.Errorf("resource = %q, want both, in order", r)
				}
			},
		},
		{
			name: "no credentials",
			want: want{status: 401, bodyHas: []string{`"detail":"client authentication required`}, header: map[string]string{
				"WWW-Authenticate": `Basic realm="tokengate"`, "Content-Type": ctJSON,
			}},
		},
		{
			name: "bearer is not client authentication",
			call: call{header: bearer(tokGood)},
			want: want{status: 401, header: map[string]string{"WWW-Authenticate": `Basic realm="tokengate"`}},
		},
		{
			name: "client_id without secret",
			call: call{form: "client_id=client-b"},
			want: want{status: 401, header: map[string]string{"WWW-Authenticate": `Basic realm="tokengate"`}},
		},
		{
			name: "malformed basic",
			call: call{header: []string{"Authorization", "Basic !!!not-base64"}},
			want: want{status: 401, body: `{"detail":"malformed Basic credentials"}`, header: map[string]string{"WWW-Authenticate": `Basic realm="tokengate"`}},
		},
		{
			name: "basic without colon",
			call: call{header: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon"))}},
			want: want{status: 401, body: `{"detail":"malformed Basic credentials"}`},
		},
		{
			name: "two authentication methods",
			call: call{header: basicHeader("client-a", sec), form: "client_id=client-a&client_secret=" + sec},
			want: want{status: 400, bodyHas: []string{`"error":"invalid_request"`}, header: map[string]string{"Content-Type": ctJSON}},
		},
		{
			name: "wrong grant type",
			call: call{header: basicHeader("client-a", sec), form: "grant_type=password&username=u&password=p"},
			want: want{status: 400, body: `{"error":"unsupported_grant_type"}`, header: map[string]string{"Content-Type": ctJSON}},
		},
		{
			name:     "upstream 401 relayed unchanged",
			call:     call{header: basicHeader("client-a", secretPrefix+"wrong")},
			upstream: answer(401, `{"error":"invalid_client","error_description":"The client secret supplied for a confidential client is invalid."}`, "WWW-Authenticate", `Basic realm="okta"`),
			want: want{status: 401, body: `{"error":"invalid_client","error_description":"The client secret supplied for a confidential client is invalid."}`, header: map[string]string{
				"Content-Type": "application/json;charset=UTF-8", "WWW-Authenticate": `Basic realm="okta"`,
			}},
			check: basicOK("client-a", secretPrefix+"wrong"),
		},
		{
			name:     "upstream 429 relayed with Retry-After",
			call:     call{header: basicHeader("client-a", sec)},
			upstream: answer(429, `{"errorCode":"E0000047"}`, "Retry-After", "17"),
			want:     want{status: 429, body: `{"errorCode":"E0000047"}`, header: map[string]string{"Retry-After": "17"}},
			check:    basicOK("client-a", sec),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestTokenUpstreamFailures(t *testing.T) {
	creds := basicHeader("client-a", secretPrefix+"x")
	t.Run("upstream down", func(t *testing.T) {
		t.Parallel()
		endpoint := "http://" + testutil.ClosedAddr(t) + "/v1/token"
		g := newGate(t, handlers.Config{TokenEndpoint: func(context.Context) (string, error) { return endpoint, nil }})
		want{status: 502, body: `{"detail":"token endpoint unreachable"}`, header: map[string]string{
			"Cache-Control": "no-store", "Content-Type": ctJSON,
		}}.check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
		noLogContains(t, g.logs, secretPrefix)
	})
	t.Run("upstream slower than the timeout", func(t *testing.T) {
		t.Parallel()
		var u *upstream
		u = newUpstream(t, func(ctx *fasthttp.RequestCtx) {
			<-u.release // answers only when the test is over
			ctx.SetStatusCode(200)
		})
		g := newGate(t, handlers.Config{
			TokenEndpoint: func(context.Context) (string, error) { return u.url, nil },
			TokenTimeout:  150 * time.Millisecond,
		})
		start := time.Now()
		want{status: 504, body: `{"detail":"token endpoint timed out"}`, header: map[string]string{"Cache-Control": "no-store"}}.
			check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("504 took %v: the timeout did not bound the call", d)
		}
	})
	t.Run("upstream body over the limit", func(t *testing.T) {
		t.Parallel()
		big := `{"access_token":"` + strings.Repeat("a", 2<<20) + `"}`
		u := newUpstream(t, answer(200, big))
		g := tokenGate(t, u)
		want{status: 502, body: `{"detail":"token endpoint response too large"}`}.
			check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
	})
	t.Run("endpoint unknown", func(t *testing.T) {
		t.Parallel()
		var gotDeadline bool
		g := newGate(t, handlers.Config{TokenEndpoint: func(ctx context.Context) (string, error) {
			_, gotDeadline = ctx.Deadline()
			return "", fmt.Errorf("discovery: %w", &auth.UnavailableError{Reason: "discovery failed: status 500", RetryAfter: 2500 * time.Millisecond})
		}})
		want{status: 503, body: `{"detail":"token endpoint unavailable: discovery failed: status 500"}`, header: map[string]string{
			"Retry-After": "3", "Cache-Control": "no-store",
		}}.check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
		if !gotDeadline {
			t.Error("TokenEndpoint called without a deadline")
		}
	})
	t.Run("endpoint not configured", func(t *testing.T) {
		t.Parallel()
		g := newGate(t, handlers.Config{})
		want{status: 501, body: `{"detail":"token endpoint not configured"}`}.
			check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
	})
}

// clientFunc is a fake auth.HTTPClient.
type clientFunc func(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error

func (f clientFunc) DoDeadline(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	return f(req, resp, deadline)
}

// TestTokenUpstreamErrorMapping pins the status for each client error the
// fasthttp client can return, including those hard to provoke on loopback.
func TestTokenUpstreamErrorMapping(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		detail string
	}{
		{"dial timeout is unreachable", fmt.Errorf("dial: %w", fasthttp.ErrDialTimeout), 502, "token endpoint unreachable: connect timed out"},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, 502, "token endpoint unreachable"},
		{"TLS handshake timeout is unreachable", fasthttp.ErrTLSHandshakeTimeout, 502, "token endpoint unreachable: connect timed out"},
		{"read timeout", fasthttp.ErrTimeout, 504, "token endpoint timed out"},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, 504, "token endpoint timed out"},
		{"connection closed", fasthttp.ErrConnectionClosed, 502, "token endpoint unreachable"},
		{"pool exhausted", fasthttp.ErrNoFreeConns, 503, "too many concurrent token requests"},
		{"body too large", fasthttp.ErrBodyTooLarge, 502, "token endpoint response too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var left time.Duration
			g := newGate(t, handlers.Config{
				TokenEndpoint: func(context.Context) (string, error) { return "https://as.example/v1/token", nil },
				TokenTimeout:  7 * time.Second,
				TokenClient: clientFunc(func(_ *fasthttp.Request, _ *fasthttp.Response, deadline time.Time) error {
					left = time.Until(deadline)
					return tc.err
				}),
			})
			w := want{status: tc.status, body: `{"detail":"` + tc.detail + `"}`}
			if tc.status == 503 {
				w.header = map[string]string{"Retry-After": "1"}
			}
			w.check(t, g.do(t, call{method: "POST", path: "/token", header: basicHeader("c", secretPrefix+"s")}))
			if left <= 0 || left > 7*time.Second {
				t.Errorf("upstream deadline %v away, want within TokenTimeout", left)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

// heldClient is a token endpoint client whose calls wait, each having
// announced itself on entered, until release is closed; then they answer
// 200 with a token.
type heldClient struct {
	entered chan struct{}
	release chan struct{}
}

func (c *heldClient) DoDeadline(_ *fasthttp.Request, resp *fasthttp.Response, _ time.Time) error {
	c.entered <- struct{}{}
	<-c.release
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentType("application/json")
	resp.SetBodyString(`{"access_token":"t","token_type":"Bearer"}`)
	return nil
}

// TestTokenConcurrencyBound: beyond Config.TokenMaxConcurrent relays in
// flight, /token answers 503 with Retry-After at once, without calling
// upstream; a slot freed is usable again.
func TestTokenConcurrencyBound(t *testing.T) {
	const bound = 2
	up := &heldClient{entered: make(chan struct{}, bound+1), release: make(chan struct{})}
	g := newGate(t, handlers.Config{
		TokenEndpoint:      func(context.Context) (string, error) { return "http://as.test/v1/token", nil },
		TokenClient:        up,
		TokenMaxConcurrent: bound,
	})
	creds := basicHeader("client-a", secretPrefix+"x")
	held := make(chan int, bound)
	for range bound {
		go func() { // not g.do: it may call Fatal, which only the test's goroutine may
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetRequestURI("http://tokengate.test/token")
			req.Header.Set(creds[0], creds[1])
			code := -1
			if err := g.client.DoTimeout(req, resp, 10*time.Second); err == nil {
				code = resp.StatusCode()
			}
			held <- code
		}()
	}
	for range bound {
		<-up.entered
	}
	want{status: 503, body: `{"detail":"too many concurrent token requests"}`, header: map[string]string{
		"Retry-After": "1", "Cache-Control": "no-store",
	}}.check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
	// Requests refused before the upstream call need no slot.
	want{status: 401}.check(t, g.do(t, call{method: "POST", path: "/token"}))

	close(up.release)
	for range bound {
		if code := <-held; code != 200 {
			t.Errorf("held relay answered %d, want 200", code)
		}
	}
	want{status: 200}.check(t, g.do(t, call{method: "POST", path: "/token", header: creds}))
	if n := len(up.entered); n != 1 {
		t.Errorf("%d upstream calls after the release, want 1: the refused one must not have called", n)
	}
}

// TestTokenRefusesAmbiguousRequests: a client-credentials request that
// says one thing twice is refused with 400 invalid_request (RFC 6749
// section 3.1: no parameter more than once; section 2.3: one client
// authentication method) before anything is sent upstream, instead of
// relaying whichever copy came first.
func TestTokenRefusesAmbiguousRequests(t *testing.T) {
	const sec = secretPrefix + "abc"
	invalid := func(description string) want {
		return want{
			status: 400,
			body:   `{"error":"invalid_request","error_description":"` + description + `"}`,
			header: map[string]string{"Content-Type": ctJSON},
		}
	}
	cases := []tokenCase{
		{
			name: "two Basic headers",
			call: call{header: basicHeader("client-a", sec), extra: basicHeader("client-b", secretPrefix+"other")},
			want: invalid("more than one Authorization header"),
		},
		{
			name: "Bearer then Basic header",
			call: call{header: bearer(tokGood), extra: basicHeader("client-a", sec)},
			want: invalid("more than one Authorization header"),
		},
		{
			name: "grant_type twice",
			call: call{header: basicHeader("client-a", sec), form: "grant_type=client_credentials&grant_type=password"},
			want: invalid("grant_type sent more than once"),
		},
		{
			name: "scope twice",
			call: call{header: basicHeader("client-a", sec), form: "scope=items&scope=admin"},
			want: invalid("scope sent more than once"),
		},
		{
			name: "audience twice",
			call: call{header: basicHeader("client-a", sec), form: "audience=a&audience=b"},
			want: invalid("audience sent more than once"),
		},
		{
			name: "client_secret twice",
			call: call{form: "client_id=client-b&client_secret=" + sec + "&client_secret=" + sec + "x"},
			want: invalid("client_secret sent more than once"),
		},
		{
			name: "client_id twice",
			call: call{form: "client_id=client-b&client_id=client-c&client_secret=" + sec},
			want: invalid("client_id sent more than once"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestTokenScopeMustBeScopeTokens: a scope parameter that is not scope
// tokens separated by single spaces (RFC 6749 section 3.3: printable ASCII
// without '"' and '\') is refused with 400 invalid_scope (section 5.2),
// not relayed; an empty one asks for the default scope.
func TestTokenScopeMustBeScopeTokens(t *testing.T) {
	const sec = secretPrefix + "abc"
	invalid := want{
		status: 400,
		body:   `{"error":"invalid_scope","error_description":"scope must be scope tokens separated by single spaces (RFC 6749 section 3.3)"}`,
		header: map[string]string{"Content-Type": ctJSON},
	}
	var cases []tokenCase
	for _, scope := range []string{
		`it"ems`, `it\ems`, "items\r\nadmin", "items\tadmin", "ïtems", "items\x00", "items\x7f",
		" ", "items  admin", " items", "items ",
	} {
		cases = append(cases, tokenCase{
			name: fmt.Sprintf("%q", scope),
			call: call{header: basicHeader("client-a", sec), form: "scope=" + url.QueryEscape(scope)},
			want: invalid,
		})
	}
	cases = append(cases, tokenCase{
		name: "empty means the default",
		call: call{header: basicHeader("client-a", sec), form: "scope="},
		want: want{status: 200, body: tokenJSON},
		check: func(t *testing.T, got seen) {
			if s := got.form.Get("scope"); s != "items" {
				t.Errorf("scope = %q, want the default items", s)
			}
		},
	}, tokenCase{
		name: "every allowed character",
		call: call{header: basicHeader("client-a", sec), form: "scope=" + url.QueryEscape("items api://x!#$%&'()*+,-./:;<=>?@[]^_`{|}~")},
		want: want{status: 200, body: tokenJSON},
		check: func(t *testing.T, got seen) {
			if s := got.form.Get("scope"); s != "items api://x!#$%&'()*+,-./:;<=>?@[]^_`{|}~" {
				t.Errorf("scope = %q", s)
			}
		},
	})
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestTokenRelaysNoContentType: an authorization server's answer without
// a Content-Type is relayed without one, not with fasthttp's default
// text/plain, which would misstate the body. Read off the wire: a fasthttp
// client would add the default itself.
func TestTokenRelaysNoContentType(t *testing.T) {
	as, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, &fasthttp.Server{NoDefaultContentType: true, Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(400)
		ctx.SetBodyString(`{"error":"invalid_client"}`)
	}}, as)
	s, err := handlers.New(handlers.Config{
		Validator:     newAuthStub(),
		TokenEndpoint: func(context.Context) (string, error) { return "http://" + as.Addr().String() + "/v1/token", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, &fasthttp.Server{Handler: s.Handler()}, ln)
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	creds := basicHeader("client-a", secretPrefix+"x")
	if _, err := fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: tokengate.test\r\n%s: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", creds[0], creds[1]); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 400 ") || body != `{"error":"invalid_client"}` || !strings.Contains(head, "\r\nCache-Control: no-store\r\n") {
		t.Fatalf("response:\n%s", raw)
	}
	if strings.Contains(strings.ToLower(head), "content-type") {
		t.Errorf("Content-Type relayed though the server sent none:\n%s", head)
	}
}

// TestTokenBasicAndOtherClientID: a client_id form field beside HTTP Basic
// must name the same client (RFC 6749 section 3.2.1 lets a client name
// itself so); another id is refused with 400 invalid_request instead of
// being dropped, which got the client a token for the Basic client while
// it asked as another.
func TestTokenBasicAndOtherClientID(t *testing.T) {
	const sec = secretPrefix + "abc"
	cases := []tokenCase{
		{
			name: "other client_id",
			call: call{header: basicHeader("client-a", sec), form: "client_id=client-b"},
			want: want{status: 400, body: `{"error":"invalid_request","error_description":"client_id differs from the HTTP Basic client"}`},
		},
		{
			name: "same client_id",
			call: call{header: basicHeader("client-a", sec), form: "client_id=client-a&scope=items"},
			want: want{status: 200, body: tokenJSON},
			check: func(t *testing.T, got seen) {
				if id, _ := got.basicCreds(t); id != "client-a" {
					t.Errorf("upstream client %q", id)
				}
			},
		},
		{
			name: "same client_id, Basic form-encoded",
			call: call{header: basicHeader(url.QueryEscape("my client"), sec), form: "client_id=" + url.QueryEscape("my client")},
			want: want{status: 200, body: tokenJSON},
			check: func(t *testing.T, got seen) {
				if id, _ := got.basicCreds(t); id != "my client" {
					t.Errorf("upstream client %q", id)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
