//go:build !race

package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
)

// TestE2EHitAllocs fails if a request for /items with a cached token
// allocates anywhere between the server's handler and the response body:
// router, auth middleware, bearer parsing, the authcache hit (SHA-256,
// lookup, expiry and scope check) and the items handler, wired by
// cmd/server/app exactly as the binary wires them (DESIGN.md: zero
// allocations on the hot path). The token is a real RS256 token from the
// development issuer, verified once before the measurement. The same
// holds for a token in the negative cache (a tampered signature): its
// 401, with the rejection counted by reason, allocates nothing either.
func TestE2EHitAllocs(t *testing.T) {
	cfg, err := config.Load([]string{"--dev", "--listen=127.0.0.1:0", "--validation-mode=local"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(context.Background(), cfg, app.Options{Listener: fasthttputil.NewInmemoryListener()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ready, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.WaitReady(ready); err != nil {
		t.Fatal(err)
	}
	tok, err := a.Dev().Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	if tampered == tok {
		tampered = tok[:len(tok)-4] + "BBBB"
	}

	for _, tc := range []struct {
		name   string
		token  string
		status int
		body   []byte                       // nil: any
		served func(authcache.Stats) uint64 // the counter every run must move
	}{
		{"cache hit", tok, fasthttp.StatusOK, itemsBody, func(s authcache.Stats) uint64 { return s.Hits }},
		{"negative-cache hit", tampered, fasthttp.StatusUnauthorized, nil, func(s authcache.Stats) uint64 { return s.NegativeHits }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Cache().Validate(ready, []byte(tc.token)) // warms the cache
			if valid := tc.status == fasthttp.StatusOK; (err == nil && p != nil) != valid {
				t.Fatalf("warming the cache: %v", err)
			}
			a.Cache().Wait()

			ctx := new(fasthttp.RequestCtx)
			ctx.Request.Header.SetMethod(fasthttp.MethodGet)
			ctx.Request.SetRequestURI("/items")
			ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tc.token)
			h := a.Handler()
			before := a.Cache().Stats()
			const runs = 1000
			allocs := testing.AllocsPerRun(runs, func() { h(ctx) })

			if got := ctx.Response.StatusCode(); got != tc.status || (tc.body != nil && !bytes.Equal(ctx.Response.Body(), tc.body)) {
				t.Fatalf("GET /items = %d %s: the runs did not take the path under test", got, ctx.Response.Body())
			}
			after := a.Cache().Stats()
			if v := after.Validations - before.Validations; v != 0 {
				t.Errorf("%d validations during the runs, want 0 (every run answered by the cache)", v)
			}
			if n := tc.served(after) - tc.served(before); n < runs {
				t.Errorf("%d %ss for %d runs", n, tc.name, runs)
			}
			t.Logf("GET /items, RS256 token, %s: %v allocations per request", tc.name, allocs)
			if allocs > 0 {
				t.Errorf("%v allocations per request on the %s path, want 0", allocs, tc.name)
			}
		})
	}
}
