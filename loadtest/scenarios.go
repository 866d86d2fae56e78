package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/loadtest/harness"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// cachedPool is how many tokens the cached scenarios cycle through: few
// enough that the warm-up caches them all.
const cachedPool = 16

const (
	helloBody = `{"Hello":"World"}`
	itemsBody = `"red ball"`
)

// scenario is one concrete in-process scenario.
type scenario struct {
	name     string        // e.g. "remote@20ms"
	path     string        // "/" or "/items"
	args     []string      // tokengate flags
	uncached bool          // stack.Options.UncachedValid
	unique   bool          // use the -pool token pool rather than the cached one
	distance time.Duration // injected introspection latency
	policy   string        // stack.Options.Policy
	decision bool          // a forward-auth decision request (forwardauth.go) rather than GET path
}

// expand turns the chosen base scenarios into concrete ones, the remote
// ones once per distance.
func expand(o *options) []scenario {
	var out []scenario
	for _, base := range o.scenarios {
		switch base {
		case "baseline":
			out = append(out, scenario{name: base, path: "/"})
		case "local-cached":
			out = append(out, scenario{name: base, path: "/items"})
		case "local-unique":
			out = append(out, scenario{name: base, path: "/items", uncached: true, unique: true})
		case "forward-auth":
			out = append(out, scenario{name: base, path: forwardAuthPath, policy: stack.DecisionPolicy, decision: true})
		case "remote", "remote-cached", "hybrid":
			for _, d := range o.distances {
				sc := scenario{name: base + "@" + distanceLabel(d), path: "/items", distance: d}
				switch base {
				case "remote":
					sc.args = []string{"--validation-mode=remote", "--introspection-cache-ttl=0"}
					sc.unique = true // distinct tokens, so no two requests share one introspection
				case "remote-cached":
					sc.args = []string{"--validation-mode=remote"}
				case "hybrid":
					sc.args = []string{"--validation-mode=hybrid", "--revalidate-after=1s"}
				}
				out = append(out, sc)
			}
		}
	}
	return out
}

func distanceLabel(d time.Duration) string {
	if d == 0 {
		return "loopback"
	}
	return d.String()
}

// harnessConfig is the load for one scenario and model.
func harnessConfig(o *options, name string, model harness.Model, stderr io.Writer) harness.Config {
	cfg := harness.Config{
		Name:     name,
		Model:    model,
		Warmup:   o.warmup,
		Duration: o.duration,
		// Every request has its own deadline (-timeout), so in-flight
		// requests end by themselves within it.
		Grace:        o.timeout + time.Second,
		ExpectStatus: 200,
		Workers:      workersFor(o, model),
	}
	if model == harness.Open {
		cfg.Rate = o.rate
	}
	if o.progress {
		cfg.Progress = stderr
		cfg.ProgressOverwrite = isTerminal(stderr)
	}
	return cfg
}

func workersFor(o *options, model harness.Model) int {
	if model == harness.Open {
		return o.maxInflight
	}
	return o.connections
}

func logDone(stderr io.Writer, r *harness.Result) {
	fmt.Fprintf(stderr, "[%s %s] %.0f req/s  p50 %s  p99 %s  max %s  errors %d\n", r.Scenario, r.Model, r.RPS,
		harness.FormatLatency(r.Latency.P50MS), harness.FormatLatency(r.Latency.P99MS),
		harness.FormatLatency(r.Latency.MaxMS), r.Errors)
}

// runInProcess starts the development issuer once and a fresh tokengate
// per scenario.
func runInProcess(ctx context.Context, o *options, stderr io.Writer) ([]*harness.Result, error) {
	iss, err := devissuer.Start(devissuer.Config{Algorithm: o.alg, RSABits: o.rsaBits})
	if err != nil {
		return nil, err
	}
	defer iss.Close()

	scenarios := expand(o)
	cached, err := iss.MintN(cachedPool, devissuer.MintOptions{})
	if err != nil {
		return nil, err
	}
	var unique []string
	if slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.unique }) {
		began := time.Now()
		if unique, err = iss.MintN(o.pool, devissuer.MintOptions{}); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "minted %d %s tokens in %v\n", o.pool, o.alg, time.Since(began).Round(time.Millisecond))
	}
	pools := map[bool][][]byte{false: bearerHeaders(cached), true: bearerHeaders(unique)}

	var results []*harness.Result
	for _, model := range o.models {
		for _, sc := range scenarios {
			res, err := runScenario(ctx, o, iss, sc, model, pools[sc.unique], stderr)
			if err != nil {
				return results, fmt.Errorf("%s (%s): %w", sc.name, model, err)
			}
			results = append(results, res)
		}
	}
	return results, nil
}

// runScenario serves one scenario from a fresh tokengate and loads it.
func runScenario(ctx context.Context, o *options, iss *devissuer.Issuer, sc scenario, model harness.Model, authz [][]byte, stderr io.Writer) (*harness.Result, error) {
	iss.ClearFaults()
	defer iss.ClearFaults()
	if sc.distance > 0 {
		iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: sc.distance})
	}
	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	srv, err := stack.Start(readyCtx, stack.Options{Issuer: iss, Args: sc.args, UncachedValid: sc.uncached, Policy: sc.policy})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	tgt := newTarget(srv.Addr(), workersFor(o, model), o.timeout)
	defer tgt.close()
	requests := tgt.requests(sc.path, authz)
	switch {
	case sc.decision:
		if err := tgt.preflightDecision(authz[0]); err != nil {
			return nil, err
		}
		requests = tgt.requestsWith(sc.path, forwardAuthHeader(), authz)
	case sc.path == "/":
		requests = tgt.requests(sc.path, nil)
		if err := tgt.preflight("/", nil, helloBody); err != nil {
			return nil, err
		}
	default:
		if err := tgt.preflight(sc.path, authz[0], itemsBody); err != nil {
			return nil, err
		}
	}

	var counts devissuer.Counts
	var stats = srv.Cache().Stats()
	cfg := harnessConfig(o, sc.name, model, stderr)
	cfg.BeforeMeasure = func() { counts, stats = iss.Counts(), srv.Cache().Stats() }
	res, err := harness.Run(ctx, cfg, requests)
	if res != nil {
		c2, s2 := iss.Counts(), srv.Cache().Stats()
		res.Counters = map[string]int64{
			"introspect_calls": int64(c2.Introspect - counts.Introspect),
			"jwks_fetches":     int64(c2.Keys - counts.Keys),
			"cache_hits":       int64(s2.Hits - stats.Hits),
			"cache_misses":     int64(s2.Misses - stats.Misses),
			"validations":      int64(s2.Validations - stats.Validations),
			"revalidations":    int64(s2.Revalidations - stats.Revalidations),
		}
		logDone(stderr, res)
	}
	return res, err
}

// runURL loads a tokengate that is already running.
func runURL(ctx context.Context, o *options, stderr io.Writer) ([]*harness.Result, error) {
	addr := o.addr
	var authz [][]byte
	if slices.Contains(o.scenarios, "items") {
		t := newTarget(addr, 1, o.timeout)
		tokens, err := fetchTokens(ctx, t, o.clientID, o.clientSecret, cachedPool)
		t.close()
		if err != nil {
			return nil, err
		}
		authz = bearerHeaders(tokens)
	}
	var results []*harness.Result
	for _, model := range o.models {
		for _, name := range o.scenarios {
			tgt := newTarget(addr, workersFor(o, model), o.timeout)
			path, body, a := "/", helloBody, [][]byte(nil)
			if name == "items" {
				path, body, a = "/items", itemsBody, authz
			}
			var first []byte
			if a != nil {
				first = a[0]
			}
			if err := tgt.preflight(path, first, body); err != nil {
				tgt.close()
				return results, fmt.Errorf("%s: %w", name, err)
			}
			res, err := harness.Run(ctx, harnessConfig(o, name, model, stderr), tgt.requests(path, a))
			tgt.close()
			if res != nil {
				logDone(stderr, res)
				results = append(results, res)
			}
			if err != nil {
				return results, err
			}
		}
	}
	return results, nil
}
