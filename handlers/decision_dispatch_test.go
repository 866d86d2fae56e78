package handlers_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/policy"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// newDecisionServer returns a Server with decisionPolicy plus headers (a
// YAML headers: block, or "" for the default claim headers).
func newDecisionServer(tb testing.TB, headers string) *handlers.Server {
	tb.Helper()
	p, err := policy.Parse("dispatch.yaml", []byte(decisionPolicy+headers))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := handlers.New(handlers.Config{
		Validator:      newAuthStub(),
		Policy:         policy.NewHolder(p, nil),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestDecisionDispatchMatchesRouter checks that Handler, which answers
// /auth/forward and /auth/request ahead of the router, answers every
// method and spelling exactly as the router alone does: the same status,
// body and claim headers (a spelling other than the exact path still goes
// through the router, redirects included).
func TestDecisionDispatchMatchesRouter(t *testing.T) {
	s := newDecisionServer(t, "")
	viaHandler, viaRouter := s.Handler(), s.Router().Handler
	header := []string{
		"X-Forwarded-Method", "GET", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Uri", "/orders/1",
		"X-Original-URI", "/orders/1", "X-Original-Method", "GET", "Authorization", "Bearer " + tokGood,
	}
	paths := []string{
		handlers.PathForward, handlers.PathRequest, handlers.PathForward + "?x=1",
		handlers.PathForward + "/", "/AUTH/forward", "/auth//request", "/auth/request/x",
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"}
	for _, path := range paths {
		for _, method := range methods {
			t.Run(method+" "+path, func(t *testing.T) {
				a := decisionCtx(call{method: method, path: path, header: header})
				b := decisionCtx(call{method: method, path: path, header: header})
				viaHandler(a)
				viaRouter(b)
				for _, k := range []string{"Location", "X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scopes", "WWW-Authenticate", "Allow"} {
					if ha, hb := string(a.Response.Header.Peek(k)), string(b.Response.Header.Peek(k)); ha != hb {
						t.Errorf("%s: Handler %q, router %q", k, ha, hb)
					}
				}
				if a.Response.StatusCode() != b.Response.StatusCode() || string(a.Response.Body()) != string(b.Response.Body()) {
					t.Errorf("Handler %d %s, router %d %s", a.Response.StatusCode(), a.Response.Body(), b.Response.StatusCode(), b.Response.Body())
				}
			})
		}
	}
	// The exact paths are decisions, not 404s or redirects.
	ctx := decisionCtx(call{path: handlers.PathRequest, header: header})
	viaHandler(ctx)
	if ctx.Response.StatusCode() != 200 || len(ctx.Response.Header.Peek("X-Auth-Subject")) == 0 {
		t.Errorf("GET %s: %d without claims", handlers.PathRequest, ctx.Response.StatusCode())
	}
}

// TestDecisionHeaderNamesAnyCase sends the original-request headers with
// lower-case names, as HTTP/2-speaking proxies and ingress-nginx may, over
// a real connection, and checks that each dialect still reads them; and
// that claim headers named in any case in the policy leave in canonical
// form.
func TestDecisionHeaderNamesAnyCase(t *testing.T) {
	s := newDecisionServer(t, "headers:\n  x-user: sub\n  X-AUTH-SCOPES: scope\n")
	ln := fasthttputil.NewInmemoryListener()
	serveUntilCleanup(t, &fasthttp.Server{Handler: s.Handler()}, ln)
	from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	client := &fasthttp.HostClient{
		Addr:                "tokengate.test",
		Dial:                func(string) (net.Conn, error) { return ln.DialWithLocalAddr(from) },
		MaxResponseBodySize: 1 << 20,
	}
	for _, tc := range []struct {
		name   string
		path   string
		header []string
	}{
		{"forward", handlers.PathForward, []string{"x-forwarded-method", "GET", "x-forwarded-host", "api.example.com", "x-forwarded-uri", "/orders/1"}},
		{"request, uri", handlers.PathRequest, []string{"x-original-uri", "/orders/1", "x-original-method", "GET", "x-forwarded-host", "api.example.com"}},
		{"request, url", handlers.PathRequest, []string{"x-original-url", "https://api.example.com/orders/1", "X-ORIGINAL-METHOD", "GET"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.DisableNormalizing() // send the names as written
			req.SetRequestURI("http://tokengate.test" + tc.path)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			req.Header.Set("authorization", "Bearer "+tokGood)
			if !strings.Contains(req.Header.String(), "\r\n"+tc.header[0]+": ") {
				t.Fatalf("the request does not carry %q as written:\n%s", tc.header[0], req.Header.String())
			}
			if err := client.DoTimeout(req, resp, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			raw := resp.Header.String()
			if resp.StatusCode() != 200 || !strings.Contains(raw, "\r\nX-User: svc-a\r\n") || !strings.Contains(raw, "\r\nX-Auth-Scopes: openid items\r\n") {
				t.Errorf("status %d, body %s, headers:\n%s", resp.StatusCode(), resp.Body(), raw)
			}
		})
	}
}
