package devissuer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/tokengate/internal/testutil"
)

// mintCase mints a token and checks it.
type mintCase struct {
	name  string
	opts  MintOptions
	check func(t *testing.T, tok string)
	iss   *Issuer
}

func (tc mintCase) run(t *testing.T) {
	tok, err := tc.iss.Mint(tc.opts)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	tc.check(t, tok)
}

// verifiesWith checks tok's signature with key, for algorithms and keys
// the issuer does not publish.
func verifiesWith(t *testing.T, tok string, alg jose.SignatureAlgorithm, key any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if _, err := jws.Verify(key); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestMint(t *testing.T) {
	clk := testutil.NewClock(t0)
	iss := start(t, Config{Now: clk.Now, Clients: []Client{
		{ID: "dev-client", Secret: "dev-secret"},
		{ID: "admin", Secret: "a", DefaultScopes: []string{"items", "admin"}},
	}})
	c := newClient()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	hmacKey := []byte(strings.Repeat("k", 64)) // go-jose wants at least the hash size
	claimsOf := func(t *testing.T, tok string) map[string]any { return rawClaims(t, tok) }

	tests := []mintCase{
		{name: "defaults match /v1/token", check: func(t *testing.T, tok string) {
			h, claims := verifyWithJWKS(t, c, iss, tok)
			if h.KeyID != iss.SigningKID() || claims["cid"] != "dev-client" || claims["sub"] != "dev-client" ||
				claims["aud"] != "api://default" || claims["iss"] != iss.Issuer() || claims["ver"] != 1.0 ||
				claims["iat"] != float64(t0.Unix()) || claims["exp"] != float64(t0.Unix()+3600) || mustJSON(claims["scp"]) != `["items"]` {
				t.Errorf("claims %v", claims)
			}
		}},
		{name: "client default scopes", opts: MintOptions{ClientID: "admin"}, check: func(t *testing.T, tok string) {
			if got := mustJSON(claimsOf(t, tok)["scp"]); got != `["items","admin"]` {
				t.Errorf("scp %s", got)
			}
		}},
		{name: "subject audience scopes", opts: MintOptions{ClientID: "svc", Subject: "user@example.com", Audience: "api://x", Scopes: []string{"a", "b"}}, check: func(t *testing.T, tok string) {
			cl := claimsOf(t, tok)
			if cl["cid"] != "svc" || cl["sub"] != "user@example.com" || cl["aud"] != "api://x" || mustJSON(cl["scp"]) != `["a","b"]` {
				t.Errorf("claims %v", cl)
			}
		}},
		{name: "empty scopes", opts: MintOptions{Scopes: []string{}}, check: func(t *testing.T, tok string) {
			if got := mustJSON(claimsOf(t, tok)["scp"]); got != `[]` {
				t.Errorf("scp %s", got)
			}
		}},
		{name: "issued at and lifetime", opts: MintOptions{IssuedAt: t0.Add(-time.Hour), Lifetime: 10 * time.Minute}, check: func(t *testing.T, tok string) {
			cl := claimsOf(t, tok)
			if cl["iat"] != float64(t0.Unix()-3600) || cl["exp"] != float64(t0.Unix()-3000) {
				t.Errorf("iat %v exp %v", cl["iat"], cl["exp"])
			}
		}},
		{name: "claims override add remove", opts: MintOptions{Claims: map[string]any{"iss": "https://evil", "uid": "00u1", "exp": nil, "scp": "items admin"}}, check: func(t *testing.T, tok string) {
			_, cl := verifyWithJWKS(t, c, iss, tok)
			if cl["iss"] != "https://evil" || cl["uid"] != "00u1" || cl["scp"] != "items admin" {
				t.Errorf("claims %v", cl)
			}
			if _, ok := cl["exp"]; ok {
				t.Error("exp not removed")
			}
		}},
		{name: "claim order like Okta", check: func(t *testing.T, tok string) {
			payload := string(mustB64(t, strings.Split(tok, ".")[1]))
			order := []string{`"ver"`, `"jti"`, `"iss"`, `"aud"`, `"iat"`, `"exp"`, `"cid"`, `"scp"`, `"sub"`}
			last := -1
			for _, k := range order {
				n := strings.Index(payload, k)
				if n <= last {
					t.Fatalf("claim %s out of order in %s", k, payload)
				}
				last = n
			}
		}},
		{name: "header typ jku crit and no kid", opts: MintOptions{Header: map[string]any{"typ": "at+jwt", "jku": "https://evil/keys", "crit": []string{"exp"}, "kid": nil}}, check: func(t *testing.T, tok string) {
			h := rawHeader(t, tok)
			if h["typ"] != "at+jwt" || h["jku"] != "https://evil/keys" || mustJSON(h["crit"]) != `["exp"]` || h["alg"] != "RS256" {
				t.Errorf("header %v", h)
			}
			if _, ok := h["kid"]; ok {
				t.Error("kid not removed")
			}
		}},
		{name: "alg header lies", opts: MintOptions{Header: map[string]any{"alg": "none"}}, check: func(t *testing.T, tok string) {
			if h := rawHeader(t, tok); h["alg"] != "none" {
				t.Errorf("header %v", h)
			}
			if strings.HasSuffix(tok, ".") {
				t.Error("signature missing: the header lies, the signature must not")
			}
		}},
		{name: "alg none", opts: MintOptions{Algorithm: "none"}, check: func(t *testing.T, tok string) {
			if h := rawHeader(t, tok); h["alg"] != "none" || !strings.HasSuffix(tok, ".") || strings.Count(tok, ".") != 2 {
				t.Errorf("token %q header %v", tok, h)
			}
		}},
		{name: "HS256", opts: MintOptions{Algorithm: "HS256", HMACKey: hmacKey}, check: func(t *testing.T, tok string) {
			verifiesWith(t, tok, jose.HS256, hmacKey)
		}},
		{name: "HS512", opts: MintOptions{Algorithm: "HS512", HMACKey: hmacKey}, check: func(t *testing.T, tok string) {
			verifiesWith(t, tok, jose.HS512, hmacKey)
		}},
		{name: "PS256 with the issuer key", opts: MintOptions{Algorithm: "PS256"}, check: func(t *testing.T, tok string) {
			pub, _ := iss.PublicKey(iss.SigningKID())
			verifiesWith(t, tok, jose.PS256, pub)
		}},
		{name: "RS512 with the issuer key", opts: MintOptions{Algorithm: "RS512"}, check: func(t *testing.T, tok string) {
			pub, _ := iss.PublicKey(iss.SigningKID())
			verifiesWith(t, tok, jose.RS512, pub)
		}},
		{name: "foreign RSA key", opts: MintOptions{Key: rsaKey}, check: func(t *testing.T, tok string) {
			verifiesWith(t, tok, jose.RS256, &rsaKey.PublicKey)
			if rawHeader(t, tok)["kid"] == iss.SigningKID() {
				t.Error("foreign key with the issuer's kid")
			}
		}},
		{name: "foreign P-384 key", opts: MintOptions{Key: ecKey}, check: func(t *testing.T, tok string) {
			verifiesWith(t, tok, jose.ES384, &ecKey.PublicKey)
		}},
		{name: "foreign Ed25519 key embedded", opts: MintOptions{Key: edKey, EmbedJWK: true}, check: func(t *testing.T, tok string) {
			verifiesWith(t, tok, jose.EdDSA, edKey.Public())
			jwk, _ := rawHeader(t, tok)["jwk"].(map[string]any)
			if jwk["kty"] != "OKP" || jwk["d"] != nil {
				t.Errorf("jwk header %v", jwk)
			}
		}},
	}
	for _, tc := range tests {
		tc.iss = iss
		t.Run(tc.name, tc.run)
	}

	t.Run("errors", func(t *testing.T) {
		errs := []struct {
			name string
			opts MintOptions
		}{
			{"unknown kid", MintOptions{KID: "nope"}},
			{"ES256 with an RSA key", MintOptions{Algorithm: "ES256"}},
			{"EdDSA with an RSA key", MintOptions{Algorithm: "EdDSA"}},
			{"ES256 with a P-384 key", MintOptions{Key: ecKey, Algorithm: "ES256"}},
			{"HS256 without key", MintOptions{Algorithm: "HS256"}},
			{"unknown algorithm", MintOptions{Algorithm: "XX256"}},
			{"unencodable claim", MintOptions{Claims: map[string]any{"c": make(chan int)}}},
			{"unencodable header", MintOptions{Header: map[string]any{"c": make(chan int)}}},
		}
		for _, tc := range errs {
			t.Run(tc.name, func(t *testing.T) {
				if tok, err := iss.Mint(tc.opts); err == nil || !strings.HasPrefix(err.Error(), "devissuer: ") {
					t.Errorf("Mint = %q, %v; want a devissuer error", tok, err)
				}
			})
		}
	})

	if got := iss.Counts(); got.Token != 0 || got.Introspect != 0 {
		t.Errorf("Mint touched the counters: %+v", iss.Counts())
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMintN(t *testing.T) {
	iss := start(t, Config{Algorithm: "ES256"})
	toks, err := iss.MintN(200, MintOptions{Scopes: []string{"items"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for n, tok := range toks {
		if tok == "" {
			t.Fatalf("token %d empty", n)
		}
		jti := rawClaims(t, tok)["jti"].(string)
		if seen[jti] {
			t.Fatalf("duplicate jti %s", jti)
		}
		seen[jti] = true
		if v := iss.verify([]byte(tok)); v == nil {
			t.Fatalf("token %d does not verify", n)
		}
	}
	if toks, err := iss.MintN(0, MintOptions{}); err != nil || len(toks) != 0 {
		t.Errorf("MintN(0) = %v, %v", toks, err)
	}
	if _, err := iss.MintN(-1, MintOptions{}); err == nil {
		t.Error("MintN(-1) succeeded")
	}
	if _, err := iss.MintN(10, MintOptions{KID: "nope"}); err == nil {
		t.Error("MintN with a bad option succeeded")
	}
}
