package main

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/loadtest/harness"
)

// The forward-auth scenario asks tokengate's /auth/forward (the Traefik and
// Caddy dialect) whether GET /orders/1?x=1 on api.example.com may pass,
// under stack.DecisionPolicy, with the 16 cached tokens: after the warm-up
// every decision is a cache hit that normalises the path, matches the
// policy and writes three claim headers. It is to be read beside baseline
// (GET /), which runs on a server of its own in the same way.

// forwardAuthPath is the decision endpoint the forward-auth scenario asks.
const forwardAuthPath = "/auth/forward"

// forwardAuthHeader returns what a proxy adds to a forward-auth request, as
// name, value pairs.
func forwardAuthHeader() []string {
	return []string{
		"X-Forwarded-Method", "GET",
		"X-Forwarded-Host", "api.example.com",
		"X-Forwarded-Uri", "/orders/1?x=1",
	}
}

// claimSubject is the X-Auth-Subject of an allowed decision for the
// development issuer's default token.
const claimSubject = "dev-client"

// requestsWith is requests with header (name, value pairs) set on every
// request as well.
func (t *target) requestsWith(path string, header []string, authz [][]byte) harness.NewRequest {
	var next atomic.Uint64
	uri := "http://" + t.addr + path
	return func(int) harness.Request {
		req, resp := &fasthttp.Request{}, &fasthttp.Response{}
		req.SetRequestURI(uri)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return func(context.Context) (int, error) {
			if len(authz) > 0 {
				i := next.Add(1) - 1
				req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[i%uint64(len(authz))])
			}
			if err := t.hc.DoDeadline(req, resp, time.Now().Add(t.timeout)); err != nil {
				return 0, err
			}
			return resp.StatusCode(), nil
		}
	}
}

// preflightDecision makes one forward-auth request with authz and one
// without, and checks that the first is allowed with the claim headers and
// the second refused with 401: the scenario then measures a decision that
// needed the token, not a public route or an error page.
func (t *target) preflightDecision(authz []byte) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + t.addr + forwardAuthPath)
	header := forwardAuthHeader()
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz)
	if err := t.hc.DoTimeout(req, resp, t.timeout+10*time.Second); err != nil {
		return fmt.Errorf("preflight %s: %w", forwardAuthPath, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK || !bytes.Equal(resp.Header.Peek("X-Auth-Subject"), []byte(claimSubject)) {
		return fmt.Errorf("preflight %s: status %d, X-Auth-Subject %q (want 200 and %q)",
			forwardAuthPath, resp.StatusCode(), resp.Header.Peek("X-Auth-Subject"), claimSubject)
	}
	req.Header.Del(fasthttp.HeaderAuthorization)
	if err := t.hc.DoTimeout(req, resp, t.timeout+10*time.Second); err != nil {
		return fmt.Errorf("preflight %s: %w", forwardAuthPath, err)
	}
	if resp.StatusCode() != fasthttp.StatusUnauthorized {
		return fmt.Errorf("preflight %s without a token: status %d, want 401", forwardAuthPath, resp.StatusCode())
	}
	return nil
}
