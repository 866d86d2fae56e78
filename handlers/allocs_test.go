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
// allocates on a validator hit (DESIGN.md: zero allocations), or on the
// answers that need no validation work: no token, a missing scope, and a
// token the validator rejects with an *auth.TokenError (whose reason
// tokengate_rejections_total counts).
func TestHotPathAllocs(t *testing.T) {
	s, err := handlers.New(handlers.Config{Validator: newAuthStub()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		h     fasthttp.RequestHandler
		path  string
		token string // "" sends no Authorization header
		want  int
	}{
		{"middleware and items handler", s.ItemsRouteForTest(), "/items", tokGood, fasthttp.StatusOK},
		{"through the router", s.Handler(), "/items", tokGood, fasthttp.StatusOK},
		{"no token", s.Handler(), "/items", "", fasthttp.StatusUnauthorized},
		{"missing scope", s.Handler(), "/items", tokNoScope, fasthttp.StatusForbidden},
		{"invalid token, counted by reason", s.Handler(), "/items", tokExpired, fasthttp.StatusUnauthorized},
		{"hello", s.Handler(), "/", tokGood, fasthttp.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newHitCtx(tc.path)
			if tc.token == "" {
				ctx.Request.Header.Del(fasthttp.HeaderAuthorization)
			} else {
				ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tc.token)
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
