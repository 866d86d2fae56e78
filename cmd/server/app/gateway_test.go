package app

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/lazydeadline"
	"github.com/tokengate/tokengate/internal/proxytest"
	"github.com/tokengate/tokengate/internal/testutil"
)

// gatewayPolicy is the policy of the gateway-mode tests: /items would be
// the demo route, and here must reach the upstream instead.
const gatewayPolicy = `
default: deny
routes:
  - path: /orders/**
    scopes: [items]
  - path: /items
    scopes: [items]
  - path: /admin/**
    scopes: [admin]
  - path: /status
    public: true
  - path: /upload
    scopes: [items]
  - path: /download
    scopes: [items]
`

// startGateway starts tokengate under --dev in gateway mode in front of
// upstream, with gatewayPolicy and args.
func startGateway(tb testing.TB, upstream string, args ...string) *App {
	tb.Helper()
	a := start(tb, devConfig(tb, append(gatewayArgs(tb, upstream), args...)...), Options{})
	waitReady(tb, a)
	return a
}

// gatewayArgs are the flags of gateway mode in front of upstream, with
// gatewayPolicy written to a file of the test's.
func gatewayArgs(tb testing.TB, upstream string) []string {
	tb.Helper()
	policyPath := filepath.Join(tb.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(gatewayPolicy), 0o600); err != nil {
		tb.Fatal(err)
	}
	return []string{"--policy-file=" + policyPath, "--upstream-url=" + upstream}
}

// rawRequest sends a hand-written request line and headers to addr and
// returns the response with its body.
func rawRequest(tb testing.TB, addr, method, target string, header ...string) (*http.Response, string) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: api.example.com\r\n", method, target)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// gatewayModeCase is one request through tokengate in gateway mode and
// what must come of it.
type gatewayModeCase struct {
	name     string
	method   string
	target   string
	token    string // "good", "noscope" or "" for none
	header   []string
	status   int
	upstream bool              // whether the upstream must be reached
	uri      string            // the upstream's target; "" is target
	seen     map[string]string // headers the upstream must see, with one value
	bodyHas  string
}

// TestGatewayMode runs tokengate as the reverse proxy in front of an
// upstream that echoes what it receives: the decision is the decision
// endpoints', a refused request never reaches the upstream, and tokengate's
// own paths stay its own while the demo routes are not served.
func TestGatewayMode(t *testing.T) {
	up := proxytest.NewEcho(t)
	a := startGateway(t, "http://"+up.Addr())
	mint := func(scopes ...string) string {
		tok, err := a.Dev().Mint(devissuer.MintOptions{Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokens := map[string]string{"good": mint("items"), "noscope": mint("other")}

	for _, tc := range []gatewayModeCase{
		{name: "allowed: claim headers, target as received", target: "/orders/1?x=%2F", token: "good", status: 200, upstream: true,
			seen: map[string]string{"X-Auth-Subject": "dev-client", "X-Auth-Client-Id": "dev-client", "X-Auth-Scopes": "items", "X-Forwarded-Host": "api.example.com"}},
		{name: "spoofed claim headers replaced", target: "/orders/1", token: "good", header: []string{"X-Auth-Subject", "root", "X-Auth-Scopes", "admin"},
			status: 200, upstream: true, seen: map[string]string{"X-Auth-Subject": "dev-client", "X-Auth-Scopes": "items"}},
		{name: "the demo /items is the upstream's", target: "/items", token: "good", status: 200, upstream: true},
		{name: "public route without a token", target: "/status", status: 200, upstream: true},
		{name: "public route: spoofed claim headers removed", target: "/status", header: []string{"X-Auth-Subject", "root"}, status: 200, upstream: true,
			seen: map[string]string{}},
		{name: "no token: 401", target: "/orders/1", status: 401, bodyHas: "Not authenticated"},
		{name: "bad token: 401", target: "/orders/1", header: []string{"Authorization", "Bearer nope"}, status: 401},
		{name: "scope missing: 403", target: "/orders/1", token: "noscope", status: 403, bodyHas: "insufficient scope"},
		{name: "rule needs another scope: 403", target: "/admin/x", token: "good", status: 403},
		{name: "no rule: default deny", target: "/elsewhere", token: "good", status: 403},
		{name: "the demo / is not served", target: "/", token: "good", status: 403},
		// The bypass table of forward auth, through the proxy: none reads
		// as the public route, and none reaches the upstream.
		{name: "dot segments", target: "/status/../admin/x", status: 401},
		{name: "encoded dot segments", target: "/status/%2e%2e/admin/x", status: 401},
		{name: "encoded slash", target: "/status%2F..%2Fadmin", status: 400, bodyHas: "bad request path"},
		{name: "repeated slashes", target: "//admin/x", status: 401},
		{name: "target starting with // and holding :// reaches the upstream as matched", target: "//orders/admin/x?u=http://x", token: "good", status: 200, upstream: true,
			uri: "/orders/admin/x?u=http://x"},
		{name: "dot segment after an empty one reaches the upstream as matched", target: "/admin//../status?x=1", status: 200, upstream: true,
			uri: "/status?x=1"},
		{name: "encoded dot segments reach the upstream as matched", target: "/admin/x/%2e%2e/%2E%2e/status", status: 200, upstream: true,
			uri: "/status"},
		{name: "path parameter", target: "/admin;a=b/x", status: 400},
		{name: "query cannot change the path", target: "/admin/x?/status", status: 401},
		{name: "upgrade refused after the decision", target: "/orders/1", token: "good", header: []string{"Connection", "Upgrade", "Upgrade", "websocket"}, status: 501, bodyHas: "WebSocket"},
		{name: "upgrade without a token: 401 first", target: "/orders/1", header: []string{"Connection", "Upgrade", "Upgrade", "websocket"}, status: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header
			if tc.token != "" {
				header = append([]string{"Authorization", "Bearer " + tokens[tc.token]}, header...)
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			hits := up.Hits()
			resp, body := rawRequest(t, a.Addr(), method, tc.target, header...)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.bodyHas) {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if reached := up.Hits() != hits; reached != tc.upstream {
				t.Fatalf("upstream reached: %v, want %v", reached, tc.upstream)
			}
			if !tc.upstream {
				return
			}
			e, err := proxytest.Decode([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if want := cmp.Or(tc.uri, tc.target); e.URI != want {
				t.Errorf("upstream target %q, want %q", e.URI, want)
			}
			for k, v := range tc.seen {
				if got := e.Header[k]; len(got) != 1 || got[0] != v {
					t.Errorf("upstream saw %s = %q, want %q", k, got, v)
				}
			}
			if tc.seen != nil && tc.token == "" {
				for _, k := range []string{"X-Auth-Subject", "X-Auth-Scopes", "X-Auth-Client-Id"} {
					if got, ok := e.Header[k]; ok {
						t.Errorf("%s reached the upstream on a public route: %q", k, got)
					}
				}
			}
		})
	}

	t.Run("tokengate's own paths stay its own", func(t *testing.T) {
		hits := up.Hits()
		for _, tc := range []struct{ target, has string }{
			{"/healthz", `{"status":"ok"}`},
			{"/readyz", `{"status":"ready"}`},
			{"/metrics", `tokengate_gateway_requests_total{result="forwarded"}`},
		} {
			if resp, body := rawRequest(t, a.Addr(), "GET", tc.target); resp.StatusCode != 200 || !strings.Contains(body, tc.has) {
				t.Errorf("%s: status %d: %.300s", tc.target, resp.StatusCode, body)
			}
		}
		resp, _ := rawRequest(t, a.Addr(), "GET", "/auth/forward", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/orders/1", "Authorization", "Bearer "+tokens["good"])
		if resp.StatusCode != 200 || resp.Header.Get("X-Auth-Subject") != "dev-client" {
			t.Errorf("/auth/forward: status %d, %v", resp.StatusCode, resp.Header)
		}
		if up.Hits() != hits {
			t.Error("an operational path reached the upstream")
		}
	})
}

// TestGatewayUpstreamDown: a refused connection is 502, a silent upstream
// 504, both with a request id; with STRIP_AUTHORIZATION the upstream never
// sees the token.
func TestGatewayUpstreamFailures(t *testing.T) {
	closed := testutil.ClosedAddr(t)
	silent := proxytest.NewSilent(t)

	for _, tc := range []struct {
		name, upstream string
		status         int
	}{
		{"refused: 502", "http://" + closed, 502},
		{"silent: 504", silent, 504},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startGateway(t, tc.upstream, "--upstream-timeout=300ms")
			tok, err := a.Dev().Mint(devissuer.MintOptions{Scopes: []string{"items"}})
			if err != nil {
				t.Fatal(err)
			}
			resp, body := rawRequest(t, a.Addr(), "GET", "/orders/1", "Authorization", "Bearer "+tok)
			if resp.StatusCode != tc.status || !strings.HasPrefix(body, `{"detail":`) || resp.Header.Get("X-Request-Id") == "" {
				t.Fatalf("status %d, X-Request-Id %q: %s", resp.StatusCode, resp.Header.Get("X-Request-Id"), body)
			}
		})
	}
	t.Run("STRIP_AUTHORIZATION", func(t *testing.T) {
		up := proxytest.NewEcho(t)
		a := startGateway(t, "http://"+up.Addr(), "--strip-authorization")
		tok, err := a.Dev().Mint(devissuer.MintOptions{Scopes: []string{"items"}})
		if err != nil {
			t.Fatal(err)
		}
		_, body := rawRequest(t, a.Addr(), "GET", "/orders/1", "Authorization", "Bearer "+tok)
		e, err := proxytest.Decode([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := e.Header["Authorization"]; ok {
			t.Fatalf("the upstream saw Authorization %q", got)
		}
	})
}

// streamMiB is the size of TestGatewayStreamingMemory's transfers:
// TOKENGATE_GATEWAY_STREAM_MIB, 64 by default (what CI runs); the README's
// figure is from 1024.
func streamMiB(tb testing.TB) int64 {
	v := os.Getenv("TOKENGATE_GATEWAY_STREAM_MIB")
	if v == "" {
		return 64
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		tb.Fatalf("TOKENGATE_GATEWAY_STREAM_MIB=%q: not a positive integer", v)
	}
	return n
}

// peakBaseline resets the process's peak RSS to its current RSS where the
// kernel allows (clear_refs 5) and returns the baseline to measure growth
// from: the current RSS after a reset, else the peak so far.
func peakBaseline(tb testing.TB) int64 {
	tb.Helper()
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil {
		return procStatus(tb, "VmRSS:")
	}
	return procStatus(tb, "VmHWM:")
}

// vmHWM returns the process's peak resident set size (VmHWM) in bytes.
func vmHWM(tb testing.TB) int64 { return procStatus(tb, "VmHWM:") }

// procStatus returns a kB field of /proc/self/status in bytes.
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestGatewayStreamingMemory streams an upload and a download of
// TOKENGATE_GATEWAY_STREAM_MIB through tokengate in gateway mode (client,
// tokengate and upstream all in this process, each streaming) and checks
// that the process's peak RSS grew by less than 64 MiB, whatever the size.
func TestGatewayStreamingMemory(t *testing.T) {
	n := streamMiB(t) << 20
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
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.Copy(w, proxytest.Pattern(n))
	}))
	t.Cleanup(up.Close)
	a := startGateway(t, up.URL)
	tok, err := a.Dev().Mint(devissuer.MintOptions{Scopes: []string{"items"}})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	const bound = 64 << 20

	t.Run("upload", func(t *testing.T) {
		before, start := peakBaseline(t), time.Now()
		req, _ := http.NewRequest(http.MethodPut, a.URL()+"/upload", io.NopCloser(proxytest.Pattern(n)))
		req.ContentLength = n
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Expect", "100-continue")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != fmt.Sprintf("%d true", n) {
			t.Fatalf("status %d: upstream says %q", resp.StatusCode, body)
		}
		growth := vmHWM(t) - before
		t.Logf("upload of %d MiB in %v: peak RSS grew by %.1f MiB", n>>20, time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
		if growth >= bound {
			t.Errorf("peak RSS grew by %d MiB streaming %d MiB up; want under %d", growth>>20, n>>20, bound>>20)
		}
	})
	t.Run("download", func(t *testing.T) {
		before, start := peakBaseline(t), time.Now()
		req, _ := http.NewRequest(http.MethodGet, a.URL()+"/download", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		got, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		var s [32]byte
		copy(s[:], h.Sum(nil))
		if err != nil || got != n || s != want {
			t.Fatalf("status %d: %d bytes (want %d), same bytes %v, %v", resp.StatusCode, got, n, s == want, err)
		}
		growth := vmHWM(t) - before
		t.Logf("download of %d MiB in %v: peak RSS grew by %.1f MiB", n>>20, time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
		if growth >= bound {
			t.Errorf("peak RSS grew by %d MiB streaming %d MiB down; want under %d", growth>>20, n>>20, bound>>20)
		}
	})
}

// TestGatewayDecidesOnTheHostHeader: the policy's host rules match the
// Host header the upstream reads, never a host fasthttp reads out of a
// target that starts with "//".
func TestGatewayDecidesOnTheHostHeader(t *testing.T) {
	up := proxytest.NewEcho(t)
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	const pol = `
default: deny
routes:
  - host: public.example.com
    path: /**
    public: true
  - path: /**
    scopes: [admin]
`
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	a := start(t, devConfig(t, "--policy-file="+policyPath, "--upstream-url=http://"+up.Addr()), Options{})
	waitReady(t, a)
	// rawRequest sends Host: api.example.com.
	resp, body := rawRequest(t, a.Addr(), "GET", "//public.example.com/x?u=http://y")
	if resp.StatusCode != 401 || up.Hits() != 0 {
		t.Fatalf("status %d, upstream hits %d: %s", resp.StatusCode, up.Hits(), body)
	}
}

// TestGatewayFormBodyNotBuffered: looking for an access_token form
// parameter beside the Authorization header must not read a streamed body
// whole. A form body announced at 1 GiB, of which 16 KiB are sent (the
// server pre-reads up to 8 KiB before the handler), with a made-up token,
// is answered at once, not after waiting for (and buffering) the body.
func TestGatewayFormBodyNotBuffered(t *testing.T) {
	up := proxytest.NewEcho(t)
	a := startGateway(t, "http://"+up.Addr())
	c, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer made.up.token\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1073741824\r\n\r\naccess_token=x&a="+strings.Repeat("b", 16<<10))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer while the body was pending: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || up.Hits() != 0 {
		t.Fatalf("status %d, upstream hits %d", resp.StatusCode, up.Hits())
	}
}

// gwTimeout is the silence and header timeout of TestGatewayHeaderTimeout
// (Options.timeouts): a connection must be cut within 10× it; the slow
// upload's gaps are a sixth of it.
const gwTimeout = 300 * time.Millisecond

// TestGatewayHeaderTimeout: in gateway mode, where fasthttp's own read
// timeout is off and connections time out on silence, a request header
// trickled a byte at a time is still cut about the timeout after it
// began, on a new connection and on a keep-alive one, while an upload
// whose bytes keep moving streams to the upstream for many timeouts; over
// plain HTTP and TLS.
func TestGatewayHeaderTimeout(t *testing.T) {
	opts := Options{timeouts: lazydeadline.Timeouts{Read: gwTimeout}}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := tr.startWith(t, opts, gatewayArgs(t, proxytest.NewCounter(t))...)
			tok, err := s.iss.Mint(devissuer.MintOptions{Scopes: []string{"items"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range headerTimeoutCases(tok) {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, proxytest.NewConn(t, s.dial(t).Conn))
				})
			}
		})
	}
}

// headerTimeoutCases are TestGatewayHeaderTimeout's, with tok for the
// upstream's protected routes.
func headerTimeoutCases(tok string) []struct {
	name string
	run  func(t *testing.T, c *proxytest.Conn)
} {
	trickled := "GET /items HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer " + tok + "\r\nX-Pad: " + strings.Repeat("a", 1000)
	get := "GET /status HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
	post := "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer " + tok + "\r\n"
	// fasthttp reads up to 8 KiB of a body before the handler runs, in
	// the header's time; the rest goes 100 bytes per gap for 10× the
	// timeout.
	const fast, gap = 8 << 10, gwTimeout / 6
	slow := int(10*gwTimeout/gap) * 100
	keepAlive := func(t *testing.T, c *proxytest.Conn) {
		c.Send(t, get, len(get), 0)
		if resp, body := c.Response(t); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		time.Sleep(2 * gwTimeout)
	}
	return []struct {
		name string
		run  func(t *testing.T, c *proxytest.Conn)
	}{
		{"a trickled header on a new connection is cut", func(t *testing.T, c *proxytest.Conn) {
			c.TrickleUntilClosed(t, trickled, gwTimeout/3, 10*gwTimeout)
		}},
		{"a request, an idle wait, then a slow upload whose bytes keep moving", func(t *testing.T, c *proxytest.Conn) {
			keepAlive(t, c)
			resp, body := c.Upload(t, post, fast, slow, 100, gap)
			if resp.StatusCode != http.StatusOK || body != strconv.Itoa(fast+slow) {
				t.Fatalf("status %d, upstream read %q bytes, want %d", resp.StatusCode, body, fast+slow)
			}
		}},
		{"a trickled header on a keep-alive connection is cut", func(t *testing.T, c *proxytest.Conn) {
			keepAlive(t, c)
			c.TrickleUntilClosed(t, trickled, gwTimeout/3, 10*gwTimeout)
		}},
	}
}
