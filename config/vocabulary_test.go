package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/auth"
)

// config may import only the standard library, so it keeps copies of
// vocabulary that auth defines. These tests fail when a copy drifts.

func TestAlgorithmsAreAuths(t *testing.T) {
	if got, want := strings.Split(defaultAlgorithms, ","), auth.DefaultAlgorithms(); !slices.Equal(got, want) {
		t.Fatalf("config's algorithm list %v, auth.DefaultAlgorithms %v", got, want)
	}
	// Every algorithm auth verifies is accepted on its own.
	for _, alg := range auth.DefaultAlgorithms() {
		c, err := Load([]string{"--okta-issuer", testIssuer, "--allowed-algorithms", alg}, nil, "")
		if err != nil || !slices.Equal(c.AllowedAlgorithms, []string{alg}) {
			t.Errorf("ALLOWED_ALGORITHMS=%s: %v, %v", alg, c.AllowedAlgorithms, err)
		}
	}
}

func TestAuthMethodsAreAuths(t *testing.T) {
	if AuthClientSecretBasic != auth.AuthMethodClientSecretBasic || AuthClientSecretPost != auth.AuthMethodClientSecretPost {
		t.Fatalf("config's %q, %q; auth's %q, %q", AuthClientSecretBasic, AuthClientSecretPost,
			auth.AuthMethodClientSecretBasic, auth.AuthMethodClientSecretPost)
	}
}

func TestScopeTokenIsAuths(t *testing.T) {
	for b := 0; b < 256; b++ {
		for _, s := range []string{string([]byte{byte(b)}), "a" + string([]byte{byte(b)}) + "z"} {
			if got, want := validScopeToken(s), auth.ValidScopeToken(s); got != want {
				t.Errorf("%q: config says %v, auth %v", s, got, want)
			}
		}
	}
	if validScopeToken("") != auth.ValidScopeToken("") {
		t.Error(`"": config and auth disagree`)
	}
}
