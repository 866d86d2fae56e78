package handlers_test

import (
	"bufio"
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

// decisionPolicy is the policy of the decision tests. principalGood has
// scopes openid and items and no issuer; principalNoScope has scope other.
const decisionPolicy = `
default: deny
routes:
  - host: api.example.com
    path: /orders/**
    methods: [GET, HEAD]
    scopes: [items]
  - path: /orders/**
    methods: [POST]
    scopes: [orders:write]
  - path: /public/**
    public: true
  - path: /admin/**
    scopes: [admin]
  - path: /any
  - path: /okta-only
    issuers: [https://okta.example.com]
`

// newDecisionGate serves a Server with decisionPolicy to clients that
// appear to come from peer.
func newDecisionGate(tb testing.TB, peer string, cfg handlers.Config) *gate {
	tb.Helper()
	p, err := policy.Parse("decision.yaml", []byte(decisionPolicy))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Policy = policy.NewHolder(p, nil)
	cfg.Validator = newAuthStub()
	s, err := handlers.New(cfg)
	if err != nil {
		tb.Fatalf("handlers.New: %v", err)
	}
	ln := fasthttputil.NewInmemoryListener()
	serveUntilCleanup(tb, &fasthttp.Server{Handler: s.Handler(), NoDefaultDate: true}, ln)
	from := &net.TCPAddr{IP: net.ParseIP(peer), Port: 40000}
	return &gate{srv: s, client: &fasthttp.Client{
		Dial:                   func(string) (net.Conn, error) { return ln.DialWithLocalAddr(from) },
		DisablePathNormalizing: true,
		MaxResponseBodySize:    1 << 20,
	}}
}

// decisionCase is one decision request and what must come of it.
type decisionCase struct {
	name string
	call call
	want want
}

var (
	claimsGood = map[string]string{"X-Auth-Subject": "svc-a", "X-Auth-Client-Id": "client-a", "X-Auth-Scopes": "openid items"}
	claimsNone = map[string]string{"X-Auth-Subject": "", "X-Auth-Client-Id": "", "X-Auth-Scopes": ""}
)

func withClaims(extra map[string]string, claims map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

const (
	challengeBare    = `Bearer realm="tokengate"`
	challengeExpired = `Bearer realm="tokengate", error="invalid_token", error_description="token expired"`
)

func forward(method, host, uri string, token string) call {
	h := []string{"X-Forwarded-Method", method, "X-Forwarded-Proto", "https", "X-Forwarded-Host", host, "X-Forwarded-Uri", uri}
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	return call{path: handlers.PathForward, header: h}
}

// TestDecisionForward covers /auth/forward (Traefik, Caddy): every answer,
// the claim headers, and the original-request headers it needs.
func TestDecisionForward(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	for _, tc := range []decisionCase{
		{"allowed with claim headers", forward("GET", "api.example.com", "/orders/1", tokGood),
			want{status: 200, body: "", header: claimsGood}},
		{"HEAD follows GET", forward("HEAD", "api.example.com", "/orders/1", tokGood),
			want{status: 200, header: claimsGood}},
		{"host with port", forward("GET", "API.example.com:8443", "/orders/1?x=1", tokGood),
			want{status: 200, header: claimsGood}},
		{"public route needs no token", forward("GET", "x", "/public/a", ""),
			want{status: 200, header: claimsNone}},
		{"public route ignores a bad token", forward("GET", "x", "/public/a", tokExpired),
			want{status: 200, header: claimsNone}},
		{"no token", forward("GET", "x", "/any", ""),
			want{status: 401, body: `{"detail":"Not authenticated"}`, header: withClaims(map[string]string{"WWW-Authenticate": challengeBare}, claimsNone)}},
		{"expired token", forward("GET", "x", "/any", tokExpired),
			want{status: 401, header: map[string]string{"WWW-Authenticate": challengeExpired}}},
		{"unknown token", forward("GET", "x", "/any", "forged"),
			want{status: 401, bodyHas: []string{"signature invalid"}}},
		{"scope missing", forward("GET", "api.example.com", "/orders/1", tokNoScope),
			want{status: 403, header: withClaims(map[string]string{"WWW-Authenticate": `Bearer realm="tokengate", error="insufficient_scope", scope="items"`}, claimsNone),
				body: `{"detail":"insufficient scope: items required"}`}},
		{"method rule needs another scope", forward("POST", "api.example.com", "/orders/1", tokGood),
			want{status: 403, bodyHas: []string{"orders:write"}}},
		{"other host falls through to the default", forward("GET", "other.example.com", "/orders/1", tokGood),
			want{status: 403, header: claimsNone}},
		{"issuer not listed", forward("GET", "x", "/okta-only", tokGood),
			want{status: 403, bodyHas: []string{"issuer"}}},
		{"no rule: default deny", forward("GET", "x", "/elsewhere", tokGood),
			want{status: 403, header: claimsNone}},
		{"authorization server down", forward("GET", "x", "/any", tokDown),
			want{status: 503, header: map[string]string{"Retry-After": "2"}}},
		// The classic bypasses: none reads as the public route.
		{"dot segments", forward("GET", "x", "/public/../admin/x", ""),
			want{status: 401}},
		{"encoded dot segments", forward("GET", "x", "/public/%2e%2e/admin/x", ""),
			want{status: 401}},
		{"encoded slash", forward("GET", "x", "/public%2F..%2Fadmin", ""),
			want{status: 400, body: `{"detail":"bad request path in X-Forwarded-Uri header: encoded slash"}`}},
		{"repeated slashes", forward("GET", "x", "//admin/x", ""),
			want{status: 401}},
		{"path parameter", forward("GET", "x", "/admin;x=1", ""),
			want{status: 400}},
		{"query cannot change the path", forward("GET", "x", "/admin/x?/public/a", ""),
			want{status: 401}},
		// A raw '#' is no part of a request target, and the proxy passes
		// it on: nginx, Node and Python cut the path there, Go's server
		// keeps it in the path ("/public#/../admin" is /admin to
		// http.FileServer or Caddy's file_server). No single reading is
		// safe, so it is refused, as ';' is.
		{"fragment", forward("GET", "x", "/admin/x#/public", ""),
			want{status: 400, body: `{"detail":"malformed X-Forwarded-Uri header: fragment (#) in the path"}`}},
		{"fragment hiding dot segments", forward("GET", "x", "/public/a#/../../admin/x", ""),
			want{status: 400, bodyHas: []string{"X-Forwarded-Uri"}}},
		{"# in the query is the query's", forward("GET", "x", "/public/a?q=#/../../admin", ""),
			want{status: 200}},
		// The original request must be readable.
		{"missing X-Forwarded-Uri", call{path: handlers.PathForward, header: []string{"X-Forwarded-Method", "GET"}},
			want{status: 400, body: `{"detail":"missing X-Forwarded-Uri header"}`}},
		{"relative X-Forwarded-Uri", forward("GET", "x", "admin", ""),
			want{status: 400, bodyHas: []string{"X-Forwarded-Uri"}}},
		{"missing X-Forwarded-Method", call{path: handlers.PathForward, header: []string{"X-Forwarded-Uri", "/public/a"}},
			want{status: 400, body: `{"detail":"missing X-Forwarded-Method header"}`}},
		{"bad X-Forwarded-Method", forward("G T", "x", "/public/a", ""),
			want{status: 400, bodyHas: []string{"X-Forwarded-Method"}}},
		{"a list in X-Forwarded-Host", forward("GET", "a.example.com, api.example.com", "/orders/1", tokGood),
			want{status: 400, bodyHas: []string{"X-Forwarded-Host"}}},
		{"any method of the decision request", call{method: "DELETE", path: handlers.PathForward, header: forward("GET", "x", "/public/a", "").header},
			want{status: 200}},
		// RFC 6750 section 2: one method per request. The upstream gets
		// the original query, so an access_token there as well as the
		// header is ambiguous, as on the protected routes.
		{"access_token in the original query as well", forward("GET", "x", "/any?a=1&access_token=forged", tokGood),
			want{status: 400, bodyHas: []string{"more than one method"}}},
		{"encoded access_token name in the original query", forward("GET", "x", "/any?access%5Ftoken=forged", tokGood),
			want{status: 400, bodyHas: []string{"more than one method"}}},
		{"access_token after a semicolon", forward("GET", "x", "/any?x=1;access_token=forged", tokGood),
			want{status: 400, bodyHas: []string{"more than one method"}}},
		{"access_token after a #", forward("GET", "x", "/any?x=1#&access_token=forged", tokGood),
			want{status: 400, bodyHas: []string{"more than one method"}}},
		{"other parameters pass", forward("GET", "x", "/any?access_token_hint=1&x=access_token&access_tokenx", tokGood),
			want{status: 200, header: claimsGood}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.want.check(t, g.do(t, tc.call)) })
	}
}

// TestDecisionRequest covers /auth/request (nginx, ingress-nginx).
func TestDecisionRequest(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	for _, tc := range []decisionCase{
		{"nginx headers", call{path: handlers.PathRequest, header: append([]string{"X-Original-URI", "/orders/1", "X-Original-Method", "GET", "X-Forwarded-Host", "api.example.com"}, auth(tokGood)...)},
			want{status: 200, header: claimsGood}},
		// nginx's auth_request subrequest is always a GET (ngx_http_subrequest
		// sets "GET" unless it clones the request, which auth_request does
		// not): its own method says nothing of the original's, and taking
		// it would decide a POST by the GET rules.
		{"missing X-Original-Method", call{path: handlers.PathRequest, header: append([]string{"X-Original-URI", "/orders/1", "X-Forwarded-Host", "api.example.com"}, auth(tokGood)...)},
			want{status: 400, body: `{"detail":"missing X-Original-Method header"}`}},
		{"missing X-Original-Method, POST subrequest", call{method: "POST", path: handlers.PathRequest, header: append([]string{"X-Original-URL", "https://api.example.com/orders/1"}, auth(tokGood)...)},
			want{status: 400, body: `{"detail":"missing X-Original-Method header"}`}},
		{"empty X-Original-Method", call{path: handlers.PathRequest, header: append([]string{"X-Original-URI", "/public/a", "X-Original-Method", ""}, auth(tokGood)...)},
			want{status: 400, body: `{"detail":"missing X-Original-Method header"}`}},
		{"the original method decides, not the subrequest's", call{path: handlers.PathRequest, header: append([]string{"X-Original-URI", "/orders/1", "X-Original-Method", "POST", "X-Forwarded-Host", "api.example.com"}, auth(tokGood)...)},
			want{status: 403, bodyHas: []string{"orders:write"}}},
		{"host from Host when not forwarded", call{path: handlers.PathRequest, header: append([]string{"X-Original-URI", "/orders/1", "X-Original-Method", "GET", "Host", "api.example.com"}, auth(tokGood)...)},
			want{status: 200, header: claimsGood}},
		{"ingress-nginx X-Original-URL", call{path: handlers.PathRequest, header: append([]string{"X-Original-URL", "https://api.example.com/orders/1?a=b", "X-Original-Method", "GET"}, auth(tokGood)...)},
			want{status: 200, header: claimsGood}},
		// ingress-nginx passes the client's headers through and sets no
		// X-Forwarded-Host of its own: one that names another host than
		// X-Original-URL is the client's, and must not pick the rule.
		{"X-Forwarded-Host disagreeing with X-Original-URL", call{path: handlers.PathRequest, header: append([]string{"X-Original-URL", "https://other.example.com/orders/1", "X-Original-Method", "GET", "X-Forwarded-Host", "api.example.com"}, auth(tokGood)...)},
			want{status: 400, body: `{"detail":"X-Forwarded-Host and X-Original-URL disagree on the host"}`}},
		{"X-Forwarded-Host agreeing with X-Original-URL but for case, port and a trailing dot", call{path: handlers.PathRequest, header: append([]string{"X-Original-URL", "https://API.example.com.:8443/orders/1", "X-Original-Method", "GET", "X-Forwarded-Host", "api.example.com"}, auth(tokGood)...)},
			want{status: 200, header: claimsGood}},
		{"X-Original-URL without a path", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "https://api.example.com", "X-Original-Method", "GET"}},
			want{status: 403}},
		{"access_token in X-Original-URI's query as well", call{path: handlers.PathRequest, header: append([]string{"X-Original-URI", "/any?access_token=forged", "X-Original-Method", "GET"}, auth(tokGood)...)},
			want{status: 400, bodyHas: []string{"more than one method"}}},
		{"access_token in X-Original-URL's query as well", call{path: handlers.PathRequest, header: append([]string{"X-Original-URL", "https://x/any?access_token=forged", "X-Original-Method", "GET"}, auth(tokGood)...)},
			want{status: 400, bodyHas: []string{"more than one method"}}},
		{"X-Original-URL bypass attempt", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "http://x/public/%2e%2e/admin/", "X-Original-Method", "GET"}},
			want{status: 401}},
		// ingress-nginx writes $scheme://$http_host$request_uri, and nginx
		// accepts a Host holding '#' or '?': the path is still the one
		// after the host, never "/".
		{"X-Original-URL with # in the host", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "http://x#/admin/a"}},
			want{status: 400, bodyHas: []string{"X-Original-URL"}}},
		{"X-Original-URL with ? in the host", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "http://x?/admin/a"}},
			want{status: 400, bodyHas: []string{"X-Original-URL"}}},
		{"fragment hiding dot segments in X-Original-URI", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/public/a#/../../admin/x"}},
			want{status: 400, body: `{"detail":"malformed X-Original-URI header: fragment (#) in the path"}`}},
		{"fragment hiding dot segments in X-Original-URL", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "http://x/public/a#/../../admin/x"}},
			want{status: 400, body: `{"detail":"malformed X-Original-URL header: fragment (#) in the path"}`}},
		{"# in X-Original-URI's query", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/public/a?#/../../admin/x", "X-Original-Method", "GET"}},
			want{status: 200}},
		// A path the policy will not read is 400 naming the header it came in.
		{"encoded slash in X-Original-URI", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/public/..%2Fadmin", "X-Original-Method", "GET"}},
			want{status: 400, body: `{"detail":"bad request path in X-Original-URI header: encoded slash"}`}},
		{"path parameter in X-Original-URL", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "https://x/admin;x", "X-Original-Method", "GET"}},
			want{status: 400, body: `{"detail":"bad request path in X-Original-URL header: path parameter (;)"}`}},
		{"no original request", call{path: handlers.PathRequest},
			want{status: 400, body: `{"detail":"missing X-Original-URI or X-Original-URL header"}`}},
		{"relative X-Original-URL", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "/orders/1"}},
			want{status: 400, bodyHas: []string{"X-Original-URL"}}},
		{"disagreeing originals", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/public/a", "X-Original-URL", "http://x/admin/a"}},
			want{status: 400, bodyHas: []string{"disagree"}}},
		{"public", call{method: "HEAD", path: handlers.PathRequest, header: []string{"X-Original-URI", "/public/a", "X-Original-Method", "HEAD"}},
			want{status: 200}},
		{"no token", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/any", "X-Original-Method", "GET"}},
			want{status: 401, header: map[string]string{"WWW-Authenticate": challengeBare}}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.want.check(t, g.do(t, tc.call)) })
	}
}

// TestDecisionEnvoy covers /auth/envoy/… (Envoy ext_authz, HTTP service
// with path_prefix /auth/envoy): the request itself is the original.
func TestDecisionEnvoy(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	envoy := func(method, path, host, tok string) call {
		h := []string{"Host", host}
		if tok != "" {
			h = append(h, "Authorization", "Bearer "+tok)
		}
		return call{method: method, path: handlers.PathEnvoy + path, header: h}
	}
	for _, tc := range []decisionCase{
		{"allowed", envoy("GET", "/orders/1", "api.example.com", tokGood), want{status: 200, header: claimsGood}},
		{"method", envoy("POST", "/orders/1", "api.example.com", tokGood), want{status: 403}},
		{"public", envoy("PUT", "/public/x?y=1", "x", ""), want{status: 200}},
		{"no token", envoy("GET", "/any", "x", ""), want{status: 401, header: map[string]string{"WWW-Authenticate": challengeBare}}},
		{"encoded slash", envoy("GET", "/public/..%2fadmin", "x", ""), want{status: 400, body: `{"detail":"bad request path: encoded slash"}`}},
		{"dot segments", envoy("GET", "/public/%2E%2E/admin/x", "x", ""), want{status: 401}},
		{"root", envoy("GET", "/", "x", tokGood), want{status: 403}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.want.check(t, g.do(t, tc.call)) })
	}
}

// TestDecisionEnvoyRemovesUnsetClaimHeaders: Envoy's ext_authz HTTP
// service sets only the allowed upstream headers a 200 carries, so a
// client's own X-Auth-Subject would reach the upstream whenever tokengate
// sets none. A 200 to Envoy names every claim header it leaves out in
// X-Envoy-Auth-Headers-To-Remove, which Envoy removes from the upstream
// request; the other dialects never carry it.
func TestDecisionEnvoyRemovesUnsetClaimHeaders(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	const remove = "X-Envoy-Auth-Headers-To-Remove"
	envoy := func(path, tok string) call {
		h := []string{"Host", "api.example.com", "X-Auth-Subject", "admin"}
		if tok != "" {
			h = append(h, "Authorization", "Bearer "+tok)
		}
		return call{path: handlers.PathEnvoy + path, header: h}
	}
	for _, tc := range []decisionCase{
		{"public route: all of them", envoy("/public/a", ""),
			want{status: 200, header: withClaims(map[string]string{remove: "x-auth-subject, x-auth-client-id, x-auth-scopes"}, claimsNone)}},
		{"every claim set: none", envoy("/orders/1", tokGood),
			want{status: 200, header: withClaims(map[string]string{remove: ""}, claimsGood)}},
		{"a claim the token lacks", envoy("/any", tokNoSubject),
			want{status: 200, header: map[string]string{remove: "x-auth-subject", "X-Auth-Subject": "", "X-Auth-Client-Id": "client-c", "X-Auth-Scopes": "items"}}},
		{"refused: none", envoy("/admin/a", tokNoSubject), want{status: 403, header: map[string]string{remove: ""}}},
		{"Traefik, public route: none", forward("GET", "x", "/public/a", ""), want{status: 200, header: map[string]string{remove: ""}}},
		{"nginx, a claim the token lacks: none", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/any", "X-Original-Method", "GET", "Authorization", "Bearer " + tokNoSubject}},
			want{status: 200, header: map[string]string{remove: ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.want.check(t, g.do(t, tc.call)) })
	}
}

// TestDecisionTrustedProxies: only peers in TrustedProxies may ask, since
// the endpoints believe the forwarded headers.
func TestDecisionTrustedProxies(t *testing.T) {
	req := forward("GET", "x", "/public/a", "")
	for _, tc := range []struct {
		name    string
		peer    string
		trusted []netip.Prefix
		status  int
	}{
		{"loopback by default", "127.0.0.1", nil, 200},
		{"IPv6 loopback by default", "::1", nil, 200},
		{"others refused by default", "192.0.2.7", nil, 403},
		{"configured range", "192.0.2.7", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, 200},
		{"loopback not trusted when not listed", "127.0.0.1", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, 403},
		{"nobody", "127.0.0.1", []netip.Prefix{}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newDecisionGate(t, tc.peer, handlers.Config{TrustedProxies: tc.trusted})
			w := want{status: tc.status}
			if tc.status == 403 {
				w.body = `{"detail":"forbidden: this endpoint answers trusted proxies only"}`
			}
			w.check(t, g.do(t, req))
			// The protected demo routes are not restricted to proxies.
			want{status: 401}.check(t, g.do(t, call{path: "/items"}))
		})
	}
}

// TestDecisionPolicyReload: a reload swaps the rules the endpoints apply.
func TestDecisionPolicyReload(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/policy.yaml"
	write := func(s string) {
		if err := writeFile(path, s); err != nil {
			t.Fatal(err)
		}
	}
	write("default: public\n")
	p, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h := policy.NewHolder(p, func() time.Time { return time.Unix(1700000000, 0) })
	s, err := handlers.New(handlers.Config{Validator: newAuthStub(), Policy: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx := decisionCtx(forward("GET", "x", "/a", ""))
	s.Handler()(ctx)
	if got := ctx.Response.StatusCode(); got != 200 {
		t.Fatalf("public default: %d", got)
	}
	write("default: deny\n")
	if err := h.Reload(path); err != nil {
		t.Fatal(err)
	}
	ctx = decisionCtx(forward("GET", "x", "/a", ""))
	s.Handler()(ctx)
	if got := ctx.Response.StatusCode(); got != 403 {
		t.Fatalf("after reload to deny: %d", got)
	}
}

// TestDecisionProxyContracts sends the requests Traefik and Envoy send, as
// their documentation describes them (neither is packaged here, so they
// are not run for real): Traefik's ForwardAuth middleware makes a GET to
// the address with X-Forwarded-Method, -Proto, -Host, -Uri and -For and
// the client's headers; Envoy's ext_authz HTTP service sends the original
// method to path_prefix + the original path, with the original Host
// (:authority), Authorization and Content-Length: 0 (its default
// allowed_headers), plus its own x-envoy-* and x-forwarded-* headers.
func TestDecisionProxyContracts(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	traefik := call{path: handlers.PathForward, header: []string{
		"X-Forwarded-Method", "GET",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "api.example.com",
		"X-Forwarded-Uri", "/orders/7?expand=lines",
		"X-Forwarded-For", "203.0.113.9",
		"X-Real-Ip", "203.0.113.9",
		"Authorization", "Bearer " + tokGood,
		"Accept", "application/json",
	}}
	want{status: 200, body: "", header: claimsGood}.check(t, g.do(t, traefik))

	envoy := call{method: "DELETE", path: handlers.PathEnvoy + "/orders/7", header: []string{
		"Host", "api.example.com",
		"Authorization", "Bearer " + tokGood,
		"Content-Length", "0",
		"X-Envoy-Internal", "true",
		"X-Forwarded-Proto", "https",
		"X-Request-Id", "5e1b9c1e-0c35-4d0a-9a4a-2b0c2f0d2a11",
	}}
	// DELETE on /orders/** matches the POST-only rule? No: only GET/HEAD
	// (scope items) and POST (orders:write) are listed, so the default
	// rule (deny) answers.
	want{status: 403, header: claimsNone}.check(t, g.do(t, envoy))
	envoy.method = "GET"
	want{status: 200, header: claimsGood}.check(t, g.do(t, envoy))
}

// TestDecisionAmbiguousCredentials: the decision endpoints read the token
// as the protected routes do, so two Authorization headers are 400
// invalid_request there too, in either order.
func TestDecisionAmbiguousCredentials(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	for _, order := range [][2]string{{tokGood, "forged"}, {"forged", tokGood}} {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.SetRequestURI("http://tokengate.test" + handlers.PathForward)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		req.Header.Set("X-Forwarded-Uri", "/orders/1")
		req.Header.Add("Authorization", "Bearer "+order[0])
		req.Header.Add("Authorization", "Bearer "+order[1])
		if err := g.client.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 400 || !strings.Contains(string(resp.Header.Peek("WWW-Authenticate")), `error="invalid_request"`) {
			t.Errorf("%v: status %d, WWW-Authenticate %q", order, resp.StatusCode(), resp.Header.Peek("WWW-Authenticate"))
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

// TestDecisionDuplicateOriginalHeaders: a header describing the original
// request sent twice (a client's copy a proxy appended to instead of
// replacing, or a chain of proxies) is 400 naming the header, never a
// decision about whichever copy comes first.
func TestDecisionDuplicateOriginalHeaders(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	for _, tc := range []struct {
		name   string
		path   string
		header []string // name, value…; a repeated name is sent twice
		detail string
	}{
		{"X-Forwarded-Uri", handlers.PathForward,
			[]string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/a", "X-Forwarded-Uri", "/admin/a"},
			`{"detail":"X-Forwarded-Uri header sent more than once"}`},
		{"X-Forwarded-Method", handlers.PathForward,
			[]string{"X-Forwarded-Method", "GET", "X-Forwarded-Method", "POST", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Uri", "/orders/1"},
			`{"detail":"X-Forwarded-Method header sent more than once"}`},
		{"X-Forwarded-Host", handlers.PathForward,
			[]string{"X-Forwarded-Method", "GET", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Host", "other.example.com", "X-Forwarded-Uri", "/orders/1"},
			`{"detail":"X-Forwarded-Host header sent more than once"}`},
		{"X-Original-URI", handlers.PathRequest,
			[]string{"X-Original-URI", "/public/a", "X-Original-URI", "/admin/a"},
			`{"detail":"X-Original-URI header sent more than once"}`},
		{"X-Original-URL", handlers.PathRequest,
			[]string{"X-Original-URL", "http://x/public/a", "X-Original-URL", "http://x/admin/a"},
			`{"detail":"X-Original-URL header sent more than once"}`},
		{"X-Original-Method", handlers.PathRequest,
			[]string{"X-Original-URI", "/public/a", "X-Original-Method", "GET", "X-Original-Method", "POST"},
			`{"detail":"X-Original-Method header sent more than once"}`},
		{"X-Forwarded-Host of /auth/request", handlers.PathRequest,
			[]string{"X-Original-URI", "/orders/1", "X-Original-Method", "GET", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Host", "other.example.com"},
			`{"detail":"X-Forwarded-Host header sent more than once"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := fasthttp.AcquireRequest()
			defer fasthttp.ReleaseRequest(req)
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://tokengate.test" + tc.path)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Add(tc.header[i], tc.header[i+1])
			}
			req.Header.Add("Authorization", "Bearer "+tokGood)
			if err := g.client.DoTimeout(req, resp, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != 400 || string(resp.Body()) != tc.detail {
				t.Errorf("status %d, body %s; want 400 %s", resp.StatusCode(), resp.Body(), tc.detail)
			}
		})
	}
}

// TestDecisionEnvoyDotSegmentsStayDecisions: Envoy sends path_prefix + the
// original path as it arrived, dot segments and all (normalize_path is off
// by default), so an original path that climbs out of /auth/envoy is still
// an Envoy decision about the path the upstream will resolve (here the
// default rule, deny), never the router's redirect to whatever tokengate
// route the cleaned path names ("/auth/envoy/../../healthz" was a 301 to
// /healthz, which Envoy hands to the client).
func TestDecisionEnvoyDotSegmentsStayDecisions(t *testing.T) {
	g := newDecisionGate(t, "127.0.0.1", handlers.Config{})
	closed := want{status: 403, body: `{"detail":"forbidden: this route is closed"}`}
	for _, tc := range []decisionCase{
		{"root", call{path: handlers.PathEnvoy + "/../../", header: []string{"Host", "x"}}, closed},
		{"healthz", call{path: handlers.PathEnvoy + "/../../healthz", header: []string{"Host", "x"}}, closed},
		{"HEAD healthz", call{method: "HEAD", path: handlers.PathEnvoy + "/../../healthz", header: []string{"Host", "x"}}, want{status: 403}},
		{"upper-case items", call{path: handlers.PathEnvoy + "/../../ITEMS", header: []string{"Host", "x"}}, closed},
		{"encoded", call{path: handlers.PathEnvoy + "/%2e%2e/%2E%2E/healthz", header: []string{"Host", "x"}}, closed},
		{"onto /auth/request", call{path: handlers.PathEnvoy + "/../request", header: []string{"Host", "x", "X-Original-URI", "/public/a"}}, closed},
		{"protected", call{path: handlers.PathEnvoy + "/../../any", header: []string{"Host", "x"}}, want{status: 401}},
		{"public", call{path: handlers.PathEnvoy + "/../../public/a", header: []string{"Host", "x"}}, want{status: 200}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.want.check(t, g.do(t, tc.call)) })
	}
}

// TestDecisionControlCharacters: an original target with a control
// character, in its path or its query (which policy.Normalize does not
// read), is 400 naming the header on every dialect: no server reads such
// a request line, so no upstream serves what the header describes. The
// requests are handed to the handler directly; fasthttp's own parser
// refuses some of these header values before any handler runs.
func TestDecisionControlCharacters(t *testing.T) {
	s := newDecisionServer(t, "")
	for _, tc := range []struct {
		name   string
		call   call
		detail string
	}{
		{"query, X-Forwarded-Uri", forward("GET", "x", "/public/a?x=\x14", ""), "malformed X-Forwarded-Uri header: control character"},
		{"tab in the path, X-Forwarded-Uri", forward("GET", "x", "/public/a\tb", ""), "malformed X-Forwarded-Uri header: control character"},
		{"DEL in the query, X-Original-URI", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/public/a?\x7f", "X-Original-Method", "GET"}}, "malformed X-Original-URI header: control character"},
		{"query, X-Original-URL", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "http://x/public/?\x14", "X-Original-Method", "GET"}}, "malformed X-Original-URL header: control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := decisionCtx(tc.call)
			s.Handler()(ctx)
			if got, body := ctx.Response.StatusCode(), string(ctx.Response.Body()); got != 400 || body != `{"detail":"`+tc.detail+`"}` {
				t.Errorf("status %d, body %s; want 400 %q", got, body, tc.detail)
			}
		})
	}
}

// TestDecisionEnvoyFragment sends Envoy's request line with a raw '#' (an
// HTTP client would cut the fragment off before sending): the original
// path holds a fragment, which is refused as on the other dialects.
func TestDecisionEnvoyFragment(t *testing.T) {
	s := newDecisionServer(t, "")
	ln := fasthttputil.NewInmemoryListener()
	serveUntilCleanup(t, &fasthttp.Server{Handler: s.Handler()}, ln)
	for _, tc := range []struct {
		target string
		status int
		body   string
	}{
		{"/auth/envoy/public/a#/../../admin/x", 400, `{"detail":"malformed request path: fragment (#) in the path"}`},
		{"/auth/envoy/public/a?q=#/../../admin/x", 200, ""},
	} {
		t.Run(tc.target, func(t *testing.T) {
			conn, err := ln.DialWithLocalAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte("GET " + tc.target + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(conn)); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != tc.status || tc.body != "" && string(resp.Body()) != tc.body {
				t.Errorf("status %d, body %s; want %d %s", resp.StatusCode(), resp.Body(), tc.status, tc.body)
			}
		})
	}
}
