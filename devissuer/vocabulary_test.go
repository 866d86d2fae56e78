package devissuer

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
)

// devissuer may not import auth (DESIGN.md, "The rooms"), so it keeps
// copies of vocabulary that auth defines. These tests fail when a copy
// drifts.

// TestAlgorithmsAreAuths: the issuer makes keys for exactly auth's default
// algorithms, and auth's local validator accepts a token signed with each.
func TestAlgorithmsAreAuths(t *testing.T) {
	if got, want := KeyAlgorithms(), auth.DefaultAlgorithms(); !slices.Equal(got, want) {
		t.Fatalf("KeyAlgorithms %v, auth.DefaultAlgorithms %v", got, want)
	}
	iss := start(t, Config{})
	disc, err := auth.NewDiscovery(auth.DiscoveryConfig{Issuer: iss.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	defer disc.Close()
	keys, err := auth.NewKeySet(auth.KeySetConfig{Discovery: disc})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	local, err := auth.NewLocal(auth.LocalConfig{Issuer: iss.Issuer(), Audience: iss.Audience(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, alg := range auth.DefaultAlgorithms() {
		kid, err := iss.AddKey(alg)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if err := keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		tok, err := iss.Mint(MintOptions{KID: kid})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if got := rawHeader(t, tok)["alg"]; got != alg {
			t.Errorf("%s: token alg %v", alg, got)
		}
		if _, err := local.Validate(ctx, []byte(tok)); err != nil {
			t.Errorf("%s: auth refuses the issuer's token: %v", alg, err)
		}
	}
}

func TestAuthMethodsAreAuths(t *testing.T) {
	if authMethodBasic != auth.AuthMethodClientSecretBasic || authMethodPost != auth.AuthMethodClientSecretPost {
		t.Fatalf("devissuer's %q, %q; auth's %q, %q", authMethodBasic, authMethodPost,
			auth.AuthMethodClientSecretBasic, auth.AuthMethodClientSecretPost)
	}
}

func TestScopeTokenIsAuths(t *testing.T) {
	for b := 0; b < 256; b++ {
		for _, s := range []string{string([]byte{byte(b)}), "a" + string([]byte{byte(b)}) + "z"} {
			if got, want := validScopeToken(s), auth.ValidScopeToken(s); got != want {
				t.Errorf("%q: devissuer says %v, auth %v", s, got, want)
			}
		}
	}
	if validScopeToken("") != auth.ValidScopeToken("") {
		t.Error(`"": devissuer and auth disagree`)
	}
}

// checkBasicIsAuths fails when parseBasic reads h otherwise than
// auth.ParseBasicAuthorization: Basic or not, malformed or not, and the
// first candidate.
func checkBasicIsAuths(tb testing.TB, h []byte) {
	tb.Helper()
	creds, isBasic := parseBasic(h)
	id, secret, err := auth.ParseBasicAuthorization(h)
	switch {
	case isBasic != !errors.Is(err, auth.ErrNotBasic):
		tb.Fatalf("%q: devissuer Basic %v, auth %v", h, isBasic, err)
	case (len(creds) == 0) != (err != nil):
		tb.Fatalf("%q: devissuer %d candidates, auth %v", h, len(creds), err)
	case err == nil && creds[0] != (credentials{id, secret}):
		tb.Fatalf("%q: devissuer reads %+v first, auth %q/%q", h, creds[0], id, secret)
	}
}

func TestParseBasicIsAuths(t *testing.T) {
	b64 := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, h := range []string{
		"", "Basic", "Basic ", "Basic =", "Basicx abc", "Bearer abc", "Basic !!!",
		basic("dev-client", "dev-secret"), basic("odd client:ü", "s:e%c+r t"),
		" \tbASIC \t " + b64("a:b")[len("Basic "):] + " \t",
		"Basic\t" + b64("a:b")[len("Basic "):],
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte("a:bc")),
		b64("a%zz:50%"), b64("a+b:50%"), b64("plain:x+y%41:z"), b64("a:"), b64(":s"), b64("nocolon"),
	} {
		checkBasicIsAuths(t, []byte(h))
	}
}
