package app

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil"
)

// threeIssuers is tokengate serving three development issuers, each with
// its own keys, named in the policy file by their mode: "local",
// "hybrid" (a key set and an introspection client) and "remote".
type threeIssuers struct {
	app                   *App
	local, hybrid, remote *devissuer.Issuer
}

// startThreeIssuers starts the three issuers and tokengate over them, and
// waits until every issuer is ready (the Multi is ready with one).
func startThreeIssuers(t *testing.T) threeIssuers {
	t.Helper()
	s := threeIssuers{local: startDevIssuer(t, "api://local"), hybrid: startDevIssuer(t, "api://hybrid"), remote: startDevIssuer(t, "api://remote")}
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	pol := fmt.Sprintf(`
default: deny
routes:
  - path: /**
    scopes: [items]
issuers:
  - name: local
    issuer: %s
    audience: api://local
  - name: hybrid
    issuer: %s
    audience: api://hybrid
    mode: hybrid
    client_id_env: HYBRID_ID
    client_secret_env: HYBRID_SECRET
  - name: remote
    issuer: %s
    audience: api://remote
    mode: remote
    client_id_env: REMOTE_ID
    client_secret_env: REMOTE_SECRET
`, s.local.Issuer(), s.hybrid.Issuer(), s.remote.Issuer())
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + policyPath}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HYBRID_ID": "client-api://hybrid", "HYBRID_SECRET": "s",
		"REMOTE_ID": "client-api://remote", "REMOTE_SECRET": "s",
	}
	s.app = start(t, cfg, Options{Getenv: func(k string) string { return env[k] }})
	testutil.WaitFor(t, "every issuer ready", func() bool {
		for _, p := range s.app.issuers {
			if p.ready() != nil {
				return false
			}
		}
		return true
	})
	return s
}

// series names one sample of /metrics: a family and its labels.
type series struct {
	name   string
	labels []string // name, value pairs
}

func (s series) String() string { return fmt.Sprint(s.name, s.labels) }

// TestIssuerMetricsMoveIndependently: under several issuers each issuer's
// key-set and introspection figures are its own. A token of one issuer,
// signed with a key tokengate has not seen yet, moves that issuer's JWKS
// fetch and unknown-kid counters and, if it introspects, its
// introspection counters, and no other issuer's.
func TestIssuerMetricsMoveIndependently(t *testing.T) {
	s := startThreeIssuers(t)
	c := client(s.app, nil)
	fetches := func(iss string) series { return series{"tokengate_jwks_fetches_total", []string{"issuer", iss}} }
	unknownKID := func(iss string) series {
		return series{"tokengate_jwks_unknown_kid_refreshes_total", []string{"issuer", iss}}
	}
	requests := func(iss string) series {
		return series{"tokengate_introspection_requests_total", []string{"issuer", iss}}
	}
	active := func(iss string) series {
		return series{"tokengate_introspection_verdicts_total", []string{"issuer", iss, "verdict", "active"}}
	}
	// Every series of these families there is; a key set's for the
	// issuers with one, an introspection client's for those with one.
	watched := []series{
		fetches("local"), fetches("hybrid"), unknownKID("local"), unknownKID("hybrid"),
		requests("hybrid"), requests("remote"), active("hybrid"), active("remote"),
	}
	first := scrape(t, s.app)
	for _, absent := range []series{fetches("remote"), requests("local"), active("local")} {
		if _, ok := first.value(absent.name, absent.labels...); ok {
			t.Errorf("%s is present; that issuer has none", absent)
		}
	}

	for _, tc := range []struct {
		name   string
		issuer *devissuer.Issuer
		moved  []series // watched series that grow by exactly one; the others stay
	}{
		{"a local issuer's token", s.local, []series{fetches("local"), unknownKID("local")}},
		{"a hybrid issuer's token", s.hybrid, []series{fetches("hybrid"), unknownKID("hybrid"), requests("hybrid"), active("hybrid")}},
		{"a remote issuer's token", s.remote, []series{requests("remote"), active("remote")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := scrape(t, s.app)
			// A new signing key: tokengate fetches the issuer's JWKS
			// again for its kid (the remote issuer's tokens are only
			// introspected).
			if _, err := tc.issuer.RotateKey(); err != nil {
				t.Fatal(err)
			}
			tok, err := tc.issuer.Mint(devissuer.MintOptions{Scopes: []string{"items"}})
			if err != nil {
				t.Fatal(err)
			}
			if code, body := get(t, c, "/items", tok); code != 200 {
				t.Fatalf("GET /items = %d %s", code, body)
			}
			after := scrape(t, s.app)
			for _, w := range watched {
				b, okB := before.value(w.name, w.labels...)
				a, okA := after.value(w.name, w.labels...)
				want := b
				if slices.ContainsFunc(tc.moved, func(m series) bool { return m.String() == w.String() }) {
					want++
				}
				if !okB || !okA || a != want {
					t.Errorf("%s: %v before, %v after (present %v, %v); want %v", w, b, a, okB, okA, want)
				}
			}
		})
	}
}

// TestIssuerMetricsGolden compares the shape of a /metrics scrape under
// three issuers (local, hybrid, remote) with
// testdata/metrics-issuers.golden: the one-issuer key-set and
// introspection families, each once, with an issuer label on every
// sample and only for the issuers that have one. Regenerate as
// TestMetricsGolden says.
func TestIssuerMetricsGolden(t *testing.T) {
	s := startThreeIssuers(t)
	code, body := get(t, client(s.app, nil), "/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	parseExposition(t, body)
	checkMetricsGolden(t, body, "metrics-issuers.golden")
}
