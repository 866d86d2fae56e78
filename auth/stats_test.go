package auth

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/internal/testutil"
)

// TestKeySetStats: the counters move on a fetch, a failed fetch and an
// unknown-kid refresh; keys loaded and the last success follow the set.
func TestKeySetStats(t *testing.T) {
	f := newLocalFixture(t, nil) // one Refresh at t0
	want := KeySetStats{Fetches: 1, KeysLoaded: 3, LastSuccess: t0}
	check := func(step string) {
		t.Helper()
		got := f.keySet.Stats()
		if !got.LastSuccess.Equal(want.LastSuccess) {
			t.Fatalf("%s: LastSuccess = %v, want %v", step, got.LastSuccess, want.LastSuccess)
		}
		got.LastSuccess = want.LastSuccess
		if got != want {
			t.Fatalf("%s: Stats = %+v, want %+v", step, got, want)
		}
	}
	check("after the first refresh")

	// A token naming an unknown kid starts one refresh; the issuer now
	// publishes a fourth key.
	f.clock.Advance(time.Minute)
	f.iss.setKeys(f.keys.rsa, f.keys.rsa2, f.keys.ec, f.keys.ed)
	if _, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa2, nil))); err != nil {
		t.Fatal(err)
	}
	want.Fetches, want.UnknownKIDRefreshes, want.KeysLoaded, want.LastSuccess = 2, 1, 4, t0.Add(time.Minute)
	check("after an unknown kid")

	// Within the cooldown another unknown kid starts nothing.
	payload, _ := json.Marshal(f.claims(nil))
	forged := sign(t, signingKey{"made-up", f.keys.attackerEd.alg, f.keys.attackerEd.priv}, payload, nil, false)
	if _, err := f.local.Validate(t.Context(), []byte(forged)); err == nil {
		t.Fatal("a forged token validated")
	}
	check("after an unknown kid within the cooldown")

	// A failed refresh counts, and keeps the keys and the last success.
	// (The clock stays inside the cooldown: the made-up kid above has
	// scheduled one refresh at its end, which would race this one.)
	f.iss.setMode(jwks500)
	if err := f.keySet.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh against a failing JWKS succeeded")
	}
	want.Fetches, want.FetchFailures = 3, 1
	check("after a failed refresh")
}

// TestKeySetStatsBeforeFirstFetch: nothing loaded, nothing counted.
func TestKeySetStatsBeforeFirstFetch(t *testing.T) {
	ks := newTestKeySet(t, deadIssuerURL(t), testutil.NewClock(t0), nil)
	if got := ks.Stats(); got != (KeySetStats{}) {
		t.Fatalf("Stats = %+v, want zero", got)
	}
	if err := ks.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh against a dead issuer succeeded")
	}
	if got, want := ks.Stats(), (KeySetStats{Fetches: 1, FetchFailures: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// TestRemoteStatsVerdicts: 200 answers are counted as active, inactive or
// rejected; failures that make no request are counted by kind, and
// introspections only when a request is sent.
func TestRemoteStatsVerdicts(t *testing.T) {
	exp := remoteUnix(time.Hour)
	bodies := map[string]string{
		"active":   `{"active":true,"exp":` + exp + `}`,
		"inactive": `{"active":false}`,
		"expired":  `{"active":true,"exp":` + remoteUnix(-time.Hour) + `}`,
		"foreign":  `{"active":true,"aud":"api://elsewhere"}`,
	}
	f := newRemoteFake(t, func(tok string) remoteReply { return remoteReply{body: bodies[tok]} })
	r := newRemoteTest(t, f.url(), nil)
	for _, tok := range []string{"active", "active", "inactive", "expired", "foreign"} {
		_, _ = r.Validate(context.Background(), []byte(tok))
	}
	// Never sent: a token with a space, and a cancelled caller.
	_, _ = r.Validate(context.Background(), []byte("bad token"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = r.Validate(cancelled, []byte("active"))

	want := RemoteStats{Introspections: 5, Active: 2, Inactive: 1, Rejected: 2}
	want.Failures[RemoteCancelled] = 1
	if got := r.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	if n := f.calls.Load(); n != 5 {
		t.Fatalf("%d calls reached the server, want 5", n)
	}

	t.Run("no endpoint", func(t *testing.T) {
		issuer, _ := remoteDiscoveryServer(t, func(string) string { return "" })
		d := newTestDiscovery(t, DiscoveryConfig{Issuer: issuer, Now: remoteTestNow})
		r := newRemoteTest(t, "", func(c *RemoteConfig) { c.Discovery, c.Issuer = d, issuer })
		_, _ = r.Validate(context.Background(), []byte("active"))
		var want RemoteStats
		want.Failures[RemoteNoEndpoint] = 1
		if got := r.Stats(); got != want {
			t.Fatalf("Stats = %+v, want %+v", got, want)
		}
	})
}

func TestRemoteFailureKindString(t *testing.T) {
	seen := map[string]bool{}
	for k := range RemoteFailureKind(len(RemoteStats{}.Failures)) {
		name := k.String()
		if name == "unknown" || name == "" || strings.ToLower(name) != name || seen[name] {
			t.Errorf("kind %d has name %q", k, name)
		}
		seen[name] = true
	}
	for _, k := range []RemoteFailureKind{-1, RemoteFailureKind(len(RemoteStats{}.Failures))} {
		if got := k.String(); got != "unknown" {
			t.Errorf("RemoteFailureKind(%d).String() = %q, want unknown", k, got)
		}
	}
}

// TestRemoteFailureLogIsRateLimited: an authorization server that fails
// every call must not flood the log. Per failure kind, a burst within one
// second gives one line at the kind's level and the rest at debug; another
// kind in the same second still gets its own line; a second later the
// next line says how many were suppressed. Every failure is counted.
func TestRemoteFailureLogIsRateLimited(t *testing.T) {
	const burst = 200
	statuses := map[string]int{"t5xx": 500, "t429": 429, "t403": 403}
	f := newRemoteFake(t, func(tok string) remoteReply { return remoteReply{status: statuses[tok]} })
	clock := testutil.NewClock(remoteT0)
	core, logs := observer.New(zapcore.DebugLevel)
	r := newRemoteTest(t, f.url(), func(c *RemoteConfig) {
		c.Now = clock.Now
		c.Logger = zap.New(core)
	})
	fail := func(tok string, n int) {
		t.Helper()
		for range n {
			p, err := r.Validate(context.Background(), []byte(tok))
			remoteWantUnavailable(t, p, err, "")
		}
	}
	lines := func(kind RemoteFailureKind, level zapcore.Level) []observer.LoggedEntry {
		return logs.FilterLevelExact(level).FilterField(zap.Stringer("kind", kind)).All()
	}
	type want struct {
		kind           RemoteFailureKind
		level          zapcore.Level
		loud, debug    int
		lastSuppressed uint64
	}
	check := func(step string, wants ...want) {
		t.Helper()
		for _, w := range wants {
			loud := lines(w.kind, w.level)
			if len(loud) != w.loud {
				t.Fatalf("%s: %d %v lines of kind %s, want %d", step, len(loud), w.level, w.kind, w.loud)
			}
			if got := loud[len(loud)-1].ContextMap()["suppressed"]; got != w.lastSuppressed {
				t.Errorf("%s: last %v line of kind %s has suppressed=%v, want %d", step, w.level, w.kind, got, w.lastSuppressed)
			}
			if got := len(lines(w.kind, zapcore.DebugLevel)); got != w.debug {
				t.Errorf("%s: %d debug lines of kind %s, want %d", step, got, w.kind, w.debug)
			}
		}
	}

	fail("t5xx", burst)
	fail("t429", burst)
	fail("t403", burst)
	check("a burst of each kind",
		want{RemoteStatus5xx, zapcore.WarnLevel, 1, burst - 1, 0},
		want{RemoteStatus429, zapcore.WarnLevel, 1, burst - 1, 0},
		want{RemoteCredentialsRejected, zapcore.ErrorLevel, 1, burst - 1, 0})

	clock.Advance(999 * time.Millisecond)
	fail("t5xx", 1)
	check("within the second", want{RemoteStatus5xx, zapcore.WarnLevel, 1, burst, 0})

	clock.Advance(time.Millisecond)
	fail("t5xx", 1)
	fail("t403", 1)
	check("a second later",
		want{RemoteStatus5xx, zapcore.WarnLevel, 2, burst, burst},
		want{RemoteCredentialsRejected, zapcore.ErrorLevel, 2, burst - 1, burst - 1})

	got := r.Stats()
	if got.Failures[RemoteStatus5xx] != burst+2 || got.Failures[RemoteStatus429] != burst ||
		got.Failures[RemoteCredentialsRejected] != burst+1 || got.Introspections != 3*burst+3 {
		t.Errorf("Stats = %+v", got)
	}
}
