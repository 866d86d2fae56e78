package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokengate/tokengate/loadtest/harness"
)

func main() {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // setup failed, a scenario could not run, or the run was stopped
	exitUsage = 2
)

// options are the command-line settings.
type options struct {
	url          string
	addr         string // with -url: the host:port to dial
	clientID     string
	clientSecret string
	scenarios    []string
	distances    []time.Duration
	models       []harness.Model
	connections  int
	rate         float64
	maxInflight  int
	warmup       time.Duration
	duration     time.Duration
	timeout      time.Duration
	maxTotal     time.Duration
	pool         int
	alg          string
	rsaBits      int
	jsonPath     string
	chartPath    string
	progress     bool
	rounds       int
	// baselineFasthttp adds the fasthttp scenario: a bare fasthttp server,
	// the reference for "no tokengate at all".
	baselineFasthttp bool
	replicas         int
	redisURL         string
	nginx            bool // the -nginx scenarios (nginx.go) instead of the in-process ones
	nginxWorkers     int
	settings         map[string]string
	// explicitScenarios is true when -scenarios named them: a scenario
	// that cannot run is then an error rather than skipped.
	explicitScenarios bool
}

// inProcessScenarios are the scenario names without -url, in run order.
var inProcessScenarios = []string{"baseline", "local-cached", "local-cached-1", "forward-auth", "local-unique", "remote", "remote-cached", "hybrid", "remote-shared"}

// urlScenarios are the scenario names with -url.
var urlScenarios = []string{"baseline", "items"}

// optInScenarios run only when -scenarios names them (gateway needs nginx).
var optInScenarios = []string{"gateway"}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: go run ./loadtest [flags]

Measures tokengate over loopback TCP. Without -url it starts the development
issuer in-process and, for each scenario, a fresh tokengate in a child process
of its own, so that the server's CPU time per request is measured apart from
the load generator's (the cpu/req column):

  baseline       GET / (no auth)
  local-cached   GET /items, local mode, 16 tokens that stay cached, each
                 request the next (a connection seldom repeats a token, as
                 behind a proxy: the cache's SHA-256 and lookup)
  local-cached-1 the same with one token, as a keep-alive client sends it
                 (the connection's memo answers; issue 13's wrk method)
  forward-auth   GET /auth/forward (Traefik/Caddy dialect) asking about
                 GET /orders/1 under a policy: a cached decision with
                 three claim headers, 16 tokens
  local-unique   GET /items, local mode, a pool of -pool tokens and a cache
                 that keeps no valid token: every request verifies a signature
  remote         GET /items, remote mode, INTROSPECTION_CACHE_TTL=0: one
                 introspection per request (pool of -pool tokens)
  remote-cached  GET /items, remote mode, introspection results cached (30s)
  hybrid         GET /items, hybrid mode, REVALIDATE_AFTER=1s
  remote-shared  GET /items, remote mode, -replicas tokengates sharing a Redis
                 second level, round robin so that each of -pool fresh tokens
                 is used once on every replica: introspections per token, and
                 the first request on a replica that has not seen a token
                 (Redis hit) against one that nobody has (introspection).
                 Needs redis-server (Debian's package; started on a free
                 loopback port and stopped) or -redis-url; skipped without
                 either unless named in -scenarios

remote, remote-cached, hybrid and remote-shared run once per -distances
entry: 0 is the loopback issuer, 20ms injects that much latency into every
introspection.

With -nginx it starts real nginx (Debian's package) on a loopback port in
front of an upstream written in Go, and tokengate with a policy:

  nginx          client → nginx → upstream (16 tokens sent, none checked)
  nginx-auth     client → nginx → auth_request to tokengate's /auth/request
                 (a cached decision) → upstream with the claim headers

With -url it targets a running tokengate on this machine (loopback only):

  baseline       GET /
  items          GET /items with 16 tokens from POST /token

-baseline-fasthttp adds, first in each round, the scenario fasthttp: the same
GET /items requests answered with the same body by a bare fasthttp server
(fasthttp.Server defaults) in a child process, the cost of HTTP with no
tokengate at all. A second table then sets every scenario against GET / and
fasthttp: throughput and CPU per request as ratios, the median over -rounds
interleaved rounds.

Flags:
`)
		fs.PrintDefaults()
	}
	var scenarios, distances, model string
	fs.StringVar(&o.url, "url", "", "base URL of a running tokengate to test instead of an in-process one (loopback only)")
	fs.StringVar(&o.clientID, "client-id", "dev-client", "with -url: client id for POST /token")
	fs.StringVar(&o.clientSecret, "client-secret", "dev-secret", "with -url: client secret for POST /token")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run (default: all but gateway, which needs nginx and runs only when named)")
	fs.StringVar(&distances, "distances", "0,20ms", "comma-separated injected introspection latencies for the remote scenarios (0 = loopback)")
	fs.StringVar(&model, "model", "closed", "load model: closed, open or both")
	fs.IntVar(&o.connections, "connections", 16, "closed loop: concurrent connections")
	fs.Float64Var(&o.rate, "rate", 1000, "open loop: requests per second")
	fs.IntVar(&o.maxInflight, "max-inflight", 256, "open loop: most requests in flight (a due request waits for a free slot, and that wait counts)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up per scenario (not measured)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per scenario")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "per-request timeout")
	fs.DurationVar(&o.maxTotal, "max-total", 10*time.Minute, "bound on the whole run")
	fs.IntVar(&o.pool, "pool", 1024, "tokens in the pool of local-unique and remote (pre-minted)")
	fs.StringVar(&o.alg, "alg", "RS256", "in-process issuer's signing algorithm (RS256, ES256, EdDSA, ...)")
	fs.IntVar(&o.rsaBits, "rsa-bits", 2048, "in-process issuer's RSA key size")
	fs.StringVar(&o.jsonPath, "json", filepath.Join("loadtest-results", "results.json"), "JSON report path (empty: none)")
	fs.StringVar(&o.chartPath, "chart", filepath.Join("loadtest-results", "latency.png"), "latency chart path, .png, .svg or .pdf (empty: none)")
	fs.BoolVar(&o.progress, "progress", true, "print a progress line to stderr every second")
	fs.IntVar(&o.rounds, "rounds", 1, "run the scenarios this many times, interleaved (round 1: every scenario, round 2: every scenario, ...); ratios are medians over rounds")
	fs.BoolVar(&o.baselineFasthttp, "baseline-fasthttp", false, "also load a bare fasthttp server (same requests, same body) as the no-tokengate reference")
	fs.IntVar(&o.replicas, "replicas", 3, "remote-shared: tokengate replicas sharing the Redis second level (2 to 16)")
	fs.StringVar(&o.redisURL, "redis-url", "", "remote-shared: the Redis to share (default: start redis-server on a free loopback port); its contents are left alone, every run uses fresh tokens")
	fs.BoolVar(&o.nginx, "nginx", false, "run the nginx scenarios (real nginx in front of a Go upstream, with and without auth_request to tokengate)")
	fs.IntVar(&o.nginxWorkers, "nginx-workers", 1, "with -nginx or the gateway scenarios: nginx worker_processes")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.settings = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "client-secret" && f.Name != "redis-url" { // either may carry a password
			o.settings[f.Name] = f.Value.String()
		}
	})

	known := inProcessScenarios
	if o.nginx {
		if o.url != "" {
			return nil, errNginxWithURL
		}
		if o.nginxWorkers < 1 || o.nginxWorkers > 64 {
			return nil, errors.New("-nginx-workers: must be between 1 and 64")
		}
		known = nginxScenarios
	}
	if o.url != "" {
		addr, err := checkLoopbackURL(o.url)
		if err != nil {
			return nil, err
		}
		o.addr = addr
		o.url = strings.TrimRight(o.url, "/")
		known = urlScenarios
	}
	if scenarios == "" {
		o.scenarios = known
	} else {
		o.explicitScenarios = true
		for _, s := range strings.Split(scenarios, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(known, s) && (o.url != "" || !slices.Contains(optInScenarios, s)) {
				return nil, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", s, strings.Join(known, ", "))
			}
			o.scenarios = append(o.scenarios, s)
		}
	}
	for _, d := range strings.Split(distances, ",") {
		d = strings.TrimSpace(d)
		if d == "0" || d == "loopback" {
			o.distances = append(o.distances, 0)
			continue
		}
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 || v > time.Minute {
			return nil, fmt.Errorf("-distances: %q is not a duration between 0 and 1m", d)
		}
		o.distances = append(o.distances, v)
	}
	switch model {
	case "closed":
		o.models = []harness.Model{harness.Closed}
	case "open":
		o.models = []harness.Model{harness.Open}
	case "both":
		o.models = []harness.Model{harness.Closed, harness.Open}
	default:
		return nil, fmt.Errorf("-model: %q is not closed, open or both", model)
	}
	switch {
	case o.connections < 1 || o.connections > 10000:
		return nil, errors.New("-connections: must be between 1 and 10000")
	case o.maxInflight < 1 || o.maxInflight > 100000:
		return nil, errors.New("-max-inflight: must be between 1 and 100000")
	case o.rate <= 0 || o.rate > 1e6:
		return nil, errors.New("-rate: must be > 0 and at most 1e6")
	case o.duration <= 0:
		return nil, errors.New("-duration: must be > 0")
	case o.warmup < 0:
		return nil, errors.New("-warmup: must be >= 0")
	case o.timeout <= 0:
		return nil, errors.New("-timeout: must be > 0")
	case o.maxTotal <= 0:
		return nil, errors.New("-max-total: must be > 0")
	case o.pool < 1 || o.pool > 1<<20:
		return nil, errors.New("-pool: must be between 1 and 1048576")
	case o.rounds < 1 || o.rounds > 100:
		return nil, errors.New("-rounds: must be between 1 and 100")
	case o.replicas < 2 || o.replicas > 16:
		return nil, errors.New("-replicas: must be between 2 and 16")
	}
	if o.chartPath != "" {
		if err := harness.CheckChartPath(o.chartPath); err != nil {
			return nil, fmt.Errorf("-chart: %w", err)
		}
	}
	return o, nil
}

// isTerminal reports whether w is a character device (a terminal), where
// the progress line can overwrite itself.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if _, ok := stderr.(*os.File); !ok {
		// Server children write their errors to stderr from a goroutine
		// of os/exec's while the run writes its progress; a file is safe
		// for that, anything else gets a lock.
		stderr = &lockedWriter{w: stderr}
	}
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.maxTotal)
	defer cancel()

	started := time.Now()
	target, runAll := "in-process", runInProcess
	switch {
	case o.url != "":
		target, runAll = o.url, runURL
	case o.nginx:
		target, runAll = "in-process behind nginx", runNginx
	}
	report := harness.NewReport(started, target, o.settings)
	results, runErr := runAll(ctx, o, stderr)
	report.Results = results
	for _, ref := range references {
		report.Comparisons = append(report.Comparisons, harness.Compare(results, ref)...)
	}

	code := exitOK
	if runErr != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", runErr)
		code = exitFail
	}
	if len(results) == 0 {
		return exitFail
	}
	fmt.Fprintf(stdout, "\ntokengate load test: %s, %s, GOMAXPROCS=%d, %s\n",
		target, modelNote(o), report.GOMAXPROCS, report.GoVersion)
	if err := harness.WriteTable(stdout, results); err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		code = exitFail
	}
	if len(report.Comparisons) > 0 {
		fmt.Fprintf(stdout, "\nrelative to the references (median of per-round ratios):\n")
		if err := harness.WriteComparisons(stdout, report.Comparisons, references, referenceLabels); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			code = exitFail
		}
	}
	for _, r := range results {
		if r.Errors > 0 || r.Unsent > 0 {
			fmt.Fprintf(stdout, "note: %s (%s) had %d unexpected results and %d unsent requests\n", r.Scenario, r.Model, r.Errors, r.Unsent)
		}
	}
	if o.jsonPath != "" {
		if err := writeFile(o.jsonPath, func(w io.Writer) error { return harness.WriteJSON(w, report) }); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			code = exitFail
		} else {
			fmt.Fprintf(stdout, "JSON report: %s\n", o.jsonPath)
		}
	}
	if o.chartPath != "" {
		if err := os.MkdirAll(filepath.Dir(o.chartPath), 0o755); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return exitFail
		}
		var models []string
		for _, m := range o.models {
			if m == harness.Open {
				models = append(models, "open loop "+strconv.FormatFloat(o.rate, 'f', -1, 64)+" req/s")
			} else {
				models = append(models, fmt.Sprintf("closed loop %d conns", o.connections))
			}
		}
		title := fmt.Sprintf("tokengate latency: %s, GOMAXPROCS=%d", strings.Join(models, " + "), report.GOMAXPROCS)
		if err := harness.SaveChart(o.chartPath, title, results); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			code = exitFail
		} else {
			fmt.Fprintf(stdout, "chart: %s\n", o.chartPath)
		}
	}
	return code
}

// modelNote says how the load was applied, for the table heading.
func modelNote(o *options) string {
	var parts []string
	for _, m := range o.models {
		switch m {
		case harness.Closed:
			parts = append(parts, fmt.Sprintf("closed loop %d conns", o.connections))
		case harness.Open:
			parts = append(parts, fmt.Sprintf("open loop %s req/s (≤%d in flight; queueing counts)",
				strconv.FormatFloat(o.rate, 'f', -1, 64), o.maxInflight))
		}
	}
	note := strings.Join(parts, " + ") + fmt.Sprintf(", %v warm-up + %v", o.warmup, o.duration)
	if o.rounds > 1 {
		note += fmt.Sprintf(", %d interleaved rounds", o.rounds)
	}
	return note
}

func writeFile(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
