package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/internal/testutil"
)

func TestNewKeySetConfig(t *testing.T) {
	if _, err := NewKeySet(KeySetConfig{}); err == nil || !strings.Contains(err.Error(), "Discovery is required") {
		t.Fatalf("err = %v", err)
	}
}

// TestKeySetRotation: a token signed with a new key validates after one
// refresh, triggered by its unknown kid; after the old key leaves the
// JWKS and the set is refreshed, tokens signed with it stop validating.
func TestKeySetRotation(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	oldTok := []byte(f.mint(t, k.rsa, nil))
	newTok := []byte(f.mint(t, k.rsa2, nil))
	if _, err := f.local.Validate(t.Context(), oldTok); err != nil {
		t.Fatal(err)
	}

	// Rotation: the issuer publishes rsa-2 beside rsa-1.
	f.iss.setKeys(k.rsa, k.rsa2, k.ec, k.ed)
	before := f.iss.jwksHits.Load()
	if _, err := f.local.Validate(t.Context(), newTok); err != nil {
		t.Fatalf("token with the new kid: %v", err)
	}
	if got := f.iss.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for the new kid, want 1", got)
	}
	if _, err := f.local.Validate(t.Context(), newTok); err != nil {
		t.Fatal(err)
	}
	if got := f.iss.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches after the key was loaded, want still 1", got)
	}
	if got, want := f.keySet.KeyIDs(), []string{"ec-1", "ed-1", "rsa-1", "rsa-2"}; !slices.Equal(got, want) {
		t.Fatalf("KeyIDs = %q, want %q", got, want)
	}

	// Removal: rsa-1 leaves the JWKS; the whole set is replaced.
	f.iss.setKeys(k.rsa2, k.ec, k.ed)
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := f.local.Validate(t.Context(), oldTok)
	checkReason(t, err, ErrUnknownKey)
	if _, err := f.local.Validate(t.Context(), newTok); err != nil {
		t.Fatal(err)
	}
}

// TestKeySetUnknownKIDFlood sends 1000 concurrent tokens with random
// unknown kids: at most one JWKS fetch per cooldown, every answer a quick
// 401 (never a 503), and the next cooldown allows one more fetch.
func TestKeySetUnknownKIDFlood(t *testing.T) {
	f := newLocalFixture(t, nil)
	payload, _ := json.Marshal(f.claims(nil))
	const n = 1000
	mintBatch := func() [][]byte {
		toks := make([][]byte, n)
		for i := range toks {
			var kid [8]byte
			_, _ = rand.Read(kid[:])
			// Ed25519 signs fast; the kid is what matters.
			toks[i] = []byte(sign(t, signingKey{hex.EncodeToString(kid[:]), jose.EdDSA, f.keys.attackerEd.priv}, payload, nil, false))
		}
		return toks
	}
	flood := func(toks [][]byte) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(toks))
		for i, tok := range toks {
			wg.Go(func() {
				_, errs[i] = f.local.Validate(t.Context(), tok)
			})
		}
		wg.Wait()
		for _, err := range errs {
			checkReason(t, err, ErrUnknownKey)
		}
	}

	start := f.iss.jwksHits.Load()
	flood(mintBatch())
	if got := f.iss.jwksHits.Load() - start; got != 1 {
		t.Fatalf("first cooldown: %d JWKS fetches, want 1", got)
	}

	f.clock.Advance(29 * time.Second)
	flood(mintBatch())
	if got := f.iss.jwksHits.Load() - start; got != 1 {
		t.Fatalf("still within the cooldown: %d JWKS fetches, want 1", got)
	}

	f.clock.Advance(time.Second)
	flood(mintBatch())
	if got := f.iss.jwksHits.Load() - start; got != 2 {
		t.Fatalf("second cooldown: %d JWKS fetches, want 2", got)
	}
}

// TestKeySetJoinsFetchInFlight: concurrent tokens with a new kid share one
// fetch; a caller whose context ends leaves at once with ErrUnavailable.
func TestKeySetJoinsFetchInFlight(t *testing.T) {
	f := newLocalFixture(t, nil)
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	f.iss.setKeys(f.keys.rsa, f.keys.rsa2)
	f.iss.configure(func(fi *fakeIssuer) { fi.jwksGate = gate })
	tok := []byte(f.mint(t, f.keys.rsa2, nil))

	// Start the one fetch and wait until the server holds it.
	errs := make(chan error, 20)
	go func() {
		_, err := f.local.Validate(t.Context(), tok)
		errs <- err
	}()
	<-f.iss.jwksArrived

	for range cap(errs) - 1 {
		go func() {
			_, err := f.local.Validate(t.Context(), tok)
			errs <- err
		}()
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.local.Validate(ctx, tok)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, context.Canceled) {
		t.Fatalf("caller with an ended context: err = %v, want *UnavailableError wrapping context.Canceled", err)
	}

	release()
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.iss.jwksHits.Load(); got != 2 { // initial load + one refresh
		t.Fatalf("%d JWKS fetches, want 2", got)
	}
}

// TestKeySetIssuerDownAtStart: not ready, with the reason; validation is
// "unavailable" (503), never "invalid" (401).
func TestKeySetIssuerDownAtStart(t *testing.T) {
	k := sharedTestKeys()
	clock := testutil.NewClock(t0)
	issuer := deadIssuerURL(t)
	ks := newTestKeySet(t, issuer, clock, nil)

	if err := ks.Ready(); err == nil || !strings.Contains(err.Error(), "no fetch attempted") ||
		!errors.Is(err, ErrKeysNotLoaded) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready before Start = %v, want ErrKeysNotLoaded and not ErrUnavailable: nothing failed yet", err)
	}
	ks.Start()
	if err := ks.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded against a dead issuer")
	}
	err := ks.Ready()
	if err == nil || !strings.HasPrefix(err.Error(), "auth: keys not loaded yet: discovery: ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Ready = %v, want keys not loaded: discovery: … connection refused", err)
	}
	if !errors.Is(err, ErrKeysNotLoaded) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready = %v, want ErrKeysNotLoaded and ErrUnavailable after a failed fetch", err)
	}

	l, err := NewLocal(LocalConfig{Issuer: issuer, Audience: testAudience, Keys: ks, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := &localFixture{iss: &fakeIssuer{issuer: issuer}}
	_, err = l.Validate(t.Context(), []byte(f.mint(t, k.rsa, nil)))
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
	if ue.RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %v", ue.RetryAfter)
	}
	// Tokens rejected before any key lookup are still 401.
	_, err = l.Validate(t.Context(), []byte(unsignedToken(`{"alg":"none"}`, f.claims(nil), "")))
	checkReason(t, err, ErrAlgorithm)
}

// TestKeySetIssuerDownAfterStart: the last good keys keep validating.
func TestKeySetIssuerDownAfterStart(t *testing.T) {
	// A long RetryInterval keeps the background refresher out of the
	// fetch counts below.
	f := newLocalFixtureWith(t, func(c *KeySetConfig) { c.RetryInterval = time.Hour }, nil)
	tok := []byte(f.mint(t, f.keys.rsa, nil))
	f.keySet.Start()
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}

	f.iss.srv.Close()
	if err := f.keySet.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded against a closed server")
	}
	if err := f.keySet.Ready(); err != nil {
		t.Fatalf("Ready after a failed refresh = %v, want nil", err)
	}
	if _, err := f.local.Validate(t.Context(), tok); err != nil {
		t.Fatalf("with the issuer down: %v", err)
	}

	// A new kid now needs a fetch that fails: that token could not be
	// checked (503). Within the cooldown no fetch is tried, but the last
	// one failed, so the next new kid could not be checked either: 503
	// again, never a 401 that a client would take as "drop this token".
	_, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa2, nil)))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("new kid, refresh failed: err = %v, want ErrUnavailable", err)
	}
	_, err = f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa2, nil)))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("new kid within the cooldown after a failed refresh: err = %v, want ErrUnavailable", err)
	}
}

// TestKeySetBadJWKSKeepsOldKeys: a bad JWKS response is an error and
// changes nothing.
func TestKeySetBadJWKSKeepsOldKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   jwksMode
		client HTTPClient // nil: NewHTTPClient with a 64 KiB limit
		maxLen int        // KeySetConfig.MaxResponseSize
		want   string
	}{
		{name: "HTML", mode: jwksHTML, want: "not JSON"},
		{name: "empty", mode: jwksEmpty, want: "empty response body"},
		{name: "no keys", mode: jwksNoKeys, want: "JWKS has no keys"},
		{name: "invalid JSON", mode: jwksBadJSON, want: "invalid JWKS JSON"},
		{name: "status 500", mode: jwks500, want: "status 500"},
		{name: "no usable key", mode: jwksOnlyJunk, want: "no usable signing key"},
		{name: "over the client's limit", mode: jwksHuge, want: "over the size limit"},
		{name: "over MaxResponseSize, client without limit", mode: jwksHuge,
			client: &fasthttp.Client{}, maxLen: 64 << 10, want: "over the 65536-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := sharedTestKeys()
			iss := newFakeIssuer(t, k.rsa)
			clock := testutil.NewClock(t0)
			client := tc.client
			if client == nil {
				client = NewHTTPClient(HTTPClientConfig{MaxResponseBodySize: 64 << 10})
			}
			ks := newTestKeySet(t, iss.issuer, clock, func(c *KeySetConfig) {
				c.Client = client
				c.MaxResponseSize = tc.maxLen
			})
			if err := ks.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			l, err := NewLocal(LocalConfig{Issuer: iss.issuer, Audience: testAudience, Keys: ks, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			f := &localFixture{iss: iss}
			tok := []byte(f.mint(t, k.rsa, nil))

			iss.setMode(tc.mode)
			err = ks.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Refresh = %v, want it to mention %q", err, tc.want)
			}
			if err := ks.Ready(); err != nil {
				t.Fatalf("Ready = %v", err)
			}
			if got := ks.KeyIDs(); !slices.Equal(got, []string{"rsa-1"}) {
				t.Fatalf("KeyIDs = %q, want the old keys", got)
			}
			if _, err := l.Validate(t.Context(), tok); err != nil {
				t.Fatalf("old key after a bad refresh: %v", err)
			}
		})
	}
}

func TestKeySetHugeJWKSWithinLimit(t *testing.T) {
	k := sharedTestKeys()
	iss := newFakeIssuer(t, k.rsa)
	iss.setMode(jwksHuge)
	ks := newTestKeySet(t, iss.issuer, testutil.NewClock(t0), nil) // default 1 MiB client
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatalf("a %d-byte JWKS under the default limit: %v", hugeJWKSSize, err)
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	k := sharedTestKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := k.ec.public()
	mustJSON := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	encKey := jose.JSONWebKey{Key: k.rsa.priv.Public(), KeyID: "enc", Use: "enc"}
	shortKey := jose.JSONWebKey{Key: &small.PublicKey, KeyID: "short", Use: "sig"}
	privKey := jose.JSONWebKey{Key: k.ed.priv, KeyID: "private-ed", Use: "sig"} // published secret: skipped
	wrongAlg := jose.JSONWebKey{Key: k.rsa.priv.Public(), KeyID: "rsa-as-es", Algorithm: "ES256"}
	noKID := jose.JSONWebKey{Key: k.rsa.priv.Public()}
	var verifyOnly map[string]any
	_ = json.Unmarshal([]byte(mustJSON(k.rsa2.public())), &verifyOnly)
	delete(verifyOnly, "use")
	verifyOnly["key_ops"] = []string{"verify"}
	var encryptOnly map[string]any
	_ = json.Unmarshal([]byte(mustJSON(jose.JSONWebKey{Key: k.rsa.priv.Public(), KeyID: "ops-enc"})), &encryptOnly)
	encryptOnly["key_ops"] = []string{"encrypt"}

	body := `{"keys":[` + strings.Join([]string{
		mustJSON(good),
		mustJSON(encKey),
		mustJSON(shortKey),
		mustJSON(privKey),
		mustJSON(wrongAlg),
		mustJSON(noKID),
		mustJSON(verifyOnly),
		mustJSON(encryptOnly),
		mustJSON(good), // duplicate kid
		`{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`,
		`{"kty":"RSA","kid":"broken","n":"AQAB"}`,
		`{"kty":"OKP","crv":"X25519","kid":"x","x":"` + strings.Repeat("A", 43) + `"}`,
		`"not an object"`,
	}, ",") + `]}`

	snap, err := parseJWKS([]byte(body), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range snap.byKID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if want := []string{"ec-1", "rsa-2"}; !slices.Equal(ids, want) {
		t.Fatalf("usable kids = %q, want %q", ids, want)
	}
	if len(snap.all) != 3 { // plus the RSA key without kid
		t.Fatalf("%d usable keys, want 3", len(snap.all))
	}
}

func TestRefreshWait(t *testing.T) {
	for _, tc := range []struct {
		maxAge, interval, want time.Duration
	}{
		{-1, 5 * time.Minute, 5 * time.Minute},
		{0, 5 * time.Minute, time.Minute},
		{10 * time.Second, 5 * time.Minute, time.Minute},
		{2 * time.Minute, 5 * time.Minute, 2 * time.Minute},
		{time.Hour, 5 * time.Minute, 5 * time.Minute},
		{10 * time.Second, 30 * time.Second, 30 * time.Second},
	} {
		if got := refreshWait(tc.maxAge, tc.interval); got != tc.want {
			t.Errorf("refreshWait(%v, %v) = %v, want %v", tc.maxAge, tc.interval, got, tc.want)
		}
	}
}

func TestKeySetHonoursMaxAge(t *testing.T) {
	k := sharedTestKeys()
	iss := newFakeIssuer(t, k.rsa)
	iss.configure(func(f *fakeIssuer) { f.cacheControl = "public, max-age=120" })
	ks := newTestKeySet(t, iss.issuer, testutil.NewClock(t0), nil)
	if got := ks.nextRefresh(0); got != 5*time.Minute {
		t.Fatalf("before any fetch: next refresh in %v, want the interval", got)
	}
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ks.nextRefresh(0); got != 2*time.Minute {
		t.Fatalf("next refresh in %v, want max-age 2m", got)
	}
	if got := ks.nextRefresh(1); got != 5*time.Second {
		t.Fatalf("after a failure: next refresh in %v, want RetryInterval", got)
	}
}

// TestKeySetLifecycle: Start fetches at once and in the background; Close
// stops the refresher and waits; Start after Close does nothing, and a
// closed set still serves the keys it has.
func TestKeySetLifecycle(t *testing.T) {
	f := newLocalFixture(t, nil)
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	f.iss.configure(func(fi *fakeIssuer) { fi.jwksGate = gate })
	before := f.iss.jwksHits.Load()
	f.keySet.Start()
	f.keySet.Start()    // idempotent
	<-f.iss.jwksArrived // the refresher fetched on its own
	if err := f.keySet.Ready(); err != nil {
		t.Fatalf("Ready = %v (keys were loaded before)", err)
	}
	release()
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.iss.jwksHits.Load() - before; got < 1 || got > 2 {
		t.Fatalf("%d fetches after Start and Refresh, want 1 or 2", got)
	}
	f.keySet.Close()
	f.keySet.Close() // idempotent
	f.keySet.Start()
	if err := f.keySet.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Refresh after Close = %v", err)
	}
	if _, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa, nil))); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	// An unknown kid on a closed set is a plain 401, with no fetch.
	n := f.iss.jwksHits.Load()
	_, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa2, nil)))
	checkReason(t, err, ErrUnknownKey)
	if f.iss.jwksHits.Load() != n {
		t.Fatal("a closed key set fetched")
	}
}

func TestKeySetCloseWithoutStart(t *testing.T) {
	ks := newTestKeySet(t, "https://as.example.com/oauth2/default", testutil.NewClock(t0), nil)
	ks.Close()
	if err := ks.Ready(); err == nil {
		t.Fatal("Ready = nil without keys")
	}
}

// TestKeySetLookupRacingARefresh: a request that loaded the key snapshot
// just before a refresh published the new key, and then finds no fetch to
// join and the unknown-kid cooldown running, must still find the key (it
// once answered 401 "unknown signing key" for a key the set held, a race
// seen in CI during TestKeySetJoinsFetchInFlight).
func TestKeySetLookupRacingARefresh(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	stale := f.keySet.keys.Load() // what the racing request saw: no rsa-2

	// An unknown kid starts the cooldown (its refresh finds nothing new).
	if _, err := f.keySet.verificationKey(t.Context(), "no-such-kid", "RS256"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid: %v", err)
	}
	// Then a refresh publishes rsa-2.
	f.iss.setKeys(k.rsa, k.rsa2, k.ec, k.ed)
	if err := f.keySet.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := f.iss.jwksHits.Load()
	v, err := f.keySet.verificationKeyFrom(t.Context(), stale, k.rsa2.kid, "RS256")
	if err != nil || v == nil {
		t.Fatalf("lookup from a stale snapshot after the refresh: key %v, err %v; want the key", v, err)
	}
	if got := f.iss.jwksHits.Load() - before; got != 0 {
		t.Fatalf("%d JWKS fetches, want 0 (inside the cooldown)", got)
	}
}

// A JWK that carries its private half ("d") has been published to the
// world: anyone can sign with it, so a signature it verifies proves
// nothing. Such keys must be refused, not quietly reduced to their public
// part.
func TestKeySetRefusesPublishedPrivateKeys(t *testing.T) {
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

// Guard: a token naming an unknown kid while the JWKS endpoint hangs
// waits for at most one FetchTimeout, even when its own context has no
// deadline (handlers pass the server's lifetime context). The fetch's own
// deadline is what ends the wait: the error is the client's timeout. The
// one-minute guard only turns a regression (a wait without end: the gate
// opens at cleanup) into a failure instead of a hung test binary.
func TestKeySetUnknownKIDWaitIsBoundedByFetchTimeout(t *testing.T) {
	f := newLocalFixtureWith(t, func(c *KeySetConfig) { c.FetchTimeout = 300 * time.Millisecond }, nil)
	gate := make(chan struct{})
	t.Cleanup(sync.OnceFunc(func() { close(gate) }))
	f.iss.configure(func(fi *fakeIssuer) { fi.jwksGate = gate })

	token := []byte(f.mint(t, f.keys.rsa2, nil))
	done := make(chan error, 1)
	go func() {
		_, err := f.local.Validate(context.Background(), token)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Validate still waits for keys a minute after FetchTimeout (300ms)")
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, fasthttp.ErrTimeout) {
		t.Fatalf("err = %v, want ErrUnavailable caused by the JWKS fetch's timeout", err)
	}
}
