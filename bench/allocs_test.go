//go:build !race

package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

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
// development issuer, verified once before the measurement.
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
	if p, err := a.Cache().Validate(ready, []byte(tok)); err != nil || p == nil {
		t.Fatalf("warming the cache: %v", err)
	}
	a.Cache().Wait()

	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI("/items")
	ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tok)
	h := a.Handler()
	before := a.Cache().Stats()
	const runs = 1000
	allocs := testing.AllocsPerRun(runs, func() { h(ctx) })

	if got := ctx.Response.StatusCode(); got != fasthttp.StatusOK || !bytes.Equal(ctx.Response.Body(), itemsBody) {
		t.Fatalf("GET /items = %d %s: the runs did not take the path under test", got, ctx.Response.Body())
	}
	after := a.Cache().Stats()
	if v := after.Validations - before.Validations; v != 0 {
		t.Errorf("%d validations during the runs, want 0 (every run a cache hit)", v)
	}
	if hits := after.Hits - before.Hits; hits < runs {
		t.Errorf("%d cache hits for %d runs", hits, runs)
	}
	t.Logf("GET /items, RS256 token, cache hit: %v allocations per request", allocs)
	if allocs > 0 {
		t.Errorf("%v allocations per request on the cache-hit path, want 0", allocs)
	}
}
