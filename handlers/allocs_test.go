//go:build !race

package handlers_test

import (
	"testing"

	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
)

// newHitCtx returns a request for GET /items carrying a token the stub
// validator accepts at once, as a cache hit would.
func newHitCtx(path string) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tokGood)
	return ctx
}

// TestHotPathAllocs fails if the auth check plus the /items handler
// allocates on a validator hit (DESIGN.md: zero allocations).
func TestHotPathAllocs(t *testing.T) {
	s, err := handlers.New(handlers.Config{Validator: newAuthStub()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		h    fasthttp.RequestHandler
		path string
		want int
	}{
		{"middleware and items handler", s.ItemsRouteForTest(), "/items", fasthttp.StatusOK},
		{"through the router", s.Handler(), "/items", fasthttp.StatusOK},
		{"no token", s.Handler(), "/items", fasthttp.StatusUnauthorized},
		{"missing scope", s.Handler(), "/items", fasthttp.StatusForbidden},
		{"hello", s.Handler(), "/", fasthttp.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newHitCtx(tc.path)
			switch tc.want {
			case fasthttp.StatusUnauthorized:
				ctx.Request.Header.Del(fasthttp.HeaderAuthorization)
			case fasthttp.StatusForbidden:
				ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tokNoScope)
			}
			allocs := testing.AllocsPerRun(1000, func() { tc.h(ctx) })
			if got := ctx.Response.StatusCode(); got != tc.want {
				t.Fatalf("status = %d, want %d: the run did not take the path under test", got, tc.want)
			}
			if allocs > 0 {
				t.Errorf("%v allocations per request, want 0", allocs)
			}
		})
	}
}
