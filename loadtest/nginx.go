package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/proxyrun"
	"github.com/tokengate/tokengate/loadtest/harness"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// With -nginx the load test puts real nginx (Debian's package) in front of
// an upstream written in Go and measures two paths through the same nginx
// process, with the same requests (16 cached tokens):
//
//	nginx       client → nginx → upstream                      (/open/1)
//	nginx-auth  client → nginx → auth_request to tokengate → upstream
//	            (/orders/1?x=1, README's auth_request configuration)
//
// so that what forward auth costs a real deployment shows as a ratio.
// tokengate runs in-process under stack.DecisionPolicy; everything listens
// on 127.0.0.1, nginx on a free port with a generated configuration, and
// is stopped by pid at the end.

// nginxScenarios are the scenario names with -nginx, in run order.
var nginxScenarios = []string{"nginx", "nginx-auth"}

// The paths the nginx scenarios request: /open/ goes straight to the
// upstream, everything else through auth_request.
const (
	nginxOpenPath = "/open/1"
	nginxAuthPath = "/orders/1?x=1"
)

// upstreamBody is what the Go upstream answers to every request.
const upstreamBody = `{"upstream":"ok"}`

// nginxAuthConfig is the http block of the -nginx runs: the README's
// auth_request configuration for tokengate (proxyrun.NginxAuthRequest),
// plus /open/ proxied to the same upstream without a decision.
func nginxAuthConfig(tokengate, upstream string) string {
	return proxyrun.NginxAuthRequest(tokengate, upstream, `
        location /open/ {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
`)
}

// upstream is the service behind nginx: a fasthttp server on a loopback
// port answering upstreamBody, counting requests and those that carry the
// claim header X-Auth-Subject.
type upstream struct {
	addr    string
	srv     *fasthttp.Server
	served  chan error // Serve's result
	hits    atomic.Int64
	claimed atomic.Int64
}

// startUpstream starts an upstream; its caller stops it with close.
func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u := &upstream{addr: ln.Addr().String(), served: make(chan error, 1)}
	u.srv = &fasthttp.Server{
		Name:         "upstream",
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  30 * time.Second,
		Handler: func(ctx *fasthttp.RequestCtx) {
			u.hits.Add(1)
			if len(ctx.Request.Header.Peek("X-Auth-Subject")) > 0 {
				u.claimed.Add(1)
			}
			ctx.SetContentType("application/json")
			ctx.SetBodyString(upstreamBody)
		},
	}
	go func() { u.served <- u.srv.Serve(ln) }()
	return u, nil
}

// close stops the upstream and waits for its server to return.
func (u *upstream) close() {
	_ = u.srv.Shutdown()
	<-u.served
}

// runNginx runs the -nginx scenarios: one development issuer, tokengate,
// upstream and nginx for all of them.
func runNginx(ctx context.Context, o *options, stderr io.Writer) ([]*harness.Result, error) {
	bin, err := proxyrun.Lookup("nginx")
	if err != nil {
		return nil, err
	}
	iss, err := devissuer.Start(devissuer.Config{Algorithm: o.alg, RSABits: o.rsaBits})
	if err != nil {
		return nil, err
	}
	defer iss.Close()
	tokens, err := iss.MintN(cachedPool, devissuer.MintOptions{})
	if err != nil {
		return nil, err
	}
	authz := bearerHeaders(tokens)

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// tokengate runs in a child process of its own, as nginx runs in its
	// own: sharing the load generator's Go runtime would charge it for the
	// generator's work.
	tdir, err := os.MkdirTemp("", "tokengate-loadtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tdir)
	targs, tenv, err := tokengateArgs(iss, scenario{policy: stack.DecisionPolicy}, tdir)
	if err != nil {
		return nil, err
	}
	tg, err := startServerProcess(ctx, roleTokengate, targs, tenv, stderr)
	if err != nil {
		return nil, err
	}
	defer tg.close()
	tgStats := func() authcache.Stats {
		u, _ := tg.usage() // an error leaves zeros, which the preflight then reports
		return authcache.Stats{Hits: u.Hits, Misses: u.Misses, Validations: u.Validations}
	}
	up, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer up.close()
	dir, err := os.MkdirTemp("", "tokengate-loadtest-nginx-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	px, err := proxyrun.Nginx(startCtx, proxyrun.NginxConfig{Bin: bin, Dir: dir, HTTP: nginxAuthConfig(tg.addr, up.addr), Workers: o.nginxWorkers})
	if err != nil {
		return nil, err
	}
	defer px.Stop()
	fmt.Fprintf(stderr, "nginx (pid %d, %d worker(s)) on %s; tokengate on %s; upstream on %s\n", px.Pid(), max(1, o.nginxWorkers), px.Addr, tg.addr, up.addr)

	var results []*harness.Result
	for _, model := range o.models {
		for _, name := range o.scenarios {
			path := nginxOpenPath
			if name == "nginx-auth" {
				path = nginxAuthPath
			}
			tgt := newTarget(px.Addr, workersFor(o, model), o.timeout)
			if err := preflightNginx(tgt, path, authz[0], name == "nginx-auth", up, tgStats); err != nil {
				tgt.close()
				return results, fmt.Errorf("%s: %w\nnginx log:\n%s", name, err, px.Log())
			}
			var (
				hits, claimed int64
				stats         = tgStats()
				cpu           cpuMeter
				tgCPU         childUsage
			)
			cfg := harnessConfig(o, name, model, stderr)
			cfg.BeforeMeasure = func() {
				hits, claimed, stats = up.hits.Load(), up.claimed.Load(), tgStats()
				tgCPU, _ = tg.usage()
				cpu.start(px.Pid())
			}
			res, err := harness.Run(ctx, cfg, tgt.requests(path, authz))
			tgt.close()
			if res != nil {
				s2 := tgStats()
				res.Counters = map[string]int64{
					"upstream_hits":        up.hits.Load() - hits,
					"upstream_with_claims": up.claimed.Load() - claimed,
					"cache_hits":           int64(s2.Hits - stats.Hits),
					"cache_misses":         int64(s2.Misses - stats.Misses),
					"validations":          int64(s2.Validations - stats.Validations),
				}
				if u, uerr := tg.usage(); uerr == nil && u.CPUNanos >= 0 && tgCPU.CPUNanos >= 0 && res.Requests > 0 {
					res.Counters["tokengate_cpu_ns_per_req"] = (u.CPUNanos - tgCPU.CPUNanos) / int64(res.Requests)
				}
				cpu.report(res)
				logDone(stderr, res)
				results = append(results, res)
			}
			if err != nil {
				return results, fmt.Errorf("%s (%s): %w", name, model, err)
			}
		}
	}
	return results, nil
}

// preflightNginx checks one request of a scenario through nginx: 200 with
// the upstream's body; through auth_request the upstream sees the claim
// headers and tokengate decided (a cache lookup), and the same request
// without a token is refused with 401 before the upstream; on the open
// path tokengate is not asked and no claim header reaches the upstream.
func preflightNginx(t *target, path string, authz []byte, auth bool, up *upstream, stats func() authcache.Stats) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + t.addr + path)
	req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz)
	before, claimed, hits := stats(), up.claimed.Load(), up.hits.Load()
	if err := t.hc.DoTimeout(req, resp, t.timeout+10*time.Second); err != nil {
		return fmt.Errorf("preflight GET %s: %w", path, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK || !bytes.Equal(resp.Body(), []byte(upstreamBody)) {
		return fmt.Errorf("preflight GET %s: status %d, body %.200q (want 200 and %q)", path, resp.StatusCode(), resp.Body(), upstreamBody)
	}
	after := stats()
	asked := after.Hits+after.Misses > before.Hits+before.Misses
	gotClaims := up.claimed.Load() > claimed
	switch {
	case up.hits.Load() != hits+1:
		return fmt.Errorf("preflight GET %s: the upstream saw %d requests, want 1", path, up.hits.Load()-hits)
	case auth && (!asked || !gotClaims):
		return fmt.Errorf("preflight GET %s: tokengate asked %v, claim headers at the upstream %v; want both", path, asked, gotClaims)
	case !auth && (asked || gotClaims):
		return fmt.Errorf("preflight GET %s: tokengate asked %v, claim headers at the upstream %v; want neither", path, asked, gotClaims)
	}
	if !auth {
		return nil
	}
	req.Header.Del(fasthttp.HeaderAuthorization)
	hits = up.hits.Load()
	if err := t.hc.DoTimeout(req, resp, t.timeout+10*time.Second); err != nil {
		return fmt.Errorf("preflight GET %s: %w", path, err)
	}
	if resp.StatusCode() != fasthttp.StatusUnauthorized || up.hits.Load() != hits {
		return fmt.Errorf("preflight GET %s without a token: status %d, upstream hits +%d; want 401 and none", path, resp.StatusCode(), up.hits.Load()-hits)
	}
	return nil
}

// errNginxWithURL refuses -nginx together with -url.
var errNginxWithURL = errors.New("-nginx: runs its own tokengate; it cannot be combined with -url")

// cpuMeter measures the CPU time that nginx (its process group) and this
// process (load generator, tokengate and upstream) use during the measured
// phase, as counters per request: on a machine whose cores the three
// share, CPU per request says more than requests per second. Where the
// times cannot be read the counters are left out.
type cpuMeter struct {
	pgid        int
	nginx, self time.Duration
	ok          bool
}

func (m *cpuMeter) start(pgid int) {
	var err1, err2 error
	m.pgid = pgid
	m.nginx, err1 = groupCPU(pgid)
	m.self, err2 = selfCPU()
	m.ok = err1 == nil && err2 == nil
}

// report adds nginx_cpu_ns_per_req and go_cpu_ns_per_req to res.Counters.
func (m *cpuMeter) report(res *harness.Result) {
	if !m.ok || res.Requests == 0 {
		return
	}
	nginx, err1 := groupCPU(m.pgid)
	self, err2 := selfCPU()
	if err1 != nil || err2 != nil {
		return
	}
	n := int64(res.Requests)
	res.Counters["nginx_cpu_ns_per_req"] = int64(nginx-m.nginx) / n
	res.Counters["go_cpu_ns_per_req"] = int64(self-m.self) / n
}
