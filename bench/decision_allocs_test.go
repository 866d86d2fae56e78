//go:build !race

package bench

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestDecisionHitAllocs fails if a cached decision allocates anywhere
// between the server's handler and the response, in any proxy dialect:
// the trusted-peer check, reading the original request, path
// normalisation, the policy match, the authcache hit and the claim
// headers, wired by cmd/server/app under stack.DecisionPolicy with a real
// RS256 token (issue 10: a cached decision allocates nothing).
func TestDecisionHitAllocs(t *testing.T) {
	fx := newFixtures(t)
	s := startDecisionServer(t, t, fx)
	tok := fx.Get(t, rs2048()).Tokens[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p, err := s.Cache().Validate(ctx, []byte(tok)); err != nil || p == nil {
		t.Fatalf("warming the cache: %v", err)
	}
	s.Cache().Wait()
	h := s.Handler()
	peer := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	for _, tc := range decisionCases {
		if !tc.decision() {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			tc.prepare(s, &req)
			// As the server reads it off the wire: origin-form target, Host.
			req.SetRequestURI(tc.path)
			req.Header.SetHost("tokengate.bench")
			req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tok)
			rc := new(fasthttp.RequestCtx)
			rc.Init(&req, peer, nil)
			before := s.Cache().Stats()
			const runs = 1000
			allocs := testing.AllocsPerRun(runs, func() { h(rc) })
			if !tc.ok(&rc.Response) {
				t.Fatalf("%d %s: the runs did not take the path under test", rc.Response.StatusCode(), rc.Response.Header.Header())
			}
			after := s.Cache().Stats()
			if v := after.Validations - before.Validations; v != 0 {
				t.Errorf("%d validations during the runs, want 0", v)
			}
			if hits := after.Hits - before.Hits; hits < runs {
				t.Errorf("%d cache hits for %d runs", hits, runs)
			}
			if allocs > 0 {
				t.Errorf("%v allocations per decision, want 0", allocs)
			}
		})
	}
}
