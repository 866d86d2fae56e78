package app

import (
	"bufio"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/proxytest"
	"github.com/tokengate/tokengate/internal/testpki"
)

// transport is how a client reaches tokengate: plain HTTP or HTTPS, and the
// scheme the handlers must see.
type transport struct {
	name   string
	tls    bool
	scheme string
}

var transports = []transport{
	{name: "plain HTTP", scheme: "http"},
	{name: "TLS", tls: true, scheme: "https"},
}

// served is a tokengate on a loopback port over a transport, with a way to
// open a connection to it and to mint tokens it accepts.
type served struct {
	app  *App
	dial func(t *testing.T) *httpConn
	iss  *devissuer.Issuer
}

// start starts tokengate with args over tr: under --dev for plain HTTP,
// in front of a development issuer of its own with a certificate from a
// test CA for TLS (--dev serves plain HTTP only).
func (tr transport) start(t *testing.T, args ...string) served {
	t.Helper()
	return tr.startWith(t, Options{}, args...)
}

// startWith is start with opts.
func (tr transport) startWith(t *testing.T, opts Options, args ...string) served {
	t.Helper()
	if tr.tls {
		ca := testpki.NewCA(t, "tokengate test CA")
		f := startTLSWith(t, opts, ca.Issue(t, "127.0.0.1"), ca, args...)
		return served{app: f.app, dial: f.mustDial, iss: f.iss}
	}
	a := start(t, devConfig(t, args...), opts)
	waitReady(t, a)
	dial := func(t *testing.T) *httpConn {
		t.Helper()
		c, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &httpConn{Conn: c, r: bufio.NewReader(c)}
	}
	return served{app: a, dial: dial, iss: a.Dev()}
}

// mint mints a token with scopes that s accepts.
func (s served) mint(t *testing.T, scopes ...string) string {
	t.Helper()
	tok, err := s.iss.Mint(devissuer.MintOptions{Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forwardedProtoCase is a request through the gateway claiming a scheme
// (X-Forwarded-Proto, "" for none) and what the upstream must be told.
type forwardedProtoCase struct {
	claim string
	want  string // "": the scheme of the client's connection
}

// TestGatewayForwardedProto: in gateway mode the upstream learns the
// client's scheme from X-Forwarded-Proto, which tokengate writes from the
// connection itself (https under TLS) for a client outside
// TRUSTED_PROXIES, whatever the client claims, and for a trusted client
// that claims none; a trusted proxy's claim is kept. Before 472db05 the
// listener wrappers hid the *tls.Conn from fasthttp and an HTTPS client's
// requests reached the upstream as http.
func TestGatewayForwardedProto(t *testing.T) {
	trusts := []struct {
		name  string
		args  []string
		cases []forwardedProtoCase
	}{
		{name: "client outside TRUSTED_PROXIES", args: []string{"--trusted-proxies=192.0.2.0/24"}, cases: []forwardedProtoCase{
			{claim: ""}, {claim: "http"}, {claim: "https"}, {claim: "HTTPS, http"},
		}},
		{name: "trusted client", cases: []forwardedProtoCase{
			{claim: ""}, {claim: "http", want: "http"}, {claim: "https", want: "https"},
		}},
	}
	for _, tr := range transports {
		for _, trust := range trusts {
			t.Run(tr.name+"/"+trust.name, func(t *testing.T) {
				up := proxytest.NewEcho(t)
				s := tr.start(t, append(gatewayArgs(t, "http://"+up.Addr()), trust.args...)...)
				tok := s.mint(t, "items")
				c := s.dial(t)
				for _, tc := range trust.cases {
					header := []string{"Authorization", "Bearer " + tok}
					if tc.claim != "" {
						header = append(header, "X-Forwarded-Proto", tc.claim)
					}
					want := tc.want
					if want == "" {
						want = tr.scheme
					}
					resp, body, err := c.do(t, "/orders/1", header...)
					if err != nil {
						t.Fatalf("claim %q: %v", tc.claim, err)
					}
					if resp.StatusCode != 200 {
						t.Fatalf("claim %q: status %d: %s", tc.claim, resp.StatusCode, body)
					}
					e, err := proxytest.Decode(body)
					if err != nil {
						t.Fatal(err)
					}
					if got := e.Header["X-Forwarded-Proto"]; len(got) != 1 || got[0] != want {
						t.Errorf("claim %q: the upstream saw X-Forwarded-Proto %q, want %q", tc.claim, got, want)
					}
				}
			})
		}
	}
}

// TestTransportKeepAlive: over either transport, requests with one token
// on one keep-alive connection cost one validation (the connection's memo,
// under TLS through the *tls.Conn, then the cache), and /openapi.json
// names the scheme the client used.
func TestTransportKeepAlive(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := tr.start(t)
			tok := s.mint(t, "items")
			c := s.dial(t)
			cache := s.app.Cache()

			t.Run("one validation per token", func(t *testing.T) {
				before := cache.Stats()
				const n = 6
				for i := range n {
					resp, body, err := c.do(t, "/items", "Authorization", "Bearer "+tok)
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					if resp.StatusCode != 200 {
						t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
					}
					cache.Wait() // the first answer is stored asynchronously
				}
				after := cache.Stats()
				if got := after.Validations - before.Validations; got != 1 {
					t.Errorf("%d validations for %d requests with one token, want 1", got, n)
				}
				if got := after.Hits - before.Hits; got != n-1 {
					t.Errorf("%d cache hits, want %d", got, n-1)
				}
			})

			t.Run("openapi server URL", func(t *testing.T) {
				resp, body, err := c.do(t, "/openapi.json")
				if err != nil {
					t.Fatal(err)
				}
				var doc struct {
					Servers []struct {
						URL string `json:"url"`
					} `json:"servers"`
				}
				if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
					t.Fatalf("status %d, %v: %.200s", resp.StatusCode, err, body)
				}
				if want := tr.scheme + "://tokengate"; len(doc.Servers) != 1 || doc.Servers[0].URL != want {
					t.Errorf("servers %+v, want one with url %q", doc.Servers, want)
				}
			})
		})
	}
}
