package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil"
)

// startDevIssuer starts a development issuer with its own keys on a free
// loopback port, closed at cleanup.
func startDevIssuer(tb testing.TB, audience string) *devissuer.Issuer {
	tb.Helper()
	iss, err := devissuer.Start(devissuer.Config{
		Addr:     "127.0.0.1:0",
		Clients:  []devissuer.Client{{ID: "client-" + audience, Secret: "s"}},
		Audience: audience,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = iss.Close() })
	return iss
}

// TestSeveralIssuers runs tokengate with two development issuers (each
// with its own keys) listed in the policy file, and a third it does not
// trust: each trusted issuer's tokens pass, a route that lists one issuer
// refuses the other's valid token with 403, a token whose iss is unknown
// is 401 with no fetch anywhere, and one issuer going down leaves the
// other serving.
func TestSeveralIssuers(t *testing.T) {
	a, b, stranger := startDevIssuer(t, "api://a"), startDevIssuer(t, "api://b"), startDevIssuer(t, "api://a")
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	pol := fmt.Sprintf(`
default: deny
routes:
  - path: /a-only/**
    issuers: [a]
  - path: /by-url/**
    issuers: [%[2]s]
  - path: /**
    scopes: [items]
issuers:
  - name: a
    issuer: %[1]s
    audience: api://a
  - name: b
    issuer: %[2]s
    audience: api://b
`, a.Issuer(), b.Issuer())
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + policyPath}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	app := start(t, cfg, Options{})
	waitReady(t, app)
	c := client(app, nil)

	mint := func(iss *devissuer.Issuer) string {
		tok, err := iss.Mint(devissuer.MintOptions{Scopes: []string{"items"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	decide := func(path, token string) (int, *fasthttp.ResponseHeader) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI("http://" + app.Addr() + "/auth/forward")
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", path)
		req.Header.Set("Authorization", "Bearer "+token)
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode(), &resp.Header
	}
	tokA, tokB := mint(a), mint(b)

	for _, tc := range []struct {
		name, path, token string
		status            int
	}{
		{"issuer a's token", "/orders/1", tokA, 200},
		{"issuer b's token", "/orders/1", tokB, 200},
		{"a route listing a: a passes", "/a-only/x", tokA, 200},
		{"a route listing a: b's valid token is 403", "/a-only/x", tokB, 403},
		{"a route listing b by URL: a's token is 403", "/by-url/x", tokA, 403},
		{"a route listing b by URL: b passes", "/by-url/x", tokB, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := decide(tc.path, tc.token)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
		})
	}

	t.Run("the cache entry records the issuer", func(t *testing.T) {
		for tok, want := range map[string]string{tokA: a.Issuer(), tokB: b.Issuer()} {
			p, err := app.Cache().Validate(t.Context(), []byte(tok))
			if err != nil || p.Issuer != want {
				t.Errorf("principal %+v, %v; want issuer %s", p, err, want)
			}
		}
	})

	t.Run("unknown iss: 401 with no fetch", func(t *testing.T) {
		before := [3]uint64{a.Counts().Total(), b.Counts().Total(), stranger.Counts().Total()}
		// Same audience as a, but another issuer URL and other keys.
		status, h := decide("/orders/1", mint(stranger))
		if status != 401 || !strings.Contains(string(h.Peek("WWW-Authenticate")), "invalid_token") {
			t.Fatalf("status %d, WWW-Authenticate %q", status, h.Peek("WWW-Authenticate"))
		}
		after := [3]uint64{a.Counts().Total(), b.Counts().Total(), stranger.Counts().Total()}
		if after != before {
			t.Errorf("authorization-server requests before %v, after %v", before, after)
		}
	})

	t.Run("metrics name the issuers", func(t *testing.T) {
		_, body := get(t, c, "/metrics", "")
		for _, want := range []string{`tokengate_issuer_ready{issuer="a"} 1`, `tokengate_issuer_ready{issuer="b"} 1`,
			`tokengate_issuer_validations_total{issuer="a",result="valid"}`, `tokengate_issuer_unknown_total 1`} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("issuer a down: b keeps serving, a's known keys still verify", func(t *testing.T) {
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Restart() })
		if status, _ := decide("/orders/1", mint(b)); status != 200 {
			t.Errorf("a fresh token of b: status %d", status)
		}
		if status, _ := decide("/orders/1", mint(a)); status != 200 {
			t.Errorf("a fresh token of a, signed with a key tokengate holds: status %d", status)
		}
		if code, body := get(t, c, "/readyz", ""); code != 200 {
			t.Errorf("/readyz %d: %s", code, body)
		}
	})
}

// TestIssuersNeedCredentials: an introspecting issuer whose credential
// variables are unset stops the start with a message naming them.
func TestIssuersNeedCredentials(t *testing.T) {
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	pol := `
issuers:
  - name: partner
    issuer: http://127.0.0.1:1/oauth2/x
    mode: remote
    client_id_env: PARTNER_ID
    client_secret_env: PARTNER_SECRET
`
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + policyPath}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PARTNER_ID": "id"}
	_, err = Start(t.Context(), cfg, Options{Getenv: func(k string) string { return env[k] }})
	if err == nil || !strings.Contains(err.Error(), "PARTNER_SECRET") {
		t.Fatalf("Start: %v", err)
	}
	// A credential with white space around it (the newline of a Secret
	// made with echo) is refused as config.Load refuses OKTA_CLIENT_SECRET
	// with one, naming the variable and not quoting the value.
	for name, val := range map[string]string{"PARTNER_ID": "id\n", "PARTNER_SECRET": " s3cr3t"} {
		env := map[string]string{"PARTNER_ID": "id", "PARTNER_SECRET": "s3cr3t", name: val}
		a, err := Start(t.Context(), cfg, Options{Getenv: func(k string) string { return env[k] }})
		if err == nil {
			a.Close()
		}
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != name || !strings.Contains(err.Error(), "white space") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s=%q: Start: %v, want a *config.Error naming %s", name, val, err, name)
		}
	}
}

// TestIssuerURLsFollowOktaIssuersRule: an issuer of the policy file is
// held to OKTA_ISSUER's rule, https or http on a loopback host: over plain
// http to another host, anyone on the path could hand tokengate keys of
// their own (jwks_uri, or discovery from the issuer URL) or read its client
// secret (introspection_endpoint). Start refuses such an entry with a
// *config.Error naming POLICY_FILE, the issuer and its line, which
// cmd/server turns into exit 2; loopback http still starts.
func TestIssuerURLsFollowOktaIssuersRule(t *testing.T) {
	env := map[string]string{"P_ID": "id", "P_SECRET": "s3cr3t"}
	for _, tc := range []struct {
		name, entry, key string
	}{
		{"issuer over http", "    issuer: http://as.example.com/oauth2/x\n    mode: local\n", "issuer"},
		{"jwks uri over http", "    issuer: https://as.example.com/oauth2/x\n    jwks_uri: http://as.example.com/keys\n    mode: local\n", "jwks_uri"},
		{"introspection over http", "    issuer: https://as.example.com/oauth2/x\n    mode: remote\n    introspection_endpoint: http://10.0.0.7/introspect\n    client_id_env: P_ID\n    client_secret_env: P_SECRET\n", "introspection_endpoint"},
		{"issuer port out of range", "    issuer: https://as.example.com:99999/oauth2/x\n    mode: local\n", "issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writePolicy(t, "issuers:\n  - name: partner\n"+tc.entry)
			cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + path}, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			a, err := Start(t.Context(), cfg, Options{Getenv: func(k string) string { return env[k] }})
			if err == nil {
				a.Close()
				t.Fatal("Start succeeded")
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != "POLICY_FILE" || !strings.Contains(err.Error(), "partner (line 2)") || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "https") {
				t.Errorf("Start: %v, want a *config.Error naming POLICY_FILE, the issuer, its line, %s and the rule", err, tc.key)
			}
		})
	}
	// Plain http on loopback, as the development issuer and the interop
	// tests serve, starts.
	path := writePolicy(t, "issuers:\n  - name: local\n    issuer: http://127.0.0.1:1/oauth2/x\n    jwks_uri: http://localhost:1/keys\n    mode: local\n")
	cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + path}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	start(t, cfg, Options{})
}

// TestIssuersListIgnoresOneIssuerSettings: with the policy file's
// issuers: list, OKTA_ISSUER, OKTA_CLIENT_ID and _SECRET and the endpoint
// overrides mean nothing (each entry has its own); the start-up log says
// which of them were set, also without OKTA_ISSUER, and never their
// values.
func TestIssuersListIgnoresOneIssuerSettings(t *testing.T) {
	iss := startDevIssuer(t, "api://a")
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyPath, []byte("issuers:\n  - name: a\n    issuer: "+iss.Issuer()+"\n    audience: api://a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-ignored"
	cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + policyPath,
		"--okta-client-id=id", "--okta-client-secret=" + secret, "--jwks-uri=https://as.example.com/keys"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	start(t, cfg, Options{Logger: zap.New(core)})
	var ignored []string
	for _, e := range logs.FilterMessageSnippet("one-issuer settings are ignored").All() {
		for _, f := range e.Context {
			if f.Key == "ignored" {
				ignored = append(ignored, fmt.Sprint(f.Interface))
			}
		}
	}
	if len(ignored) != 1 || ignored[0] != "[OKTA_CLIENT_ID OKTA_CLIENT_SECRET JWKS_URI]" {
		t.Errorf("warnings name %q, want one naming [OKTA_CLIENT_ID OKTA_CLIENT_SECRET JWKS_URI]", ignored)
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e), secret) {
			t.Errorf("log entry shows the secret: %v", e)
		}
	}
}

// TestSecondLevelFollowsTheIssuersModes: with the policy file's issuers:
// list, each issuer's own mode says whether the Redis second level has
// anything to share, not VALIDATION_MODE, which the list replaces. A list
// with an introspecting issuer takes REDIS_URL under the default
// VALIDATION_MODE=local; one whose issuers are all local is refused as
// VALIDATION_MODE=local is, whatever VALIDATION_MODE says, and so is a
// policy file without issuers in local mode. Start contacts no Redis, so
// a closed port serves as REDIS_URL.
func TestSecondLevelFollowsTheIssuersModes(t *testing.T) {
	iss := startDevIssuer(t, "api://a")
	redisURL := "redis://" + testutil.ClosedAddr(t) + "/0"
	key := strings.Repeat("k", 32)
	issuers := func(mode string) string {
		return fmt.Sprintf(`
issuers:
  - name: a
    issuer: %s
    audience: api://a
    mode: %s
    client_id_env: A_ID
    client_secret_env: A_SECRET
`, iss.Issuer(), mode)
	}
	env := map[string]string{"A_ID": "client-api://a", "A_SECRET": "s"}

	for _, tc := range []struct {
		name   string
		policy string
		args   []string
		ok     bool
	}{
		{"a remote issuer under the default VALIDATION_MODE", issuers("remote"), nil, true},
		{"a hybrid issuer under the default VALIDATION_MODE", issuers("hybrid"), nil, true},
		{"only local issuers, whatever VALIDATION_MODE says", issuers("local"), []string{"--validation-mode=remote"}, false},
		{"no issuers in the file, local mode", "default: deny\n", []string{"--okta-issuer=" + iss.Issuer()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--listen=127.0.0.1:0", "--policy-file=" + writePolicy(t, tc.policy),
				"--redis-url=" + redisURL, "--redis-signing-key=" + key}, tc.args...)
			cfg, err := config.Load(args, nil, "")
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			a, err := Start(t.Context(), cfg, Options{Getenv: func(k string) string { return env[k] }})
			if tc.ok {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				defer a.Close()
				if a.SecondLevel() == nil {
					t.Error("started without the second level")
				}
				return
			}
			if err == nil {
				a.Close()
				t.Fatal("Start took REDIS_URL where no issuer introspects")
			}
			if ce, ok := errors.AsType[*config.Error](err); !ok || ce.Var != "REDIS_URL" {
				t.Errorf("Start: %v, want a *config.Error naming REDIS_URL", err)
			}
		})
	}
}

// writePolicy writes body to a policy.yaml of its own and returns its path.
func writePolicy(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
