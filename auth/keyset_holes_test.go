package auth

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/internal/testutil"
)

// TestKeySetSharedKID: RFC 7517 lets keys of different types share a kid.
// Both are kept, and each token gets the key that fits its alg.
func TestKeySetSharedKID(t *testing.T) {
	k := sharedTestKeys()
	rsaShared := signingKey{"shared", jose.RS256, k.rsa.priv}
	ecShared := signingKey{"shared", jose.ES256, k.ec.priv}
	iss := newFakeIssuer(t, rsaShared, ecShared)
	clock := testutil.NewClock(t0)
	ks := newTestKeySet(t, iss.issuer, clock, nil)
	if err := ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := NewLocal(LocalConfig{Issuer: iss.issuer, Audience: testAudience, Keys: ks, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := &localFixture{iss: iss}
	for _, tc := range []struct {
		name string
		key  signingKey
	}{
		{"RS256 under the shared kid", rsaShared},
		{"ES256 under the shared kid", ecShared},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Validate(t.Context(), []byte(f.mint(t, tc.key, nil))); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	if got := ks.Stats().KeysLoaded; got != 2 {
		t.Errorf("KeysLoaded = %d, want 2", got)
	}
	if got := ks.KeyIDs(); !slices.Equal(got, []string{"shared"}) {
		t.Errorf("KeyIDs = %q, want [shared]", got)
	}
	// An alg neither key fits is still refused as a mismatch.
	_, err = l.Validate(t.Context(), []byte(f.mint(t, signingKey{"shared", jose.EdDSA, k.ed.priv}, nil)))
	checkReason(t, err, ErrKeyAlgorithm)
}

// TestKeySetRotatedKeyAfterMadeUpKID: a made-up kid inside the cooldown
// schedules one refresh at the cooldown's end, so a key the issuer
// published meanwhile is loaded then without waiting for another token,
// while a flood of made-up kids still causes at most one fetch per
// cooldown.
func TestKeySetRotatedKeyAfterMadeUpKID(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	madeUp := func(kid string) []byte {
		return []byte(sign(t, signingKey{kid, jose.EdDSA, k.attackerEd.priv}, mustClaims(t, f), nil, false))
	}
	start := f.iss.jwksHits.Load()

	// t0: a made-up kid uses up the cooldown's one refresh.
	_, err := f.local.Validate(t.Context(), madeUp("made-up-0"))
	checkReason(t, err, ErrUnknownKey)
	if got := f.iss.jwksHits.Load() - start; got != 1 {
		t.Fatalf("%d fetches for the first made-up kid, want 1", got)
	}

	// The issuer rotates; tokens of the new key and more made-up kids
	// arrive inside the cooldown: refused at once, no fetch.
	f.iss.setKeys(k.rsa, k.rsa2, k.ec, k.ed)
	newTok := []byte(f.mint(t, k.rsa2, nil))
	for i := range 20 {
		f.clock.Advance(time.Second)
		_, err := f.local.Validate(t.Context(), madeUp("made-up-x"))
		checkReason(t, err, ErrUnknownKey)
		if i == 10 {
			_, err := f.local.Validate(t.Context(), newTok)
			checkReason(t, err, ErrUnknownKey)
		}
	}
	if got := f.iss.jwksHits.Load() - start; got != 1 {
		t.Fatalf("%d fetches inside the cooldown, want 1", got)
	}

	// The cooldown ends: the scheduled refresh runs on its own.
	f.clock.Advance(10 * time.Second)
	testutil.WaitFor(t, "the scheduled refresh to load rsa-2", func() bool {
		return slices.Contains(f.keySet.KeyIDs(), k.rsa2.kid)
	})
	if got := f.iss.jwksHits.Load() - start; got != 2 {
		t.Fatalf("%d fetches after one cooldown, want 2", got)
	}
	if _, err := f.local.Validate(t.Context(), newTok); err != nil {
		t.Fatalf("token of the rotated key after the cooldown: %v", err)
	}
	// The scheduled refresh counts as the new cooldown's unknown-kid
	// refresh: made-up kids right after it fetch nothing.
	_, err = f.local.Validate(t.Context(), madeUp("made-up-y"))
	checkReason(t, err, ErrUnknownKey)
	if got := f.iss.jwksHits.Load() - start; got != 2 {
		t.Fatalf("%d fetches, want still 2", got)
	}
}

// mustClaims is the fixture's default claims as JSON.
func mustClaims(tb testing.TB, f *localFixture) []byte {
	tb.Helper()
	b, err := json.Marshal(f.claims(nil))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestKeySetGeneration: KeyGeneration changes when, and only when, a
// refresh drops a key, and HoldsKey follows the keys by thumbprint.
func TestKeySetGeneration(t *testing.T) {
	f := newLocalFixture(t, nil)
	k := f.keys
	p, err := f.local.Validate(t.Context(), []byte(f.mint(t, k.rsa, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tp := p.KeyThumbprint
	if tp == "" {
		t.Fatal("Principal.KeyThumbprint is empty")
	}
	steps := []struct {
		name    string
		publish []signingKey
		newGen  bool
		holds   bool
	}{
		{"same keys", []signingKey{k.rsa, k.ec, k.ed}, false, true},
		{"a key added", []signingKey{k.rsa, k.rsa2, k.ec, k.ed}, false, true},
		{"another key dropped", []signingKey{k.rsa, k.rsa2, k.ed}, true, true},
		{"the token's key dropped", []signingKey{k.rsa2, k.ed}, true, false},
		{"the token's key back", []signingKey{k.rsa, k.rsa2, k.ed}, false, true},
	}
	for _, st := range steps {
		gen := f.keySet.KeyGeneration()
		f.iss.setKeys(st.publish...)
		if err := f.keySet.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if changed := f.keySet.KeyGeneration() != gen; changed != st.newGen {
			t.Errorf("%s: generation changed = %v, want %v", st.name, changed, st.newGen)
		}
		if got := f.keySet.HoldsKey(tp); got != st.holds {
			t.Errorf("%s: HoldsKey = %v, want %v", st.name, got, st.holds)
		}
	}
}

func TestRetryWait(t *testing.T) {
	const base, maxWait = 5 * time.Second, time.Minute
	for _, tc := range []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{1, 0, 5 * time.Second},
		{2, 0, 10 * time.Second},
		{3, 0, 20 * time.Second},
		{4, 0, 40 * time.Second},
		{5, 0, time.Minute},
		{50, 0, time.Minute},
		{1, 0.5, 3750 * time.Millisecond},
		{5, 0.5, 45 * time.Second},
		{3, 0.999, 10*time.Second + 10*time.Millisecond},
		{2, -1, 10 * time.Second}, // a bad source is clamped
		{2, 7, 5 * time.Second},
	} {
		if got := retryWait(tc.failures, base, maxWait, tc.r); got != tc.want {
			t.Errorf("retryWait(%d, r=%v) = %v, want %v", tc.failures, tc.r, got, tc.want)
		}
	}
}

// TestKeySetBackoffAndLog: while the issuer fails at start, the refresher
// backs off exponentially to MaxRetryInterval, /readyz says why, and the
// log gets the first failure, one summary per MaxRetryInterval and the
// recovery, rather than a warning or two per attempt.
func TestKeySetBackoffAndLog(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(*fakeIssuer)
		fix     func(*fakeIssuer)
		ready   string // what Ready says while failing
		msg     string // the warning's message
	}{
		{
			name:    "discovery fails",
			breakIt: func(f *fakeIssuer) { f.oauthStatus, f.oidcStatus = 503, 503 },
			fix:     func(f *fakeIssuer) { f.oauthStatus, f.oidcStatus = 0, 0 },
			ready:   "auth: keys not loaded yet: discovery: ",
			msg:     "auth: discovery failed",
		},
		{
			name:    "JWKS fails",
			breakIt: func(f *fakeIssuer) { f.mode = jwks500 },
			fix:     func(f *fakeIssuer) { f.mode = jwksOK },
			ready:   "auth: keys not loaded yet: jwks: ",
			msg:     "auth: JWKS not loaded yet; not ready",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := sharedTestKeys()
			iss := newFakeIssuer(t, k.rsa)
			iss.configure(tc.breakIt)
			clock := testutil.NewClock(t0)
			afters := clock.WatchAfter()
			core, logs := observer.New(zapcore.DebugLevel)
			log := zap.New(core)
			d := newTestDiscovery(t, DiscoveryConfig{Issuer: iss.issuer, Now: clock.Now, Logger: log})
			ks, err := NewKeySet(KeySetConfig{
				Discovery: d, Now: clock.Now, After: clock.After, Logger: log,
				Rand: func() float64 { return 0 },
			})
			if err != nil {
				t.Fatal(err)
			}
			ks.Start()

			// Failures at 0, 5, 15, 35, 75, 135 and 195 s.
			for i, want := range []time.Duration{5, 10, 20, 40, 60, 60, 60} {
				got := <-afters
				if want *= time.Second; got != want {
					t.Fatalf("wait after failure %d = %v, want %v", i+1, got, want)
				}
				if err := ks.Ready(); err == nil || !strings.HasPrefix(err.Error(), tc.ready) {
					t.Fatalf("Ready = %v, want it to start %q", err, tc.ready)
				}
				if i == 6 {
					iss.configure(tc.fix)
				}
				clock.Advance(got)
			}
			if got := <-afters; got != 5*time.Minute {
				t.Fatalf("wait after the recovery = %v, want RefreshInterval", got)
			}
			ks.Close()
			if err := ks.Ready(); err != nil {
				t.Fatalf("Ready after the recovery = %v", err)
			}

			warnings := logs.FilterLevelExact(zapcore.WarnLevel).All()
			// The first failure, then at 75, 135 and 195 s: one a minute.
			if len(warnings) != 4 {
				for _, w := range warnings {
					t.Logf("warning: %s %v", w.Message, w.ContextMap())
				}
				t.Fatalf("%d warnings for 7 failures over 195s, want 4", len(warnings))
			}
			for i, w := range warnings {
				if w.Message != tc.msg {
					t.Errorf("warning %d = %q, want %q", i, w.Message, tc.msg)
				}
			}
			if got := warnings[3].ContextMap()["failures_in_a_row"]; got != int64(7) {
				t.Errorf("last summary: failures_in_a_row = %v, want 7", got)
			}
			recovered := logs.FilterLevelExact(zapcore.InfoLevel).FilterField(zap.Int("failures_before", 7))
			if n := recovered.FilterMessage("auth: JWKS refresh recovered").Len(); n != 1 {
				t.Errorf("%d lines report the key set's recovery after 7 failures, want 1", n)
			}
		})
	}
}

// FuzzKeySelection: parseJWKS and find never panic, and find returns a key
// only if it has the token's kid and accepts the token's alg.
func FuzzKeySelection(f *testing.F) {
	k := sharedTestKeys()
	shared := func(key signingKey) jose.JSONWebKey {
		j := key.public()
		j.KeyID = "shared"
		return j
	}
	seed, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		shared(k.rsa), shared(k.ec), k.ed.public(), {Key: k.rsa2.priv.Public()},
	}})
	if err != nil {
		f.Fatal(err)
	}
	for _, alg := range append(DefaultAlgorithms(), "HS256", "none", "") {
		f.Add(seed, "shared", alg)
	}
	f.Add(seed, "ed-1", "EdDSA")
	f.Add(seed, "", "RS256")
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AAAA","y":"AAAA"}]}`), "a", "ES256")
	f.Add([]byte(`{"keys":[]}`), "", "")
	f.Fuzz(func(t *testing.T, body []byte, kid, alg string) {
		snap, err := parseJWKS(body, true, zap.NewNop())
		if err != nil {
			return
		}
		v, err := snap.find(kid, alg)
		if v == nil {
			return
		}
		if err != nil {
			t.Fatalf("find returned a key and an error: %v", err)
		}
		if !v.accepts(alg) {
			t.Fatalf("find(%q, %q) returned a key (kid %q, alg %q) that does not accept the alg", kid, alg, v.kid, v.alg)
		}
		if kid != "" && v.kid != kid {
			t.Fatalf("find(%q, %q) returned the key of kid %q", kid, alg, v.kid)
		}
		if _, ok := snap.byThumbprint[v.thumbprint]; !ok {
			t.Fatal("the key found is not indexed by its thumbprint")
		}
	})
}
