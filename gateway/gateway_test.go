package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/gateway"
	"github.com/tokengate/tokengate/internal/proxytest"
	"github.com/tokengate/tokengate/internal/testutil"
	"github.com/tokengate/tokengate/policy"
)

// alice is the principal of every forwarded request but those to /public.
var alice = &auth.Principal{Subject: "alice", ClientID: "app-1", Scopes: []string{"items", "orders:read"}, Issuer: "https://issuer.example"}

// front is a fasthttp server on a loopback port that hands every request
// to the gateway as allowed, the way tokengate's gateway mode does after
// the decision.
type front struct {
	addr string
	gw   *gateway.Gateway
}

func startFront(tb testing.TB, cfg gateway.Config) *front {
	tb.Helper()
	return startFrontTimeout(tb, cfg, 10*time.Second)
}

// startFrontTimeout is startFront whose connections time out on silence,
// or on a header slower than that, after timeout (NewIdleListener), with
// the keep-alive wait bounded by the server, as in tokengate's gateway
// mode.
func startFrontTimeout(tb testing.TB, cfg gateway.Config, timeout time.Duration) *front {
	tb.Helper()
	if cfg.Policy == nil {
		cfg.Policy = policy.NewHolder(policy.Default("items"), nil)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			gateway.HeaderReceived(ctx.Conn())
			p := alice
			if strings.HasPrefix(string(ctx.Path()), "/public") {
				p = nil
			}
			gw.Forward(ctx, p, nil)
		},
		StreamRequestBody:     true,
		NoDefaultServerHeader: true,
		IdleTimeout:           time.Minute,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(gateway.NewIdleListener(ln, timeout))
	}()
	tb.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
		gw.Close()
	})
	return &front{addr: ln.Addr().String(), gw: gw}
}

// raw sends a request written by hand (so that every byte of it is the
// test's) and returns the response, its body read.
func (f *front) raw(tb testing.TB, request string) (*http.Response, string) {
	tb.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(body)
}

func echoed(tb testing.TB, body string) proxytest.Echoed {
	tb.Helper()
	e, err := proxytest.Decode([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// gatewayCase is one request through the gateway to the echo upstream and
// what the upstream must (or must not) have seen.
type gatewayCase struct {
	name    string
	peer    string // TrustedProxies of the gateway: "" trusts nobody
	policy  string // the policy file; "" is policy.Default("items")
	request string
	uri     string            // the upstream's request target, exactly
	has     map[string]string // header: the one value the upstream saw
	hasNot  []string          // headers the upstream must not see
}

func (tc gatewayCase) run(t *testing.T) {
	echo := proxytest.NewEcho(t)
	cfg := gateway.Config{Upstream: "http://" + echo.Addr()}
	if tc.peer != "" {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(tc.peer)}
	}
	if tc.policy != "" {
		p, err := policy.Parse("test.yaml", []byte(tc.policy))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Policy = policy.NewHolder(p, nil)
	}
	f := startFront(t, cfg)
	resp, body := f.raw(t, tc.request)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := echoed(t, body)
	if tc.uri != "" && e.URI != tc.uri {
		t.Errorf("upstream target %q, want %q", e.URI, tc.uri)
	}
	for k, want := range tc.has {
		if k == "Host" {
			if e.Host != want {
				t.Errorf("Host %q, want %q", e.Host, want)
			}
			continue
		}
		if got := e.Header[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: upstream saw %q, want [%q]", k, got, want)
		}
	}
	for _, k := range tc.hasNot {
		if got, ok := e.Header[k]; ok {
			t.Errorf("%s reached the upstream: %q", k, got)
		}
	}
	if echo.Hits() != 1 {
		t.Errorf("upstream hits %d, want 1", echo.Hits())
	}
}

func TestForwardHeaders(t *testing.T) {
	for _, tc := range []gatewayCase{
		{name: "claim headers from the principal",
			request: "GET /orders/1 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer tok\r\n\r\n",
			has:     map[string]string{"X-Auth-Subject": "alice", "X-Auth-Client-Id": "app-1", "X-Auth-Scopes": "items orders:read", "Authorization": "Bearer tok", "Host": "api.example.com"}},
		{name: "spoofed claim headers removed, in any case and number",
			request: "GET /orders/1 HTTP/1.1\r\nHost: a\r\nx-auth-subject: root\r\nX-AUTH-SUBJECT: root2\r\nX-Auth-Scopes: admin\r\n\r\n",
			has:     map[string]string{"X-Auth-Subject": "alice", "X-Auth-Scopes": "items orders:read"}},
		{name: "claim header named in any case in the policy: spoofed copies removed, one set",
			policy:  "headers:\n  x-auth-SUBJECT: sub\n  X_USER: sub\n",
			request: "GET /orders/1 HTTP/1.1\r\nHost: a\r\nX-Auth-Subject: root\r\nx-auth-subject: root2\r\nx_user: root3\r\n\r\n",
			has:     map[string]string{"X-Auth-Subject": "alice", "X_user": "alice"}},
		{name: "spoofed claim headers with '_' for '-' removed (CGI, WSGI, Rack, PHP read them as the same)",
			request: "GET /orders/1 HTTP/1.1\r\nHost: a\r\nX_Auth_Subject: root\r\nx-auth_scopes: admin\r\nX_AUTH_CLIENT_ID: c\r\n\r\n",
			has:     map[string]string{"X-Auth-Subject": "alice", "X-Auth-Scopes": "items orders:read", "X-Auth-Client-Id": "app-1"},
			hasNot:  []string{"X_auth_subject", "X-Auth_scopes", "X_auth_client_id"}},
		{name: "claim header named with '_' in the policy: the '-' spelling removed too",
			policy:  "headers:\n  X_USER: sub\n",
			request: "GET /orders/1 HTTP/1.1\r\nHost: a\r\nX-User: root\r\n\r\n",
			has:     map[string]string{"X_user": "alice"},
			hasNot:  []string{"X-User"}},
		{name: "Cookie forwarded as received while the fields are searched for look-alikes",
			request: "GET /orders/1 HTTP/1.1\r\nHost: a\r\nCookie: a=b;  c; d=\"e f\"\r\nX_Auth_Subject: root\r\n\r\n",
			has:     map[string]string{"Cookie": "a=b;  c; d=\"e f\"", "X-Auth-Subject": "alice"}},
		{name: "public route: spoofed claim headers removed and none set",
			request: "GET /public/x HTTP/1.1\r\nHost: a\r\nX-Auth-Subject: root\r\nX-Auth-Client-Id: c\r\nX_Auth_Scopes: admin\r\n\r\n",
			hasNot:  []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scopes", "X_auth_scopes"}},
		{name: "hop-by-hop headers removed, with those Connection names",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop, x-other\r\nX-Hop: 1\r\nX-Other: 2\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nX-Kept: yes\r\n\r\n",
			has:     map[string]string{"X-Kept": "yes"},
			hasNot:  []string{"Connection", "X-Hop", "X-Other", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer"}},
		{name: "Connection naming Host cannot take away the Host the policy matched",
			request: "GET /x HTTP/1.1\r\nHost: api.example.com\r\nConnection: keep-alive, host, X-Hop\r\nX-Hop: 1\r\n\r\n",
			has:     map[string]string{"Host": "api.example.com", "X-Forwarded-Host": "api.example.com"},
			hasNot:  []string{"X-Hop"}},
		{name: "path forwarded in the normal form the policy matched, query as received",
			request: "GET /caf%C3%A9/a+b/%7Euser?q=%2F&x=a%20b&y HTTP/1.1\r\nHost: a\r\n\r\n",
			uri:     "/caf%C3%A9/a+b/~user?q=%2F&x=a%20b&y"},
		{name: "path already in normal form forwarded byte for byte",
			request: "GET /caf%C3%A9/a+b/~user/ HTTP/1.1\r\nHost: a\r\n\r\n",
			uri:     "/caf%C3%A9/a+b/~user/"},
		{name: "target starting with // and holding :// forwarded as matched, not read as an authority",
			request: "GET //public/admin?u=http://x HTTP/1.1\r\nHost: a\r\n\r\n",
			uri:     "/public/admin?u=http://x"},
		{name: "target starting with // without a Host header forwarded as matched",
			request: "GET //public/admin HTTP/1.0\r\n\r\n",
			uri:     "/public/admin"},
		// The policy decides on policy.Normalize's path; an upstream that
		// resolves dot segments without merging slashes first (RFC 3986
		// section 5.2.4, WHATWG URL) or does not decode %2e would route
		// the raw target elsewhere: "/admin//../public/x" to
		// "/admin/public/x", "/admin/%2e%2e/public/x" under "/admin/".
		{name: "dot segment after an empty one: the upstream sees the path the policy matched",
			request: "GET /admin//../public/x?a=b HTTP/1.1\r\nHost: a\r\n\r\n",
			uri:     "/public/x?a=b"},
		{name: "encoded dot segments: the upstream sees the path the policy matched",
			request: "GET /admin/%2e%2e/public/x HTTP/1.1\r\nHost: a\r\n\r\n",
			uri:     "/public/x"},
		{name: "encoded unreserved and sub-delims decoded as the policy read them",
			request: "GET /%61dmin/./jobs%3Arun/%2E HTTP/1.1\r\nHost: a\r\n\r\n",
			uri:     "/admin/jobs:run/"},
		{name: "HTTP/1.0 without a Host header forwarded",
			request: "GET /x?y HTTP/1.0\r\n\r\n",
			uri:     "/x?y"},
		{name: "untrusted peer: X-Forwarded-* replaced",
			request: "GET /x HTTP/1.1\r\nHost: api.example.com:8443\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n\r\n",
			has:     map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "api.example.com:8443"}},
		{name: "untrusted peer: X-Forwarded-Host from the Host header, whatever the target",
			request: "GET //evil.example/x?u=http://y HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-Host: evil.example\r\n\r\n",
			has:     map[string]string{"X-Forwarded-Host": "api.example.com"}},
		{name: "untrusted peer: Forwarded, X-Real-IP and True-Client-IP removed, in any spelling",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nForwarded: for=6.6.6.6;host=evil.example;proto=https\r\nforwarded: for=7.7.7.7\r\nX-Real-IP: 6.6.6.6\r\nX_Real_Ip: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\n\r\n",
			has:     map[string]string{"X-Forwarded-For": "127.0.0.1"},
			hasNot:  []string{"Forwarded", "X-Real-Ip", "X_real_ip", "True-Client-Ip"}},
		{name: "claim header named X-Real-IP: the client's copy removed, the claim kept",
			policy:  "headers:\n  X-Real-IP: sub\n",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Real-IP: 6.6.6.6\r\n\r\n",
			has:     map[string]string{"X-Real-Ip": "alice"}},
		{name: "trusted peer: Forwarded, X-Real-IP and True-Client-IP kept", peer: "127.0.0.0/8",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nForwarded: for=203.0.113.7;proto=https\r\nX-Real-IP: 203.0.113.7\r\nTrue-Client-IP: 203.0.113.7\r\n\r\n",
			has:     map[string]string{"Forwarded": "for=203.0.113.7;proto=https", "X-Real-Ip": "203.0.113.7", "True-Client-Ip": "203.0.113.7"}},
		{name: "X-Forwarded-* spelled with '_' removed",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded_Proto: https\r\nx_forwarded_host: evil.example\r\n\r\n",
			has:     map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "a"},
			hasNot:  []string{"X_forwarded_for", "X-Forwarded_proto", "X_forwarded_host"}},
		{name: "trusted peer: X-Forwarded-* spelled with '_' removed", peer: "127.0.0.0/8",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n",
			has:     map[string]string{"X-Forwarded-For": "203.0.113.7, 127.0.0.1"},
			hasNot:  []string{"X_forwarded_for"}},
		{name: "trusted peer: X-Forwarded-For appended, proto and host kept", peer: "127.0.0.0/8",
			request: "GET /x HTTP/1.1\r\nHost: internal:8000\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\n\r\n",
			has:     map[string]string{"X-Forwarded-For": "203.0.113.7, 10.0.0.1, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}},
		{name: "trusted peer without forwarded headers: set", peer: "127.0.0.0/8",
			request: "GET /x HTTP/1.1\r\nHost: internal\r\n\r\n",
			has:     map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "internal"}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestForwardRefusesBadPath: a target whose path policy.Normalize
// refuses, which the decision refuses first, is 400 from the gateway too,
// never forwarded as received.
func TestForwardRefusesBadPath(t *testing.T) {
	echo := proxytest.NewEcho(t)
	f := startFront(t, gateway.Config{Upstream: "http://" + echo.Addr()})
	for _, target := range []string{"/public%2F..%2Fadmin", "/admin;x=1", "/a\\b", "/%zz"} {
		resp, body := f.raw(t, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(body, "bad request path") {
			t.Errorf("%s: status %d: %s", target, resp.StatusCode, body)
		}
	}
	if echo.Hits() != 0 {
		t.Errorf("upstream hits %d, want 0", echo.Hits())
	}
}

func TestStripAuthorization(t *testing.T) {
	echo := proxytest.NewEcho(t)
	f := startFront(t, gateway.Config{Upstream: "http://" + echo.Addr(), StripAuthorization: true})
	_, body := f.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\n\r\n")
	if got, ok := echoed(t, body).Header["Authorization"]; ok {
		t.Fatalf("Authorization reached the upstream: %q", got)
	}
}

// TestHTTPSUpstream forwards to an upstream behind https://, which New
// accepts: the request must reach it over TLS.
func TestHTTPSUpstream(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %v %s", r.TLS != nil, r.RequestURI)
	}))
	t.Cleanup(up.Close)
	f := startFront(t, gateway.Config{Upstream: up.URL})
	gateway.SetUpstreamTLS(f.gw, up.Client().Transport.(*http.Transport).TLSClientConfig)
	resp, body := f.raw(t, "GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 || body != "tls true /x?y=1" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

// TestResponseHopByHop checks that the upstream's hop-by-hop response
// headers stay with the gateway, and the rest reach the client.
func TestResponseHopByHop(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=9")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Up-Kept", "yes")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "made")
	}))
	t.Cleanup(up.Close)
	f := startFront(t, gateway.Config{Upstream: up.URL})
	resp, body := f.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 201 || body != "made" || resp.Header.Get("X-Up-Kept") != "yes" {
		t.Fatalf("status %d, body %q, header %v", resp.StatusCode, body, resp.Header)
	}
	if d := resp.Header["Date"]; len(d) > 1 {
		t.Errorf("Date twice: %q", d)
	}
	for _, k := range []string{"X-Up-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("%s reached the client: %q", k, v)
		}
	}
}

// TestUpgradeIgnored: an upgrade the server may ignore (RFC 9110 section
// 7.8) is forwarded as a plain request without it: h2c, which curl
// --http2 offers on every http:// request and drops when not taken up,
// and any Upgrade in an HTTP/1.0 request, which a server must ignore.
func TestUpgradeIgnored(t *testing.T) {
	for _, tc := range []gatewayCase{
		{name: "h2c",
			request: "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
			hasNot:  []string{"Upgrade", "Http2-Settings", "Connection"}},
		{name: "HTTP/1.0",
			request: "GET /x HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
			hasNot:  []string{"Upgrade", "Connection"}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// rawUpstream starts an upstream on a loopback port that reads each
// request's header and answers response, byte for byte, then closes the
// connection; it returns its URL.
func rawUpstream(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					_, _ = io.WriteString(c, response)
				}
			})
		}
	})
	return "http://" + ln.Addr().String()
}

// TestUnaskedSwitchingProtocols: an upstream that answers 101 to a
// request that offered no upgrade (the gateway forwards none) has broken
// the exchange: 502, never a 101 that the client did not ask for either.
func TestUnaskedSwitchingProtocols(t *testing.T) {
	up := rawUpstream(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello")
	f := startFront(t, gateway.Config{Upstream: up})
	resp, body := f.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 502 || !strings.Contains(body, "bad gateway") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if m := string(f.gw.AppendMetrics(nil)); !strings.Contains(m, `result="bad_gateway"} 1`) {
		t.Errorf("metrics do not count it:\n%s", m)
	}
}

// TestNoInventedContentType: a request or response without Content-Type
// crosses the gateway without one. fasthttp's defaults would hand the
// upstream "application/octet-stream" and the client "text/plain;
// charset=utf-8", where the recipient should see none and may sniff.
func TestNoInventedContentType(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no sniffing: no Content-Type at all
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %q", b, r.Header.Values("Content-Type"))
	}))
	t.Cleanup(up.Close)
	f := startFront(t, gateway.Config{Upstream: up.URL})
	for _, tc := range []struct{ request, body string }{
		{"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", ` []`},
		{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", `hello []`},
		{"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", `hello []`},
		{"POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: text/csv\r\nContent-Length: 5\r\n\r\nhello", `hello ["text/csv"]`},
	} {
		resp, body := f.raw(t, tc.request)
		if resp.StatusCode != 200 || body != tc.body {
			t.Errorf("%q: status %d, upstream says %q, want %q", tc.request, resp.StatusCode, body, tc.body)
		}
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("%q: the client got Content-Type %q, which the upstream did not send", tc.request, ct)
		}
	}
}

func TestUpgradeRefused(t *testing.T) {
	echo := proxytest.NewEcho(t)
	f := startFront(t, gateway.Config{Upstream: "http://" + echo.Addr()})
	for _, upgrade := range []string{"websocket", "h2c, websocket"} {
		resp, body := f.raw(t, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: "+upgrade+"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		if resp.StatusCode != 501 || !strings.Contains(body, "WebSocket") {
			t.Fatalf("Upgrade: %s: status %d: %s", upgrade, resp.StatusCode, body)
		}
	}
	if echo.Hits() != 0 {
		t.Fatal("the upgrade reached the upstream")
	}
}

// TestUpstreamFailures covers 502 (refused) and 504 (silent past the
// timeout).
func TestUpstreamFailures(t *testing.T) {
	closed := testutil.ClosedAddr(t)
	silent := proxytest.NewSilent(t)

	for _, tc := range []struct {
		name     string
		upstream string
		status   int
		detail   string
	}{
		{"refused", "http://" + closed, 502, "bad gateway"},
		{"silent past the timeout", silent, 504, "gateway timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, gateway.Config{Upstream: tc.upstream, Timeout: 200 * time.Millisecond})
			resp, body := f.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.detail) || resp.Header.Get("X-Request-Id") == "" {
				t.Fatalf("status %d, X-Request-Id %q: %s", resp.StatusCode, resp.Header.Get("X-Request-Id"), body)
			}
			m := string(f.gw.AppendMetrics(nil))
			if !strings.Contains(m, fmt.Sprintf(`result="%s"} 1`, map[int]string{502: "bad_gateway", 504: "timeout"}[tc.status])) {
				t.Errorf("metrics do not count it:\n%s", m)
			}
		})
	}
}

// TestClientBodyFailure: a client that stops sending its body (silent
// past the front's timeout) or closes the connection short of its
// Content-Length is the client's failure, 408 or 400, never counted or
// answered as the upstream's 504 or 502, whose upstream here reads every
// byte it is given and would answer at once.
func TestClientBodyFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		halfOpen bool // close the client's sending side after the partial body
		status   int
	}{
		{"client silent mid-body: 408", false, fasthttp.StatusRequestTimeout},
		{"client gone mid-body: 400", true, fasthttp.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFrontTimeout(t, gateway.Config{Upstream: proxytest.NewCounter(t)}, 300*time.Millisecond)
			c := proxytest.Dial(t, f.addr)
			req := "PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 16<<10) // past what the server reads before the handler
			c.Send(t, req, len(req), 0)
			if tc.halfOpen {
				if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			resp, body := c.Response(t)
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("status %d (want %d), close %v: %s", resp.StatusCode, tc.status, resp.Close, body)
			}
			m := string(f.gw.AppendMetrics(nil))
			if !strings.Contains(m, `result="client_error"} 1`) {
				t.Errorf("metrics do not count it as the client's:\n%s", m)
			}
		})
	}
}

// tickingUpstream is an upstream whose GET /stream answers 200 and then
// a byte every 20 ms until the test ends; streaming is closed once the
// first response's header is out. Other paths get an empty 200.
func tickingUpstream(t *testing.T) (up *httptest.Server, streaming <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
				_, _ = io.WriteString(w, "x")
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(cancel)
	return up, started
}

// TestNoFreeConnection: with every upstream connection busy (MaxConns 1,
// a response still streaming), a request that waits Timeout for one gets
// 504, as Config.MaxConns says.
func TestNoFreeConnection(t *testing.T) {
	up, streaming := tickingUpstream(t)
	// Timeout bounds the upstream's silence as well as the wait for a
	// free connection: the stream's 20 ms gaps must stay far below it
	// even on a loaded machine, or the stream times out first and frees
	// the connection.
	f := startFront(t, gateway.Config{Upstream: up.URL, MaxConns: 1, Timeout: 1500 * time.Millisecond})

	c := proxytest.Dial(t, f.addr)
	const stream = "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"
	c.Send(t, stream, len(stream), 0)
	<-streaming
	resp, body := f.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 504 || !strings.Contains(body, "gateway timeout") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

// TestLongDownload: a response that keeps moving streams for longer than
// Timeout, which bounds the upstream's silence, not the response's length
// (the upstream connection has no header phase).
func TestLongDownload(t *testing.T) {
	const timeout = time.Second
	up, _ := tickingUpstream(t)
	f := startFront(t, gateway.Config{Upstream: up.URL, Timeout: timeout})
	c := proxytest.Dial(t, f.addr)
	const stream = "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"
	c.Send(t, stream, len(stream), 0)
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(3 * timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return // the client's own deadline: the download was still going
			}
			t.Fatalf("download cut after %v (Timeout %v): %v", time.Since(start), timeout, err)
		}
	}
}

// TestStreaming sends a body up and gets one down through the gateway,
// with and without a known length, and with Expect: 100-continue; the
// upstream checks what arrives byte for byte.
func TestStreaming(t *testing.T) {
	const n = 8<<20 + 13
	want := proxytest.PatternSum(n)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			h := sha256.New()
			got, _ := io.Copy(h, r.Body)
			var s [32]byte
			copy(s[:], h.Sum(nil))
			fmt.Fprintf(w, "%d %v", got, s == want)
			return
		}
		if r.URL.Query().Get("length") == "known" {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		_, _ = io.Copy(w, proxytest.Pattern(n))
	}))
	t.Cleanup(up.Close)
	f := startFront(t, gateway.Config{Upstream: up.URL})
	client := &http.Client{Timeout: 60 * time.Second}

	for _, tc := range []struct {
		name   string
		length int64 // -1: chunked
		expect bool
	}{
		{"upload with Content-Length", n, false},
		{"upload chunked", -1, false},
		{"upload with Expect: 100-continue", n, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, "http://"+f.addr+"/upload", io.NopCloser(proxytest.Pattern(n)))
			req.ContentLength = tc.length
			if tc.expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := string(body); got != fmt.Sprintf("%d true", n) {
				t.Fatalf("status %d: upstream says %q", resp.StatusCode, got)
			}
		})
	}
	for _, length := range []string{"known", "chunked"} {
		t.Run("download "+length, func(t *testing.T) {
			resp, err := client.Get("http://" + f.addr + "/download?length=" + length)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := sha256.New()
			got, err := io.Copy(h, resp.Body)
			var s [32]byte
			copy(s[:], h.Sum(nil))
			if err != nil || got != n || s != want {
				t.Fatalf("got %d bytes (want %d), same bytes %v, err %v", got, n, s == want, err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	pol := policy.NewHolder(policy.Default(""), nil)
	for _, cfg := range []gateway.Config{
		{Upstream: "", Policy: pol},
		{Upstream: "ftp://x:1", Policy: pol},
		{Upstream: "http://x:1/base", Policy: pol},
		{Upstream: "http://u:p@x:1", Policy: pol},
		{Upstream: "http://x:1"},
		{Upstream: "http://x:1", Policy: pol, Timeout: -1},
	} {
		if _, err := gateway.New(cfg); err == nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
}

// TestIdleConn checks the idle timeout: a read with nothing arriving
// fails with a timeout, and an explicit deadline wins over it.
func TestIdleConn(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := gateway.NewIdleConn(a, 50*time.Millisecond)
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read on a silent peer: %v, want a timeout", err)
	}
	// An explicit deadline in the past wins, and clearing it restores the
	// idle timeout.
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past an explicit deadline: %v", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
		default:
			_, _ = b.Write([]byte("x"))
		}
	}()
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read with data waiting: %d, %v", n, err)
	}
}

// headerTimeout is the front's timeout in TestHeaderTimeout: a header
// must arrive within it, a body may take any time as long as no gap
// reaches it. A connection must be cut within slowLimit; the uploads'
// gaps are a sixth of it.
const (
	headerTimeout = 300 * time.Millisecond
	slowLimit     = 10 * headerTimeout
	uploadGap     = headerTimeout / 6
)

// trickled is a request header that never ends, for TrickleUntilClosed.
var trickled = "GET /public HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("a", 1000)

// TestHeaderTimeout: a client trickling a request header a byte at a time
// (each gap well within the silence timeout) is cut about the timeout
// after the header began, on a new connection and on a keep-alive one
// after an idle wait longer than the timeout, while a body whose bytes
// keep moving streams for many timeouts.
func TestHeaderTimeout(t *testing.T) {
	f := startFrontTimeout(t, gateway.Config{Upstream: proxytest.NewCounter(t)}, headerTimeout)
	const get = "GET /public HTTP/1.1\r\nHost: a\r\n\r\n"
	const post = "POST /public HTTP/1.1\r\nHost: a\r\n"
	// fasthttp reads up to 8 KiB of a body before the handler runs, in
	// the header's time; the rest goes 100 bytes per gap for slowLimit.
	const fast = 8 << 10
	slow := int(slowLimit/uploadGap) * 100
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *proxytest.Conn)
	}{
		{"a trickled header on a new connection is cut", func(t *testing.T, c *proxytest.Conn) {
			c.TrickleUntilClosed(t, trickled, headerTimeout/3, slowLimit)
		}},
		{"a request, an idle wait, then a slow upload whose bytes keep moving", func(t *testing.T, c *proxytest.Conn) {
			c.Send(t, get, len(get), 0)
			if resp, _ := c.Response(t); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			time.Sleep(2 * headerTimeout)
			resp, body := c.Upload(t, post, fast, slow, 100, uploadGap)
			if resp.StatusCode != http.StatusOK || body != strconv.Itoa(fast+slow) {
				t.Fatalf("status %d, upstream read %q bytes, want %d", resp.StatusCode, body, fast+slow)
			}
		}},
		{"a trickled header on a keep-alive connection is cut", func(t *testing.T, c *proxytest.Conn) {
			c.Send(t, get, len(get), 0)
			if resp, _ := c.Response(t); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			time.Sleep(2 * headerTimeout)
			c.TrickleUntilClosed(t, trickled, headerTimeout/3, slowLimit)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, proxytest.Dial(t, f.addr))
		})
	}
}
