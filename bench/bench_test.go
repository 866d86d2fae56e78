package bench

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil/algfix"
)

// TestE2ECasesMeasureWhatTheySay checks the benchmark set-ups, so that a
// benchmark cannot silently measure the wrong thing: each case answers 200
// with the right body, the "unique"/"uncached" cases run the validator on
// every request, the cached ones once per token, and remote-uncached
// introspects every request.
func TestE2ECasesMeasureWhatTheySay(t *testing.T) {
	fx := newFixtures(t)
	iss := fx.Get(t, rs2048())
	for _, tc := range e2eCases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, t, iss.Issuer, tc.uncached, tc.args...)
			authz := bearers(iss.Tokens[:tc.tokens])
			want := string(itemsBody)
			if tc.path == "/" {
				want = string(helloBody)
			}
			before := iss.Issuer.Counts().Introspect
			const rounds = 3
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://tokengate.bench" + tc.path)
			n := 0
			for range rounds {
				for i := 0; i < max(1, len(authz)); i++ {
					if len(authz) > 0 {
						req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[i])
					}
					if err := s.client.Do(req, resp); err != nil {
						t.Fatal(err)
					}
					if resp.StatusCode() != 200 || string(resp.Body()) != want {
						t.Fatalf("GET %s: %d %s", tc.path, resp.StatusCode(), resp.Body())
					}
					n++
					s.Cache().Wait()
				}
			}
			validations := s.Cache().Stats().Validations
			introspections := iss.Issuer.Counts().Introspect - before
			switch {
			case tc.tokens == 0:
				if validations != 0 {
					t.Errorf("baseline ran %d validations", validations)
				}
			case tc.uncached || tc.name == "remote-uncached":
				if validations != uint64(n) {
					t.Errorf("%d validations for %d requests, want one each", validations, n)
				}
			default:
				if validations != uint64(tc.tokens) {
					t.Errorf("%d validations for %d tokens, want one per token", validations, tc.tokens)
				}
			}
			if tc.name == "remote-uncached" && introspections != uint64(n) {
				t.Errorf("%d introspections for %d requests", introspections, n)
			}
		})
	}
}

// TestCheckAuthAndJoseVerify checks the helpers of the auth benchmarks:
// both accept the issuer's tokens, and refuse another issuer's.
func TestCheckAuthAndJoseVerify(t *testing.T) {
	fx := newFixtures(t)
	for _, ac := range algfix.Algs("RS256-2048", "ES256", "EdDSA") {
		t.Run(ac.Name, func(t *testing.T) {
			iss := fx.Get(t, ac)
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(ac.JWS)}
			if err := algfix.VerifyWithJose(iss.Tokens[0], algs, iss.Public, iss.Issuer.Issuer(), iss.Issuer.Audience()); err != nil {
				t.Errorf("joseVerify: %v", err)
			}
			if err := algfix.VerifyWithJose(iss.Tokens[0], algs, iss.Public, "https://elsewhere.example", iss.Issuer.Audience()); err == nil {
				t.Error("joseVerify accepted a foreign issuer")
			}
			s := startServer(t, t, iss.Issuer, true)
			ctx := context.Background()
			if err := checkAuth(ctx, s.Cache(), []byte("Bearer "+iss.Tokens[1])); err != nil {
				t.Errorf("checkAuth: %v", err)
			}
			noScope, err := iss.Issuer.Mint(devissuer.MintOptions{Scopes: []string{"other"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkAuth(ctx, s.Cache(), []byte("Bearer "+noScope)); err == nil {
				t.Error("checkAuth accepted a token without the scope")
			}
		})
	}
}

// TestForwardAuthCasesMeasureWhatTheySay checks BenchmarkForwardAuth's
// cases on one server, as the benchmark runs them: each answers 200 with
// the claim headers (the baselines with the hello body); after the warm-up
// every decision is a cache hit and none runs the validator; the route
// really needs the token (401 without it), so the 200 is not a public
// route's; and the baselines never touch the cache.
func TestForwardAuthCasesMeasureWhatTheySay(t *testing.T) {
	fx := newFixtures(t)
	s := startDecisionServer(t, t, fx)
	authz := bearers(fx.Get(t, rs2048()).Tokens[:cachedTokens])
	for _, tc := range decisionCases {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			tc.prepare(s, req)
			send := func(i int) {
				t.Helper()
				if tc.token {
					req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[i%len(authz)])
				}
				if err := s.client.Do(req, resp); err != nil {
					t.Fatal(err)
				}
				if !tc.ok(resp) {
					t.Fatalf("%s %s: %d\n%s", tc.name, tc.path, resp.StatusCode(), resp.Header.Header())
				}
			}
			for i := range authz { // the benchmark's warm-up
				send(i)
				s.Cache().Wait()
			}
			before := s.Cache().Stats()
			const n = 3 * cachedTokens
			for i := range n {
				send(i)
			}
			after := s.Cache().Stats()
			if v := after.Validations - before.Validations; v != 0 {
				t.Errorf("%d validations after the warm-up, want 0", v)
			}
			hits, want := after.Hits-before.Hits, uint64(n)
			if !tc.decision() {
				want = 0
			}
			if hits != want {
				t.Errorf("%d cache hits for %d requests, want %d", hits, n, want)
			}
			if tc.decision() {
				req.Header.Del(fasthttp.HeaderAuthorization)
				if err := s.client.Do(req, resp); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode() != fasthttp.StatusUnauthorized {
					t.Errorf("without a token: %d, want 401", resp.StatusCode())
				}
			}
		})
	}
}
