package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/loadtest/harness"
	"github.com/tokengate/tokengate/loadtest/stack"
)

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
		{"stray argument", []string{"now"}, "unexpected argument"},
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

// TestInProcessRun is a tiny real run: two scenarios, a third of a second
// each, with every output written.
func TestInProcessRun(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-scenarios", "baseline,local-cached", "-connections", "2",
		"-warmup", "100ms", "-duration", "300ms",
		"-json", filepath.Join(dir, "r.json"), "-chart", filepath.Join(dir, "c.svg"),
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"scenario", "baseline", "local-cached", "JSON report:", "chart:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "[local-cached closed]") {
		t.Errorf("stderr lacks the per-scenario line:\n%s", errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 2 || rep.Target != "in-process" || rep.Settings["duration"] != "300ms" {
		t.Fatalf("report %+v", rep)
	}
	if _, ok := rep.Settings["client-secret"]; ok {
		t.Error("the report records the client secret")
	}
	for _, r := range rep.Results {
		if r.Requests == 0 || r.Errors != 0 || r.Statuses["200"] != r.Requests {
			t.Errorf("%s: requests %d errors %d statuses %v", r.Scenario, r.Requests, r.Errors, r.Statuses)
		}
	}
	// Each of the 16 tokens misses once, in the warm-up if it is long
	// enough on this machine; ristretto may also drop a store now and then.
	lc := rep.Results[1]
	if hits := lc.Counters["cache_hits"]; hits < int64(lc.Requests)*9/10 || lc.Counters["validations"] > 32 {
		t.Errorf("local-cached counters %v for %d requests: want nearly every request a hit", lc.Counters, lc.Requests)
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
