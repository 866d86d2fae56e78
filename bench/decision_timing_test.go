package bench

import (
	"bytes"
	"github.com/tokengate/tokengate/internal/testutil/algfix"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// decisionCase is one forward-auth benchmark: a request to tokengate
// (a decision in one proxy dialect, or GET / as the baseline) and what its
// answer must carry.
type decisionCase struct {
	name   string
	path   string   // request target on tokengate
	header []string // name, value pairs a proxy would add
	token  bool     // carries a token of the cached pool
}

// decision reports whether tc asks for a decision (else it is GET /).
func (tc decisionCase) decision() bool { return tc.path != "/" }

// forwardHeader is what Traefik or Caddy adds to a forward-auth request.
func forwardHeader() []string {
	return []string{"X-Forwarded-Method", "GET", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Uri", "/orders/1?x=1"}
}

// decisionCases ask, in each proxy dialect, whether GET /orders/1?x=1 on
// api.example.com may pass, under stack.DecisionPolicy. The baselines run
// on the same server: GET / (no auth), and GET / carrying the forward
// dialect's headers and token, the same request bytes as a decision
// without the decision.
var decisionCases = []decisionCase{
	{name: "baseline", path: "/"},
	{name: "baseline-headers", path: "/", token: true, header: forwardHeader()},
	{name: "forward", path: handlers.PathForward, token: true, header: forwardHeader()},
	{name: "request-uri", path: handlers.PathRequest, token: true, header: []string{
		"X-Original-URI", "/orders/1?x=1", "X-Original-Method", "GET", "X-Forwarded-Host", "api.example.com"}},
	{name: "request-url", path: handlers.PathRequest, token: true, header: []string{
		"X-Original-URL", "https://api.example.com/orders/1?x=1", "X-Original-Method", "GET"}},
	{name: "envoy", path: handlers.PathEnvoy + "/orders/1?x=1", token: true},
}

// Claim headers an allowed decision carries for the development issuer's
// default token (stack.DecisionPolicy).
var (
	wantSubject = []byte("dev-client")
	wantScopes  = []byte("items")
)

// prepare sets up req for tc on s (all but the Authorization header).
func (tc decisionCase) prepare(s *server, req *fasthttp.Request) {
	req.SetRequestURI(s.base + tc.path)
	for i := 0; i+1 < len(tc.header); i += 2 {
		req.Header.Set(tc.header[i], tc.header[i+1])
	}
}

// ok reports whether resp is the answer tc expects: 200 with the hello body
// for a baseline, 200 with the claim headers for a decision.
func (tc decisionCase) ok(resp *fasthttp.Response) bool {
	if resp.StatusCode() != fasthttp.StatusOK {
		return false
	}
	if !tc.decision() {
		return bytes.Equal(resp.Body(), helloBody)
	}
	return bytes.Equal(resp.Header.Peek("X-Auth-Subject"), wantSubject) &&
		bytes.Equal(resp.Header.Peek("X-Auth-Client-Id"), wantSubject) &&
		bytes.Equal(resp.Header.Peek("X-Auth-Scopes"), wantScopes)
}

// startDecisionServer starts a tokengate in local mode under
// stack.DecisionPolicy on an in-memory listener. owner's cleanup stops it.
func startDecisionServer(tb, owner testing.TB, fx *algfix.Set) *server {
	iss := fx.Get(tb, rs2048())
	return startServerWith(tb, owner, stack.Options{Issuer: iss.Issuer, Policy: stack.DecisionPolicy})
}

// BenchmarkForwardAuth measures a cached decision per proxy dialect
// (Traefik and Caddy's /auth/forward; nginx's /auth/request with
// X-Original-URI, ingress-nginx's with X-Original-URL; Envoy's
// /auth/envoy/), end to end through the fasthttp server over an in-memory
// listener, beside GET / on the same server. Every decision normalises the
// path, matches the policy, hits the cache (16 RS256 tokens, validated in
// the warm-up) and writes three claim headers. The allocations include the
// in-process client's. cpu-ns/op is the CPU time of the whole process
// (client and server, both cores) per request: where other work shares
// the cores, compare it rather than ns/op.
func BenchmarkForwardAuth(b *testing.B) {
	fx := newFixtures(b)
	s := startDecisionServer(b, b, fx)
	authz := bearers(fx.Get(b, rs2048()).Tokens[:cachedTokens])
	for _, tc := range decisionCases {
		b.Run("dialect="+tc.name, func(b *testing.B) {
			benchDecision(b, s, tc, authz)
		})
	}
}

// benchDecision sends tc's request from parallel goroutines, a decision
// carrying the next token of authz, and fails on any other answer than
// tc.ok's.
func benchDecision(b *testing.B, s *server, tc decisionCase, authz [][]byte) {
	if !tc.token {
		authz = nil
	}
	do := func(req *fasthttp.Request, resp *fasthttp.Response) bool {
		if err := s.client.Do(req, resp); err != nil {
			b.Error(err)
			return false
		}
		if !tc.ok(resp) {
			b.Errorf("%s: %d %q", tc.name, resp.StatusCode(), resp.Header.Header())
			return false
		}
		return true
	}

	// Warm up: every token once (so that each is cached), connections open.
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	tc.prepare(s, req)
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
	cpu0, cpuOK := processCPU()
	b.ResetTimer()
	defer func() {
		if cpu1, ok := processCPU(); ok && cpuOK && b.N > 0 {
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		tc.prepare(s, req)
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
