//go:build !race

package handlers_test

import (
	"net/netip"
	"testing"

	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/policy"
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

// TestDecisionAllocs fails if a decision on a validator hit allocates:
// the header reads, the path normalisation, the policy match and the claim
// headers included (issue 10).
func TestDecisionAllocs(t *testing.T) {
	p, err := policy.Parse("allocs.yaml", []byte(decisionPolicy))
	if err != nil {
		t.Fatal(err)
	}
	s, err := handlers.New(handlers.Config{
		Validator:      newAuthStub(),
		Policy:         policy.NewHolder(p, nil),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct {
		name string
		call call
		want int
	}{
		{"forward, allowed with claim headers", forward("GET", "api.example.com", "/orders/1?x=1", tokGood), 200},
		{"forward, public", forward("GET", "x", "/public/a/b", ""), 200},
		{"forward, dot segments and escapes", forward("GET", "api.example.com", "/x/../orders/%31", tokGood), 200},
		{"request, allowed", call{path: handlers.PathRequest, header: []string{"X-Original-URI", "/orders/1", "X-Original-Method", "GET", "X-Forwarded-Host", "api.example.com", "Authorization", "Bearer " + tokGood}}, 200},
		{"request, X-Original-URL", call{path: handlers.PathRequest, header: []string{"X-Original-URL", "https://api.example.com/orders/1", "X-Original-Method", "GET", "Authorization", "Bearer " + tokGood}}, 200},
		{"envoy, allowed", call{path: handlers.PathEnvoy + "/orders/1", header: []string{"Host", "api.example.com", "Authorization", "Bearer " + tokGood}}, 200},
		{"envoy, public (claim headers to remove)", call{path: handlers.PathEnvoy + "/public/a", header: []string{"Host", "api.example.com"}}, 200},
		{"forward, no token", forward("GET", "x", "/any", ""), 401},
		{"forward, scope missing", forward("GET", "api.example.com", "/orders/1", tokNoScope), 403},
		{"forward, default deny", forward("GET", "x", "/elsewhere", tokGood), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := decisionCtx(tc.call)
			allocs := testing.AllocsPerRun(1000, func() { h(ctx) })
			if got := ctx.Response.StatusCode(); got != tc.want {
				t.Fatalf("status = %d, want %d (%s): the run did not take the path under test", got, tc.want, ctx.Response.Body())
			}
			if allocs > 0 {
				t.Errorf("%v allocations per decision, want 0", allocs)
			}
		})
	}
}
