package k6shim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// startTokengate runs a tokengate (with flags args) and its development
// issuer on loopback and returns the base URL.
func startTokengate(tb testing.TB, args ...string) string {
	tb.Helper()
	return startTokengateFor(tb, devissuer.Config{}, args...)
}

// startTokengateFor is startTokengate with an issuer configured by cfg.
func startTokengateFor(tb testing.TB, cfg devissuer.Config, args ...string) string {
	tb.Helper()
	iss, err := devissuer.Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = iss.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := stack.Start(ctx, stack.Options{Issuer: iss, Args: args})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	return srv.URL()
}

// runShim runs the shim on script with -e env pairs and returns its exit
// code and combined output. A missing node is a failure, not a skip: CI
// has it, and these tests are what prove the k6 scripts.
func runShim(tb testing.TB, script string, env ...string) (int, string) {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("node is required to test the k6 scripts: %v", err)
	}
	args := []string{"run.mjs", "--iterations", "2", "--timeout", "50s"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(args, script)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()} // nothing from the caller's k6 settings
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("node: %v\n%s", err, out)
		}
		code = ee.ExitCode()
	}
	return code, string(out)
}

// relaxed lifts the scripts' latency thresholds for CI, where the server
// runs under the race detector on a shared machine: the shim proves the
// scripts right, not the server fast (TestBrokenScriptsFail proves that a
// crossed threshold fails the run).
var relaxed = []string{"P95_MS=5000", "P99_MS=10000"}

// scripts are the k6 scripts CI runs.
var scripts = []string{"baseline.js", "items.js", "items_unique.js"}

func TestScriptsPass(t *testing.T) {
	modes := []struct {
		name string
		args []string
	}{
		{"local", nil},
		{"remote", []string{"--validation-mode=remote", "--introspection-cache-ttl=0"}},
		{"hybrid", []string{"--validation-mode=hybrid"}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			base := startTokengate(t, m.args...)
			for _, s := range scripts {
				t.Run(s, func(t *testing.T) {
					code, out := runShim(t, filepath.Join("..", "k6", s), append([]string{"BASE_URL=" + base}, relaxed...)...)
					if code != 0 || !strings.Contains(out, "k6 shim: PASS") {
						t.Fatalf("exit %d:\n%s", code, out)
					}
					if strings.Contains(out, "✗") {
						t.Errorf("passing run reports a failure:\n%s", out)
					}
				})
			}
		})
	}
}

// copyScripts copies loadtest/k6 into a temporary directory, applying
// edits (file → old → new), and fails if an edit does not apply, so that a
// broken variant is broken the way the test says.
func copyScripts(tb testing.TB, edits map[string][2]string, extra map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	src := filepath.Join("..", "k6")
	for _, rel := range []string{"baseline.js", "items.js", "items_unique.js", filepath.Join("lib", "common.js")} {
		b, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			tb.Fatal(err)
		}
		text := string(b)
		if e, ok := edits[rel]; ok {
			if !strings.Contains(text, e[0]) {
				tb.Fatalf("%s does not contain %q: the test is out of date", rel, e[0])
			}
			text = strings.ReplaceAll(text, e[0], e[1])
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for name, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// TestBrokenScriptsFail proves the shim catches what CI relies on it to
// catch: each case breaks a copy of the real scripts in one way, and the
// shim must exit non-zero and say why.
func TestBrokenScriptsFail(t *testing.T) {
	base := startTokengate(t)
	tests := []struct {
		name   string
		edits  map[string][2]string
		extra  map[string]string
		script string
		env    []string
		want   string // in the output
		code   int
	}{
		{
			name:   "control: unmodified copy passes",
			script: "items.js", env: relaxed, want: "k6 shim: PASS", code: 0,
		},
		{
			name:   "wrong path",
			edits:  map[string][2]string{"items.js": {"${BASE_URL}/items`", "${BASE_URL}/itemz`"}},
			script: "items.js", env: relaxed, want: "-> 404", code: 1,
		},
		{
			name:   "no token",
			edits:  map[string][2]string{"items.js": {"headers: { Authorization: `Bearer ${data.token}` }, ", ""}},
			script: "items.js", env: relaxed, want: "-> 401", code: 1,
		},
		{
			name:   "wrong expected status",
			edits:  map[string][2]string{"lib/common.js": {"'items: status is 200': (r) => r.status === 200", "'items: status is 200': (r) => r.status === 201"}},
			script: "items.js", env: relaxed, want: "✗ items: status is 200", code: 1,
		},
		{
			name:   "baseline expects a wrong body",
			edits:  map[string][2]string{"baseline.js": {"r.json('Hello') === 'World'", "r.json('Hello') === 'Planet'"}},
			script: "baseline.js", env: relaxed, want: `✗ hello: body is {"Hello":"World"}`, code: 1,
		},
		{
			name:   "wrong client secret fails setup",
			script: "items.js", env: []string{"CLIENT_SECRET=wrong"}, want: "setup: POST /token: 401", code: 1,
		},
		{
			name:   "crossed latency threshold",
			script: "items.js", env: []string{"P95_MS=0.000001"}, want: "✗ threshold http_req_duration{name:items}: p(95)<0.000001", code: 1,
		},
		{
			name:   "unknown k6 module",
			extra:  map[string]string{"ws.js": "import ws from 'k6/ws';\nimport { check } from 'k6';\nexport default function () { check(1, { one: (x) => x === 1 }); }\n"},
			script: "ws.js", want: `module "k6/ws" is not implemented`, code: 1,
		},
		{
			name:   "unsupported threshold",
			extra:  map[string]string{"th.js": "import { check } from 'k6';\nexport const options = { thresholds: { vus_max: ['value>0'] } };\nexport default function () { check(1, { one: (x) => x === 1 }); }\n"},
			script: "th.js", want: "not supported by the k6 shim", code: 1,
		},
		{
			name:   "no checks at all",
			extra:  map[string]string{"nocheck.js": "import http from 'k6/http';\nexport default function () { http.get(`${__ENV.BASE_URL}/`); }\n"},
			script: "nocheck.js", want: "the script made no checks", code: 1,
		},
		{
			name:   "iteration throws",
			extra:  map[string]string{"throw.js": "import http from 'k6/http';\nimport { check } from 'k6';\nexport default function () { const r = http.get(`${__ENV.BASE_URL}/`); check(r, { ok: (x) => x.status === 200 }); r.json('a.b.c').length; }\n"},
			script: "throw.js", want: "iteration 0:", code: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := copyScripts(t, tc.edits, tc.extra)
			code, out := runShim(t, filepath.Join(dir, tc.script), append([]string{"BASE_URL=" + base}, tc.env...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), output lacks %q or differs:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}

// TestSpecialCredentials checks that the scripts form-encode the client
// credentials before base64 (RFC 6749 2.3.1), as loadtest/client.go does:
// an id with ':' and a secret with '%' and a space must still get a token.
func TestSpecialCredentials(t *testing.T) {
	const id, secret = "load:test%client", "s3cret:50% off+on"
	base := startTokengateFor(t, devissuer.Config{Clients: []devissuer.Client{
		{ID: devissuer.DefaultClientID, Secret: devissuer.DefaultClientSecret},
		{ID: id, Secret: secret},
	}})
	code, out := runShim(t, filepath.Join("..", "k6", "items.js"),
		append([]string{"BASE_URL=" + base, "CLIENT_ID=" + id, "CLIENT_SECRET=" + secret}, relaxed...)...)
	if code != 0 || !strings.Contains(out, "k6 shim: PASS") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	code, out := runShim(t, "")
	if code != 2 || !strings.Contains(out, "usage:") {
		t.Errorf("no script: exit %d\n%s", code, out)
	}
}
