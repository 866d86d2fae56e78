package handlers_test

import (
	"testing"

	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
)

func benchServer(b *testing.B) *handlers.Server {
	b.Helper()
	s, err := handlers.New(handlers.Config{Validator: newAuthStub()})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchHandler runs h on a per-goroutine request for path, with token
// (none when empty), and checks the status once.
func benchHandler(b *testing.B, h fasthttp.RequestHandler, path, token string, status int) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := new(fasthttp.RequestCtx)
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI(path)
		if token != "" {
			ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+token)
		}
		h(ctx) // warm the request's buffers before timing
		if got := ctx.Response.StatusCode(); got != status {
			b.Errorf("status = %d, want %d", got, status)
			return
		}
		for pb.Next() {
			h(ctx)
		}
	})
}

// BenchmarkMiddlewareHit is the hot path: bearer parsing, a validator hit,
// the scope check and the pre-encoded /items body, without the router.
func BenchmarkMiddlewareHit(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s.ItemsRouteForTest(), "/items", tokGood, fasthttp.StatusOK)
}

// BenchmarkItemsHitRouted is the same request through the router.
func BenchmarkItemsHitRouted(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s.Handler(), "/items", tokGood, fasthttp.StatusOK)
}

// BenchmarkHello is the baseline: an unauthenticated pre-encoded answer
// through the router.
func BenchmarkHello(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s.Handler(), "/", "", fasthttp.StatusOK)
}

// BenchmarkNoToken is the 401 path with its pre-encoded challenge.
func BenchmarkNoToken(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s.Handler(), "/items", "", fasthttp.StatusUnauthorized)
}

// BenchmarkInvalidToken is the 401 invalid_token path (reason encoded per
// request).
func BenchmarkInvalidToken(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s.Handler(), "/items", tokExpired, fasthttp.StatusUnauthorized)
}
