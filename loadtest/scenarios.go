package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// scenarioFasthttp is the scenario that loads a bare fasthttp server
// (-baseline-fasthttp): GET /items with the local-cached requests, answered
// with the same body by a server with no tokengate in it.
const scenarioFasthttp = "fasthttp"

// The references the comparison table sets every scenario against, and
// their headings.
var (
	references      = []string{"baseline", scenarioFasthttp}
	referenceLabels = []string{"GET /", "fasthttp"}
)

// scenario is one concrete in-process scenario.
type scenario struct {
	name     string        // e.g. "remote@20ms"
	path     string        // "/" or "/items"
	args     []string      // tokengate flags
	uncached bool          // app.Options.MeasureUncachedValid
	unique   bool          // use the -pool token pool rather than the cached one
	oneToken bool          // send only the first token of the pool
	distance time.Duration // injected introspection latency
	gateway  gatewayVia    // gateway scenarios: how the upstream is reached
	bare     bool          // a bare fasthttp server instead of tokengate
	shared   bool          // remote-shared: -replicas tokengates sharing a Redis (see runShared)
	policy   string        // stack.Options.Policy
	decision bool          // a forward-auth decision request (forwardauth.go) rather than GET path
}

// authz is the Authorization values sc sends, from the pools of cached
// (false) and unique (true) tokens.
func (sc scenario) authz(pools map[bool][][]byte) [][]byte {
	authz := pools[sc.unique]
	if sc.oneToken && len(authz) > 1 {
		authz = authz[:1]
	}
	return authz
}

// expand turns the chosen base scenarios into concrete ones, the remote
// ones once per distance, the bare fasthttp server first when asked for.
func expand(o *options) []scenario {
	var out []scenario
	if o.baselineFasthttp {
		out = append(out, scenario{name: scenarioFasthttp, path: "/items", bare: true})
	}
	for _, base := range o.scenarios {
		switch base {
		case "baseline":
			out = append(out, scenario{name: base, path: "/"})
		case "local-cached":
			out = append(out, scenario{name: base, path: "/items"})
		case "local-cached-1":
			out = append(out, scenario{name: base, path: "/items", oneToken: true})
		case "local-unique":
			out = append(out, scenario{name: base, path: "/items", uncached: true, unique: true})
		case "forward-auth":
			out = append(out, scenario{name: base, path: forwardAuthPath, policy: stack.DecisionPolicy, decision: true})
		case "remote", "remote-cached", "hybrid", "remote-shared":
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
				case "remote-shared":
					sc.args = []string{"--validation-mode=remote"}
					sc.shared = true // its own token pools, minted in runShared
				}
				out = append(out, sc)
			}
		case "gateway":
			out = append(out, gatewayScenarios()...)
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

// runInProcess starts the development issuer once, in this process, and
// for each scenario a fresh server in a child process of its own: a
// tokengate that trusts the issuer, or the bare fasthttp server. With
// several rounds the whole list of scenarios runs once per round.
func runInProcess(ctx context.Context, o *options, stderr io.Writer) ([]*harness.Result, error) {
	iss, err := devissuer.Start(devissuer.Config{Algorithm: o.alg, RSABits: o.rsaBits})
	if err != nil {
		return nil, err
	}
	defer iss.Close()

	scenarios := expand(o)
	redisURL := ""
	if slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.shared }) {
		url, stop, ok, err := sharedRedis(o, stderr)
		if err != nil {
			return nil, err
		}
		if ok {
			defer stop()
			redisURL = url
		} else {
			scenarios = slices.DeleteFunc(scenarios, func(sc scenario) bool { return sc.shared })
		}
	}
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
	for round := 1; round <= o.rounds; round++ {
		for _, model := range o.models {
			for _, sc := range scenarios {
				var res *harness.Result
				var err error
				if sc.shared {
					res, err = runShared(ctx, o, iss, sc, model, redisURL, stderr)
				} else {
					res, err = runScenario(ctx, o, iss, sc, model, sc.authz(pools), stderr)
				}
				if err != nil {
					return results, fmt.Errorf("%s (%s): %w", sc.name, model, err)
				}
				res.Round = roundOf(o, round)
				results = append(results, res)
			}
		}
	}
	return results, nil
}

// roundOf is Result.Round: 0 for a run of one round.
func roundOf(o *options, round int) int {
	if o.rounds == 1 {
		return 0
	}
	return round
}

// tokengateArgs are the flags and environment of a tokengate child that
// trusts iss, serves on a free loopback port and takes sc's flags.
// A policy (sc.policy) is written to a file in dir.
func tokengateArgs(iss *devissuer.Issuer, sc scenario, dir string) (args, env []string, err error) {
	clients := iss.Clients()
	if len(clients) == 0 {
		return nil, nil, errors.New("the development issuer has no client")
	}
	args = append([]string{
		"--okta-issuer=" + iss.Issuer(),
		"--okta-audience=" + iss.Audience(),
		"--okta-client-id=" + clients[0].ID,
		"--listen-addr=127.0.0.1:0",
	}, sc.args...)
	env = []string{"OKTA_CLIENT_SECRET=" + clients[0].Secret}
	if sc.uncached {
		env = append(env, serveUncachedEnv+"=1")
	}
	if sc.policy != "" {
		// The child reads its policy file once, at start; the file goes
		// with the temporary directory the caller removes.
		path := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(path, []byte(sc.policy), 0o600); err != nil {
			return nil, nil, err
		}
		args = append(args, "--policy-file="+path)
	}
	return args, env, nil
}

// runScenario serves one scenario from a fresh server child and loads it.
func runScenario(ctx context.Context, o *options, iss *devissuer.Issuer, sc scenario, model harness.Model, authz [][]byte, stderr io.Writer) (*harness.Result, error) {
	if sc.gateway != viaNone {
		return runGateway(ctx, o, iss, sc, model, authz, stderr)
	}
	iss.ClearFaults()
	defer iss.ClearFaults()
	if sc.distance > 0 {
		iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: sc.distance})
	}
	role, args, env := roleFasthttp, []string(nil), []string(nil)
	if !sc.bare {
		var err error
		role = roleTokengate
		dir, err := os.MkdirTemp("", "tokengate-loadtest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if args, env, err = tokengateArgs(iss, sc, dir); err != nil {
			return nil, err
		}
	}
	srv, err := startServerProcess(ctx, role, args, env, stderr)
	if err != nil {
		return nil, err
	}
	tgt := newTarget(srv.addr, workersFor(o, model), o.timeout)
	res, err := loadServer(ctx, o, sc, model, srv, tgt, authz, iss, stderr)
	tgt.close()
	if cerr := srv.close(); err == nil && cerr != nil {
		err = cerr
	}
	return res, err
}

// loadServer runs the preflight and the load against a server child and
// fills in the counters and the server's CPU time per request.
func loadServer(ctx context.Context, o *options, sc scenario, model harness.Model, srv *serverProcess, tgt *target, authz [][]byte, iss *devissuer.Issuer, stderr io.Writer) (*harness.Result, error) {
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

	var (
		counts    devissuer.Counts
		before    childUsage
		beforeErr error
	)
	cfg := harnessConfig(o, sc.name, model, stderr)
	cfg.BeforeMeasure = func() { counts = iss.Counts(); before, beforeErr = srv.usage() }
	res, err := harness.Run(ctx, cfg, requests)
	if res == nil {
		return nil, err
	}
	after, afterErr := srv.usage()
	if uerr := errors.Join(beforeErr, afterErr); uerr != nil {
		return res, uerr
	}
	if before.CPUNanos >= 0 && after.CPUNanos >= 0 {
		res.SetServerCPU(time.Duration(after.CPUNanos - before.CPUNanos))
	}
	if !sc.bare {
		c2 := iss.Counts()
		res.Counters = map[string]int64{
			"introspect_calls": int64(c2.Introspect - counts.Introspect),
			"jwks_fetches":     int64(c2.Keys - counts.Keys),
			"cache_hits":       int64(after.Hits - before.Hits),
			"cache_misses":     int64(after.Misses - before.Misses),
			"validations":      int64(after.Validations - before.Validations),
			"revalidations":    int64(after.Revalidations - before.Revalidations),
		}
	}
	logDone(stderr, res)
	return res, err
}

// runURL loads a tokengate that is already running, and with
// -baseline-fasthttp a bare fasthttp server child beside it. The running
// tokengate's CPU time is not known to the harness.
func runURL(ctx context.Context, o *options, stderr io.Writer) ([]*harness.Result, error) {
	addr := o.addr
	var authz [][]byte
	if slices.Contains(o.scenarios, "items") || o.baselineFasthttp {
		t := newTarget(addr, 1, o.timeout)
		tokens, err := fetchTokens(ctx, t, o.clientID, o.clientSecret, cachedPool)
		t.close()
		if err != nil {
			return nil, err
		}
		authz = bearerHeaders(tokens)
	}
	names := o.scenarios
	if o.baselineFasthttp {
		names = append([]string{scenarioFasthttp}, names...)
	}
	var results []*harness.Result
	for round := 1; round <= o.rounds; round++ {
		for _, model := range o.models {
			for _, name := range names {
				res, err := runURLScenario(ctx, o, name, model, authz, stderr)
				if res != nil {
					res.Round = roundOf(o, round)
					results = append(results, res)
				}
				if err != nil {
					return results, fmt.Errorf("%s: %w", name, err)
				}
			}
		}
	}
	return results, nil
}

// runURLScenario loads the running tokengate, or a fresh bare fasthttp
// child for the fasthttp scenario.
func runURLScenario(ctx context.Context, o *options, name string, model harness.Model, authz [][]byte, stderr io.Writer) (*harness.Result, error) {
	path, body, a := "/", helloBody, [][]byte(nil)
	if name != "baseline" {
		path, body, a = "/items", itemsBody, authz
	}
	addr := o.addr
	var srv *serverProcess
	if name == scenarioFasthttp {
		var err error
		if srv, err = startServerProcess(ctx, roleFasthttp, nil, nil, stderr); err != nil {
			return nil, err
		}
		addr = srv.addr
	}
	tgt := newTarget(addr, workersFor(o, model), o.timeout)
	defer tgt.close()
	var first []byte
	if a != nil {
		first = a[0]
	}
	var (
		before, after childUsage
		uerr          error
	)
	cfg := harnessConfig(o, name, model, stderr)
	if srv != nil {
		cfg.BeforeMeasure = func() { before, uerr = srv.usage() }
	}
	err := tgt.preflight(path, first, body)
	var res *harness.Result
	if err == nil {
		res, err = harness.Run(ctx, cfg, tgt.requests(path, a))
	}
	if srv != nil {
		if res != nil && uerr == nil {
			if after, uerr = srv.usage(); uerr == nil && before.CPUNanos >= 0 && after.CPUNanos >= 0 {
				res.SetServerCPU(time.Duration(after.CPUNanos - before.CPUNanos))
			}
		}
		err = errors.Join(err, uerr, srv.close())
	}
	if res != nil {
		logDone(stderr, res)
	}
	return res, err
}
