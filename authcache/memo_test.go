package authcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// memoEnv is a cache on a fake clock and validator, optionally with a key
// set and a revalidator, and one connection's Memo.
type memoEnv struct {
	clk   *testutil.Clock
	next  *fake
	reval *fake          // nil unless hybrid
	keys  *testutil.Keys // nil unless the cache has SigningKeys
	c     *Cache
	m     Memo
}

// memoSetup says which optional parts a memoEnv has.
type memoSetup struct {
	cfg    Config   // Now, Revalidator and SigningKeys are set from the fields below
	hybrid bool     // a revalidator (RevalidateAfter 30s, MaxStaleness 60s unless cfg says)
	keys   []string // non-nil: SigningKeys holding these, and a validator naming key-<first byte>
}

func newMemoEnv(tb testing.TB, s memoSetup) *memoEnv {
	tb.Helper()
	env := &memoEnv{clk: testutil.NewClock(t0)}
	env.next = newFake(env.clk.Now)
	cfg := s.cfg
	cfg.Now = env.clk.Now
	if s.hybrid {
		env.reval = newFake(env.clk.Now)
		cfg.Revalidator = env.reval
		if cfg.RevalidateAfter == 0 {
			cfg.RevalidateAfter = 30 * time.Second
		}
	}
	if s.keys != nil {
		env.keys = testutil.NewKeys(s.keys...)
		cfg.SigningKeys = env.keys
		env.next.set(keyed(env.clk.Now))
	}
	env.c = newTestCache(tb, env.next, cfg)
	return env
}

// validate is ValidateMemo with env's memo.
func (env *memoEnv) validate(token string) (*auth.Principal, error) {
	return env.c.ValidateMemo(context.Background(), []byte(token), &env.m)
}

// stored returns the entry ristretto holds for token; nil when none.
func (env *memoEnv) stored(token string) *entry {
	d := sha256.Sum256([]byte(token))
	e, ok := env.c.rc.Get(d[:])
	if !ok {
		return nil
	}
	return e
}

// remember fills the cache with token and makes the memo remember it (a
// hit through the cache), checking that it did.
func (env *memoEnv) remember(tb testing.TB, token string) {
	tb.Helper()
	mustValid(tb, env.c, token)
	env.c.Wait()
	p, err := env.validate(token)
	wantAnswer(tb, "the hit that fills the memo", token, p, err, nil)
	e := env.stored(token)
	if env.m.e == nil || env.m.e != e || env.m.c != env.c || string(env.m.token) != token {
		tb.Fatalf("after a hit the memo holds entry %p of cache %p for %d bytes, want entry %p of cache %p for the %d-byte token",
			env.m.e, env.m.c, len(env.m.token), e, env.c, len(token))
	}
}

// unhook removes the remembered entry from ristretto while leaving it
// marked as stored, so that only the memo can still serve it: a good
// answer without a call to the validator then proves a memo hit. (It
// breaks the memo's invariant on purpose; only a test does this.)
func (env *memoEnv) unhook(tb testing.TB) {
	tb.Helper()
	e := env.m.e
	if e == nil {
		tb.Fatal("unhook: the memo remembers nothing")
	}
	env.c.rc.Del(e.digest[:])
	env.c.Wait()
	e.exited.Store(false)
}

// wantAnswer fails unless (p, err) is the principal of token (wantErr nil)
// or an error matching wantErr with no principal.
func wantAnswer(tb testing.TB, what, token string, p *auth.Principal, err, wantErr error) {
	tb.Helper()
	if wantErr == nil {
		if err != nil || p == nil || p.Subject != "sub-"+token {
			tb.Fatalf("%s: got %v, %v; want the principal of that token", what, principalName(p), err)
		}
		return
	}
	if p != nil || !errors.Is(err, wantErr) {
		tb.Fatalf("%s: got %v, %v; want %v and no principal", what, principalName(p), err, wantErr)
	}
}

// principalName names p briefly (the fake's subjects hold whole tokens).
func principalName(p *auth.Principal) string {
	if p == nil {
		return "<nil>"
	}
	s := p.Subject
	if len(s) > 24 {
		s = fmt.Sprintf("%s…(%d bytes)", s[:24], len(s))
	}
	return s
}

// token713 is a token of the size of a typical RS256 JWT.
var token713 = string(benchToken[:713])

// TestValidateMemoHit: after a fill, the first ValidateMemo is a hit
// through the cache that the memo remembers, the second a memo hit: same
// principal, no validator call, counted in Stats().Hits.
func TestValidateMemoHit(t *testing.T) {
	for _, token := range []string{"tok", token713, string(bytes.Repeat([]byte{'m'}, MaxMemoToken))} {
		t.Run(fmt.Sprintf("%dB", len(token)), func(t *testing.T) {
			env := newMemoEnv(t, memoSetup{})
			env.remember(t, token)
			e := env.m.e
			if s := env.c.Stats(); s.Hits != 1 {
				t.Fatalf("Hits = %d after one hit, want 1", s.Hits)
			}
			env.unhook(t)
			for i := range 3 {
				p, err := env.validate(token)
				wantAnswer(t, fmt.Sprintf("memo hit %d", i), token, p, err, nil)
				if p != e.principal {
					t.Fatalf("memo hit %d served principal %p, want the remembered entry's %p", i, p, e.principal)
				}
			}
			if got := env.next.calls.Load(); got != 1 {
				t.Errorf("validator called %d times, want 1 (the fill; every later answer from the memo)", got)
			}
			if env.m.e != e {
				t.Errorf("the memo dropped its entry after hits")
			}
			if s := env.c.Stats(); s.Hits != 4 || s.Misses != 1 {
				t.Errorf("Stats = %+v, want 4 hits (3 from the memo) and 1 miss", s)
			}
		})
	}
}

// TestValidateMemoNilMemo: a nil Memo is plain Validate.
func TestValidateMemoNilMemo(t *testing.T) {
	env := newMemoEnv(t, memoSetup{})
	for i := range 2 {
		p, err := env.c.ValidateMemo(context.Background(), []byte("tok"), nil)
		wantAnswer(t, fmt.Sprintf("call %d", i), "tok", p, err, nil)
		env.c.Wait()
	}
	if got := env.next.calls.Load(); got != 1 {
		t.Errorf("validator called %d times, want 1", got)
	}
}

// TestRecall: Recall answers from the memo alone. Before the memo
// remembers anything, for another token, or for another cache's memo it
// is nil without asking the validator; for the remembered token it is the
// entry's principal, counted as a hit; a miss empties the memo, so that
// the remembered token no longer recalls either.
func TestRecall(t *testing.T) {
	env := newMemoEnv(t, memoSetup{})
	if p := env.c.Recall([]byte("tok"), &env.m); p != nil {
		t.Fatalf("Recall on an empty memo = %v, want nil", principalName(p))
	}
	if p := env.c.Recall([]byte("tok"), nil); p != nil {
		t.Fatalf("Recall with a nil memo = %v, want nil", principalName(p))
	}
	if got := env.next.calls.Load(); got != 0 {
		t.Fatalf("Recall called the validator %d times, want never", got)
	}

	env.remember(t, "tok")
	e := env.m.e
	hits := env.c.Stats().Hits
	for i := range 2 {
		if p := env.c.Recall([]byte("tok"), &env.m); p != e.principal {
			t.Fatalf("Recall %d of the remembered token = %v, want the entry's principal", i, principalName(p))
		}
	}
	if got := env.c.Stats().Hits - hits; got != 2 {
		t.Errorf("two recalls counted %d hits, want 2", got)
	}

	other := newMemoEnv(t, memoSetup{})
	if p := other.c.Recall([]byte("tok"), &env.m); p != nil {
		t.Errorf("another cache recalled %v from this cache's memo, want nil", principalName(p))
	}
	if env.m.e != nil {
		t.Fatalf("the memo still offers its entry after a miss")
	}
	if p := env.c.Recall([]byte("tok"), &env.m); p != nil {
		t.Errorf("after a miss the memo recalled %v, want nil until a hit through the cache", principalName(p))
	}
	if got := env.next.calls.Load(); got != 1 {
		t.Errorf("validator called %d times, want 1 (the fill)", got)
	}
}

// TestMemoHitsShard: a memo's hits are counted on one shard, its own
// (memoShard), whichever cache line a plain hit would pick.
func TestMemoHitsShard(t *testing.T) {
	env := newMemoEnv(t, memoSetup{})
	env.remember(t, "tok")
	sh := &env.c.shards[memoShard(&env.m)]
	if env.m.hits != sh {
		t.Fatalf("the memo counts on shard %p, want its own %p", env.m.hits, sh)
	}
	before := sh.hits.Load()
	for range 5 {
		if p := env.c.Recall([]byte("tok"), &env.m); p == nil {
			t.Fatal("Recall of the remembered token missed")
		}
	}
	if got := sh.hits.Load() - before; got != 5 {
		t.Errorf("the memo's shard counted %d of 5 recalls", got)
	}
}

// differing returns token with byte i changed.
func differing(token string, i int) string {
	b := []byte(token)
	b[i] ^= 0x01
	return string(b)
}

// TestValidateMemoOtherToken: a token that is not the remembered one,
// however close, never gets the remembered principal; after its own hit
// through the cache the memo remembers it instead.
func TestValidateMemoOtherToken(t *testing.T) {
	for _, base := range []string{token713, "twenty-one-byte-token"} {
		n := len(base)
		words := n &^ 7 // the bytes equalConstantTime compares eight at a time
		others := []struct {
			name  string
			token string
		}{
			{"first byte differs", differing(base, 0)},
			{"middle byte differs", differing(base, n/2)},
			{"last byte of the 8-byte steps differs", differing(base, words-1)},
			{"first byte of the tail differs", differing(base, words)},
			{"last byte differs", differing(base, n-1)},
			{"one byte shorter", base[:n-1]},
			{"one byte longer", base + "x"},
			{"unrelated", "other"},
		}
		for _, o := range others {
			if o.token == base {
				t.Fatalf("%s: not another token", o.name)
			}
			t.Run(fmt.Sprintf("%dB/%s", n, o.name), func(t *testing.T) {
				env := newMemoEnv(t, memoSetup{})
				mustValid(t, env.c, o.token)
				env.remember(t, base)

				p, err := env.validate(o.token)
				wantAnswer(t, "the other token", o.token, p, err, nil)
				if string(env.m.token) != o.token || env.m.e == nil || env.m.e != env.stored(o.token) {
					t.Fatalf("after the other token's hit the memo does not remember it")
				}
				// And back: the first token is not served the second's principal.
				p, err = env.validate(base)
				wantAnswer(t, "the first token again", base, p, err, nil)
				if string(env.m.token) != base {
					t.Fatalf("the memo does not remember the first token again")
				}
				if got := env.next.calls.Load(); got != 2 {
					t.Errorf("validator called %d times, want 2 (one fill per token)", got)
				}
				if s := env.c.Stats(); s.Hits != 3 {
					t.Errorf("Hits = %d, want 3", s.Hits)
				}
			})
		}
	}
}

// memoRefusal is a change to the cache, its clock, key set or
// revalidator after the memo remembered a token, and what the memo's next
// ValidateMemo for that token must then answer.
type memoRefusal struct {
	name  string
	setup memoSetup
	event func(t *testing.T, env *memoEnv, token string)
	// wantErr: nil means the token's principal.
	wantErr error
	// wantAsked: the validator is called by the ValidateMemo after event.
	wantAsked bool
	// wantRemembered: the memo holds the token's stored entry afterwards.
	wantRemembered bool
	// check, when set, adds the case's own checks; p is the answer.
	check func(t *testing.T, env *memoEnv, token string, p *auth.Principal)
}

func (tc memoRefusal) run(t *testing.T) {
	const token = "a-tok"
	env := newMemoEnv(t, tc.setup)
	env.remember(t, token)

	tc.event(t, env, token)
	before := env.next.calls.Load()
	p, err := env.validate(token)
	wantAnswer(t, "ValidateMemo after the change", token, p, err, tc.wantErr)
	if asked := env.next.calls.Load() > before; asked != tc.wantAsked {
		t.Errorf("validator asked: %v, want %v", asked, tc.wantAsked)
	}
	env.c.Wait()
	if remembered := env.m.e != nil; remembered != tc.wantRemembered {
		t.Errorf("memo remembers an entry: %v, want %v", remembered, tc.wantRemembered)
	}
	if tc.wantRemembered && (env.m.e.exited.Load() || string(env.m.token) != token) {
		t.Errorf("the memo remembers an entry no longer stored, or another token")
	}
	if tc.check != nil {
		tc.check(t, env, token, p)
	}
	// Validate, asked now, gives the same answer.
	p, err = env.c.Validate(context.Background(), []byte(token))
	wantAnswer(t, "Validate afterwards", token, p, err, tc.wantErr)
}

// TestValidateMemoRefusals: each reason the cache would not serve the
// remembered entry as it stands makes the memo answer as Validate does.
func TestValidateMemoRefusals(t *testing.T) {
	hybrid := memoSetup{hybrid: true, cfg: Config{RevalidateAfter: 30 * time.Second, MaxStaleness: time.Minute}}
	cases := []memoRefusal{
		{
			name:           "nothing changed: served from the memo",
			event:          func(t *testing.T, env *memoEnv, _ string) { env.unhook(t) },
			wantRemembered: true,
		},
		{
			name:  "expired",
			setup: memoSetup{cfg: Config{MaxTTL: time.Minute}},
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.clk.Advance(time.Minute) // at expiresAt: expired
			},
			wantAsked: true,
		},
		{
			name: "revoked by Forget",
			event: func(t *testing.T, env *memoEnv, token string) {
				env.next.set(invalid(auth.ReasonInactive))
				e := env.m.e
				env.c.Forget(sha256.Sum256([]byte(token)))
				if e.revoked.Load() == nil || !e.exited.Load() {
					t.Fatal("Forget did not revoke and delete the entry")
				}
			},
			wantErr:   auth.ErrInvalidToken,
			wantAsked: true,
			check: func(t *testing.T, env *memoEnv, _ string, _ *auth.Principal) {
				if s := env.c.Stats(); s.Forgotten != 1 || s.NegativeHits != 0 {
					t.Errorf("Stats = %+v, want 1 forgotten and the revoked entry never hit", s)
				}
			},
		},
		{
			// The moment between Forget's mark and its Del, or a
			// revalidation's revocation and its replacement.
			name: "revoked, still stored",
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.m.e.revoked.Store(&revocation{err: errRevokedElsewhere})
			},
			wantErr: auth.ErrInvalidToken,
			check: func(t *testing.T, env *memoEnv, _ string, _ *auth.Principal) {
				if s := env.c.Stats(); s.NegativeHits != 1 {
					t.Errorf("NegativeHits = %d, want 1 (the revoked entry's)", s.NegativeHits)
				}
			},
		},
		{
			name: "deleted from ristretto",
			event: func(t *testing.T, env *memoEnv, _ string) {
				e := env.m.e
				env.c.rc.Del(e.digest[:])
				env.c.Wait()
				if !e.exited.Load() {
					t.Fatal("Del did not mark the entry exited")
				}
			},
			wantAsked: true,
		},
		{
			name: "replaced in ristretto",
			event: func(t *testing.T, env *memoEnv, token string) {
				e := env.m.e
				now := env.clk.Now()
				env.c.keep(&e.digest, []byte(token), principalFor(token, now.Add(time.Hour)), nil, now, now, time.Hour, 0)
				env.c.Wait()
				if !e.exited.Load() {
					t.Fatal("replacing the entry did not mark it exited")
				}
			},
			wantRemembered: true,
			check: func(t *testing.T, env *memoEnv, token string, p *auth.Principal) {
				if cur := env.stored(token); cur == nil || p != cur.principal || env.m.e != cur {
					t.Errorf("served %p, want the replacement's principal, and the memo to remember the replacement", p)
				}
			},
		},
		{
			name:  "evicted",
			setup: memoSetup{cfg: Config{MaxCost: 4 << 10}},
			event: func(t *testing.T, env *memoEnv, _ string) {
				e := env.m.e
				ctx := context.Background()
				for i := 0; i < 100_000 && !e.exited.Load(); i++ {
					if _, err := env.c.Validate(ctx, fmt.Appendf(nil, "flood-%d", i)); err != nil {
						t.Fatal(err)
					}
					if i%16 == 15 {
						env.c.Wait()
					}
				}
				env.c.Wait()
				if !e.exited.Load() {
					t.Fatal("a flood of 100,000 tokens did not evict the remembered entry")
				}
			},
			wantAsked: true,
		},
		{
			// Close has begun (Validate answers uncached) but has not yet
			// cleared ristretto.
			name:      "closing",
			event:     func(t *testing.T, env *memoEnv, _ string) { env.c.closed.Store(true) },
			wantAsked: true,
		},
		{
			name: "closed",
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.c.Close()
				if !env.m.e.exited.Load() {
					t.Fatal("Close did not mark the entry exited")
				}
			},
			wantAsked: true,
			check: func(t *testing.T, env *memoEnv, token string, _ *auth.Principal) {
				before := env.next.calls.Load()
				p, err := env.validate(token)
				wantAnswer(t, "a second ValidateMemo after Close", token, p, err, nil)
				if env.next.calls.Load() != before+1 {
					t.Error("after Close a ValidateMemo did not call the validator")
				}
			},
		},
		{
			name:  "key retired",
			setup: memoSetup{keys: []string{"key-a", "key-b"}},
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.keys.Drop("key-a")
				env.next.set(invalid(auth.ReasonUnknownKey))
			},
			wantErr:   auth.ErrInvalidToken,
			wantAsked: true,
			check: func(t *testing.T, env *memoEnv, _ string, _ *auth.Principal) {
				if s := env.c.Stats(); s.RetiredKeys != 1 {
					t.Errorf("RetiredKeys = %d, want 1", s.RetiredKeys)
				}
			},
		},
		{
			name:  "key generation changed, key still held",
			setup: memoSetup{keys: []string{"key-a", "key-b"}},
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.keys.Drop("key-b")
			},
			wantRemembered: true,
			check: func(t *testing.T, env *memoEnv, token string, _ *auth.Principal) {
				if got := env.keys.HoldsKeyCalls(); got != 1 {
					t.Fatalf("HoldsKey called %d times, want 1 (the cache checks the key once)", got)
				}
				// Stamped with the new generation: the memo serves it again.
				env.unhook(t)
				before := env.next.calls.Load()
				p, err := env.validate(token)
				wantAnswer(t, "the next ValidateMemo", token, p, err, nil)
				if env.next.calls.Load() != before || env.keys.HoldsKeyCalls() != 1 {
					t.Error("the next ValidateMemo was not a memo hit")
				}
				if s := env.c.Stats(); s.RetiredKeys != 0 {
					t.Errorf("RetiredKeys = %d, want 0", s.RetiredKeys)
				}
			},
		},
		{
			name:  "hybrid, older than MaxStaleness",
			setup: hybrid,
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.reval.set(invalid(auth.ReasonInactive))
				env.clk.Advance(time.Minute)
			},
			wantErr: auth.ErrInvalidToken, // the revalidator's answer, waited for
			check: func(t *testing.T, env *memoEnv, _ string, _ *auth.Principal) {
				if s := env.c.Stats(); s.StaleWaits != 1 || s.Revalidations != 1 || s.Revoked != 1 {
					t.Errorf("Stats = %+v, want 1 stale wait, 1 revalidation, 1 revoked", s)
				}
			},
		},
		{
			name:  "hybrid, older than RevalidateAfter but fresh",
			setup: hybrid,
			event: func(t *testing.T, env *memoEnv, _ string) {
				env.unhook(t)
				env.clk.Advance(30 * time.Second)
			},
			wantRemembered: true,
			check: func(t *testing.T, env *memoEnv, token string, _ *auth.Principal) {
				if got := env.reval.calls.Load(); got != 1 {
					t.Errorf("revalidator called %d times, want 1 (a background re-check)", got)
				}
				if s := env.c.Stats(); s.StaleWaits != 0 || s.Revalidations != 1 {
					t.Errorf("Stats = %+v, want no stale wait and 1 revalidation", s)
				}
				if at := env.m.e.validatedAt.Load(); at != env.clk.Now().UnixNano() {
					t.Errorf("the re-check did not refresh the remembered entry")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestValidateMemoOtherCache: a memo filled by one cache is not used by
// another, even for the same token.
func TestValidateMemoOtherCache(t *testing.T) {
	env := newMemoEnv(t, memoSetup{})
	env.remember(t, "tok")

	other := newFake(env.clk.Now)
	other.set(invalid(auth.ReasonInactive))
	c2 := newTestCache(t, other, Config{Now: env.clk.Now})
	p, err := c2.ValidateMemo(context.Background(), []byte("tok"), &env.m)
	wantAnswer(t, "the other cache", "tok", p, err, auth.ErrInvalidToken)
	if got := other.calls.Load(); got != 1 {
		t.Errorf("the other cache's validator called %d times, want 1", got)
	}
	if env.m.e != nil {
		t.Error("the memo still remembers the first cache's entry")
	}
	if s := c2.Stats(); s.Hits != 0 {
		t.Errorf("the other cache counted %d hits, want 0", s.Hits)
	}
}

// TestValidateMemoLongToken: a token over MaxMemoToken is answered but not
// remembered; one of MaxMemoToken bytes is.
func TestValidateMemoLongToken(t *testing.T) {
	for _, tc := range []struct {
		n          int
		remembered bool
	}{
		{MaxMemoToken - 1, true},
		{MaxMemoToken, true},
		{MaxMemoToken + 1, false},
		{2 * MaxMemoToken, false},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			env := newMemoEnv(t, memoSetup{})
			token := string(bytes.Repeat([]byte{'L'}, tc.n))
			mustValid(t, env.c, token)
			env.c.Wait()
			for i := range 3 {
				p, err := env.validate(token)
				wantAnswer(t, fmt.Sprintf("call %d", i), token, p, err, nil)
				if remembered := env.m.e != nil; remembered != tc.remembered {
					t.Fatalf("call %d: memo remembers an entry: %v, want %v", i, remembered, tc.remembered)
				}
			}
			if !tc.remembered && len(env.m.token) != 0 {
				t.Errorf("the memo copied %d bytes of a token it does not remember", len(env.m.token))
			}
			if got := env.next.calls.Load(); got != 1 {
				t.Errorf("validator called %d times, want 1", got)
			}
			if s := env.c.Stats(); s.Hits != 3 {
				t.Errorf("Hits = %d, want 3", s.Hits)
			}
		})
	}
}

// TestValidateMemoNegative: a negative entry is never remembered, and a
// bad token makes the memo forget the good one it held.
func TestValidateMemoNegative(t *testing.T) {
	env := newMemoEnv(t, memoSetup{})
	env.next.set(func(tok []byte) (*auth.Principal, error) {
		if string(tok) == "bad" {
			return nil, auth.Invalid(auth.ReasonSignature)
		}
		return principalFor(string(tok), env.clk.Now().Add(time.Hour)), nil
	})
	env.remember(t, "good")
	if _, err := env.c.Validate(context.Background(), []byte("bad")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("filling the bad token: %v", err)
	}
	env.c.Wait()
	for i := range 3 {
		p, err := env.validate("bad")
		wantAnswer(t, fmt.Sprintf("bad token, call %d", i), "bad", p, err, auth.ErrInvalidToken)
		if env.m.e != nil {
			t.Fatalf("call %d: the memo remembers an entry after a negative hit", i)
		}
	}
	if got := env.next.calls.Load(); got != 2 {
		t.Errorf("validator called %d times, want 2 (one fill per token)", got)
	}
	if s := env.c.Stats(); s.NegativeHits != 3 {
		t.Errorf("NegativeHits = %d, want 3", s.NegativeHits)
	}
}

// TestMemoReset: Reset forgets the entry and zeroes every byte of the
// token copy's buffer, including what is left of an earlier, longer token;
// the memo works again afterwards.
func TestMemoReset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tokens []string // remembered in turn before Reset
	}{
		{"empty memo", nil},
		{"one token", []string{token713}},
		{"a shorter token after a longer one", []string{token713, "short-token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newMemoEnv(t, memoSetup{})
			for _, tok := range tc.tokens {
				env.remember(t, tok)
			}
			old := env.m.token[:cap(env.m.token)]
			if len(tc.tokens) > 0 {
				env.unhook(t) // a hit now can only come from the memo
			}
			env.m.Reset()
			if env.m.e != nil || env.m.c != nil || len(env.m.token) != 0 {
				t.Fatalf("after Reset the memo holds entry %p, cache %p, %d token bytes", env.m.e, env.m.c, len(env.m.token))
			}
			if i := bytes.IndexFunc(old, func(r rune) bool { return r != 0 }); i >= 0 {
				t.Fatalf("after Reset byte %d of the %d-byte token buffer is not zero", i, len(old))
			}
			if len(tc.tokens) == 0 {
				return
			}
			last := tc.tokens[len(tc.tokens)-1]
			before := env.next.calls.Load()
			p, err := env.validate(last)
			wantAnswer(t, "after Reset", last, p, err, nil)
			if env.next.calls.Load() != before+1 {
				t.Error("after Reset the forgotten entry was served from the memo")
			}
			env.remember(t, last) // and the memo fills again
		})
	}
}

// TestEqualConstantTime compares equalConstantTime with bytes.Equal for
// every length up to 40 (several 8-byte steps and every tail length):
// equal inputs, a difference at every position, and different lengths.
func TestEqualConstantTime(t *testing.T) {
	check := func(t *testing.T, a, b []byte) {
		t.Helper()
		if got, want := equalConstantTime(a, b), bytes.Equal(a, b); got != want {
			t.Fatalf("equalConstantTime(%x, %x) = %v, want %v", a, b, got, want)
		}
	}
	for n := 0; n <= 40; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a := make([]byte, n)
			for i := range a {
				a[i] = byte(i*37 + 11)
			}
			check(t, a, bytes.Clone(a))
			check(t, a, a)
			for i := range n {
				for _, flip := range []byte{0x01, 0x80, 0xff} {
					b := bytes.Clone(a)
					b[i] ^= flip
					check(t, a, b)
					check(t, b, a)
				}
			}
			longer := append(bytes.Clone(a), 0)
			check(t, a, longer)
			check(t, longer, a)
			if n > 0 {
				check(t, a, a[:n-1])
				check(t, a[1:], a[:n-1])
			}
			check(t, a, nil)
		})
	}
}

// TestValidateMemoForgetRace: memo hits on one goroutine while another
// forgets the token; once Forget has returned, the next ValidateMemo is
// not served from the memo (run it with -race).
func TestValidateMemoForgetRace(t *testing.T) {
	env := newMemoEnv(t, memoSetup{})
	env.remember(t, "tok")
	env.next.set(invalid(auth.ReasonInactive)) // what the validator says once asked again

	running := make(chan struct{})
	forgotten := make(chan struct{})
	go func() {
		<-running
		env.c.Forget(sha256.Sum256([]byte("tok")))
		close(forgotten)
	}()

	// Before Forget returns an answer may be either; after, it must be the
	// revocation's.
	const maxHits = 1_000_000
	done := false
	for i := 0; i < maxHits && !done; i++ {
		select {
		case <-forgotten:
			done = true
		default:
		}
		if _, err := env.validate("tok"); err != nil && !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("hit %d: %v", i, err)
		}
		if i == 0 {
			close(running)
		}
	}
	<-forgotten
	for i := range 2 {
		p, err := env.validate("tok")
		wantAnswer(t, fmt.Sprintf("ValidateMemo %d after Forget returned", i), "tok", p, err, auth.ErrInvalidToken)
	}
	if got := env.next.calls.Load(); got < 2 {
		t.Errorf("validator called %d times, want it asked again after Forget", got)
	}
	if env.m.e != nil {
		t.Error("the memo still remembers the forgotten entry")
	}
}
