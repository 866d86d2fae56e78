package auth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokengate/tokengate/internal/testutil"
)

const testAudience = "api://default"

// localFixture is a fake issuer publishing the RSA, EC and Ed25519 test
// keys, a loaded KeySet on it, and a Local validator at t0.
type localFixture struct {
	keys   *testKeys
	iss    *fakeIssuer
	clock  *testutil.Clock
	keySet *KeySet
	local  *Local
}

func newLocalFixture(tb testing.TB, mod func(*LocalConfig)) *localFixture {
	tb.Helper()
	return newLocalFixtureWith(tb, nil, mod)
}

// newLocalFixtureWith is newLocalFixture with the KeySetConfig editable too.
func newLocalFixtureWith(tb testing.TB, ksMod func(*KeySetConfig), mod func(*LocalConfig)) *localFixture {
	tb.Helper()
	k := sharedTestKeys()
	f := &localFixture{keys: k, iss: newFakeIssuer(tb, k.rsa, k.ec, k.ed), clock: testutil.NewClock(t0)}
	f.keySet = newTestKeySet(tb, f.iss.issuer, f.clock, ksMod)
	if err := f.keySet.Refresh(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	cfg := LocalConfig{
		Issuer:         f.iss.issuer,
		Audience:       testAudience,
		Keys:           f.keySet,
		AllowedClients: []string{"client-a", "client-b"},
		Now:            f.clock.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	l, err := NewLocal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	f.local = l
	return f
}

func newTestKeySet(tb testing.TB, issuer string, clock *testutil.Clock, mod func(*KeySetConfig)) *KeySet {
	tb.Helper()
	d := newTestDiscovery(tb, DiscoveryConfig{Issuer: issuer, Now: clock.Now})
	cfg := KeySetConfig{Discovery: d, Now: clock.Now, After: clock.After, Rand: func() float64 { return 0 }}
	if mod != nil {
		mod(&cfg)
	}
	ks, err := NewKeySet(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ks.Close)
	return ks
}

// claims returns Okta-shaped access-token claims for the fixture's issuer
// at t0, with edits applied: a nil value deletes the claim.
func (f *localFixture) claims(edits map[string]any) map[string]any {
	c := map[string]any{
		"ver": 1,
		"jti": "AT.test-jti",
		"iss": f.iss.issuer,
		"aud": testAudience,
		"iat": t0.Add(-time.Minute).Unix(),
		"exp": t0.Add(time.Hour).Unix(),
		"cid": "client-a",
		"sub": "client-a",
		"scp": []string{"items"},
	}
	for name, v := range edits {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	return c
}

// sign returns a compact JWS of payload made with key, its kid in the
// header unless noKID, plus any extra headers.
func sign(tb testing.TB, key signingKey, payload []byte, opts *jose.SignerOptions, noKID bool) string {
	tb.Helper()
	if opts == nil {
		opts = &jose.SignerOptions{}
	}
	if !noKID && !opts.EmbedJWK {
		opts = opts.WithHeader("kid", key.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: key.priv}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// mint signs the fixture's claims with edits applied.
func (f *localFixture) mint(tb testing.TB, key signingKey, edits map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(f.claims(edits))
	if err != nil {
		tb.Fatal(err)
	}
	return sign(tb, key, b, nil, false)
}

// unsignedToken builds header.payload.signature from JSON header and
// claims, with sig taken as is (already base64url).
func unsignedToken(header string, claims map[string]any, sig string) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(b) + "." + sig
}

// validateCase is one row of TestLocalValidate.
type validateCase struct {
	name string
	f    *localFixture

	// Exactly one of header and token is set: header goes through
	// ParseBearer first, as the middleware does.
	header string
	token  func(t *testing.T) string

	wantErr     error  // nil, ErrNoToken, ErrInvalidToken or ErrUnavailable
	wantReason  Reason // the TokenError's Reason when wantErr is ErrInvalidToken
	wantFetches int64  // JWKS requests the case may cause
	check       func(t *testing.T, p *Principal)
}

func (tc validateCase) run(t *testing.T) {
	before := tc.f.iss.jwksHits.Load()
	var raw []byte
	var err error
	if tc.token != nil {
		raw = []byte(tc.token(t))
	} else {
		raw, err = ParseBearer([]byte(tc.header))
	}
	var p *Principal
	if err == nil {
		p, err = tc.f.local.Validate(t.Context(), raw)
	}

	if got := tc.f.iss.jwksHits.Load() - before; got != tc.wantFetches {
		t.Errorf("%d JWKS fetches, want %d", got, tc.wantFetches)
	}
	if tc.wantErr == nil {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if p == nil {
			t.Fatal("nil Principal without an error")
		}
		if tc.check != nil {
			tc.check(t, p)
		}
		return
	}
	if p != nil {
		t.Fatalf("got a Principal %+v with error %v", p, err)
	}
	if !errors.Is(err, tc.wantErr) {
		t.Fatalf("err = %v, want %v", err, tc.wantErr)
	}
	if tc.wantErr == ErrInvalidToken {
		var te *TokenError
		if !errors.As(err, &te) {
			t.Fatalf("err = %v (%T), want a *TokenError", err, err)
		}
		if te.Reason != tc.wantReason {
			t.Fatalf("reason = %v, want %v (err: %v)", te.Reason, tc.wantReason, err)
		}
	}
}

func wantScopes(want ...string) func(t *testing.T, p *Principal) {
	return func(t *testing.T, p *Principal) {
		t.Helper()
		if !slices.Equal(p.Scopes, want) {
			t.Fatalf("Scopes = %q, want %q", p.Scopes, want)
		}
	}
}

func TestLocalValidate(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	valid := func(key signingKey) func(t *testing.T) string {
		return func(t *testing.T) string { return f.mint(t, key, nil) }
	}
	with := func(edits map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return f.mint(t, k.rsa, edits) }
	}
	rsaPub := &k.rsa.priv.(*rsa.PrivateKey).PublicKey
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := func(secret []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			b, _ := json.Marshal(f.claims(nil))
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
				(&jose.SignerOptions{}).WithHeader("kid", k.rsa.kid))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign(b)
			if err != nil {
				t.Fatal(err)
			}
			out, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
	}

	// A server a jku header points at: it must never be asked anything.
	var jkuHits atomic.Int64
	jku := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jkuHits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.attacker.public()}})
	}))
	t.Cleanup(jku.Close)
	t.Cleanup(func() {
		if n := jkuHits.Load(); n != 0 {
			t.Errorf("the jku/x5u server got %d requests, want 0", n)
		}
	})
	withHeader := func(key signingKey, name jose.HeaderKey, v any) func(t *testing.T) string {
		return func(t *testing.T) string {
			b, _ := json.Marshal(f.claims(nil))
			return sign(t, key, b, (&jose.SignerOptions{}).WithHeader(name, v), false)
		}
	}

	cases := []validateCase{
		{name: "valid RS256", token: valid(k.rsa), check: func(t *testing.T, p *Principal) {
			want := Principal{
				Subject: "client-a", ClientID: "client-a", Issuer: f.iss.issuer,
				Audience: []string{testAudience}, Scopes: []string{"items"}, TokenID: "AT.test-jti",
				IssuedAt: t0.Add(-time.Minute), ExpiresAt: t0.Add(time.Hour),
			}
			if p.Subject != want.Subject || p.ClientID != want.ClientID || p.Issuer != want.Issuer ||
				!slices.Equal(p.Audience, want.Audience) || !slices.Equal(p.Scopes, want.Scopes) ||
				p.TokenID != want.TokenID || !p.IssuedAt.Equal(want.IssuedAt) || !p.ExpiresAt.Equal(want.ExpiresAt) {
				t.Fatalf("Principal = %+v, want %+v", *p, want)
			}
		}},
		{name: "valid ES256", token: valid(k.ec)},
		{name: "valid EdDSA", token: valid(k.ed)},
		{name: "no token", header: "", wantErr: ErrNoToken},
		{name: "another scheme", header: "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0", wantErr: ErrNoToken},
		{name: "lower-case bearer", header: "bearer " + f.mint(t, k.rsa, nil)},
		{name: "upper-case BEARER with extra spaces", header: "  BEARER   " + f.mint(t, k.rsa, nil) + "  "},
		{name: "empty bearer token", header: "Bearer   ", wantErr: ErrInvalidToken, wantReason: ReasonEmpty},
		{name: "empty token bytes", token: func(*testing.T) string { return "" }, wantErr: ErrInvalidToken, wantReason: ReasonEmpty},
		{name: "alg none", wantErr: ErrInvalidToken, wantReason: ReasonAlgorithm, token: func(*testing.T) string {
			return unsignedToken(`{"alg":"none","kid":"rsa-1"}`, f.claims(nil), "")
		}},
		{name: "alg None with a signature", wantErr: ErrInvalidToken, wantReason: ReasonAlgorithm, token: func(*testing.T) string {
			return unsignedToken(`{"alg":"None","kid":"rsa-1"}`, f.claims(nil), "c2ln")
		}},
		{name: "HS256 keyed with the public key PEM", token: hs256(pemBytes), wantErr: ErrInvalidToken, wantReason: ReasonAlgorithm},
		{name: "HS256 keyed with the public key DER", token: hs256(der), wantErr: ErrInvalidToken, wantReason: ReasonAlgorithm},
		{name: "JWE (5 segments)", wantErr: ErrInvalidToken, wantReason: ReasonEncrypted, token: func(t *testing.T) string {
			enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.RSA_OAEP, Key: rsaPub}, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(f.claims(nil))
			obj, err := enc.Encrypt(b)
			if err != nil {
				t.Fatal(err)
			}
			s, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(s, ".") != 4 {
				t.Fatalf("JWE has %d dots", strings.Count(s, "."))
			}
			return s
		}},
		{name: "over the size limit", wantErr: ErrInvalidToken, wantReason: ReasonTooLarge,
			token: with(map[string]any{"pad": strings.Repeat("x", 8192)})},
		{name: "4 KiB of dots", wantErr: ErrInvalidToken, wantReason: ReasonMalformed,
			token: func(*testing.T) string { return strings.Repeat(".", 4096) }},
		{name: "two segments", wantErr: ErrInvalidToken, wantReason: ReasonMalformed,
			token: func(t *testing.T) string { s := f.mint(t, k.rsa, nil); return s[:strings.LastIndexByte(s, '.')] }},
		{name: "not base64url", wantErr: ErrInvalidToken, wantReason: ReasonMalformed,
			token: func(*testing.T) string { return "eyJ+.eyJ/.abc=" }},
		{name: "JWS JSON serialization", wantErr: ErrInvalidToken, wantReason: ReasonMalformed,
			token: func(*testing.T) string { return `{"payload":"e30","protected":"e30.x","signature":"YQ"}` }},
		{name: "garbage header", wantErr: ErrInvalidToken, wantReason: ReasonMalformed,
			token: func(*testing.T) string { return "bm90anNvbg.e30.YQ" }},
		{name: "unknown kid", wantErr: ErrInvalidToken, wantReason: ReasonUnknownKey, wantFetches: 1,
			token: valid(signingKey{"no-such-kid", k.attacker.alg, k.attacker.priv})},
		{name: "signed by another key under a known kid", wantErr: ErrInvalidToken, wantReason: ReasonSignature,
			token: valid(signingKey{k.rsa.kid, k.attacker.alg, k.attacker.priv})},
		{name: "tampered payload", wantErr: ErrInvalidToken, wantReason: ReasonSignature, token: func(t *testing.T) string {
			parts := strings.Split(f.mint(t, k.rsa, nil), ".")
			other := strings.Split(f.mint(t, k.rsa, map[string]any{"scp": []string{"items", "admin"}}), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}},
		{name: "ES256 header on the RSA kid", wantErr: ErrInvalidToken, wantReason: ReasonKeyAlgorithm,
			token: valid(signingKey{k.rsa.kid, k.ec.alg, k.ec.priv})},
		{name: "jwk header with the attacker's key", wantErr: ErrInvalidToken, wantReason: ReasonEmbeddedKey,
			token: func(t *testing.T) string {
				b, _ := json.Marshal(f.claims(nil))
				return sign(t, k.attacker, b, &jose.SignerOptions{EmbedJWK: true}, false)
			}},
		{name: "jwk header with the attacker's key and a known kid", wantErr: ErrInvalidToken, wantReason: ReasonEmbeddedKey,
			token: func(t *testing.T) string {
				b, _ := json.Marshal(f.claims(nil))
				return sign(t, k.attacker, b, (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", k.rsa.kid), false)
			}},
		{name: "jku header", wantErr: ErrInvalidToken, wantReason: ReasonKeyURL,
			token: withHeader(k.attacker, "jku", jku.URL+"/jwks")},
		{name: "jku header with a known kid", wantErr: ErrInvalidToken, wantReason: ReasonKeyURL,
			token: withHeader(k.rsa, "jku", jku.URL+"/jwks")},
		{name: "x5u header", wantErr: ErrInvalidToken, wantReason: ReasonKeyURL,
			token: withHeader(k.attacker, "x5u", jku.URL+"/cert.pem")},
		{name: "crit header", wantErr: ErrInvalidToken, wantReason: ReasonCrit, token: func(t *testing.T) string {
			b, _ := json.Marshal(f.claims(nil))
			return sign(t, k.rsa, b, (&jose.SignerOptions{}).WithHeader("exp", 1).WithCritical("exp"), false)
		}},
		{name: "b64 header", wantErr: ErrInvalidToken, wantReason: ReasonMalformed,
			token: withHeader(k.rsa, "b64", true)},
		{name: "wrong iss", wantErr: ErrInvalidToken, wantReason: ReasonIssuer,
			token: with(map[string]any{"iss": "https://evil.example.com/oauth2/default"})},
		{name: "iss with a trailing slash", wantErr: ErrInvalidToken, wantReason: ReasonIssuer,
			token: with(map[string]any{"iss": f.iss.issuer + "/"})},
		{name: "aud missing", wantErr: ErrInvalidToken, wantReason: ReasonAudience, token: with(map[string]any{"aud": nil})},
		{name: "aud foreign", wantErr: ErrInvalidToken, wantReason: ReasonAudience, token: with(map[string]any{"aud": "api://other"})},
		{name: "aud array containing ours", token: with(map[string]any{"aud": []string{"api://other", testAudience}})},
		{name: "exp missing", wantErr: ErrInvalidToken, wantReason: ReasonExpiryMissing, token: with(map[string]any{"exp": nil})},
		{name: "expired beyond leeway", wantErr: ErrInvalidToken, wantReason: ReasonExpired,
			token: with(map[string]any{"exp": t0.Add(-61 * time.Second).Unix()})},
		{name: "expired exactly at leeway", wantErr: ErrInvalidToken, wantReason: ReasonExpired,
			token: with(map[string]any{"exp": t0.Add(-60 * time.Second).Unix()})},
		{name: "expired within leeway", token: with(map[string]any{"exp": t0.Add(-30 * time.Second).Unix()})},
		{name: "nbf in the future", wantErr: ErrInvalidToken, wantReason: ReasonNotYetValid,
			token: with(map[string]any{"nbf": t0.Add(5 * time.Minute).Unix()})},
		{name: "nbf within leeway", token: with(map[string]any{"nbf": t0.Add(30 * time.Second).Unix()})},
		{name: "iat in the future beyond leeway", wantErr: ErrInvalidToken, wantReason: ReasonIssuedInFuture,
			token: with(map[string]any{"iat": t0.Add(2 * time.Minute).Unix()})},
		{name: "iat within leeway", token: with(map[string]any{"iat": t0.Add(30 * time.Second).Unix()})},
		{name: "exp as a string", wantErr: ErrInvalidToken, wantReason: ReasonClaims,
			token: with(map[string]any{"exp": "tomorrow"})},
		{name: "scope missing", token: with(map[string]any{"scp": nil}), check: func(t *testing.T, p *Principal) {
			if p.HasScope("items") || len(p.Scopes) != 0 {
				t.Fatalf("Scopes = %q, want none", p.Scopes)
			}
		}},
		{name: "scp array", token: with(map[string]any{"scp": []string{"items", "openid"}}), check: wantScopes("items", "openid")},
		{name: "scp string", token: with(map[string]any{"scp": "items  openid"}), check: wantScopes("items", "openid")},
		{name: "scope string", token: with(map[string]any{"scp": nil, "scope": "items openid"}), check: wantScopes("items", "openid")},
		{name: "scp wins over scope", token: with(map[string]any{"scp": []string{"a"}, "scope": "items"}), check: wantScopes("a")},
		{name: "scp of numbers", wantErr: ErrInvalidToken, wantReason: ReasonClaims, token: with(map[string]any{"scp": []int{1}})},
		{name: "cid not allowed", wantErr: ErrInvalidToken, wantReason: ReasonClientNotAllowed, token: with(map[string]any{"cid": "client-z"})},
		{name: "no client id with an allow-list", wantErr: ErrInvalidToken, wantReason: ReasonClientNotAllowed, token: with(map[string]any{"cid": nil})},
		{name: "client_id allowed", token: with(map[string]any{"cid": nil, "client_id": "client-b"}), check: func(t *testing.T, p *Principal) {
			if p.ClientID != "client-b" {
				t.Fatalf("ClientID = %q", p.ClientID)
			}
		}},
		{name: "cid and client_id disagree", wantErr: ErrInvalidToken, wantReason: ReasonClientConflict,
			token: with(map[string]any{"cid": "client-a", "client_id": "client-b"})},
		{name: "duplicate claim", wantErr: ErrInvalidToken, wantReason: ReasonClaims, token: func(t *testing.T) string {
			b, _ := json.Marshal(f.claims(nil))
			b = append([]byte(`{"iss":"https://evil.example.com",`), b[1:]...)
			return sign(t, k.rsa, b, nil, false)
		}},
		{name: "claims not an object", wantErr: ErrInvalidToken, wantReason: ReasonClaims, token: func(t *testing.T) string {
			return sign(t, k.rsa, []byte(`["iss"]`), nil, false)
		}},
		{name: "no kid, several keys in the set", wantErr: ErrInvalidToken, wantReason: ReasonNoKeyID, token: func(t *testing.T) string {
			b, _ := json.Marshal(f.claims(nil))
			return sign(t, k.ec, b, nil, true)
		}},
	}
	for _, tc := range cases {
		tc.f = f
		t.Run(tc.name, tc.run)
	}
}

func TestNewLocalConfig(t *testing.T) {
	ks := newTestKeySet(t, "https://as.example.com/oauth2/default", testutil.NewClock(t0), nil)
	ok := LocalConfig{Issuer: "https://as.example.com/oauth2/default", Audience: testAudience, Keys: ks}
	for _, tc := range []struct {
		name string
		mod  func(c *LocalConfig)
		want string // "" for success
	}{
		{"defaults", func(*LocalConfig) {}, ""},
		{"no issuer", func(c *LocalConfig) { c.Issuer = "" }, "Issuer is required"},
		{"no audience", func(c *LocalConfig) { c.Audience = "" }, "Audience is required"},
		{"no keys", func(c *LocalConfig) { c.Keys = nil }, "Keys is required"},
		{"none listed", func(c *LocalConfig) { c.Algorithms = []string{"RS256", "none"} }, `"none" is not allowed`},
		{"HS256 listed", func(c *LocalConfig) { c.Algorithms = []string{"HS256"} }, `"HS256" is not allowed`},
		{"unknown listed", func(c *LocalConfig) { c.Algorithms = []string{"rs256"} }, `"rs256" is not allowed`},
		{"subset", func(c *LocalConfig) { c.Algorithms = []string{"ES256", "EdDSA", "ES256"} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			l, err := NewLocal(cfg)
			if tc.want == "" {
				if err != nil || l == nil {
					t.Fatalf("NewLocal: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "auth: ") {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLocalDefaults(t *testing.T) {
	f := newLocalFixture(t, nil)
	if f.local.leeway != time.Minute || f.local.maxSize != 8192 || len(f.local.algs) != len(DefaultAlgorithms()) {
		t.Fatalf("defaults: leeway %v, max size %d, %d algorithms", f.local.leeway, f.local.maxSize, len(f.local.algs))
	}
	if slices.ContainsFunc(f.local.algs, func(a jose.SignatureAlgorithm) bool {
		return a == jose.HS256 || a == "none" || strings.HasPrefix(string(a), "HS")
	}) {
		t.Fatalf("default allow-list %q holds a symmetric algorithm", f.local.algs)
	}
}

func TestLocalAlgorithmAllowList(t *testing.T) {
	f := newLocalFixture(t, func(c *LocalConfig) { c.Algorithms = []string{"ES256"} })
	if _, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.ec, nil))); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	_, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa, nil)))
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != ReasonAlgorithm {
		t.Fatalf("RS256 outside the allow-list: err = %v", err)
	}
}

func TestLocalNegativeLeewayMeansNone(t *testing.T) {
	f := newLocalFixture(t, func(c *LocalConfig) { c.Leeway = -1 })
	for _, tc := range []struct {
		name  string
		edits map[string]any
		want  error
	}{
		{"exp one second ahead", map[string]any{"exp": t0.Add(time.Second).Unix()}, nil},
		{"exp now", map[string]any{"exp": t0.Unix()}, ErrExpired},
		{"nbf one second ahead", map[string]any{"nbf": t0.Add(time.Second).Unix()}, ErrNotYetValid},
		{"iat one second ahead", map[string]any{"iat": t0.Add(time.Second).Unix()}, ErrIssuedInFuture},
		{"iat now", map[string]any{"iat": t0.Unix()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa, tc.edits)))
			checkReason(t, err, tc.want)
		})
	}
}

func TestLocalClockMoves(t *testing.T) {
	f := newLocalFixture(t, nil)
	tok := []byte(f.mint(t, f.keys.rsa, nil)) // exp t0+1h
	if _, err := f.local.Validate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour + time.Minute)
	_, err := f.local.Validate(t.Context(), tok)
	checkReason(t, err, ErrExpired)
}

func TestLocalRequireATJWT(t *testing.T) {
	f := newLocalFixture(t, func(c *LocalConfig) { c.RequireATJWT = true })
	b, _ := json.Marshal(f.claims(nil))
	for _, tc := range []struct {
		name, typ string
		want      error
	}{
		{"at+jwt", "at+jwt", nil},
		{"application/at+jwt any case", "application/AT+JWT", nil},
		{"JWT", "JWT", ErrTokenType},
		{"none", "", ErrTokenType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &jose.SignerOptions{}
			if tc.typ != "" {
				opts = opts.WithType(jose.ContentType(tc.typ))
			}
			_, err := f.local.Validate(t.Context(), []byte(sign(t, f.keys.rsa, b, opts, false)))
			checkReason(t, err, tc.want)
		})
	}
}

// TestLocalPrincipalDoesNotAliasToken overwrites the token's bytes after
// Validate, as fasthttp does with a reused request buffer.
func TestLocalPrincipalDoesNotAliasToken(t *testing.T) {
	f := newLocalFixture(t, nil)
	tok := []byte(f.mint(t, f.keys.rsa, map[string]any{"sub": "subject-1", "jti": "jti-1"}))
	p, err := f.local.Validate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := *p
	want.Audience = slices.Clone(p.Audience)
	want.Scopes = slices.Clone(p.Scopes)
	for i := range tok {
		tok[i] = 'A'
	}
	if p.Subject != "subject-1" || p.TokenID != "jti-1" || p.Issuer != want.Issuer ||
		!slices.Equal(p.Audience, want.Audience) || !slices.Equal(p.Scopes, want.Scopes) {
		t.Fatalf("Principal changed with the token's bytes: %+v", *p)
	}
}

func TestLocalNoKIDWithSeveralKeysOfTheType(t *testing.T) {
	f := newLocalFixture(t, nil)
	f.iss.setKeys(f.keys.rsa, f.keys.rsa2)
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(f.claims(nil))
	_, err := f.local.Validate(t.Context(), []byte(sign(t, f.keys.rsa, b, nil, true)))
	checkReason(t, err, ErrNoKeyID)
}

func TestLocalNoKIDWithASingleKeySet(t *testing.T) {
	f := newLocalFixture(t, nil)
	f.iss.setKeys(f.keys.ec)
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(f.claims(nil))
	if _, err := f.local.Validate(t.Context(), []byte(sign(t, f.keys.ec, b, nil, true))); err != nil {
		t.Fatalf("no kid, single-key set: %v", err)
	}
	// The single key is EC: an RS256 token without kid does not fit it.
	_, err := f.local.Validate(t.Context(), []byte(sign(t, f.keys.rsa, b, nil, true)))
	checkReason(t, err, ErrKeyAlgorithm)
}

func TestLocalConcurrentValidate(t *testing.T) {
	f := newLocalFixture(t, nil)
	toks := [][]byte{
		[]byte(f.mint(t, f.keys.rsa, nil)),
		[]byte(f.mint(t, f.keys.ec, nil)),
		[]byte(f.mint(t, f.keys.ed, nil)),
	}
	errs := make(chan error, 64)
	for i := range cap(errs) {
		go func() {
			_, err := f.local.Validate(t.Context(), toks[i%len(toks)])
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// checkReason fails unless err is nil (want nil) or a *TokenError that
// matches ErrInvalidToken and the reason sentinel want.
func checkReason(t *testing.T, err error, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return
	}
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) || !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// RFC 6749 section 3.3: scope is a list of scope-tokens delimited by
// space (%x20) only. Splitting on any Unicode white space turned a single
// granted scope such as "read<NBSP>items" into the scope "items".
func TestScopesSplitOnSpaceOnly(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	for _, tc := range []struct {
		name  string
		edits map[string]any
		want  []string
	}{
		{"scope with NBSP", map[string]any{"scp": nil, "scope": "read\u00a0items"}, []string{"read\u00a0items"}},
		{"scope with a tab", map[string]any{"scp": nil, "scope": "read\titems"}, []string{"read\titems"}},
		{"scp string with NEL", map[string]any{"scp": "read\u0085items"}, []string{"read\u0085items"}},
		{"scope with runs of spaces", map[string]any{"scp": nil, "scope": "  items   openid "}, []string{"items", "openid"}},
		{"scp null falls back to scope", map[string]any{"scp": json.RawMessage("null"), "scope": "items"}, []string{"items"}},
		// PingFederate writes scope as an array; Remote reads introspection
		// answers that way too.
		{"scope array", map[string]any{"scp": nil, "scope": []string{"items", "openid"}}, []string{"items", "openid"}},
		{"scope array element with a space", map[string]any{"scp": nil, "scope": []string{"read items"}}, []string{"read items"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.local.Validate(t.Context(), []byte(f.mint(t, k.rsa, tc.edits)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Scopes, tc.want) {
				t.Fatalf("Scopes = %q, want %q", p.Scopes, tc.want)
			}
		})
	}

	t.Run("introspection", func(t *testing.T) {
		for body, want := range map[string][]string{
			`{"active":true,"scope":"read\u00a0items"}`: {"read\u00a0items"},
			`{"active":true,"scope":"read\titems"}`:     {"read\titems"},
			`{"active":true,"scope":" items  openid"}`:  {"items", "openid"},
		} {
			fake := newRemoteFake(t, remoteFakeBody(body))
			r := newRemoteTest(t, fake.url(), nil)
			p, err := r.Validate(context.Background(), []byte(remoteTestToken))
			if err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if !slices.Equal(p.Scopes, want) {
				t.Fatalf("%s: Scopes = %q, want %q", body, p.Scopes, want)
			}
		}
	})
}
