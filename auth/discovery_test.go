package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/tokengate/tokengate/internal/testutil"
)

// This file also holds the test fixtures shared by the package's local
// validation tests: the fixed time t0 (for a testutil.Clock), signing keys,
// and a fake authorization server on a loopback port that serves discovery
// and a JWKS.

// t0 is the fixed "now" of the tests: whole seconds, so NumericDates
// round-trip exactly.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// signingKey is a private key with the kid and alg it signs with.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// public returns the key as the issuer publishes it.
func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// testKeys are generated once per test binary: RSA 2048 is slow under -race.
type testKeys struct {
	rsa, rsa2, ec, ed signingKey // published by the fake issuer (rsa2 only after rotation)
	attacker          signingKey // never published
	attackerEd        signingKey // never published
}

var sharedTestKeys = sync.OnceValue(func() *testKeys {
	mustRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	_, edAtt, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{
		rsa:        signingKey{"rsa-1", jose.RS256, mustRSA()},
		rsa2:       signingKey{"rsa-2", jose.RS256, mustRSA()},
		ec:         signingKey{"ec-1", jose.ES256, ec},
		ed:         signingKey{"ed-1", jose.EdDSA, ed},
		attacker:   signingKey{"attacker", jose.RS256, mustRSA()},
		attackerEd: signingKey{"attacker-ed", jose.EdDSA, edAtt},
	}
})

// jwksMode is how the fake issuer answers JWKS requests.
type jwksMode int

const (
	jwksOK       jwksMode = iota
	jwks500               // 500 with a JSON error body
	jwksHTML              // 200 text/html login page
	jwksEmpty             // 200, empty body
	jwksNoKeys            // 200 {"keys":[]}
	jwksBadJSON           // 200 truncated JSON
	jwksHuge              // 200, a JSON body of hugeJWKSSize bytes
	jwksOnlyJunk          // 200, keys none of which is usable
)

const hugeJWKSSize = 256 << 10

// fakeIssuer is a test-only authorization server: discovery documents
// and a JWKS, with request counters and switchable failures.
type fakeIssuer struct {
	srv    *httptest.Server
	issuer string // srv.URL + "/oauth2/default"

	mu            sync.Mutex // guards the fields below
	keys          []jose.JSONWebKey
	mode          jwksMode
	oauthStatus   int           // non-zero: the RFC 8414 document answers with this status
	oidcStatus    int           // likewise for openid-configuration
	metaIssuer    string        // non-empty: the issuer the documents claim
	cacheControl  string        // Cache-Control of JWKS responses
	discoveryGate chan struct{} // non-nil: metadata responses wait for it to close
	jwksGate      chan struct{} // non-nil: JWKS responses wait for it to close

	// jwksArrived receives a value (if it has room) when a JWKS request
	// starts waiting on jwksGate.
	jwksArrived chan struct{}

	oauthHits, oidcHits, jwksHits atomic.Int64
}

func newFakeIssuer(tb testing.TB, published ...signingKey) *fakeIssuer {
	tb.Helper()
	f := &fakeIssuer{jwksArrived: make(chan struct{}, 1)}
	for _, k := range published {
		f.keys = append(f.keys, k.public())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/default/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		f.oauthHits.Add(1)
		f.serveMetadata(w, func() int { return f.oauthStatus })
	})
	mux.HandleFunc("/oauth2/default/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.oidcHits.Add(1)
		f.serveMetadata(w, func() int { return f.oidcStatus })
	})
	mux.HandleFunc("/oauth2/default/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		f.jwksHits.Add(1)
		f.serveJWKS(w)
	})
	f.srv = httptest.NewServer(mux) // 127.0.0.1
	f.issuer = f.srv.URL + "/oauth2/default"
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) serveMetadata(w http.ResponseWriter, status func() int) {
	f.mu.Lock()
	gate := f.discoveryGate
	sc := status()
	iss := f.issuer
	if f.metaIssuer != "" {
		iss = f.metaIssuer
	}
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if sc != 0 {
		http.Error(w, `{"error":"nope"}`, sc)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Metadata{
		Issuer:                iss,
		JWKSURI:               f.issuer + "/v1/keys",
		TokenEndpoint:         f.issuer + "/v1/token",
		IntrospectionEndpoint: f.issuer + "/v1/introspect",
		RevocationEndpoint:    f.issuer + "/v1/revoke",
	})
}

func (f *fakeIssuer) serveJWKS(w http.ResponseWriter) {
	f.mu.Lock()
	gate := f.jwksGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case f.jwksArrived <- struct{}{}:
		default:
		}
		<-gate
	}
	f.mu.Lock()
	mode, keys, cc := f.mode, f.keys, f.cacheControl
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	switch mode {
	case jwksOK:
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	case jwks500:
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errorCode":"E0000009"}`))
	case jwksHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><html><body>Sign in</body></html>"))
	case jwksEmpty:
	case jwksNoKeys:
		_, _ = w.Write([]byte(`{"keys":[]}`))
	case jwksBadJSON:
		_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA",`))
	case jwksHuge:
		pad := strings.Repeat(" ", hugeJWKSSize)
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		_, _ = w.Write([]byte(`{"padding":"` + pad + `",` + string(b[1:])))
	case jwksOnlyJunk:
		_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"hmac"},{"kty":"XYZ","kid":"odd"}]}`))
	}
}

func (f *fakeIssuer) setKeys(keys ...signingKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = f.keys[:0:0]
	for _, k := range keys {
		f.keys = append(f.keys, k.public())
	}
}

// configure changes the fake's behaviour under its lock.
func (f *fakeIssuer) configure(fn func(f *fakeIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIssuer) setMode(m jwksMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

// deadIssuerURL returns an issuer URL on a loopback port nobody listens on.
func deadIssuerURL(tb testing.TB) string {
	tb.Helper()
	return "http://" + testutil.ClosedAddr(tb) + "/oauth2/default"
}

func newTestDiscovery(tb testing.TB, cfg DiscoveryConfig) *Discovery {
	tb.Helper()
	d, err := NewDiscovery(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return d
}

func TestNewDiscoveryConfig(t *testing.T) {
	for _, tc := range []struct {
		name, issuer, want string
	}{
		{"no issuer", "", "issuer is required"},
		{"not a URL", "okta.example.com/oauth2/default", "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDiscovery(DiscoveryConfig{Issuer: tc.issuer})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "auth: ") {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestDiscoveryMetadata(t *testing.T) {
	f := newFakeIssuer(t)
	d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer})
	if d.Issuer() != f.issuer {
		t.Fatalf("Issuer() = %q", d.Issuer())
	}
	for range 3 {
		md, err := d.Metadata(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if md.Issuer != f.issuer || md.JWKSURI != f.issuer+"/v1/keys" || md.IntrospectionEndpoint != f.issuer+"/v1/introspect" {
			t.Fatalf("metadata = %+v", md)
		}
	}
	if got := f.oauthHits.Load(); got != 1 {
		t.Fatalf("oauth-authorization-server fetched %d times, want 1 (success is kept)", got)
	}
	if got := f.oidcHits.Load(); got != 0 {
		t.Fatalf("openid-configuration fetched %d times, want 0", got)
	}

	// Closing keeps what was found; a closed Discovery fetches no more.
	d.Close()
	if _, err := d.Metadata(t.Context()); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	closed := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer})
	closed.Close()
	if _, err := closed.Metadata(t.Context()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("closed before any fetch: err = %v", err)
	}
	if got := f.oauthHits.Load(); got != 1 {
		t.Fatalf("%d fetches, want still 1", got)
	}
}

func TestDiscoveryFallsBackToOpenIDConfiguration(t *testing.T) {
	f := newFakeIssuer(t)
	f.configure(func(f *fakeIssuer) { f.oauthStatus = http.StatusNotFound })
	d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer})
	uri, err := d.Endpoint(t.Context(), func(m Metadata) string { return m.JWKSURI })
	if err != nil {
		t.Fatal(err)
	}
	if uri != f.issuer+"/v1/keys" {
		t.Fatalf("jwks_uri = %q", uri)
	}
	if f.oauthHits.Load() != 1 || f.oidcHits.Load() != 1 {
		t.Fatalf("hits: oauth %d, oidc %d; want 1 and 1", f.oauthHits.Load(), f.oidcHits.Load())
	}
}

func TestDiscoveryFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeIssuer)
		want  string
	}{
		{"issuer mismatch", func(f *fakeIssuer) { f.metaIssuer = "https://evil.example.com/oauth2/default" }, "does not match configured issuer"},
		{"both documents 500", func(f *fakeIssuer) { f.oauthStatus, f.oidcStatus = 500, 500 }, "status 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIssuer(t)
			f.configure(tc.setup)
			d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer})
			_, err := d.Metadata(t.Context())
			var ue *UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want *UnavailableError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestDiscoveryIssuerDown(t *testing.T) {
	d := newTestDiscovery(t, DiscoveryConfig{Issuer: deadIssuerURL(t)})
	_, err := d.Metadata(t.Context())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want unavailable: connection refused", err)
	}
}

func TestDiscoveryRetryIsRateLimited(t *testing.T) {
	f := newFakeIssuer(t)
	f.configure(func(f *fakeIssuer) { f.oauthStatus, f.oidcStatus = 503, 503 })
	clock := testutil.NewClock(t0)
	d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer, RetryInterval: 10 * time.Second, Now: clock.Now})

	for range 5 {
		if _, err := d.Metadata(t.Context()); err == nil {
			t.Fatal("want an error")
		}
	}
	if got := f.oauthHits.Load(); got != 1 {
		t.Fatalf("%d fetches within RetryInterval, want 1", got)
	}

	f.configure(func(f *fakeIssuer) { f.oauthStatus, f.oidcStatus = 0, 0 })
	clock.Advance(9 * time.Second)
	if _, err := d.Metadata(t.Context()); err == nil {
		t.Fatal("want the remembered error within RetryInterval")
	}
	clock.Advance(time.Second)
	if _, err := d.Metadata(t.Context()); err != nil {
		t.Fatalf("after RetryInterval: %v", err)
	}
	if got := f.oauthHits.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}
}

func TestDiscoveryOverride(t *testing.T) {
	f := newFakeIssuer(t)
	all := Metadata{
		JWKSURI:               "https://keys.example.com/jwks",
		TokenEndpoint:         "https://as.example.com/token",
		IntrospectionEndpoint: "https://as.example.com/introspect",
		RevocationEndpoint:    "https://as.example.com/revoke",
	}

	t.Run("every field overridden", func(t *testing.T) {
		d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer, Override: all})
		md, err := d.Metadata(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := all
		want.Issuer = f.issuer
		if md != want {
			t.Fatalf("metadata = %+v, want %+v", md, want)
		}
	})
	t.Run("one field overridden", func(t *testing.T) {
		d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer, Override: Metadata{JWKSURI: all.JWKSURI}})
		uri, err := d.Endpoint(t.Context(), func(m Metadata) string { return m.JWKSURI })
		if err != nil || uri != all.JWKSURI {
			t.Fatalf("Endpoint = %q, %v", uri, err)
		}
		if f.oauthHits.Load() != 0 {
			t.Fatal("an overridden endpoint caused a discovery request")
		}
		md, err := d.Metadata(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if md.JWKSURI != all.JWKSURI || md.TokenEndpoint != f.issuer+"/v1/token" {
			t.Fatalf("merged metadata = %+v", md)
		}
		if f.oauthHits.Load() != 1 {
			t.Fatalf("%d discovery requests, want 1", f.oauthHits.Load())
		}
	})
}

func TestDiscoveryEndpointNotAdvertised(t *testing.T) {
	f := newFakeIssuer(t)
	d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer})
	_, err := d.Endpoint(t.Context(), func(Metadata) string { return "" })
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not advertised") {
		t.Fatalf("err = %v", err)
	}
}

// TestDiscoveryConcurrentCallersShareOneFetch holds the metadata response
// until every caller waits, and shows that a caller whose context ends
// leaves without waiting for the shared fetch.
func TestDiscoveryConcurrentCallersShareOneFetch(t *testing.T) {
	f := newFakeIssuer(t)
	gate := make(chan struct{})
	f.configure(func(f *fakeIssuer) { f.discoveryGate = gate })
	d := newTestDiscovery(t, DiscoveryConfig{Issuer: f.issuer})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // runs before d.Close and the server's Close

	const n = 50
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := d.Metadata(t.Context())
			errs <- err
		}()
	}

	// A caller with its own, already-ended context leaves at once even
	// though the fetch is stuck. The fetch has started: the first Metadata
	// call above may not have run yet, so start one here too (it joins or
	// starts the single fetch).
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Metadata(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled caller: err = %v", err)
	}

	release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.oauthHits.Load(); got != 1 {
		t.Fatalf("%d concurrent fetches, want 1", got)
	}
}

func TestParseMaxAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", -1},
		{"public, max-age=300", 300 * time.Second},
		{"max-age=\"60\", must-revalidate", time.Minute},
		{"MAX-AGE=5", 5 * time.Second},
		{"max-age=-3", -1},
		{"max-age=banana", -1},
		{"no-store", 0},
		{"max-age=600, no-cache", 0},
		{"max-age=99999999999999", -1},
	} {
		if got := parseMaxAge([]byte(tc.in)); got != tc.want {
			t.Errorf("parseMaxAge(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// Errors from fetching metadata and keys reach logs and, through
// KeySet.Ready, the unauthenticated /readyz body. They must not carry
// credentials embedded in a URL (user info, or a query such as an API key).
func TestFetchErrorsRedactURLSecrets(t *testing.T) {
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
func TestNewDiscoveryRefusesIssuerWithCredentialsOrQuery(t *testing.T) {
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
func TestDiscoveryRefusesHTTPSDowngrade(t *testing.T) {
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
func TestDiscoveryDoesNotFollowRedirects(t *testing.T) {
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

// TestDiscoveryRFC8414PathForm: an issuer with a path whose server
// publishes its metadata only where RFC 8414 section 3.1 puts it, the
// well-known part between host and path, is found there, after the two
// appended forms; an issuer without a path has no third URL.
func TestDiscoveryRFC8414PathForm(t *testing.T) {
	var issuer string
	var hits []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/.well-known/oauth-authorization-server/tenant/one" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer, issuer+"/keys")
	}))
	t.Cleanup(srv.Close)
	issuer = srv.URL + "/tenant/one"

	d := newTestDiscovery(t, DiscoveryConfig{Issuer: issuer})
	md, err := d.Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if md.JWKSURI != issuer+"/keys" {
		t.Fatalf("jwks_uri = %q", md.JWKSURI)
	}
	want := []string{
		"/tenant/one/.well-known/oauth-authorization-server",
		"/tenant/one/.well-known/openid-configuration",
		"/.well-known/oauth-authorization-server/tenant/one",
	}
	if !slices.Equal(hits, want) {
		t.Fatalf("requests %q, want %q", hits, want)
	}

	for _, tc := range []struct{ issuer, want string }{
		{"https://as.example.com", ""},
		{"https://as.example.com/", ""},
		{"https://as.example.com/t", "https://as.example.com/.well-known/oauth-authorization-server/t"},
		{"https://as.example.com:8443/a/b/", "https://as.example.com:8443/.well-known/oauth-authorization-server/a/b"},
	} {
		urls := wellKnownURLs(tc.issuer)
		got := ""
		if len(urls) == 3 {
			got = urls[2]
		}
		if got != tc.want || len(urls) < 2 {
			t.Errorf("wellKnownURLs(%q) = %q, want third %q", tc.issuer, urls, tc.want)
		}
	}
}
