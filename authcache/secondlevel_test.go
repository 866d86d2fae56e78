package authcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// fakeL2 is an in-memory SecondLevel shared by several caches ("replicas"),
// on an injected clock. It honours deadlines, takes a lease once per
// digest, and delivers revocations to every subscribed Forget.
type fakeL2 struct {
	now func() time.Time

	mu      sync.Mutex // guards the fields below
	entries map[[sha256.Size]byte]L2Entry
	leases  map[[sha256.Size]byte]bool
	ttls    map[[sha256.Size]byte]time.Duration // ttl of the last Set or Revoke
	subs    []func([sha256.Size]byte)
	down    bool
	// onAwait, when set, runs at the start of every Await (e.g. to play
	// the lease holder and Set an entry).
	onAwait func(digest [sha256.Size]byte)

	gets, sets, leaseCalls, awaits, revokes atomic.Int64
}

var _ SecondLevel = (*fakeL2)(nil)

func newFakeL2(now func() time.Time) *fakeL2 {
	return &fakeL2{
		now:     now,
		entries: map[[sha256.Size]byte]L2Entry{},
		leases:  map[[sha256.Size]byte]bool{},
		ttls:    map[[sha256.Size]byte]time.Duration{},
	}
}

func (l *fakeL2) subscribe(c *Cache) {
	l.mu.Lock()
	l.subs = append(l.subs, c.Forget)
	l.mu.Unlock()
}

func (l *fakeL2) setDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

func (l *fakeL2) Get(_ context.Context, d [sha256.Size]byte) (L2Entry, bool) {
	l.gets.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[d]
	if l.down || !ok || !l.now().Before(e.Deadline) {
		return L2Entry{}, false
	}
	return e, true
}

func (l *fakeL2) put(d [sha256.Size]byte, e L2Entry, ttl time.Duration) {
	e.Deadline = l.now().Add(ttl)
	l.entries[d] = e
	l.ttls[d] = ttl
}

func (l *fakeL2) Set(_ context.Context, d [sha256.Size]byte, e L2Entry, ttl time.Duration) error {
	l.sets.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return errors.New("fakeL2: down")
	}
	l.put(d, e, ttl)
	return nil
}

func (l *fakeL2) Lease(_ context.Context, d [sha256.Size]byte) bool {
	l.leaseCalls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down || !l.leases[d] {
		l.leases[d] = !l.down
		return true
	}
	return false
}

func (l *fakeL2) Await(ctx context.Context, d [sha256.Size]byte) (L2Entry, bool) {
	l.awaits.Add(1)
	l.mu.Lock()
	hook := l.onAwait
	l.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	return l.Get(ctx, d)
}

func (l *fakeL2) Revoke(_ context.Context, d [sha256.Size]byte, e L2Entry, ttl time.Duration) error {
	l.revokes.Add(1)
	l.mu.Lock()
	if e.Principal != nil {
		l.mu.Unlock()
		return errors.New("fakeL2: Revoke needs a negative entry")
	}
	if ttl > 0 {
		l.put(d, e, ttl)
	} else {
		delete(l.entries, d)
		l.ttls[d] = 0
	}
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	for _, f := range subs {
		f(d)
	}
	return nil
}

// entry returns what the fake holds for token, ignoring deadlines.
func (l *fakeL2) entry(token string) (L2Entry, time.Duration, bool) {
	d := sha256.Sum256([]byte(token))
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[d]
	return e, l.ttls[d], ok
}

// fleet is n caches sharing one fakeL2 and one clock, each over its own
// fake validator.
type fleet struct {
	clk  *testutil.Clock
	l2   *fakeL2
	next []*fake
	c    []*Cache
}

func newFleet(tb testing.TB, n int, cfg Config, reval bool) *fleet {
	tb.Helper()
	fl := &fleet{clk: testutil.NewClock(t0)}
	fl.l2 = newFakeL2(fl.clk.Now)
	for range n {
		f := newFake(fl.clk.Now)
		cc := cfg
		cc.Now = fl.clk.Now
		cc.SecondLevel = fl.l2
		if reval {
			cc.Revalidator = f
		}
		c := newTestCache(tb, f, cc)
		fl.l2.subscribe(c)
		fl.next = append(fl.next, f)
		fl.c = append(fl.c, c)
	}
	return fl
}

// calls is the number of validator calls across the fleet.
func (fl *fleet) calls() int64 {
	var n int64
	for _, f := range fl.next {
		n += f.calls.Load()
	}
	return n
}

func (fl *fleet) wait() {
	for _, c := range fl.c {
		c.Wait()
	}
}

func TestSecondLevelSharesVerdicts(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		answer func([]byte) (*auth.Principal, error)
		// want: the answer every replica gives, and the validator calls
		// across a fleet of three that each validate the token once.
		wantErr   error
		wantCalls int64
		wantTTL   time.Duration // of the entry stored in the second level (0: none stored)
	}{
		{name: "valid token: one validation for the fleet", cfg: Config{MaxTTL: time.Minute},
			answer: valid(t0.Add(time.Hour)), wantCalls: 1, wantTTL: time.Minute},
		{name: "exp caps the shared entry", cfg: Config{MaxTTL: time.Hour},
			answer: valid(t0.Add(90 * time.Second)), wantCalls: 1, wantTTL: 90 * time.Second},
		{name: "invalid token is shared for NegativeTTL", cfg: Config{NegativeTTL: 3 * time.Second},
			answer: invalid(auth.ReasonInactive), wantErr: auth.ErrInactive, wantCalls: 1, wantTTL: 3 * time.Second},
		{name: "unknown key is never shared", answer: invalid(auth.ReasonUnknownKey), wantErr: auth.ErrUnknownKey, wantCalls: 3},
		{name: "unavailable is never shared", answer: unavailable(), wantErr: auth.ErrUnavailable, wantCalls: 3},
		{name: "NoPositiveCaching shares nothing valid", cfg: Config{NoPositiveCaching: true},
			answer: valid(t0.Add(time.Hour)), wantCalls: 3},
		{name: "negative caching off shares no rejection", cfg: Config{NegativeTTL: -1},
			answer: invalid(auth.ReasonInactive), wantErr: auth.ErrInactive, wantCalls: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fl := newFleet(t, 3, tc.cfg, false)
			for _, f := range fl.next {
				f.set(tc.answer)
			}
			for i, c := range fl.c {
				p, err := c.Validate(context.Background(), []byte("tok"))
				switch {
				case tc.wantErr == nil && (err != nil || p == nil || p.Subject != "sub-tok"):
					t.Fatalf("replica %d: (%v, %v), want the token's principal", i, p, err)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Fatalf("replica %d: error %v, want %v", i, err, tc.wantErr)
				}
			}
			if got := fl.calls(); got != tc.wantCalls {
				t.Errorf("validator calls across the fleet = %d, want %d", got, tc.wantCalls)
			}
			_, ttl, stored := fl.l2.entry("tok")
			if stored != (tc.wantTTL > 0) || ttl != tc.wantTTL {
				t.Errorf("second level holds an entry %v for %v, want %v", stored, ttl, tc.wantTTL)
			}
			if tc.cfg.NoPositiveCaching && fl.l2.leaseCalls.Load() != 0 {
				t.Errorf("Lease called %d times under NoPositiveCaching, want 0 (nobody would Set)", fl.l2.leaseCalls.Load())
			}
			if e, _, ok := fl.l2.entry("tok"); ok && e.Principal == nil && e.Reason != auth.ReasonInactive {
				t.Errorf("negative entry's reason = %v, want inactive", e.Reason)
			}
		})
	}
}

// TestSecondLevelDeadlineBoundsTheCopy: a replica that takes a verdict from
// the second level keeps it no longer than its deadline there, and then
// asks again.
func TestSecondLevelDeadlineBoundsTheCopy(t *testing.T) {
	fl := newFleet(t, 2, Config{MaxTTL: time.Minute}, false)
	mustValid(t, fl.c[0], "tok") // stored until t0+1m
	fl.clk.Advance(40 * time.Second)
	mustValid(t, fl.c[1], "tok") // adopted until t0+1m, not t0+1m40s
	fl.wait()
	if got := fl.calls(); got != 1 {
		t.Fatalf("validator calls = %d, want 1", got)
	}
	if s := fl.c[1].Stats(); s.L2Hits != 1 {
		t.Fatalf("replica 1 L2Hits = %d, want 1", s.L2Hits)
	}
	fl.clk.Advance(19 * time.Second)
	mustValid(t, fl.c[1], "tok")
	if got := fl.calls(); got != 1 {
		t.Fatalf("validator calls = %d at t0+59s, want 1 (a hit)", got)
	}
	fl.clk.Advance(2 * time.Second)
	mustValid(t, fl.c[1], "tok")
	if got := fl.next[1].calls.Load(); got != 1 {
		t.Fatalf("replica 1 validator calls = %d past the shared deadline, want 1", got)
	}
}

// TestSecondLevelLease: a replica that finds another holding the lease
// waits for its verdict instead of validating; when none comes, it
// validates itself.
func TestSecondLevelLease(t *testing.T) {
	cases := []struct {
		name      string
		holderSet bool // the lease holder stores its verdict during Await
		wantCalls int64
	}{
		{"holder's verdict arrives", true, 0},
		{"holder never answers", false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fl := newFleet(t, 1, Config{}, false)
			d := sha256.Sum256([]byte("tok"))
			fl.l2.leases[d] = true // another replica holds it
			if tc.holderSet {
				fl.l2.onAwait = func(d [sha256.Size]byte) {
					_ = fl.l2.Set(context.Background(), d, L2Entry{Principal: principalFor("tok", t0.Add(time.Hour)), ValidatedAt: t0}, time.Minute)
				}
			}
			mustValid(t, fl.c[0], "tok")
			if got := fl.calls(); got != tc.wantCalls {
				t.Errorf("validator calls = %d, want %d", got, tc.wantCalls)
			}
			if got := fl.l2.awaits.Load(); got != 1 {
				t.Errorf("Await calls = %d, want 1", got)
			}
		})
	}
}

// TestSecondLevelConcurrentMissesOneCall: concurrent misses in one process
// make one Get and one validation.
func TestSecondLevelConcurrentMissesOneCall(t *testing.T) {
	fl := newFleet(t, 1, Config{}, false)
	release := fl.next[0].block()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { mustValid(t, fl.c[0], "tok") })
	}
	testutil.WaitFor(t, "the validation to start", func() bool { return fl.next[0].calls.Load() == 1 })
	testutil.WaitFor(t, "every caller to join", func() bool { return fl.c[0].Stats().Misses == 20 })
	release()
	wg.Wait()
	if g, v := fl.l2.gets.Load(), fl.calls(); g != 1 || v != 1 {
		t.Errorf("20 concurrent misses made %d Gets and %d validations, want 1 and 1", g, v)
	}
}

// TestSecondLevelDown: a second level that answers nothing is a miss:
// every replica validates by itself and answers as without it.
func TestSecondLevelDown(t *testing.T) {
	fl := newFleet(t, 3, Config{}, false)
	fl.l2.setDown(true)
	for _, c := range fl.c {
		mustValid(t, c, "tok")
	}
	if got := fl.calls(); got != 3 {
		t.Errorf("validator calls = %d, want 3", got)
	}
	fl.l2.setDown(false)
	mustValid(t, fl.c[0], "other")
	mustValid(t, fl.c[1], "other")
	if got := fl.calls(); got != 4 {
		t.Errorf("validator calls = %d after the second level came back, want 4", got)
	}
}

// TestSecondLevelIgnoresUnknownKeyEntry: a negative entry for an unknown
// signing key (which no replica writes) is not served.
func TestSecondLevelIgnoresUnknownKeyEntry(t *testing.T) {
	fl := newFleet(t, 1, Config{}, false)
	_ = fl.l2.Set(context.Background(), sha256.Sum256([]byte("tok")), L2Entry{Reason: auth.ReasonUnknownKey}, time.Minute)
	mustValid(t, fl.c[0], "tok")
	if got := fl.calls(); got != 1 {
		t.Errorf("validator calls = %d, want 1", got)
	}
}

// TestSecondLevelHybrid: with a SecondLevelVerifier, a token it refuses
// never reaches the second level, and a valid verdict from there is served
// with the verifier's principal, unless it is older than MaxStaleness.
func TestSecondLevelHybrid(t *testing.T) {
	cases := []struct {
		name        string
		verifier    func([]byte) (*auth.Principal, error)
		sharedAge   time.Duration // age of the shared entry's ValidatedAt
		wantErr     error
		wantGets    int64
		wantNext    int64
		wantSubject string
	}{
		{name: "verifier refuses: no Redis round trip", verifier: invalid(auth.ReasonSignature), wantErr: auth.ErrSignature},
		{name: "fresh shared verdict, verifier's principal", sharedAge: 10 * time.Second, wantGets: 1, wantSubject: "local-tok"},
		{name: "shared verdict past MaxStaleness", sharedAge: 61 * time.Second, wantGets: 1, wantNext: 1, wantSubject: "sub-tok"},
		{name: "verifier cannot check the token: the shared verdict as it is",
			verifier:  func([]byte) (*auth.Principal, error) { return nil, fmt.Errorf("issuer b: %w", ErrUnverifiable) },
			sharedAge: 10 * time.Second, wantGets: 1, wantSubject: "redis-tok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testutil.NewClock(t0)
			l2 := newFakeL2(clk.Now)
			next := newFake(clk.Now)
			verifier := newFake(clk.Now)
			verifier.set(func(tok []byte) (*auth.Principal, error) {
				p := principalFor(string(tok), t0.Add(time.Hour))
				p.Subject = "local-" + string(tok)
				return p, nil
			})
			if tc.verifier != nil {
				verifier.set(tc.verifier)
			}
			c := newTestCache(t, next, Config{
				Now: clk.Now, SecondLevel: l2, SecondLevelVerifier: verifier,
				Revalidator: newFake(clk.Now), RevalidateAfter: 30 * time.Second,
			})
			_ = l2.Set(context.Background(), sha256.Sum256([]byte("tok")),
				L2Entry{Principal: &auth.Principal{Subject: "redis-tok"}, ValidatedAt: t0.Add(-tc.sharedAge)}, time.Hour)
			p, err := c.Validate(context.Background(), []byte("tok"))
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && (err != nil || p.Subject != tc.wantSubject):
				t.Fatalf("(%+v, %v), want subject %q", p, err, tc.wantSubject)
			}
			if g, n := l2.gets.Load(), next.calls.Load(); g != tc.wantGets || n != tc.wantNext {
				t.Errorf("Gets %d, validator calls %d; want %d and %d", g, n, tc.wantGets, tc.wantNext)
			}
		})
	}
}

// TestSecondLevelRevocationReachesEveryReplica: in hybrid mode, the first
// replica whose re-check finds the token revoked revokes it in the second
// level; every replica forgets its copy at once and refuses the token
// without asking anyone, though their own re-checks are not due.
func TestSecondLevelRevocationReachesEveryReplica(t *testing.T) {
	fl := newFleet(t, 3, Config{RevalidateAfter: 30 * time.Second, NegativeTTL: 5 * time.Second}, true)
	for _, c := range fl.c {
		mustValid(t, c, "tok")
	}
	fl.wait()
	if got := fl.calls(); got != 1 {
		t.Fatalf("validator calls = %d, want 1", got)
	}
	for _, f := range fl.next {
		f.set(invalid(auth.ReasonInactive))
	}

	fl.clk.Advance(31 * time.Second)
	mustValid(t, fl.c[0], "tok") // served; starts the re-check
	fl.c[0].Wait()
	if got := fl.l2.revokes.Load(); got != 1 {
		t.Fatalf("Revoke calls = %d, want 1", got)
	}
	if e, ttl, ok := fl.l2.entry("tok"); !ok || e.Principal != nil || e.Reason != auth.ReasonInactive || ttl != 5*time.Second {
		t.Fatalf("second level holds (%+v, %v, %v), want an inactive entry for NegativeTTL", e, ttl, ok)
	} else if want := t0.Add(31*time.Second + 2*DefaultMaxTTL); !e.RevokedUntil.Equal(want) {
		// The token's exp (t0+1h) is later: twice MaxTTL from the revocation.
		t.Errorf("RevokedUntil = %v, want %v", e.RevokedUntil, want)
	}
	before := fl.calls()
	for i, c := range fl.c {
		if _, err := c.Validate(context.Background(), []byte("tok")); !errors.Is(err, auth.ErrInactive) {
			t.Errorf("replica %d: %v, want inactive", i, err)
		}
	}
	if got := fl.calls() - before; got != 0 {
		t.Errorf("the refusals cost %d validator calls, want 0", got)
	}
	for i, c := range fl.c[1:] {
		if s := c.Stats(); s.Forgotten != 1 || s.Revalidations != 0 {
			t.Errorf("replica %d: Forgotten %d, Revalidations %d; want 1 and 0", i+1, s.Forgotten, s.Revalidations)
		}
	}
}

// TestSecondLevelRevocationWithoutNegativeCaching: with negative caching
// off, the revocation deletes the shared entry (and still reaches every
// replica), so the next miss validates afresh.
func TestSecondLevelRevocationWithoutNegativeCaching(t *testing.T) {
	fl := newFleet(t, 2, Config{RevalidateAfter: 30 * time.Second, NegativeTTL: -1}, true)
	for _, c := range fl.c {
		mustValid(t, c, "tok")
	}
	fl.wait()
	for _, f := range fl.next {
		f.set(invalid(auth.ReasonInactive))
	}
	fl.clk.Advance(31 * time.Second)
	mustValid(t, fl.c[0], "tok")
	fl.c[0].Wait()
	if _, _, ok := fl.l2.entry("tok"); ok {
		t.Fatal("the shared entry survived the revocation")
	}
	if _, err := fl.c[1].Validate(context.Background(), []byte("tok")); !errors.Is(err, auth.ErrInactive) {
		t.Fatalf("replica 1: %v, want inactive (validated afresh)", err)
	}
}

// TestSecondLevelSharesRechecks: a replica whose re-check is due takes a
// fresher check from the second level instead of asking the Revalidator,
// and a re-check it makes itself is stored there.
func TestSecondLevelSharesRechecks(t *testing.T) {
	fl := newFleet(t, 2, Config{RevalidateAfter: 30 * time.Second, MaxTTL: time.Hour}, true)
	for _, c := range fl.c {
		mustValid(t, c, "tok")
	}
	fl.wait()
	fl.clk.Advance(31 * time.Second)
	mustValid(t, fl.c[0], "tok") // re-checks with its Revalidator
	fl.c[0].Wait()
	if s := fl.c[0].Stats(); s.Revalidations != 1 {
		t.Fatalf("replica 0 Revalidations = %d, want 1", s.Revalidations)
	}
	e, ttl, _ := fl.l2.entry("tok")
	if !e.ValidatedAt.Equal(t0.Add(31*time.Second)) || ttl != time.Hour-31*time.Second {
		t.Fatalf("shared entry validated at %v for %v, want t0+31s until the entry's own deadline", e.ValidatedAt, ttl)
	}
	mustValid(t, fl.c[1], "tok") // due too, but replica 0 just checked
	fl.c[1].Wait()
	if s := fl.c[1].Stats(); s.Revalidations != 0 {
		t.Errorf("replica 1 Revalidations = %d, want 0 (taken from the second level)", s.Revalidations)
	}
	fl.clk.Advance(29 * time.Second)
	mustValid(t, fl.c[1], "tok")
	fl.c[1].Wait()
	if s := fl.c[1].Stats(); s.Revalidations != 0 {
		t.Errorf("replica 1 Revalidations = %d 29s later, want 0 (its entry counts as checked at t0+31s)", s.Revalidations)
	}
}

// TestForget: Forget drops a valid entry (a hit holding it refuses it
// too), keeps a negative one, and stops a validation in flight from
// storing its valid answer.
func TestForget(t *testing.T) {
	t.Run("valid entry", func(t *testing.T) {
		clk := testutil.NewClock(t0)
		f := newFake(clk.Now)
		c := newTestCache(t, f, Config{Now: clk.Now})
		mustValid(t, c, "tok")
		c.Wait()
		c.Forget(sha256.Sum256([]byte("tok")))
		mustValid(t, c, "tok")
		if got := f.calls.Load(); got != 2 {
			t.Errorf("validator calls = %d, want 2", got)
		}
		if s := c.Stats(); s.Forgotten != 1 {
			t.Errorf("Forgotten = %d, want 1", s.Forgotten)
		}
	})
	t.Run("negative entry kept", func(t *testing.T) {
		f := newFake(time.Now)
		f.set(invalid(auth.ReasonSignature))
		c := newTestCache(t, f, Config{})
		_, _ = c.Validate(context.Background(), []byte("bad"))
		c.Wait()
		c.Forget(sha256.Sum256([]byte("bad")))
		_, _ = c.Validate(context.Background(), []byte("bad"))
		if got := f.calls.Load(); got != 1 {
			t.Errorf("validator calls = %d, want 1", got)
		}
	})
	t.Run("validation in flight", func(t *testing.T) {
		f := newFake(time.Now)
		c := newTestCache(t, f, Config{})
		release := f.block()
		done := make(chan struct{})
		go func() { defer close(done); mustValid(t, c, "tok") }()
		testutil.WaitFor(t, "the validation to start", func() bool { return f.calls.Load() == 1 })
		c.Forget(sha256.Sum256([]byte("tok")))
		release()
		<-done
		c.Wait()
		mustValid(t, c, "tok")
		if got := f.calls.Load(); got != 2 {
			t.Errorf("validator calls = %d, want 2 (the answer in flight was not stored)", got)
		}
	})
	// A revocation that lands after the validation's last check of the
	// counter but before the store: Forget finds nothing to drop, so the
	// store must notice it.
	t.Run("between the check and the store", func(t *testing.T) {
		f := newFake(time.Now)
		c := newTestCache(t, f, Config{})
		c.beforeStore = func() { c.Forget(sha256.Sum256([]byte("tok"))) }
		mustValid(t, c, "tok")
		c.beforeStore = nil
		c.Wait()
		mustValid(t, c, "tok")
		if got := f.calls.Load(); got != 2 {
			t.Errorf("validator calls = %d, want 2 (the answer stored across the revocation was dropped)", got)
		}
	})
	t.Run("after Close", func(t *testing.T) {
		c, err := New(newFake(time.Now), Config{})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		c.Forget(sha256.Sum256([]byte("tok"))) // must not panic
	})
}

// TestSecondLevelRetiredKey: a verdict in the second level for a token
// whose key this replica's key set no longer holds is not served (the
// validator is asked, and refuses), on the replica that validated the
// token as on the others; a verdict naming no key (introspection) is.
func TestSecondLevelRetiredKey(t *testing.T) {
	keys := testutil.NewKeys("key-a")
	fl := newFleet(t, 2, Config{MaxTTL: time.Minute, SigningKeys: keys}, false)
	for _, f := range fl.next {
		f.set(keyed(fl.clk.Now))
	}
	for _, tok := range []string{"a-tok", "r-tok"} {
		mustValid(t, fl.c[0], tok)
	}
	fl.wait()
	mustValid(t, fl.c[1], "r-tok")
	if got := fl.calls(); got != 2 {
		t.Fatalf("validator calls = %d, want 2 (replica 1 took r-tok from the second level)", got)
	}

	keys.Drop("key-a")
	for _, f := range fl.next {
		f.set(func(tok []byte) (*auth.Principal, error) {
			if tok[0] == 'a' {
				return nil, auth.Invalid(auth.ReasonUnknownKey)
			}
			return keyed(fl.clk.Now)(tok)
		})
	}
	for i, c := range fl.c {
		if p, err := c.Validate(context.Background(), []byte("a-tok")); !errors.Is(err, auth.ErrUnknownKey) {
			t.Errorf("replica %d: (%+v, %v) for a token of a retired key, want ErrUnknownKey", i, p, err)
		}
	}
	before := fl.calls()
	mustValid(t, fl.c[1], "r-tok")
	if got := fl.calls() - before; got != 0 {
		t.Errorf("r-tok cost %d validator calls, want 0 (it names no key)", got)
	}
}
