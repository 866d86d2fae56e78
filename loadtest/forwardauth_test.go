package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/tokengate/tokengate/internal/proxytest"
)

// TestForwardAuthRun is a tiny real run of forward-auth beside baseline:
// every decision is allowed (200), and after the warm-up each one is a
// cache hit that runs no validation.
func TestForwardAuthRun(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-scenarios", "baseline,forward-auth", "-connections", "2",
		"-warmup", "200ms", "-duration", "300ms", "-progress=false",
		"-json", filepath.Join(dir, "r.json"), "-chart", "",
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 2 || rep.Results[1].Scenario != "forward-auth" {
		t.Fatalf("results %+v", rep.Results)
	}
	fa := rep.Results[1]
	if fa.Requests == 0 || fa.Errors != 0 || fa.Statuses["200"] != fa.Requests {
		t.Errorf("forward-auth: requests %d errors %d statuses %v", fa.Requests, fa.Errors, fa.Statuses)
	}
	// ristretto may drop a store now and then, so a token can miss again.
	if hits := fa.Counters["cache_hits"]; hits < int64(fa.Requests)*9/10 || fa.Counters["validations"] > 32 {
		t.Errorf("forward-auth counters %v for %d requests: want nearly every decision a hit", fa.Counters, fa.Requests)
	}
}

// TestNginxRun is a tiny real run of the -nginx pair through Debian's nginx:
// on nginx-auth every request was decided by tokengate (a cache hit) and
// reached the upstream with the claim headers; on nginx none was decided
// and none carried claims; both count CPU per request (Linux); nginx is
// gone afterwards.
func TestNginxRun(t *testing.T) {
	proxytest.Require(t, "nginx")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{
		"-nginx", "-connections", "2",
		"-warmup", "200ms", "-duration", "300ms", "-progress=false",
		"-json", filepath.Join(dir, "r.json"), "-chart", "",
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rep := readReport(t, filepath.Join(dir, "r.json"))
	if len(rep.Results) != 2 || rep.Target != "in-process behind nginx" {
		t.Fatalf("target %q, results %+v", rep.Target, rep.Results)
	}
	for _, r := range rep.Results {
		n := int64(r.Requests)
		c := r.Counters
		if n == 0 || r.Errors != 0 || c["upstream_hits"] != n {
			t.Errorf("%s: requests %d errors %d counters %v", r.Scenario, n, r.Errors, c)
			continue
		}
		if runtime.GOOS == "linux" && (c["nginx_cpu_ns_per_req"] <= 0 || c["go_cpu_ns_per_req"] <= 0) {
			t.Errorf("%s: no CPU per request in %v", r.Scenario, c)
		}
		switch r.Scenario {
		case "nginx":
			if c["cache_hits"]+c["cache_misses"] != 0 || c["upstream_with_claims"] != 0 {
				t.Errorf("nginx: tokengate was asked or claims reached the upstream: %v", c)
			}
		case "nginx-auth":
			if c["cache_hits"] < n*9/10 || c["cache_hits"]+c["cache_misses"] != n || c["upstream_with_claims"] != n {
				t.Errorf("nginx-auth: counters %v for %d requests: want one decision each, nearly all hits, claims on each", c, n)
			}
		default:
			t.Errorf("unexpected scenario %q", r.Scenario)
		}
	}
	m := regexp.MustCompile(`nginx \(pid (\d+),`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("stderr names no nginx pid:\n%s", errb.String())
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("nginx's process group %d is still there after the run: %v", pid, err)
	}
}
