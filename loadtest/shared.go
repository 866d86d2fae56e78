package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/redistest"
	"github.com/tokengate/tokengate/loadtest/harness"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// sharedProbes is how many fresh tokens the remote-shared scenario uses to
// measure the first request on a replica that has not seen a token.
const sharedProbes = 200

// sharedRedis returns the Redis URL of the remote-shared scenario: -redis-url,
// or a redis-server of the load test's own on a loopback port (stop is then
// its Close). ok false means the scenario cannot run and was not asked for
// by name: skip it.
func sharedRedis(o *options, stderr io.Writer) (url string, stop func(), ok bool, err error) {
	if o.redisURL != "" {
		return o.redisURL, func() {}, true, nil
	}
	srv, err := redistest.Launch()
	if errors.Is(err, redistest.ErrNotInstalled) && !o.explicitScenarios {
		fmt.Fprintf(stderr, "loadtest: skipping remote-shared: %v (or give -redis-url)\n", err)
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("remote-shared: %w (or give -redis-url)", err)
	}
	fmt.Fprintf(stderr, "started redis-server on %s for remote-shared\n", srv.Addr())
	return srv.URL(), srv.Close, true, nil
}

// runShared serves the remote-shared scenario from o.replicas fresh
// tokengates in remote mode that share the Redis at redisURL, and loads
// them round robin: request k goes to replica k mod N with token
// ⌊k / N⌋ of a pool minted for this scenario alone, so every token is used
// once on every replica (until the pool wraps around, after which they
// are all cached). It reports the introspections per token, then, with
// fresh tokens one at a time, the latency of the first request on a
// replica that has not seen a token: on the first replica (an
// introspection at the injected distance) and on the second (a Redis hit).
func runShared(ctx context.Context, o *options, iss *devissuer.Issuer, sc scenario, model harness.Model, redisURL string, stderr io.Writer) (*harness.Result, error) {
	iss.ClearFaults()
	defer iss.ClearFaults()
	if sc.distance > 0 {
		iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: sc.distance})
	}
	// A fresh pool per scenario: the tokens of an earlier one are in Redis.
	minted, err := iss.MintN(o.pool+sharedProbes, devissuer.MintOptions{})
	if err != nil {
		return nil, err
	}
	pool, probes := bearerHeaders(minted[:o.pool]), bearerHeaders(minted[o.pool:])
	key, err := randomKey()
	if err != nil {
		return nil, err
	}
	args := append(slices.Clone(sc.args), "--redis-url="+redisURL, "--redis-signing-key="+key)

	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fleet := make([]*app.App, o.replicas)
	tgts := make([]*target, o.replicas)
	for i := range fleet {
		if fleet[i], err = stack.Start(readyCtx, stack.Options{Issuer: iss, Args: args}); err != nil {
			return nil, err
		}
		defer fleet[i].Close()
		tgts[i] = newTarget(fleet[i].Addr(), workersFor(o, model), o.timeout)
		defer tgts[i].close()
	}
	before := iss.Counts() // the preflights' token is the pool's first
	for _, t := range tgts {
		if err := t.preflight(sc.path, pool[0], itemsBody); err != nil {
			return nil, err
		}
	}

	var sent atomic.Uint64
	var measuredFrom uint64
	cfg := harnessConfig(o, sc.name, model, stderr)
	cfg.BeforeMeasure = func() { measuredFrom = sent.Load() }
	res, err := harness.Run(ctx, cfg, sharedRequests(tgts, sc.path, pool, &sent))
	if res == nil {
		return nil, err
	}
	total := sent.Load()
	n := uint64(len(tgts))
	tokens := min((total+n-1)/n, uint64(len(pool)))
	calls := iss.Counts().Introspect - before.Introspect
	res.Counters = map[string]int64{
		"replicas":                   int64(n),
		"requests_incl_warmup":       int64(total),
		"measured_from_request":      int64(measuredFrom),
		"tokens_used":                int64(tokens),
		"introspect_calls":           int64(calls),
		"introspect_per_1000_tokens": int64(calls * 1000 / max(tokens, 1)),
	}
	for i, a := range fleet {
		s := a.SecondLevel().Stats()
		res.Counters[fmt.Sprintf("r%d_l2_hits", i)] = int64(s.Hits)
		res.Counters[fmt.Sprintf("r%d_l2_lease_waits", i)] = int64(s.LeaseWaits)
		res.Counters[fmt.Sprintf("r%d_l2_errors", i)] = int64(s.Errors)
	}
	logDone(stderr, res)
	if err != nil {
		return res, err
	}

	first, second, err := probeFirstRequests(tgts[0], tgts[1], sc.path, probes)
	if err != nil {
		return res, err
	}
	for name, s := range map[string]harness.Summary{"first_as": first, "first_l2": second} {
		res.Counters[name+"_p50_us"] = int64(s.P50MS * 1000)
		res.Counters[name+"_p99_us"] = int64(s.P99MS * 1000)
		res.Counters[name+"_max_us"] = int64(s.MaxMS * 1000)
	}
	fmt.Fprintf(stderr, "[%s] %d tokens on %d replicas: %d introspections (%.3f per token, %d without Redis)\n",
		sc.name, tokens, n, calls, float64(calls)/float64(max(tokens, 1)), tokens*n)
	fmt.Fprintf(stderr, "[%s] first request on a replica new to the token, %d tokens one at a time: authorization server p50 %s p99 %s; Redis hit p50 %s p99 %s\n",
		sc.name, len(probes), harness.FormatLatency(first.P50MS), harness.FormatLatency(first.P99MS),
		harness.FormatLatency(second.P50MS), harness.FormatLatency(second.P99MS))
	return res, nil
}

// sharedRequests is the harness request factory of remote-shared: request
// k (counted in sent) carries token ⌊k / N⌋ mod len(authz) to replica
// k mod N.
func sharedRequests(tgts []*target, path string, authz [][]byte, sent *atomic.Uint64) harness.NewRequest {
	uris := make([]string, len(tgts))
	for i, t := range tgts {
		uris[i] = "http://" + t.addr + path
	}
	n := uint64(len(tgts))
	return func(int) harness.Request {
		req, resp := &fasthttp.Request{}, &fasthttp.Response{}
		return func(context.Context) (int, error) {
			k := sent.Add(1) - 1
			r := k % n
			req.SetRequestURI(uris[r])
			req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[(k/n)%uint64(len(authz))])
			t := tgts[r]
			if err := t.hc.DoDeadline(req, resp, time.Now().Add(t.timeout)); err != nil {
				return 0, err
			}
			return resp.StatusCode(), nil
		}
	}
}

// probeFirstRequests sends each token, one at a time, first to a (which
// has not seen it, nor has anyone: an introspection) and then to b (which
// has not seen it, but Redis has), and returns both latency distributions.
func probeFirstRequests(a, b *target, path string, tokens [][]byte) (first, second harness.Summary, err error) {
	ha, hb := newLatencyHistogram(), newLatencyHistogram()
	for _, tok := range tokens {
		for _, x := range []struct {
			t *target
			h *hdrhistogram.Histogram
		}{{a, ha}, {b, hb}} {
			start := time.Now()
			if err := x.t.get(path, tok); err != nil {
				return first, second, err
			}
			_ = x.h.RecordValue(time.Since(start).Nanoseconds())
		}
	}
	return harness.Summarize(ha), harness.Summarize(hb), nil
}

// newLatencyHistogram records nanoseconds from 1µs to a minute, to three
// significant digits.
func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(int64(time.Microsecond), int64(time.Minute), 3)
}

// get makes one GET with the authorization value and wants a 200.
func (t *target) get(path string, authz []byte) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + t.addr + path)
	req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz)
	if err := t.hc.DoTimeout(req, resp, t.timeout); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode())
	}
	return nil
}

// randomKey returns a fresh REDIS_SIGNING_KEY.
func randomKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
