package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/devissuer"
)

// TestIssuerCredentialsFromDotenv: the variables that the policy file's
// issuers name for their introspection credentials are read as every
// setting is, flags aside: the environment first, then .env. A remote
// issuer whose secret is only in .env starts and introspects with it; a
// secret in the environment wins over the one in .env; one in neither
// stops the start with exit 2 and one line naming the variable (see
// TestConfigErrorsExit2). The secret never reaches the log.
func TestIssuerCredentialsFromDotenv(t *testing.T) {
	const (
		clientID = "partner-client"
		secret   = "partner-s3cr3t"
	)
	iss, err := devissuer.Start(devissuer.Config{Clients: []devissuer.Client{{ID: clientID, Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	pol := fmt.Sprintf("issuers:\n  - name: partner\n    issuer: %s\n    mode: remote\n    client_id_env: PARTNER_ID\n    client_secret_env: PARTNER_SECRET\n", iss.Issuer())
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	writeDotenv := func(t *testing.T, content string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	for _, tc := range []struct {
		name   string
		env    map[string]string
		dotenv string
	}{
		{"secret only in .env", map[string]string{"PARTNER_ID": clientID}, "PARTNER_SECRET=" + secret + "\n"},
		{"both only in .env", nil, "PARTNER_ID=" + clientID + "\nPARTNER_SECRET=" + secret + "\n"},
		{"the environment wins over .env", map[string]string{"PARTNER_ID": clientID, "PARTNER_SECRET": secret}, "PARTNER_SECRET=wrong-secret\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServerWith(t, options{
				args:       []string{"--policy-file", policyPath},
				getenv:     func(k string) string { return tc.env[k] },
				dotenvPath: writeDotenv(t, tc.dotenv),
			})
			tok, err := iss.Mint(devissuer.MintOptions{ClientID: clientID})
			if err != nil {
				t.Fatal(err)
			}
			before := iss.Counts().Introspect
			// Remote mode: 200 only if the introspection call
			// authenticated with the right client id and secret (a
			// refused client is 503).
			wantStatus(t, "/items", s.get(t, "/items", tok), 200)
			if n := iss.Counts().Introspect - before; n != 1 {
				t.Errorf("%d introspections, want 1", n)
			}
			if log := s.stderr.String(); strings.Contains(log, secret) {
				t.Errorf("the log holds the client secret:\n%s", log)
			}
		})
	}

	// In neither: exit 2, one line naming the variable and .env.
	configCase{
		name:   "secret in neither",
		args:   []string{"--listen", "127.0.0.1:0", "--policy-file", policyPath},
		env:    map[string]string{"PARTNER_ID": clientID},
		dotenv: "OTHER_SECRET=" + secret + "\n",
		code:   exitConfig,
		want:   []string{"PARTNER_SECRET", "not set", "partner", ".env"},
	}.run(t)
}
