package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Regression tests from the security review of package auth. Each test
// names the defect it pins down.

// A JWK that carries its private half ("d") has been published to the
// world: anyone can sign with it, so a signature it verifies proves
// nothing. Such keys must be refused, not quietly reduced to their public
// part.
func TestReviewJWKSPrivateKeyIsNotTrusted(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	leaked := jose.JSONWebKey{Key: k.rsa2.priv, KeyID: k.rsa2.kid, Algorithm: string(k.rsa2.alg), Use: "sig"}
	f.iss.configure(func(fi *fakeIssuer) { fi.keys = []jose.JSONWebKey{k.rsa.public(), leaked} })
	if b, _ := json.Marshal(leaked); !strings.Contains(string(b), `"d":`) {
		t.Fatal("test setup: the leaked JWK carries no private exponent")
	}
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := f.keySet.KeyIDs(), []string{"rsa-1"}; !slices.Equal(got, want) {
		t.Fatalf("KeyIDs = %q, want %q (the leaked private key must be skipped)", got, want)
	}
	// Anyone holding the published key can mint this token.
	_, err := f.local.Validate(t.Context(), []byte(f.mint(t, k.rsa2, nil)))
	checkReason(t, err, ErrUnknownKey)
	if _, err := f.local.Validate(t.Context(), []byte(f.mint(t, k.rsa, nil))); err != nil {
		t.Fatalf("the public key beside it: %v", err)
	}

	// A JWKS of nothing but leaked keys is no key set at all.
	f.iss.configure(func(fi *fakeIssuer) {
		fi.keys = []jose.JSONWebKey{leaked, {Key: k.ed.priv, KeyID: "ed-priv", Algorithm: "EdDSA"}}
	})
	if err := f.keySet.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "no usable signing key") {
		t.Fatalf("Refresh of a JWKS of private keys = %v, want no usable signing key", err)
	}
}

// RFC 6749 section 3.3: scope is a list of scope-tokens delimited by
// space (%x20) only. Splitting on any Unicode white space turned a single
// granted scope such as "read<NBSP>items" into the scope "items".
func TestReviewScopeSplitsOnSpaceOnly(t *testing.T) {
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

// Errors from fetching metadata and keys reach logs and, through
// KeySet.Ready, the unauthenticated /readyz body. They must not carry
// credentials embedded in a URL (user info, or a query such as an API key).
func TestReviewFetchErrorsRedactURLSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"nope"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	secrets := []string{"hunter2", "s3cret"}

	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	d := newTestDiscovery(t, DiscoveryConfig{
		Issuer:   srv.URL + "/oauth2/default",
		Override: Metadata{JWKSURI: "http://svc:hunter2@" + host + "/keys?api_key=s3cret"},
		Logger:   log,
	})
	ks, err := NewKeySet(KeySetConfig{Discovery: d, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	l, err := NewLocal(LocalConfig{Issuer: d.Issuer(), Audience: testAudience, Keys: ks, Logger: log})
	if err != nil {
		t.Fatal(err)
	}

	refreshErr := ks.Refresh(t.Context())
	if refreshErr == nil {
		t.Fatal("Refresh succeeded against a 401")
	}
	_, validateErr := l.Validate(t.Context(), []byte(f0Token))
	var texts []string
	for _, err := range []error{refreshErr, ks.Ready(), validateErr} {
		if err == nil {
			t.Fatal("missing error")
		}
		texts = append(texts, err.Error())
	}
	for _, e := range logs.All() {
		texts = append(texts, e.Message)
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok {
				texts = append(texts, s)
			}
		}
	}
	if !strings.Contains(texts[1], host+"/keys") {
		t.Fatalf("Ready() = %q: it should still say which URL failed", texts[1])
	}
	for _, s := range texts {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%q leaks %q", s, secret)
			}
		}
	}
}

// f0Token is a well-formed token for a key set that has no keys: it only
// needs to reach the key lookup.
const f0Token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln"

// An issuer identifier is a plain https URL (RFC 8414 section 2): no user
// info, no query, no fragment. Anything else would also be echoed into
// errors.
func TestReviewNewDiscoveryRefusesIssuerWithCredentialsOrQuery(t *testing.T) {
	for _, iss := range []string{
		"https://user:pw@as.example.com/oauth2/default",
		"https://as.example.com/oauth2/default?tenant=x",
		"https://as.example.com/oauth2/default#frag",
	} {
		if _, err := NewDiscovery(DiscoveryConfig{Issuer: iss}); err == nil {
			t.Errorf("NewDiscovery(%q) accepted", iss)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("error %q echoes the credentials", err)
		}
	}
}

// RFC 8414 section 2: jwks_uri "MUST use the https scheme". An https
// issuer whose metadata sends the key set (or the introspection and token
// endpoints, which receive client secrets) to plain http would let anyone
// on the path substitute keys or read secrets. Discovery must refuse the
// downgrade rather than fetch keys over http.
func TestReviewDiscoveryRefusesHTTPSDowngrade(t *testing.T) {
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sharedTestKeys().rsa.public()}})
	}))
	t.Cleanup(plain.Close)

	var jwksURI atomic.Value // string: what the metadata advertises
	mux := http.NewServeMux()
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	issuer := tlsSrv.URL + "/oauth2/default"
	meta := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Metadata{
			Issuer:        issuer,
			JWKSURI:       jwksURI.Load().(string),
			TokenEndpoint: issuer + "/v1/token",
		})
	}
	mux.HandleFunc("/oauth2/default/.well-known/oauth-authorization-server", meta)
	mux.HandleFunc("/oauth2/default/.well-known/openid-configuration", meta)
	mux.HandleFunc("/oauth2/default/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sharedTestKeys().rsa.public()}})
	})

	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	client := NewHTTPClient(HTTPClientConfig{})
	client.TLSConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(client.CloseIdleConnections)

	refresh := func(t *testing.T, override Metadata) error {
		d := newTestDiscovery(t, DiscoveryConfig{Issuer: issuer, Client: client, Override: override})
		ks, err := NewKeySet(KeySetConfig{Discovery: d, Client: client})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ks.Close)
		return ks.Refresh(t.Context())
	}

	t.Run("https jwks_uri", func(t *testing.T) { // the control
		jwksURI.Store(issuer + "/v1/keys")
		if err := refresh(t, Metadata{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http jwks_uri overridden by an https one", func(t *testing.T) {
		jwksURI.Store(plain.URL + "/keys")
		if err := refresh(t, Metadata{JWKSURI: issuer + "/v1/keys"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http jwks_uri", func(t *testing.T) {
		jwksURI.Store(plain.URL + "/keys")
		err := refresh(t, Metadata{})
		if err == nil || !strings.Contains(err.Error(), "https") {
			t.Fatalf("Refresh = %v, want a refusal of the http jwks_uri", err)
		}
		if n := plainHits.Load(); n != 0 {
			t.Fatalf("%d requests for keys over plain http", n)
		}
	})
}

// Guard: outbound GETs must not follow redirects (fasthttp's DoDeadline
// does not; DoRedirects would). A metadata URL that redirects elsewhere
// is a failure, and the other host sees no request.
func TestReviewDiscoveryDoesNotFollowRedirects(t *testing.T) {
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"x"}`))
	}))
	t.Cleanup(other.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	d := newTestDiscovery(t, DiscoveryConfig{Issuer: redirector.URL + "/oauth2/default"})
	if _, err := d.Metadata(t.Context()); err == nil || !strings.Contains(err.Error(), "status 302") {
		t.Fatalf("Metadata = %v, want a failure on the 302", err)
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

// Guard: a token naming an unknown kid while the JWKS endpoint hangs
// waits for at most one FetchTimeout, even when its own context has no
// deadline (handlers pass the server's lifetime context).
func TestReviewUnknownKIDWaitIsBoundedByFetchTimeout(t *testing.T) {
	const fetchTimeout = 300 * time.Millisecond
	f := newLocalFixtureWith(t, func(c *KeySetConfig) { c.FetchTimeout = fetchTimeout }, nil)
	gate := make(chan struct{})
	t.Cleanup(sync.OnceFunc(func() { close(gate) }))
	f.iss.configure(func(fi *fakeIssuer) { fi.jwksGate = gate })

	start := time.Now()
	_, err := f.local.Validate(context.Background(), []byte(f.mint(t, f.keys.rsa2, nil)))
	waited := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable (the refresh timed out)", err)
	}
	if waited > fetchTimeout+2*time.Second { // generous: -race on a shared machine
		t.Fatalf("waited %v for keys, want about %v", waited, fetchTimeout)
	}
}
