package bench

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testpki"
)

// loopbackConns is how many keep-alive connections the loopback benchmarks
// keep busy (RunParallel goroutines per GOMAXPROCS): the load test's 16 on
// two cores.
const loopbackConns = 8

// startLoopback starts a tokengate for iss on a loopback TCP port, serving
// TLS with a certificate from ca when withTLS, and a keep-alive client for
// it. owner's cleanup stops it.
func startLoopback(tb, owner testing.TB, iss *devissuer.Issuer, ca *testpki.CA, withTLS bool) *server {
	tb.Helper()
	args := []string{"--okta-issuer=" + iss.Issuer(), "--listen=127.0.0.1:0"}
	if withTLS {
		dir := tb.TempDir()
		cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		ca.Issue(tb, "127.0.0.1").Write(tb, cert, key)
		args = append(args, "--tls-cert-file="+cert, "--tls-key-file="+key)
	}
	cfg, err := config.Load(args, nil, "")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	owner.Cleanup(a.Close)
	if err := a.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	return &server{
		App: a,
		client: &fasthttp.HostClient{
			Addr:                a.Addr(),
			IsTLS:               withTLS,
			TLSConfig:           &tls.Config{RootCAs: ca.Pool()},
			MaxConns:            1024,
			MaxResponseBodySize: 1 << 20,
			ReadTimeout:         30 * time.Second,
			WriteTimeout:        30 * time.Second,
		},
		base: a.URL(),
	}
}

// BenchmarkLoopback measures cached GET /items (local mode, RS256 tokens)
// through real loopback TCP with keep-alive connections, over plain HTTP
// and over TLS (TLS 1.3, ECDSA P-256 certificate), so that what TLS costs
// per request, once the handshakes are done, shows side by side. Client,
// server and issuer share the machine's cores.
func BenchmarkLoopback(b *testing.B) {
	owner := b
	fx := newFixtures(b)
	ca := testpki.NewCA(b, "bench CA")
	var (
		mu      sync.Mutex // guards servers
		servers = map[bool]*server{}
	)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		b.Run("listener="+tc.name, func(b *testing.B) {
			iss := fx.Get(b, rs2048())
			mu.Lock()
			s, ok := servers[tc.tls]
			if !ok {
				s = startLoopback(b, owner, iss.Issuer, ca, tc.tls)
				servers[tc.tls] = s
			}
			mu.Unlock()
			b.SetParallelism(loopbackConns / 2)
			benchGET(b, s, "/items", bearers(iss.Tokens[:cachedTokens]))
		})
	}
}

// TestLoopbackSetUp checks BenchmarkLoopback's servers: each answers
// GET /items with the items to its own client, and the TLS one refuses a
// plain-HTTP client.
func TestLoopbackSetUp(t *testing.T) {
	fx := newFixtures(t)
	iss := fx.Get(t, rs2048())
	ca := testpki.NewCA(t, "bench CA")
	get := func(c *fasthttp.HostClient, uri string) (int, string, error) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		req.Header.SetBytesV(fasthttp.HeaderAuthorization, bearers(iss.Tokens[:1])[0])
		err := c.DoTimeout(req, resp, 10*time.Second)
		return resp.StatusCode(), string(resp.Body()), err
	}
	for _, withTLS := range []bool{false, true} {
		s := startLoopback(t, t, iss.Issuer, ca, withTLS)
		if code, body, err := get(s.client, s.base+"/items"); err != nil || code != 200 || body != string(itemsBody) {
			t.Errorf("tls=%v: GET /items = %d %s %v", withTLS, code, body, err)
		}
		if withTLS {
			plain := &fasthttp.HostClient{Addr: s.Addr(), MaxIdemponentCallAttempts: 1}
			if code, _, err := get(plain, "http://"+s.Addr()+"/items"); err == nil && code == 200 {
				t.Error("the TLS server answered plain HTTP")
			}
		}
	}
}
