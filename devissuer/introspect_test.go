package devissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

// introspectCase is one token and the introspection answer it must get.
type introspectCase struct {
	name   string
	token  func(t *testing.T) string // made just before asking
	active bool
	env    *introspectEnv
}

// introspectEnv is the issuer shared by the introspection cases.
type introspectEnv struct {
	iss   *Issuer
	clk   *testutil.Clock
	other *Issuer // a second issuer: its tokens are foreign
}

func (tc introspectCase) run(t *testing.T) {
	c := newClient()
	tok := tc.token(t)
	got := introspect(t, c, tc.env.iss, tok)
	if got["active"] != tc.active {
		t.Fatalf("active = %v, want %v (%v)", got["active"], tc.active, got)
	}
	if !tc.active && len(got) != 1 {
		t.Errorf("inactive answer carries more than active: %v", got)
	}
}

func TestIntrospect(t *testing.T) {
	clk := testutil.NewClock(t0)
	env := &introspectEnv{
		iss:   start(t, Config{Now: clk.Now, Algorithm: "ES256", Clients: []Client{{ID: "dev-client", Secret: "dev-secret"}, {ID: "other", Secret: "o"}}}),
		clk:   clk,
		other: start(t, Config{Algorithm: "ES256"}),
	}
	iss := env.iss
	c := newClient()
	mint := func(o MintOptions) func(t *testing.T) string {
		return func(t *testing.T) string {
			tok, err := iss.Mint(o)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := iss.PublicKey(iss.SigningKID())
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)

	tests := []introspectCase{
		{name: "fresh token", token: func(t *testing.T) string { return getToken(t, c, iss, "dev-client", "dev-secret", "") }, active: true},
		{name: "minted default", token: mint(MintOptions{}), active: true},
		{name: "no exp", token: mint(MintOptions{Claims: map[string]any{"exp": nil}}), active: true},
		{name: "foreign aud still active", token: mint(MintOptions{Audience: "https://elsewhere"}), active: true},
		{name: "expired", token: mint(MintOptions{Lifetime: -time.Second}), active: false},
		{name: "exp equals now", token: mint(MintOptions{Claims: map[string]any{"exp": t0.Unix()}}), active: false},
		{name: "nbf in future", token: mint(MintOptions{Claims: map[string]any{"nbf": t0.Unix() + 60}}), active: false},
		{name: "nbf now", token: mint(MintOptions{Claims: map[string]any{"nbf": t0.Unix()}}), active: true},
		{name: "malformed", token: func(*testing.T) string { return "not.a.jwt" }, active: false},
		{name: "garbage", token: func(*testing.T) string { return "%%%" }, active: false},
		{name: "alg none", token: mint(MintOptions{Algorithm: "none"}), active: false},
		{name: "HS256 with the public key", token: mint(MintOptions{Algorithm: "HS256", HMACKey: pubDER}), active: false},
		{name: "header alg differs from key", token: mint(MintOptions{Header: map[string]any{"alg": "ES384"}}), active: false},
		{name: "attacker key with own kid", token: mint(MintOptions{Key: attacker}), active: false},
		{name: "attacker key with our kid", token: mint(MintOptions{Key: attacker, Header: map[string]any{"kid": iss.SigningKID()}}), active: false},
		{name: "attacker key embedded as jwk", token: mint(MintOptions{Key: attacker, EmbedJWK: true, Header: map[string]any{"kid": nil}}), active: false},
		{name: "no kid with one published key", token: mint(MintOptions{Header: map[string]any{"kid": nil}}), active: true},
		{name: "unknown crit", token: mint(MintOptions{Header: map[string]any{"crit": []string{"exp"}}}), active: false},
		{name: "scp of wrong type", token: mint(MintOptions{Claims: map[string]any{"scp": 7}}), active: false},
		{name: "another issuer's token", token: func(t *testing.T) string {
			tok, err := env.other.Mint(MintOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, active: false},
		{name: "oversized", token: mint(MintOptions{Claims: map[string]any{"pad": strings.Repeat("x", maxTokenSize)}}), active: false},
	}
	for _, tc := range tests {
		tc.env = env
		t.Run(tc.name, tc.run)
	}

	t.Run("answer fields", func(t *testing.T) {
		tok := getToken(t, c, iss, "dev-client", "dev-secret", "items")
		got := introspect(t, c, iss, tok)
		claims := rawClaims(t, tok)
		want := map[string]any{
			"active": true, "scope": "items", "client_id": "dev-client", "username": "dev-client",
			"token_type": "Bearer", "exp": float64(t0.Unix() + 3600), "iat": float64(t0.Unix()),
			"sub": "dev-client", "aud": "api://default", "iss": iss.Issuer(), "jti": claims["jti"],
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("answer %v has extra members", got)
		}
	})

	t.Run("expires with the clock", func(t *testing.T) {
		tok := mint(MintOptions{Lifetime: time.Minute})(t)
		if got := introspect(t, c, iss, tok); got["active"] != true {
			t.Fatalf("before exp: %v", got)
		}
		clk.Advance(time.Minute)
		defer clk.Advance(-time.Minute)
		if got := introspect(t, c, iss, tok); got["active"] != false {
			t.Errorf("at exp: %v", got)
		}
	})

	t.Run("request errors", func(t *testing.T) {
		tok := mint(MintOptions{})(t)
		tests := []struct {
			name   string
			req    request
			status int
			err    string
		}{
			{"no client auth", request{method: "POST", form: url.Values{"token": {tok}}}, 401, "invalid_client"},
			{"wrong secret", request{method: "POST", form: url.Values{"token": {tok}},
				header: map[string]string{"Authorization": basic("dev-client", "x")}}, 401, "invalid_client"},
			{"no token", request{method: "POST", form: url.Values{"client_id": {"dev-client"}, "client_secret": {"dev-secret"}}}, 400, "invalid_request"},
			{"GET", request{method: "GET", header: map[string]string{"Authorization": basic("dev-client", "dev-secret")}}, 405, "invalid_request"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.req.url = iss.IntrospectionURL()
				rep := mustDo(t, c, tc.req)
				if rep.status != tc.status || rep.json(t)["error"] != tc.err {
					t.Errorf("status %d body %s, want %d %s", rep.status, rep.body, tc.status, tc.err)
				}
			})
		}
	})

	t.Run("client_secret_post", func(t *testing.T) {
		tok := mint(MintOptions{})(t)
		rep := mustDo(t, c, request{method: "POST", url: iss.IntrospectionURL(),
			form: url.Values{"token": {tok}, "token_type_hint": {"access_token"}, "client_id": {"other"}, "client_secret": {"o"}}})
		if rep.status != 200 || rep.json(t)["active"] != true || rep.header["Cache-Control"] != "no-store" {
			t.Errorf("status %d %s %q", rep.status, rep.body, rep.header["Cache-Control"])
		}
	})
}

func TestRevoke(t *testing.T) {
	clk := testutil.NewClock(t0)
	iss := start(t, Config{Now: clk.Now, Algorithm: "EdDSA", Clients: []Client{{ID: "dev-client", Secret: "dev-secret"}, {ID: "other", Secret: "o"}}})
	c := newClient()
	revoke := func(t *testing.T, token string, header map[string]string) reply {
		t.Helper()
		return mustDo(t, c, request{method: "POST", url: iss.RevocationURL(), form: url.Values{"token": {token}}, header: header})
	}
	devAuth := map[string]string{"Authorization": basic("dev-client", "dev-secret")}

	t.Run("over HTTP", func(t *testing.T) {
		tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
		if rep := revoke(t, tok, devAuth); rep.status != 200 || rep.header["Cache-Control"] != "no-store" {
			t.Fatalf("revoke: %d %s", rep.status, rep.body)
		}
		if got := introspect(t, c, iss, tok); got["active"] != false {
			t.Errorf("after revoke: %v", got)
		}
		if rep := revoke(t, tok, devAuth); rep.status != 200 {
			t.Errorf("second revoke: %d", rep.status)
		}
	})
	t.Run("from Go", func(t *testing.T) {
		tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
		iss.Revoke(tok)
		if got := introspect(t, c, iss, tok); got["active"] != false {
			t.Errorf("after Revoke: %v", got)
		}
		other := getToken(t, c, iss, "dev-client", "dev-secret", "")
		if got := introspect(t, c, iss, other); got["active"] != true {
			t.Errorf("another token became inactive: %v", got)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		if rep := revoke(t, "not-a-token", devAuth); rep.status != 200 {
			t.Errorf("status %d", rep.status)
		}
	})
	t.Run("without client auth", func(t *testing.T) {
		tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
		rep := revoke(t, tok, nil)
		if rep.status != 401 || rep.json(t)["error"] != "invalid_client" {
			t.Errorf("status %d %s", rep.status, rep.body)
		}
		if got := introspect(t, c, iss, tok); got["active"] != true {
			t.Errorf("refused revocation still revoked: %v", got)
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
		rep := revoke(t, tok, map[string]string{"Authorization": basic("other", "o")})
		if rep.status != 400 || rep.json(t)["error"] != "unauthorized_client" {
			t.Errorf("status %d %s", rep.status, rep.body)
		}
		if got := introspect(t, c, iss, tok); got["active"] != true {
			t.Errorf("refused revocation still revoked: %v", got)
		}
	})
	t.Run("no token parameter", func(t *testing.T) {
		rep := mustDo(t, c, request{method: "POST", url: iss.RevocationURL(), form: url.Values{}, header: devAuth})
		if rep.status != 400 {
			t.Errorf("status %d", rep.status)
		}
	})
	t.Run("expired revocations are forgotten", func(t *testing.T) {
		var toks []string
		for range 1100 {
			tok, err := iss.Mint(MintOptions{Lifetime: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
			iss.Revoke(tok)
		}
		clk.Advance(2 * time.Minute)
		iss.Revoke(getToken(t, c, iss, "dev-client", "dev-secret", ""))
		iss.revoked.mu.RLock()
		n := len(iss.revoked.m)
		iss.revoked.mu.RUnlock()
		if n > 100 {
			t.Errorf("%d revocations kept after their tokens expired", n)
		}
	})
	if got := iss.Counts().Revoke; got != 6 {
		t.Errorf("Counts().Revoke = %d, want 6", got)
	}
}

func TestKeyRotation(t *testing.T) {
	iss := start(t, Config{})
	c := newClient()
	oldKID := iss.SigningKID()
	oldTok := getToken(t, c, iss, "dev-client", "dev-secret", "")

	newKID, err := iss.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID || iss.SigningKID() != newKID {
		t.Fatalf("RotateKey = %q, SigningKID = %q, old %q", newKID, iss.SigningKID(), oldKID)
	}
	set, _ := fetchJWKS(t, c, iss)
	if len(set.Keys) != 2 || len(set.Key(oldKID)) != 1 || len(set.Key(newKID)) != 1 {
		t.Fatalf("JWKS after rotation: %d keys", len(set.Keys))
	}
	newTok := getToken(t, c, iss, "dev-client", "dev-secret", "")
	if h, _ := verifyWithJWKS(t, c, iss, newTok); h.KeyID != newKID {
		t.Errorf("new token kid %q, want %q", h.KeyID, newKID)
	}
	if h, _ := verifyWithJWKS(t, c, iss, oldTok); h.KeyID != oldKID {
		t.Errorf("old token kid %q", h.KeyID)
	}
	for _, tok := range []string{oldTok, newTok} {
		if got := introspect(t, c, iss, tok); got["active"] != true {
			t.Errorf("introspection after rotation: %v", got)
		}
	}

	if !iss.RemoveKey(oldKID) {
		t.Fatal("RemoveKey(old) = false")
	}
	if iss.RemoveKey(oldKID) || iss.RemoveKey("nope") {
		t.Error("RemoveKey of an unpublished kid = true")
	}
	set, _ = fetchJWKS(t, c, iss)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != newKID {
		t.Fatalf("JWKS after removal: %v", iss.PublishedKIDs())
	}
	if got := introspect(t, c, iss, oldTok); got["active"] != false {
		t.Errorf("token of removed key: %v", got)
	}
	if got := introspect(t, c, iss, newTok); got["active"] != true {
		t.Errorf("token of remaining key: %v", got)
	}
	// Mint can still sign with the removed key.
	tok, err := iss.Mint(MintOptions{KID: oldKID})
	if err != nil {
		t.Fatal(err)
	}
	if rawHeader(t, tok)["kid"] != oldKID {
		t.Error("Mint with a removed kid")
	}

	t.Run("removing the signing key", func(t *testing.T) {
		third, err := iss.AddKey("ES256")
		if err != nil {
			t.Fatal(err)
		}
		iss.RemoveKey(third)
		if iss.SigningKID() != newKID {
			t.Errorf("SigningKID = %q, want the newest remaining %q", iss.SigningKID(), newKID)
		}
		iss.RemoveKey(newKID)
		if set, _ := fetchJWKS(t, c, iss); len(set.Keys) != 0 {
			t.Errorf("JWKS has %d keys, want 0", len(set.Keys))
		}
		if got := introspect(t, c, iss, getToken(t, c, iss, "dev-client", "dev-secret", "")); got["active"] != false {
			t.Errorf("token signed with an unpublished key: %v", got)
		}
	})
	if _, err := iss.AddKey("HS256"); err == nil {
		t.Error("AddKey(HS256) succeeded")
	}
}
