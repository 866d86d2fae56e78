package algfix_test

import (
	"slices"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/tokengate/internal/testutil/algfix"
)

func TestAlgs(t *testing.T) {
	names := func(algs []algfix.Alg) []string {
		var out []string
		for _, a := range algs {
			out = append(out, a.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"all", nil, []string{"RS256-2048", "RS256-3072", "RS256-4096", "ES256", "EdDSA"}},
		{"picked, in the caller's order", []string{"EdDSA", "RS256-2048"}, []string{"EdDSA", "RS256-2048"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(algfix.Algs(tc.in...)); !slices.Equal(got, tc.want) {
				t.Fatalf("Algs(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("unknown name panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("Algs(\"HS256\") did not panic")
			}
		}()
		algfix.Algs("HS256")
	})
}

// TestSetGet: a fixture's tokens verify with its public key, and a second
// Get returns the same issuer.
func TestSetGet(t *testing.T) {
	set := algfix.NewSet(t, 3)
	for _, a := range algfix.Algs("RS256-2048", "ES256", "EdDSA") {
		t.Run(a.Name, func(t *testing.T) {
			fx := set.Get(t, a)
			if len(fx.Tokens) != 3 || fx.Tokens[0] == fx.Tokens[1] {
				t.Fatalf("got %d tokens (first two equal: %v), want 3 distinct", len(fx.Tokens), fx.Tokens[0] == fx.Tokens[1])
			}
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a.JWS)}
			iss, aud := fx.Issuer.Issuer(), fx.Issuer.Audience()
			if err := algfix.VerifyWithJose(fx.Tokens[0], algs, fx.Public, iss, aud); err != nil {
				t.Fatalf("the token does not verify with the fixture's key: %v", err)
			}
			if err := algfix.VerifyWithJose(fx.Tokens[0], algs, fx.Public, "https://elsewhere.example", aud); err == nil {
				t.Fatal("VerifyWithJose accepted the wrong issuer")
			}
			tampered := fx.Tokens[0][:len(fx.Tokens[0])-4] + "AAAA"
			if err := algfix.VerifyWithJose(tampered, algs, fx.Public, iss, aud); err == nil {
				t.Fatal("VerifyWithJose accepted a tampered signature")
			}
			if again := set.Get(t, a); again != fx {
				t.Fatal("a second Get started another issuer")
			}
		})
	}
}
