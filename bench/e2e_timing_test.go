package bench

import (
	"bytes"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// e2eCase is one end-to-end benchmark: a server configuration and the
// request to send.
type e2eCase struct {
	name     string
	args     []string // tokengate flags
	uncached bool     // stack.Options.UncachedValid
	path     string
	tokens   int // 0: no Authorization; else how many tokens of the pool to cycle through
}

// cachedTokens is how many distinct tokens the cached cases cycle through.
const cachedTokens = 16

var e2eCases = []e2eCase{
	{name: "baseline", path: "/"},
	// local-cached cycles through 16 tokens, so that a connection's next
	// request mostly carries another token than its last: the cache's
	// full hit (SHA-256 and lookup), as behind a proxy whose upstream
	// connections carry many clients. local-cached-1 sends one token, as a
	// keep-alive client does: its connection's memo answers
	// (authcache.Memo), without hashing.
	{name: "local-cached", path: "/items", tokens: cachedTokens},
	{name: "local-cached-1", path: "/items", tokens: 1},
	{name: "local-unique", path: "/items", tokens: poolSize, uncached: true},
	{name: "remote-cached", path: "/items", tokens: cachedTokens, args: []string{"--validation-mode=remote"}},
	{name: "remote-uncached", path: "/items", tokens: poolSize, args: []string{"--validation-mode=remote", "--introspection-cache-ttl=0"}},
	{name: "hybrid", path: "/items", tokens: cachedTokens, args: []string{"--validation-mode=hybrid"}},
}

var (
	helloBody = []byte(`{"Hello":"World"}`)
	itemsBody = []byte(`[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`)
)

// BenchmarkE2E measures whole requests through the fasthttp server over an
// in-memory listener, with RS256 (2048-bit) tokens as Okta issues them. The
// allocations include the in-process client's. remote-uncached introspects
// every request at the development issuer over loopback TCP.
func BenchmarkE2E(b *testing.B) {
	owner := b // keeps the issuers and servers for every sub-benchmark run
	fx := newFixtures(owner)
	var (
		mu      sync.Mutex // guards servers
		servers = map[string]*server{}
	)
	for _, tc := range e2eCases {
		b.Run("scenario="+tc.name, func(b *testing.B) {
			iss := fx.Get(b, rs2048())
			mu.Lock()
			s, ok := servers[tc.name]
			if !ok {
				s = startServer(b, owner, iss.Issuer, tc.uncached, tc.args...)
				servers[tc.name] = s
			}
			mu.Unlock()
			benchGET(b, s, tc.path, bearers(iss.Tokens[:tc.tokens]))
		})
	}
}

// benchGET sends GET path from parallel goroutines, each request carrying
// the next Authorization value of authz (none when authz is empty), and
// fails on anything but 200 with the expected body.
func benchGET(b *testing.B, s *server, path string, authz [][]byte) {
	want := itemsBody
	if path == "/" {
		want = helloBody
	}
	do := func(req *fasthttp.Request, resp *fasthttp.Response) bool {
		if err := s.client.Do(req, resp); err != nil {
			b.Error(err)
			return false
		}
		if resp.StatusCode() != fasthttp.StatusOK || !bytes.Equal(resp.Body(), want) {
			b.Errorf("GET %s: %d %q", path, resp.StatusCode(), resp.Body())
			return false
		}
		return true
	}
	uri := s.base + path

	// Warm up: every token once (so cached cases are cached), connections
	// open, key set loaded.
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(uri)
	for i := 0; i < max(1, len(authz)); i++ {
		if len(authz) > 0 {
			req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[i])
		}
		if !do(req, resp) {
			return
		}
	}
	fasthttp.ReleaseRequest(req)
	fasthttp.ReleaseResponse(resp)
	s.Cache().Wait()

	var cyc cycler
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		for pb.Next() {
			if len(authz) > 0 {
				req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[cyc.next(len(authz))])
			}
			if !do(req, resp) {
				return
			}
		}
	})
}
