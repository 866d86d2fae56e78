package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/loadtest/harness"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// TestMain lets the test binary serve as a server child: the in-process
// scenarios re-execute os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestCheckLoopbackURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8000", true},
		{"http://127.0.0.1:8000/", true},
		{"http://127.1.2.3:80", true},
		{"http://[::1]:8000", true},
		{"http://localhost:8000", true},
		{"http://example.com:8000", false},
		{"http://10.0.0.1:8000", false},
		{"http://0.0.0.0:8000", false},
		{"http://127.0.0.1.nip.io:8000", false},
		{"https://127.0.0.1:8443", false},
		{"http://user:pw@127.0.0.1:8000", false},
		{"http://127.0.0.1:8000/items", false},
		{"127.0.0.1:8000", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := checkLoopbackURL(tc.url)
			if (err == nil) != tc.ok {
				t.Errorf("checkLoopbackURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"remote host", []string{"-url", "http://192.0.2.1:8000"}, "not a loopback address"},
		{"unknown scenario", []string{"-scenarios", "baseline,warp"}, `unknown scenario "warp"`},
		{"in-process scenario with url", []string{"-url", "http://127.0.0.1:1", "-scenarios", "local-cached"}, "unknown scenario"},
		{"bad model", []string{"-model", "half"}, "-model"},
		{"bad distance", []string{"-distances", "0,far"}, "-distances"},
		{"bad chart", []string{"-chart", "x.gif"}, "-chart"},
		{"zero duration", []string{"-duration", "0s"}, "-duration"},
		{"zero rounds", []string{"-rounds", "0"}, "-rounds"},
		{"stray argument", []string{"now"}, "unexpected argument"},
		{"one replica", []string{"-replicas", "1"}, "-replicas"},
		{"nginx with url", []string{"-nginx", "-url", "http://127.0.0.1:1"}, "-nginx"},
		{"nginx workers", []string{"-nginx", "-nginx-workers", "0"}, "-nginx-workers"},
		{"in-process scenario with nginx", []string{"-nginx", "-scenarios", "baseline"}, `unknown scenario "baseline"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errb); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "local-unique") {
		t.Errorf("-h: exit %d, %q", code, errb.String())
	}
}

func readReport(t *testing.T, path string) *harness.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r harness.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != harness.SchemaVersion {
		t.Errorf("schema %q", r.Schema)
	}
	return &r
}

// TestInProcessRun is a tiny real run: two scenarios and the bare
// fasthttp reference, a third of a second each, in two interleaved rounds,
// with every output written.
func TestInProcessRun(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-scenarios", "baseline,local-cached", "-baseline-fasthttp", "-rounds", "2", "-connections", "2",
		"-warmup", "100ms", "-duration", "300ms",
		"-json", filepath.Join(dir, "r.json"), "-chart", filepath.Join(dir, "c.svg"),
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"scenario", "cpu/req", "baseline", "local-cached", "fasthttp", "2 interleaved rounds",
		"relative to the references", "cpu/req ÷ fasthttp", "JSON report:", "chart:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "[local-cached closed]") {
		t.Errorf("stderr lacks the per-scenario line:\n%s", errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 6 || rep.Target != "in-process" || rep.Settings["duration"] != "300ms" {
		t.Fatalf("report %+v", rep)
	}
	if _, ok := rep.Settings["client-secret"]; ok {
		t.Error("the report records the client secret")
	}
	wantOrder := []string{scenarioFasthttp, "baseline", "local-cached"}
	for i, r := range rep.Results {
		if r.Scenario != wantOrder[i%3] || r.Round != i/3+1 {
			t.Errorf("result %d is %s round %d, want %s round %d", i, r.Scenario, r.Round, wantOrder[i%3], i/3+1)
		}
		if r.Requests == 0 || r.Errors != 0 || r.Statuses["200"] != r.Requests {
			t.Errorf("%s: requests %d errors %d statuses %v", r.Scenario, r.Requests, r.Errors, r.Statuses)
		}
		// The server child's CPU time over the measured phase: serving
		// hundreds of requests takes some.
		if processCPU() >= 0 && (r.ServerCPUS <= 0 || r.ServerCPUPerRequestUS <= 0) {
			t.Errorf("%s: server CPU %vs, %vµs per request: want both measured", r.Scenario, r.ServerCPUS, r.ServerCPUPerRequestUS)
		}
	}
	// Each of the 16 tokens misses once, in the warm-up if it is long
	// enough on this machine; ristretto may also drop a store now and then.
	for _, lc := range []*harness.Result{rep.Results[2], rep.Results[5]} {
		if hits := lc.Counters["cache_hits"]; hits < int64(lc.Requests)*9/10 || lc.Counters["validations"] > 32 {
			t.Errorf("local-cached counters %v for %d requests: want nearly every request a hit", lc.Counters, lc.Requests)
		}
	}
	if c := rep.Results[0].Counters; c != nil {
		t.Errorf("the bare fasthttp server has tokengate counters: %v", c)
	}
	// Every scenario set against both references, over both rounds.
	got := map[string]harness.Comparison{}
	for _, c := range rep.Comparisons {
		got[c.Scenario+"/"+c.Reference] = c
	}
	for _, k := range []string{"local-cached/baseline", "local-cached/fasthttp", "baseline/fasthttp", "fasthttp/baseline"} {
		c, ok := got[k]
		if !ok || c.Rounds != 2 || c.RPSRatio <= 0 || (processCPU() >= 0 && c.CPURatio <= 0) {
			t.Errorf("comparison %s: %+v (present %v)", k, c, ok)
		}
	}
	if len(rep.Comparisons) != 4 {
		t.Errorf("%d comparisons, want 4: %+v", len(rep.Comparisons), rep.Comparisons)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "c.svg")); err != nil || !bytes.Contains(svg, []byte("local-cached")) {
		t.Errorf("chart: %v", err)
	}
}

// TestRemoteDistance checks the scenario wiring that the figures rely on:
// remote with no cache introspects once per request, and the injected
// distance shows in every request's latency; local-unique verifies every
// request.
func TestRemoteDistance(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-scenarios", "remote,local-unique", "-distances", "20ms", "-connections", "2", "-pool", "64",
		"-warmup", "0s", "-duration", "300ms", "-progress=false",
		"-json", filepath.Join(dir, "r.json"), "-chart", "",
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 2 {
		t.Fatalf("%d results", len(rep.Results))
	}
	remote, unique := rep.Results[0], rep.Results[1]
	if remote.Scenario != "remote@20ms" || unique.Scenario != "local-unique" {
		t.Fatalf("scenarios %q %q", remote.Scenario, unique.Scenario)
	}
	if remote.Requests == 0 || remote.Errors != 0 || remote.Latency.MinMS < 20 {
		t.Errorf("remote@20ms: requests %d errors %d min %vms", remote.Requests, remote.Errors, remote.Latency.MinMS)
	}
	// A request shares its verification only when another one carries the
	// same token at the same time, which with 64 tokens and 2 connections
	// takes a stall of one connection for 64 requests of the other: allow
	// a few for a loaded machine.
	most := func(n uint64) int64 { return int64(n) * 95 / 100 }
	if got := remote.Counters["introspect_calls"]; got < most(remote.Requests) {
		t.Errorf("remote@20ms: %d introspections for %d requests", got, remote.Requests)
	}
	if got := unique.Counters["validations"]; got < most(unique.Requests) || unique.Errors != 0 {
		t.Errorf("local-unique: %d validations for %d requests, %d errors", got, unique.Requests, unique.Errors)
	}
	if _, err := os.Stat(filepath.Join(dir, "latency.png")); err == nil {
		t.Error("chart written although -chart was empty")
	}
}

// TestURLMode loads a running server through -url in the open loop.
func TestURLMode(t *testing.T) {
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := stack.Start(ctx, stack.Options{Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-url", srv.URL(), "-model", "open", "-rate", "200", "-max-inflight", "4",
		"-warmup", "0s", "-duration", "300ms", "-progress=false",
		"-json", filepath.Join(dir, "r.json"), "-chart", filepath.Join(dir, "c.png"),
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if rep.Target != srv.URL() || len(rep.Results) != 2 {
		t.Fatalf("target %q, %d results", rep.Target, len(rep.Results))
	}
	for _, r := range rep.Results {
		// 60 requests are due; allow for a slow machine at the edges.
		if r.Model != harness.Open || r.TargetRate != 200 || r.Requests+r.Unsent < 55 || r.Errors != 0 {
			t.Errorf("%s: model %s rate %v requests %d unsent %d errors %d", r.Scenario, r.Model, r.TargetRate, r.Requests, r.Unsent, r.Errors)
		}
	}
	if got := iss.Counts().Token; got != cachedPool {
		t.Errorf("%d POST /token calls, want %d", got, cachedPool)
	}
	if !strings.Contains(out.String(), "open@200") {
		t.Errorf("table lacks the open-loop model:\n%s", out.String())
	}
}

// TestGatewayScenarioOptIn: gateway runs only when named, expands to its
// three paths, and is not a -url scenario.
func TestGatewayScenarioOptIn(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil || slices.Contains(o.scenarios, "gateway") {
		t.Fatalf("default scenarios %v, %v", o.scenarios, err)
	}
	if o, err = parseFlags([]string{"-scenarios", "gateway"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range expand(o) {
		names = append(names, sc.name)
	}
	if want := []string{"gateway-direct", "gateway-nginx", "gateway-tokengate"}; !slices.Equal(names, want) {
		t.Errorf("expanded to %v, want %v", names, want)
	}
	if _, err := parseFlags([]string{"-url", "http://127.0.0.1:8000", "-scenarios", "gateway"}, io.Discard); err == nil {
		t.Error("-url accepted the gateway scenario")
	}
}

// TestRemoteShared checks the wiring of remote-shared: three replicas
// share a Redis, every token is used once on each, and the introspections
// are about one per token, not one per replica; the first-request probes
// ran.
func TestRemoteShared(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") == "" {
		t.Skipf("redis-server not installed: %v", err)
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-scenarios", "remote-shared", "-replicas", "3", "-distances", "0", "-connections", "4", "-pool", "64",
		"-warmup", "0s", "-duration", "300ms", "-progress=false",
		"-json", filepath.Join(dir, "r.json"), "-chart", "",
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 1 || rep.Results[0].Scenario != "remote-shared@loopback" {
		t.Fatalf("results %+v", rep.Results)
	}
	r := rep.Results[0]
	c := r.Counters
	if r.Requests == 0 || r.Errors != 0 || c["replicas"] != 3 {
		t.Errorf("requests %d errors %d counters %v", r.Requests, r.Errors, c)
	}
	// Each token is introspected at least once and, with the second level,
	// not once per replica (3×): on a machine loaded enough for Redis
	// calls to pass REDIS_TIMEOUT, a few replicas introspect themselves,
	// so the bound is a generous 2×.
	if tokens, calls := c["tokens_used"], c["introspect_calls"]; tokens == 0 || calls < tokens || calls >= tokens*2 {
		t.Errorf("%d introspections for %d tokens on 3 replicas", calls, tokens)
	}
	for _, k := range []string{"first_as_p50_us", "first_l2_p50_us"} {
		if c[k] <= 0 {
			t.Errorf("counter %s = %d", k, c[k])
		}
	}
	if !strings.Contains(errb.String(), "first request on a replica new to the token") {
		t.Errorf("stderr lacks the first-request line:\n%s", errb.String())
	}
	if _, ok := rep.Settings["redis-url"]; ok {
		t.Error("the report records -redis-url, which may carry a password")
	}
}

// TestScenarioTokens: local-cached-1 sends the first cached token only,
// local-cached all 16 in turn, local-unique the unique pool.
func TestScenarioTokens(t *testing.T) {
	pools := map[bool][][]byte{false: bearerHeaders(make([]string, cachedPool)), true: bearerHeaders(make([]string, 100))}
	pools[false][0] = []byte("Bearer first")
	o := &options{scenarios: []string{"local-cached", "local-cached-1", "local-unique"}}
	want := map[string]int{"local-cached": cachedPool, "local-cached-1": 1, "local-unique": 100}
	scs := expand(o)
	if len(scs) != len(want) {
		t.Fatalf("expand gave %d scenarios, want %d", len(scs), len(want))
	}
	for _, sc := range scs {
		got := sc.authz(pools)
		if len(got) != want[sc.name] || string(got[0]) != string(pools[sc.unique][0]) {
			t.Errorf("%s sends %d tokens starting %q, want %d", sc.name, len(got), got[0], want[sc.name])
		}
		if sc.path != "/items" {
			t.Errorf("%s: path %q", sc.name, sc.path)
		}
	}
}

// TestInProcessOneToken is a tiny real run of local-cached-1: every
// measured request is a cache hit.
func TestInProcessOneToken(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-scenarios", "local-cached-1", "-connections", "2",
		"-warmup", "100ms", "-duration", "300ms", "-json", filepath.Join(dir, "r.json"), "-chart", "",
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 1 || rep.Results[0].Scenario != "local-cached-1" {
		t.Fatalf("results %+v, want one local-cached-1", rep.Results)
	}
	r := rep.Results[0]
	if r.Requests == 0 || r.Statuses["200"] != r.Requests {
		t.Fatalf("requests %d statuses %v", r.Requests, r.Statuses)
	}
	if hits := r.Counters["cache_hits"]; hits < int64(r.Requests)*9/10 || r.Counters["validations"] > 1 {
		t.Errorf("counters %v for %d requests: want every request a hit", r.Counters, r.Requests)
	}
}
