package devissuer

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

func TestStartRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"all interfaces", Config{Addr: ":0"}, "loopback"},
		{"unspecified IPv4", Config{Addr: "0.0.0.0:0"}, "loopback"},
		{"public IP", Config{Addr: "192.0.2.1:0"}, "loopback"},
		{"host name", Config{Addr: "example.com:0"}, "loopback"},
		{"no port", Config{Addr: "127.0.0.1"}, "Addr"},
		{"auth server id", Config{AuthServerID: "a/b"}, "AuthServerID"},
		{"algorithm", Config{Algorithm: "HS256"}, "Algorithm"},
		{"small RSA key", Config{RSABits: 1024}, "RSABits"},
		{"negative lifetime", Config{TokenLifetime: -time.Second}, "TokenLifetime"},
		{"empty client id", Config{Clients: []Client{{Secret: "s"}}}, "empty ID"},
		{"empty secret", Config{Clients: []Client{{ID: "c"}}}, "empty Secret"},
		{"duplicate client", Config{Clients: []Client{{ID: "c", Secret: "s"}, {ID: "c", Secret: "t"}}}, "duplicate"},
		{"malformed scope", Config{Scopes: []string{"a b"}}, "scope"},
		{"default scope not granted", Config{Scopes: []string{"x"}}, "DefaultScopes"},
		{"client scope not granted", Config{Scopes: []string{"items"}, Clients: []Client{{ID: "c", Secret: "s", Scopes: []string{"y"}}}}, "Clients[0].Scopes"},
		{"client default not allowed", Config{Clients: []Client{{ID: "c", Secret: "s", Scopes: []string{"a"}, DefaultScopes: []string{"b"}}}}, "DefaultScopes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, err := Start(tc.cfg)
			if err == nil {
				iss.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.HasPrefix(err.Error(), "devissuer: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want the devissuer prefix and %q", err, tc.want)
			}
		})
	}
}

func TestStartDefaults(t *testing.T) {
	iss := start(t, Config{Addr: "localhost:0", Algorithm: "ES256"})
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/oauth2/default$`).MatchString(iss.Issuer()) {
		t.Errorf("Issuer() = %q", iss.Issuer())
	}
	if iss.Audience() != "api://default" {
		t.Errorf("Audience() = %q", iss.Audience())
	}
	cs := iss.Clients()
	if len(cs) != 1 || cs[0].ID != "dev-client" || cs[0].Secret != "dev-secret" || !slices.Equal(cs[0].DefaultScopes, []string{"items"}) {
		t.Errorf("Clients() = %+v", cs)
	}
	if kids := iss.PublishedKIDs(); len(kids) != 1 || kids[0] != iss.SigningKID() {
		t.Errorf("PublishedKIDs() = %v, SigningKID() = %q", kids, iss.SigningKID())
	}
}

func TestDiscovery(t *testing.T) {
	iss := start(t, Config{Algorithm: "EdDSA"})
	c := newClient()
	host := strings.TrimSuffix(iss.Issuer(), "/oauth2/default")
	tests := []struct {
		name string
		url  string
		oidc bool
	}{
		{"oauth-authorization-server", iss.DiscoveryURL(), false},
		{"RFC 8414 inserted form", host + "/.well-known/oauth-authorization-server/oauth2/default", false},
		{"openid-configuration", iss.OpenIDConfigurationURL(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := mustDo(t, c, request{url: tc.url})
			if rep.status != 200 || rep.header["Content-Type"] != "application/json" {
				t.Fatalf("status %d, content type %q", rep.status, rep.header["Content-Type"])
			}
			var md struct {
				Issuer                string   `json:"issuer"`
				JWKSURI               string   `json:"jwks_uri"`
				TokenEndpoint         string   `json:"token_endpoint"`
				IntrospectionEndpoint string   `json:"introspection_endpoint"`
				RevocationEndpoint    string   `json:"revocation_endpoint"`
				GrantTypes            []string `json:"grant_types_supported"`
				AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
				IntrospectionAuth     []string `json:"introspection_endpoint_auth_methods_supported"`
				RevocationAuth        []string `json:"revocation_endpoint_auth_methods_supported"`
				Scopes                []string `json:"scopes_supported"`
				ResponseTypes         []string `json:"response_types_supported"`
				Claims                []string `json:"claims_supported"`
				IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
				SubjectTypes          []string `json:"subject_types_supported"`
			}
			if err := json.Unmarshal(rep.body, &md); err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			_ = json.Unmarshal(rep.body, &raw)
			want := iss.Issuer()
			if md.Issuer != want || md.JWKSURI != want+"/v1/keys" || md.TokenEndpoint != want+"/v1/token" ||
				md.IntrospectionEndpoint != want+"/v1/introspect" || md.RevocationEndpoint != want+"/v1/revoke" {
				t.Errorf("endpoints: %s", rep.body)
			}
			methods := []string{"client_secret_basic", "client_secret_post"}
			if !slices.Equal(md.AuthMethods, methods) || !slices.Equal(md.IntrospectionAuth, methods) || !slices.Equal(md.RevocationAuth, methods) {
				t.Errorf("auth methods: %s", rep.body)
			}
			if !slices.Equal(md.GrantTypes, []string{"client_credentials"}) || !slices.Equal(md.Scopes, []string{"items"}) {
				t.Errorf("grant types %v, scopes %v", md.GrantTypes, md.Scopes)
			}
			if _, ok := raw["response_types_supported"]; !ok || md.ResponseTypes == nil {
				t.Errorf("response_types_supported missing")
			}
			for _, claim := range []string{"ver", "jti", "iss", "aud", "iat", "exp", "cid", "scp", "sub"} {
				if !slices.Contains(md.Claims, claim) {
					t.Errorf("claims_supported lacks %s", claim)
				}
			}
			if tc.oidc != (md.IDTokenAlgs != nil) || tc.oidc != (md.SubjectTypes != nil) {
				t.Errorf("OpenID members present = %v, want %v", md.IDTokenAlgs != nil, tc.oidc)
			}
			if tc.oidc && !slices.Equal(md.IDTokenAlgs, []string{"EdDSA"}) {
				t.Errorf("id_token_signing_alg_values_supported = %v", md.IDTokenAlgs)
			}
		})
	}
	t.Run("POST not allowed", func(t *testing.T) {
		rep := mustDo(t, c, request{method: "POST", url: iss.DiscoveryURL()})
		if rep.status != 405 || rep.header["Allow"] != "GET, HEAD" {
			t.Errorf("status %d, Allow %q", rep.status, rep.header["Allow"])
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		rep := mustDo(t, c, request{method: "HEAD", url: iss.OpenIDConfigurationURL()})
		if rep.status != 200 || len(rep.body) != 0 {
			t.Errorf("status %d, body %q", rep.status, rep.body)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		for _, u := range []string{iss.Issuer() + "/v1/userinfo", host + "/oauth2/other/v1/keys", host + "/"} {
			if rep := mustDo(t, c, request{url: u}); rep.status != 404 {
				t.Errorf("%s: status %d", u, rep.status)
			}
		}
	})
	if got := iss.Counts().Discovery; got != 5 {
		t.Errorf("Counts().Discovery = %d, want 5 (404s not counted)", got)
	}
}

func TestScopesSupported(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"configured", Config{Scopes: []string{"items", "admin"}}, []string{"items", "admin"}},
		{"from clients", Config{Clients: []Client{{ID: "a", Secret: "s", Scopes: []string{"items", "write"}}, {ID: "b", Secret: "s"}}},
			[]string{"items", "write"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := start(t, tc.cfg)
			rep := mustDo(t, newClient(), request{url: iss.DiscoveryURL()})
			var md struct {
				Scopes []string `json:"scopes_supported"`
			}
			_ = json.Unmarshal(rep.body, &md)
			if !slices.Equal(md.Scopes, tc.want) {
				t.Errorf("scopes_supported = %v, want %v", md.Scopes, tc.want)
			}
		})
	}
}

func TestKeysEndpoint(t *testing.T) {
	iss := start(t, Config{})
	set, rep := fetchJWKS(t, newClient(), iss)
	if got := rep.header["Cache-Control"]; got != "max-age=300, must-revalidate" {
		t.Errorf("Cache-Control = %q", got)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	k := set.Keys[0]
	if !k.IsPublic() || k.KeyID != iss.SigningKID() || k.Use != "sig" || k.Algorithm != "RS256" {
		t.Errorf("key: public %v kid %q use %q alg %q", k.IsPublic(), k.KeyID, k.Use, k.Algorithm)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	_ = json.Unmarshal(rep.body, &raw)
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := raw.Keys[0][private]; ok {
			t.Errorf("JWKS carries private member %q", private)
		}
	}
	if n := raw.Keys[0]["n"].(string); len(n) != 342 { // 2048 bits in base64url
		t.Errorf("modulus has %d base64url characters, want 342 (2048 bits)", len(n))
	}

	t.Run("no-cache", func(t *testing.T) {
		iss := start(t, Config{KeysMaxAge: -1, Algorithm: "ES256"})
		_, rep := fetchJWKS(t, newClient(), iss)
		if got := rep.header["Cache-Control"]; got != "no-cache" {
			t.Errorf("Cache-Control = %q", got)
		}
	})
}

// tokenCase is one call of /v1/token and what it must answer.
type tokenCase struct {
	name       string
	header     map[string]string
	form       url.Values
	body       string // raw body instead of form
	method     string
	status     int
	err        string // expected "error" member
	challenge  bool   // expect WWW-Authenticate: Basic
	wantScope  string // on success
	iss        *Issuer
	wantClient string
}

func (tc tokenCase) run(t *testing.T) {
	method := tc.method
	if method == "" {
		method = "POST"
	}
	rep := mustDo(t, newClient(), request{method: method, url: tc.iss.TokenURL(), header: tc.header, form: tc.form, body: tc.body})
	if rep.status != tc.status {
		t.Fatalf("status %d, want %d: %s", rep.status, tc.status, rep.body)
	}
	if got := rep.header["Www-Authenticate"] != ""; got != tc.challenge {
		t.Errorf("WWW-Authenticate present = %v, want %v (%q)", got, tc.challenge, rep.header["Www-Authenticate"])
	}
	if tc.challenge && !strings.HasPrefix(rep.header["Www-Authenticate"], "Basic ") {
		t.Errorf("WWW-Authenticate = %q", rep.header["Www-Authenticate"])
	}
	if rep.header["Cache-Control"] != "no-store" {
		t.Errorf("Cache-Control = %q", rep.header["Cache-Control"])
	}
	m := rep.json(t)
	if tc.status != 200 {
		if m["error"] != tc.err {
			t.Errorf("error = %v, want %q", m["error"], tc.err)
		}
		return
	}
	if m["token_type"] != "Bearer" || m["expires_in"] != 3600.0 || m["scope"] != tc.wantScope {
		t.Errorf("answer %s", rep.body)
	}
	claims := rawClaims(t, m["access_token"].(string))
	if claims["cid"] != tc.wantClient {
		t.Errorf("cid = %v, want %s", claims["cid"], tc.wantClient)
	}
}

func TestToken(t *testing.T) {
	iss := start(t, Config{
		Algorithm: "ES256",
		Clients: []Client{
			{ID: "dev-client", Secret: "dev-secret"},
			{ID: "odd client:ü", Secret: "s:e%c+r t/ü", Scopes: []string{"items", "admin"}},
			{ID: "reader", Secret: "r", Scopes: []string{"read"}},
			{ID: "plain", Secret: "x+y%41:z"},
		},
	})
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range cc {
			v[k] = vs
		}
		for n := 0; n < len(kv); n += 2 {
			v.Add(kv[n], kv[n+1])
		}
		return v
	}
	auth := func(v string) map[string]string { return map[string]string{"Authorization": v} }
	good := auth(basic("dev-client", "dev-secret"))
	tests := []tokenCase{
		{name: "basic", header: good, form: cc, status: 200, wantScope: "items", wantClient: "dev-client"},
		{name: "basic scheme lower case", header: auth(strings.Replace(basic("dev-client", "dev-secret"), "Basic", "basic", 1)), form: cc, status: 200, wantScope: "items", wantClient: "dev-client"},
		{name: "post", form: with("client_id", "dev-client", "client_secret", "dev-secret"), status: 200, wantScope: "items", wantClient: "dev-client"},
		{name: "basic with url-encoded id and secret", header: auth(basic("odd client:ü", "s:e%c+r t/ü")), form: with("scope", "admin items"), status: 200, wantScope: "admin items", wantClient: "odd client:ü"},
		{name: "basic without the RFC 6749 encoding", header: auth("Basic " + base64.StdEncoding.EncodeToString([]byte("plain:x+y%41:z"))), form: cc, status: 200, wantScope: "items", wantClient: "plain"},
		{name: "basic with the RFC 6749 encoding", header: auth(basic("plain", "x+y%41:z")), form: cc, status: 200, wantScope: "items", wantClient: "plain"},
		{name: "basic decoded secret is not the raw one", header: auth("Basic " + base64.StdEncoding.EncodeToString([]byte("plain:x yA:z"))), form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "post with odd characters", form: with("client_id", "odd client:ü", "client_secret", "s:e%c+r t/ü"), status: 200, wantScope: "items", wantClient: "odd client:ü"},
		{name: "explicit scopes deduplicated", header: good, form: with("scope", "items  other items"), status: 200, wantScope: "items other", wantClient: "dev-client"},
		{name: "audience equal", header: good, form: with("audience", "api://default"), status: 200, wantScope: "items", wantClient: "dev-client"},
		{name: "client_id repeated in form with basic", header: good, form: with("client_id", "dev-client"), status: 200, wantScope: "items", wantClient: "dev-client"},
		{name: "client without default scope", header: auth(basic("reader", "r")), form: cc, status: 400, err: "invalid_scope"},
		{name: "reader scope", header: auth(basic("reader", "r")), form: with("scope", "read"), status: 200, wantScope: "read", wantClient: "reader"},

		{name: "wrong secret basic", header: auth(basic("dev-client", "nope")), form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "wrong secret post", form: with("client_id", "dev-client", "client_secret", "nope"), status: 401, err: "invalid_client"},
		{name: "empty secret post", form: with("client_id", "dev-client", "client_secret", ""), status: 401, err: "invalid_client"},
		{name: "secret missing post", form: with("client_id", "dev-client"), status: 401, err: "invalid_client"},
		{name: "unknown client", header: auth(basic("who", "dev-secret")), form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "no credentials", form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "malformed basic", header: auth("Basic !!!"), form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "basic without colon", header: auth("Basic ZGV2LWNsaWVudA=="), form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "bearer is not client auth", header: auth("Bearer abc"), form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "two methods", header: good, form: with("client_secret", "dev-secret"), status: 400, err: "invalid_request"},
		{name: "client_id mismatch", header: good, form: with("client_id", "reader"), status: 400, err: "invalid_request"},
		{name: "unsupported grant", header: good, form: url.Values{"grant_type": {"password"}}, status: 400, err: "unsupported_grant_type"},
		{name: "authorization code grant", header: good, form: url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, status: 400, err: "unsupported_grant_type"},
		{name: "missing grant", header: good, form: url.Values{"scope": {"items"}}, status: 400, err: "invalid_request"},
		{name: "repeated parameter", header: good, form: with("scope", "items", "scope", "admin"), status: 400, err: "invalid_request"},
		{name: "scope not allowed", header: auth(basic("odd client:ü", "s:e%c+r t/ü")), form: with("scope", "items write"), status: 400, err: "invalid_scope"},
		{name: "malformed scope", header: good, form: with("scope", `items "x"`), status: 400, err: "invalid_scope"},
		{name: "foreign audience", header: good, form: with("audience", "https://elsewhere"), status: 400, err: "invalid_request"},
		{name: "JSON body", header: map[string]string{"Authorization": basic("dev-client", "dev-secret"), "Content-Type": "application/json"}, body: `{"grant_type":"client_credentials"}`, status: 400, err: "invalid_request"},
		{name: "GET", method: "GET", header: good, status: 405, err: "invalid_request"},
	}
	for _, tc := range tests {
		tc.iss = iss
		t.Run(tc.name, tc.run)
	}
	if got, want := iss.Counts().Token, uint64(len(tests)); got != want {
		t.Errorf("Counts().Token = %d, want %d", got, want)
	}
}

func TestTokenClaims(t *testing.T) {
	clk := testutil.NewClock(t0)
	iss := start(t, Config{Now: clk.Now})
	c := newClient()
	tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
	h, claims := verifyWithJWKS(t, c, iss, tok)
	if h.Algorithm != "RS256" || h.KeyID != iss.SigningKID() {
		t.Errorf("header alg %q kid %q", h.Algorithm, h.KeyID)
	}
	if raw := rawHeader(t, tok); len(raw) != 2 {
		t.Errorf("header %v: want only kid and alg, like Okta", raw)
	}
	want := map[string]any{
		"ver": 1.0,
		"iss": iss.Issuer(),
		"aud": "api://default",
		"iat": float64(t0.Unix()),
		"exp": float64(t0.Add(time.Hour).Unix()),
		"cid": "dev-client",
		"scp": []any{"items"},
		"sub": "dev-client",
	}
	for k, v := range want {
		if got, _ := json.Marshal(claims[k]); string(got) != mustJSON(v) {
			t.Errorf("claim %s = %s, want %s", k, got, mustJSON(v))
		}
	}
	jti, _ := claims["jti"].(string)
	if !regexp.MustCompile(`^AT\.[A-Za-z0-9_-]{32}$`).MatchString(jti) {
		t.Errorf("jti = %q", jti)
	}
	if len(claims) != len(want)+1 {
		t.Errorf("claims %v: unexpected extras", claims)
	}
	if tok2 := getToken(t, c, iss, "dev-client", "dev-secret", ""); rawClaims(t, tok2)["jti"] == jti {
		t.Error("two tokens share a jti")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTokenTypeAndLifetime(t *testing.T) {
	clk := testutil.NewClock(t0)
	iss := start(t, Config{Now: clk.Now, TokenType: "at+jwt", TokenLifetime: 90 * time.Second, Audience: "api://items", Algorithm: "ES256"})
	c := newClient()
	rep := mustDo(t, c, request{method: "POST", url: iss.TokenURL(),
		form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev-client"}, "client_secret": {"dev-secret"}}})
	m := rep.json(t)
	if m["expires_in"] != 90.0 {
		t.Errorf("expires_in = %v", m["expires_in"])
	}
	tok := m["access_token"].(string)
	h, claims := verifyWithJWKS(t, c, iss, tok)
	if h.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("typ = %v", h.ExtraHeaders["typ"])
	}
	if claims["aud"] != "api://items" || claims["exp"] != float64(t0.Unix()+90) {
		t.Errorf("aud %v exp %v", claims["aud"], claims["exp"])
	}
}

func TestAlgorithms(t *testing.T) {
	tests := []struct {
		alg, kty string
		bits     int
	}{
		{"RS256", "RSA", 0},
		{"RS384", "RSA", 0},
		{"PS256", "RSA", 0},
		{"ES256", "EC", 0},
		{"ES384", "EC", 0},
		{"ES512", "EC", 0},
		{"EdDSA", "OKP", 0},
		{"RS512", "RSA", 3072},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			iss := start(t, Config{Algorithm: tc.alg, RSABits: tc.bits})
			c := newClient()
			tok := getToken(t, c, iss, "dev-client", "dev-secret", "items")
			h, claims := verifyWithJWKS(t, c, iss, tok)
			if h.Algorithm != tc.alg || claims["cid"] != "dev-client" {
				t.Errorf("alg %q cid %v", h.Algorithm, claims["cid"])
			}
			set, rep := fetchJWKS(t, c, iss)
			var raw struct {
				Keys []map[string]any `json:"keys"`
			}
			_ = json.Unmarshal(rep.body, &raw)
			if raw.Keys[0]["kty"] != tc.kty || raw.Keys[0]["alg"] != tc.alg || !set.Keys[0].IsPublic() {
				t.Errorf("JWK %v", raw.Keys[0])
			}
			if got := introspect(t, c, iss, tok); got["active"] != true {
				t.Errorf("introspection %v", got)
			}
		})
	}
}

// TestKIDIsThumbprint checks the kid against go-jose's RFC 7638 thumbprint.
func TestKIDIsThumbprint(t *testing.T) {
	iss := start(t, Config{Algorithm: "EdDSA"})
	set, _ := fetchJWKS(t, newClient(), iss)
	tp, err := set.Keys[0].Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(tp); set.Keys[0].KeyID != want {
		t.Errorf("kid %q, want thumbprint %q", set.Keys[0].KeyID, want)
	}
}
