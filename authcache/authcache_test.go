package authcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

func TestNew(t *testing.T) {
	next := newFake(time.Now)
	bad := []struct {
		name string
		next auth.Validator
		cfg  Config
	}{
		{"nil validator", nil, Config{}},
		{"negative MaxCost", next, Config{MaxCost: -1}},
		{"negative MaxTTL", next, Config{MaxTTL: -time.Second}},
		{"negative RevalidateAfter", next, Config{RevalidateAfter: -time.Second}},
		{"negative MaxRevalidations", next, Config{MaxRevalidations: -1}},
		{"negative MaxStaleness", next, Config{MaxStaleness: -time.Second}},
		{"MaxStaleness below RevalidateAfter", next, Config{RevalidateAfter: time.Minute, MaxStaleness: 59 * time.Second}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.next, tc.cfg)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded, want an error")
			}
			if got := err.Error(); len(got) < 10 || got[:10] != "authcache:" {
				t.Errorf("error %q lacks the package prefix", got)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		c := newTestCache(t, next, Config{})
		want := Config{
			MaxCost:          DefaultMaxCost,
			MaxTTL:           DefaultMaxTTL,
			NegativeTTL:      DefaultNegativeTTL,
			RevalidateAfter:  DefaultRevalidateAfter,
			MaxRevalidations: DefaultMaxRevalidations,
		}
		got := c.cfg
		if got.MaxCost != want.MaxCost || got.MaxTTL != want.MaxTTL || got.NegativeTTL != want.NegativeTTL ||
			got.RevalidateAfter != want.RevalidateAfter || got.MaxRevalidations != want.MaxRevalidations ||
			got.MaxStaleness != 2*DefaultRevalidateAfter ||
			got.Now == nil || got.Logger == nil {
			t.Errorf("defaults = %+v, want %+v with Now and Logger set", got, want)
		}
		if s := c.Stats(); s.MaxCost != DefaultMaxCost {
			t.Errorf("Stats().MaxCost = %d, want %d", s.MaxCost, DefaultMaxCost)
		}
	})

	t.Run("caller's config is copied", func(t *testing.T) {
		cfg := Config{MaxTTL: time.Minute}
		c := newTestCache(t, next, cfg)
		cfg.MaxTTL = time.Hour
		if c.cfg.MaxTTL != time.Minute {
			t.Errorf("MaxTTL = %v after the caller changed its copy", c.cfg.MaxTTL)
		}
	})
}

func TestTTLFor(t *testing.T) {
	now := t0
	cfg := Config{MaxTTL: 5 * time.Minute, NegativeTTL: 5 * time.Second}
	p := func(exp time.Time) *auth.Principal { return principalFor("x", exp) }
	cases := []struct {
		name     string
		cfg      Config
		p        *auth.Principal
		err      error
		notAfter time.Time
		want     time.Duration
	}{
		{"exp beyond MaxTTL is capped", cfg, p(now.Add(time.Hour)), nil, time.Time{}, 5 * time.Minute},
		{"exp within MaxTTL", cfg, p(now.Add(2 * time.Minute)), nil, time.Time{}, 2 * time.Minute},
		{"exp one nanosecond ahead", cfg, p(now.Add(time.Nanosecond)), nil, time.Time{}, time.Nanosecond},
		{"exp now is not cached", cfg, p(now), nil, time.Time{}, 0},
		{"exp past (validator leeway) is not cached", cfg, p(now.Add(-time.Second)), nil, time.Time{}, 0},
		{"no exp (remote) lives MaxTTL", cfg, p(time.Time{}), nil, time.Time{}, 5 * time.Minute},
		{"NoPositiveCaching", Config{MaxTTL: time.Minute, NoPositiveCaching: true}, p(now.Add(time.Hour)), nil, time.Time{}, 0},
		{"invalid token lives NegativeTTL", cfg, nil, auth.Invalid(auth.ReasonMalformed), time.Time{}, 5 * time.Second},
		{"wrapped invalid token", cfg, nil, fmt.Errorf("x: %w", auth.ErrInvalidToken), time.Time{}, 5 * time.Second},
		{"negative caching disabled", Config{MaxTTL: time.Minute, NegativeTTL: -1}, nil, auth.Invalid(auth.ReasonMalformed), time.Time{}, 0},
		{"unavailable is never cached", cfg, nil, &auth.UnavailableError{Reason: "down"}, time.Time{}, 0},
		{"context error is never cached", cfg, nil, context.Canceled, time.Time{}, 0},
		{"unknown error is never cached", cfg, nil, errors.New("boom"), time.Time{}, 0},
		{"no token error is never cached", cfg, nil, auth.ErrNoToken, time.Time{}, 0},
		{"neither principal nor error", cfg, nil, nil, time.Time{}, 0},
		{"second-level deadline caps a principal", cfg, p(now.Add(time.Hour)), nil, now.Add(time.Minute), time.Minute},
		{"deadline beyond exp does not extend it", cfg, p(now.Add(time.Minute)), nil, now.Add(time.Hour), time.Minute},
		{"second-level deadline caps a rejection", cfg, nil, auth.Invalid(auth.ReasonInactive), now.Add(2 * time.Second), 2 * time.Second},
		{"deadline past is not cached", cfg, p(now.Add(time.Hour)), nil, now.Add(-time.Second), 0},
		{"deadline does not make the uncacheable cacheable", cfg, nil, &auth.UnavailableError{Reason: "down"}, now.Add(time.Hour), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ttlFor(now, tc.p, tc.err, tc.notAfter, &tc.cfg); got != tc.want {
				t.Errorf("ttlFor = %v, want %v", got, tc.want)
			}
		})
	}
}

// lifetimeCase checks when an answer is served from the cache and when the
// validator is asked again, on the injected clock.
type lifetimeCase struct {
	name   string
	cfg    Config
	answer func(clk *testutil.Clock) func([]byte) (*auth.Principal, error)
	// steps: advance the clock by adv, validate, and expect the validator
	// to have been called calls times in total and the answer to be good
	// (or to match wantErr).
	steps []step
}

type step struct {
	adv     time.Duration
	calls   int64
	wantErr error // nil: a good answer
}

func (tc lifetimeCase) run(t *testing.T) {
	clk := testutil.NewClock(t0)
	f := newFake(clk.Now)
	if tc.answer != nil {
		f.set(tc.answer(clk))
	}
	cfg := tc.cfg
	cfg.Now = clk.Now
	c := newTestCache(t, f, cfg)
	for i, s := range tc.steps {
		clk.Advance(s.adv)
		p, err := c.Validate(context.Background(), []byte("tok"))
		c.Wait()
		switch {
		case s.wantErr == nil && (err != nil || p == nil || p.Subject != "sub-tok"):
			t.Fatalf("step %d: Validate = %v, %v; want the principal", i, p, err)
		case s.wantErr != nil && (p != nil || !errors.Is(err, s.wantErr)):
			t.Fatalf("step %d: Validate = %v, %v; want %v", i, p, err, s.wantErr)
		}
		if got := f.calls.Load(); got != s.calls {
			t.Fatalf("step %d (clock +%v): validator called %d times, want %d", i, clk.Now().Sub(t0), got, s.calls)
		}
	}
}

func TestLifetimes(t *testing.T) {
	expIn := func(d time.Duration) func(*testutil.Clock) func([]byte) (*auth.Principal, error) {
		return func(*testutil.Clock) func([]byte) (*auth.Principal, error) { return valid(t0.Add(d)) }
	}
	fixed := func(a func([]byte) (*auth.Principal, error)) func(*testutil.Clock) func([]byte) (*auth.Principal, error) {
		return func(*testutil.Clock) func([]byte) (*auth.Principal, error) { return a }
	}
	cases := []lifetimeCase{
		{
			name:   "hit after first validation",
			answer: expIn(time.Hour),
			steps:  []step{{0, 1, nil}, {0, 1, nil}, {time.Second, 1, nil}, {time.Minute, 1, nil}},
		},
		{
			name:   "entry gone at exp",
			cfg:    Config{MaxTTL: time.Hour},
			answer: expIn(2 * time.Minute),
			steps: []step{
				{0, 1, nil},
				{2*time.Minute - time.Nanosecond, 1, nil}, // last instant before exp: hit
				{time.Nanosecond, 2, nil},                 // at exp: asked again
				{0, 3, nil},                               // and not cached (ttl 0 at exp)
			},
		},
		{
			name:   "MaxTTL cap",
			cfg:    Config{MaxTTL: time.Minute},
			answer: expIn(time.Hour),
			steps:  []step{{0, 1, nil}, {time.Minute - time.Nanosecond, 1, nil}, {time.Nanosecond, 2, nil}, {time.Second, 2, nil}},
		},
		{
			name:   "no exp lives MaxTTL",
			cfg:    Config{MaxTTL: time.Minute},
			answer: fixed(valid(time.Time{})),
			steps:  []step{{0, 1, nil}, {59 * time.Second, 1, nil}, {time.Second, 2, nil}},
		},
		{
			name:   "negative entry cached for NegativeTTL then expires",
			cfg:    Config{NegativeTTL: 5 * time.Second},
			answer: fixed(invalid(auth.ReasonSignature)),
			steps: []step{
				{0, 1, auth.ErrInvalidToken},
				{5*time.Second - time.Nanosecond, 1, auth.ErrInvalidToken},
				{time.Nanosecond, 2, auth.ErrInvalidToken},
				{time.Second, 2, auth.ErrInvalidToken},
			},
		},
		{
			name:   "negative caching disabled",
			cfg:    Config{NegativeTTL: -1},
			answer: fixed(invalid(auth.ReasonSignature)),
			steps:  []step{{0, 1, auth.ErrInvalidToken}, {0, 2, auth.ErrInvalidToken}},
		},
		{
			name:   "ErrUnavailable never cached",
			answer: fixed(unavailable()),
			steps:  []step{{0, 1, auth.ErrUnavailable}, {0, 2, auth.ErrUnavailable}, {0, 3, auth.ErrUnavailable}},
		},
		{
			name:   "NoPositiveCaching asks every time",
			cfg:    Config{NoPositiveCaching: true},
			answer: expIn(time.Hour),
			steps:  []step{{0, 1, nil}, {0, 2, nil}, {0, 3, nil}},
		},
		{
			name:   "NoPositiveCaching still caches negatives",
			cfg:    Config{NoPositiveCaching: true},
			answer: fixed(invalid(auth.ReasonExpired)),
			// A negative hit still answers the reason's sentinel.
			steps: []step{{0, 1, auth.ErrExpired}, {0, 1, auth.ErrExpired}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestUncacheableErrors(t *testing.T) {
	errBoom := errors.New("boom")
	cases := []struct {
		name    string
		answer  func([]byte) (*auth.Principal, error)
		check   func(error) bool
		wantMsg string
	}{
		{"unknown error passes through unchanged", func([]byte) (*auth.Principal, error) { return nil, errBoom },
			func(err error) bool { return err == errBoom }, ""},
		{"context error", func([]byte) (*auth.Principal, error) { return nil, context.DeadlineExceeded },
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }, ""},
		{"neither principal nor error", func([]byte) (*auth.Principal, error) { return nil, nil },
			func(err error) bool {
				return err != nil && !errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrUnavailable)
			}, "authcache:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(time.Now)
			f.set(tc.answer)
			c := newTestCache(t, f, Config{})
			for i := range 3 {
				p, err := c.Validate(context.Background(), []byte("tok"))
				c.Wait()
				if p != nil || !tc.check(err) {
					t.Fatalf("call %d: Validate = %v, %v", i, p, err)
				}
				if tc.wantMsg != "" && (len(err.Error()) < len(tc.wantMsg) || err.Error()[:len(tc.wantMsg)] != tc.wantMsg) {
					t.Errorf("error %q does not start with %q", err, tc.wantMsg)
				}
			}
			if got := f.calls.Load(); got != 3 {
				t.Errorf("validator called %d times, want 3 (never cached)", got)
			}
		})
	}

	t.Run("unavailable then valid is cached", func(t *testing.T) {
		f := newFake(time.Now)
		f.set(unavailable())
		c := newTestCache(t, f, Config{})
		if _, err := c.Validate(context.Background(), []byte("tok")); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("Validate: %v, want ErrUnavailable", err)
		}
		c.Wait()
		f.set(nil)
		mustValid(t, c, "tok")
		c.Wait()
		mustValid(t, c, "tok")
		if got := f.calls.Load(); got != 2 {
			t.Errorf("validator called %d times, want 2", got)
		}
	})
}

func TestSingleflight(t *testing.T) {
	const n = 100
	f := newFake(time.Now)
	release := f.block()
	c := newTestCache(t, f, Config{})

	var wg sync.WaitGroup
	results := make([]*auth.Principal, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = c.Validate(context.Background(), []byte("new-token"))
		})
	}
	// Misses is counted after a caller has joined the shared validation.
	testutil.WaitFor(t, "100 callers to join", func() bool { return c.Stats().Misses == n })
	release()
	wg.Wait()

	if got := f.calls.Load(); got != 1 {
		t.Fatalf("validator called %d times for %d concurrent callers, want 1", got, n)
	}
	for i := range n {
		if errs[i] != nil || results[i] == nil || results[i] != results[0] {
			t.Fatalf("caller %d: %v, %v; want the shared principal", i, results[i], errs[i])
		}
	}
	c.Wait()
	mustValid(t, c, "new-token")
	if s := c.Stats(); s.Validations != 1 || s.Hits != 1 || s.Misses != n {
		t.Errorf("Stats = %+v, want 1 validation, 1 hit, %d misses", s, n)
	}
}

func TestSingleflightPerToken(t *testing.T) {
	const tokens, callers = 5, 20
	f := newFake(time.Now)
	release := f.block()
	c := newTestCache(t, f, Config{})
	var wg sync.WaitGroup
	for i := range tokens * callers {
		wg.Go(func() {
			tok := "tok-" + strconv.Itoa(i%tokens)
			p, err := c.Validate(context.Background(), []byte(tok))
			if err != nil || p.Subject != "sub-"+tok {
				t.Errorf("Validate(%s) = %v, %v", tok, p, err)
			}
		})
	}
	testutil.WaitFor(t, "every caller to join", func() bool { return c.Stats().Misses == tokens*callers })
	release()
	wg.Wait()
	if got := f.calls.Load(); got != tokens {
		t.Errorf("validator called %d times, want one per token (%d)", got, tokens)
	}
}

// TestWaiterLeavesEarly: a caller waiting for another's validation of the
// same token leaves as soon as its own ctx ends. The leader, whose goroutine
// runs the validation, stays until it ends, and the validation runs on the
// cache's context: cancelling the leader's ctx changes nothing.
func TestWaiterLeavesEarly(t *testing.T) {
	f := newFake(time.Now)
	f.entered = make(chan struct{}, 1)
	release := f.block()
	c := newTestCache(t, f, Config{})

	type result struct {
		p   *auth.Principal
		err error
	}
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	defer cancelLeader()
	leader := make(chan result, 1)
	go func() {
		p, err := c.Validate(leaderCtx, []byte("slow"))
		leader <- result{p, err}
	}()
	<-f.entered // the shared validation has started
	waiterCtx, cancelWaiter := context.WithCancel(context.Background())
	waiter := make(chan result, 1)
	go func() {
		p, err := c.Validate(waiterCtx, []byte("slow"))
		waiter <- result{p, err}
	}()
	testutil.WaitFor(t, "the waiter to join", func() bool { return c.Stats().Misses == 2 })

	cancelWaiter()
	cancelLeader()
	r := <-waiter // leaves while the validation is still blocked
	var ue *auth.UnavailableError
	if r.p != nil || !errors.Is(r.err, auth.ErrUnavailable) || !errors.Is(r.err, context.Canceled) || !errors.As(r.err, &ue) {
		t.Fatalf("cancelled waiter got %v, %v; want an *auth.UnavailableError wrapping context.Canceled", r.p, r.err)
	}
	select {
	case r := <-leader:
		t.Fatalf("leader returned %v, %v before its validation finished", r.p, r.err)
	default:
	}

	release()
	if r := <-leader; r.err != nil || r.p == nil {
		t.Fatalf("leader got %v, %v; want the principal (the validation must not run on the leader's ctx)", r.p, r.err)
	}
	c.Wait()
	mustValid(t, c, "slow")
	if got := f.calls.Load(); got != 1 {
		t.Errorf("validator called %d times, want 1 (the answer was cached for later callers)", got)
	}
}

// TestCallerMayReuseTokenBuffer: the cache keeps no caller's buffer. A
// waiter that left early may reuse its buffer while the validation goes on,
// and a leader may reuse its own once Validate returns, even in hybrid mode,
// where the entry keeps the token for its background re-checks.
func TestCallerMayReuseTokenBuffer(t *testing.T) {
	t.Run("waiter leaves early", func(t *testing.T) {
		f := newFake(time.Now)
		f.entered = make(chan struct{}, 1)
		release := f.block()
		c := newTestCache(t, f, Config{})

		leader := make(chan error, 1)
		go func() {
			_, err := c.Validate(context.Background(), []byte("original"))
			leader <- err
		}()
		<-f.entered
		buf := []byte("original")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Validate(ctx, buf)
			done <- err
		}()
		testutil.WaitFor(t, "the waiter to join", func() bool { return c.Stats().Misses == 2 })
		cancel()
		<-done
		copy(buf, "XXXXXXXX") // the caller's buffer is reused for another request
		release()
		if err := <-leader; err != nil {
			t.Fatalf("leader: %v", err)
		}
		c.Wait()

		mustValid(t, c, "original") // cached under the original token, with its principal
		if got := f.calls.Load(); got != 1 {
			t.Errorf("validator called %d times, want 1", got)
		}
	})
	t.Run("leader reuses its buffer, hybrid", func(t *testing.T) {
		h := newHybrid(t, Config{RevalidateAfter: time.Minute})
		var mu sync.Mutex
		var seen []string
		h.reval.set(func(tok []byte) (*auth.Principal, error) {
			mu.Lock()
			seen = append(seen, string(tok))
			mu.Unlock()
			return principalFor(string(tok), h.clk.Now().Add(time.Hour)), nil
		})
		buf := []byte("original")
		if _, err := h.c.Validate(context.Background(), buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXXXXX")
		h.c.Wait()
		h.clk.Advance(2 * time.Minute)
		mustValid(t, h.c, "original") // starts the re-check of the kept token
		h.c.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 1 || seen[0] != "original" {
			t.Errorf("revalidator saw %q, want [original]: the entry must keep a copy of the token", seen)
		}
	})
}

func TestDifferentTokensNeverShare(t *testing.T) {
	f := newFake(time.Now)
	c := newTestCache(t, f, Config{})
	tokens := []string{"a", "b", "ab", "abc", "abd", "", "\x00", "\x00\x00", "Bearer a"}
	for range 2 {
		for _, tok := range tokens {
			mustValid(t, c, tok)
		}
		c.Wait()
	}
	if got := f.calls.Load(); got != int64(len(tokens)) {
		t.Errorf("validator called %d times, want %d (one per token)", got, len(tokens))
	}

	t.Run("full digest is compared on a hit", func(t *testing.T) {
		// An entry stored under token x's key but carrying another digest
		// (a 128-bit collision, forged here) must not be served for x.
		dx := sha256.Sum256([]byte("x"))
		forged := newEntry(sha256.Sum256([]byte("y")), principalFor("y", time.Now().Add(time.Hour)), nil, nil, time.Now(), time.Hour)
		c.rc.Set(dx[:], forged, forged.cost)
		c.Wait()
		if got, ok := c.rc.Get(dx[:]); !ok || got != forged {
			t.Fatal("test setup: forged entry not stored")
		}
		before := f.calls.Load()
		mustValid(t, c, "x")
		if f.calls.Load() != before+1 {
			t.Error("forged entry was served without asking the validator")
		}
	})
}

func TestStats(t *testing.T) {
	clk := testutil.NewClock(t0)
	f := newFake(clk.Now)
	c := newTestCache(t, f, Config{Now: clk.Now})
	mustValid(t, c, "good")
	c.Wait()
	mustValid(t, c, "good")
	mustValid(t, c, "good")
	f.set(invalid(auth.ReasonMalformed))
	for range 3 {
		if _, err := c.Validate(context.Background(), []byte("bad")); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Validate(bad): %v", err)
		}
		c.Wait()
	}
	s := c.Stats()
	want := Stats{Hits: 2, NegativeHits: 2, Misses: 2, Validations: 2, MaxCost: DefaultMaxCost}
	s.Cost = 0
	if s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if c.Stats().Cost <= 0 {
		t.Errorf("Stats().Cost = %d, want > 0 with two entries", c.Stats().Cost)
	}
}

func TestEntryCost(t *testing.T) {
	now := time.Now()
	pos := newEntry([32]byte{}, principalFor("t", now.Add(time.Hour)), nil, nil, now, time.Minute)
	neg := newEntry([32]byte{}, nil, auth.Invalid(auth.ReasonMalformed), nil, now, time.Minute)
	tok := make([]byte, 900)
	withTok := newEntry([32]byte{}, principalFor("t", now.Add(time.Hour)), nil, tok, now, time.Minute)
	if pos.cost < 200 || pos.cost > 1000 {
		t.Errorf("positive entry cost %d, want a few hundred bytes", pos.cost)
	}
	if neg.cost >= pos.cost {
		t.Errorf("negative entry cost %d, want less than a positive one (%d)", neg.cost, pos.cost)
	}
	if withTok.cost != pos.cost+900 {
		t.Errorf("entry with a kept token costs %d, want %d", withTok.cost, pos.cost+900)
	}
	if negTok := newEntry([32]byte{}, nil, auth.Invalid(auth.ReasonMalformed), tok, now, time.Minute); negTok.token != nil {
		t.Error("a negative entry keeps its token")
	}
}

func TestNoTokenKeptWithoutRevalidator(t *testing.T) {
	f := newFake(time.Now)
	for _, reval := range []bool{false, true} {
		t.Run("revalidator="+strconv.FormatBool(reval), func(t *testing.T) {
			cfg := Config{}
			if reval {
				cfg.Revalidator = f
			}
			c := newTestCache(t, f, cfg)
			mustValid(t, c, "secret-token")
			c.Wait()
			d := sha256.Sum256([]byte("secret-token"))
			e, ok := c.rc.Get(d[:])
			if !ok {
				t.Fatal("entry not stored")
			}
			if reval != (e.token != nil) || (reval && string(e.token) != "secret-token") {
				t.Errorf("entry keeps token %q with revalidator=%v", e.token, reval)
			}
		})
	}
}

// TestCostBound floods the cache with unique tokens: its accounted cost, and
// the entries it actually holds, stay within MaxCost.
func TestCostBound(t *testing.T) {
	const (
		maxCost = 1 << 20
		tokens  = 200_000
		workers = 4
	)
	f := newFake(time.Now)
	c := newTestCache(t, f, Config{MaxCost: maxCost})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 64)
			for i := w; i < tokens; i += workers {
				buf = strconv.AppendInt(append(buf[:0], "flood-token-"...), int64(i), 10)
				if _, err := c.Validate(context.Background(), buf); err != nil {
					t.Errorf("Validate: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	c.Wait()

	s := c.Stats()
	if s.Validations != tokens {
		t.Errorf("Validations = %d, want %d", s.Validations, tokens)
	}
	if s.Cost > maxCost {
		t.Errorf("accounted cost %d exceeds MaxCost %d", s.Cost, maxCost)
	}
	var entries, held int64
	c.rc.IterValues(func(e *entry) bool {
		entries++
		held += e.cost
		return false
	})
	if held > maxCost {
		t.Errorf("%d entries hold %d bytes, more than MaxCost %d", entries, held, maxCost)
	}
	if entries == 0 || entries > maxCost/200 {
		t.Errorf("cache holds %d entries, want some but at most %d", entries, maxCost/200)
	}
	if s.Evictions+s.Rejections == 0 {
		t.Errorf("no evictions or rejections after %d unique tokens: %+v", tokens, s)
	}
	t.Logf("after %d unique tokens: %d entries, %d bytes held, stats %+v", tokens, entries, held, s)
}

func TestDigestHash(t *testing.T) {
	d := sha256.Sum256([]byte("tok"))
	h1, h2 := digestHash(d[:])
	if h1 == 0 && h2 == 0 {
		t.Fatal("digestHash returned zeros")
	}
	var w1, w2 uint64
	for i := 7; i >= 0; i-- {
		w1 = w1<<8 | uint64(d[i])
		w2 = w2<<8 | uint64(d[8+i])
	}
	if h1 != w1 || h2 != w2 {
		t.Errorf("digestHash = %x, %x; want the digest's first two little-endian words %x, %x", h1, h2, w1, w2)
	}
	if a, b := digestHash([]byte("short")); a != 0 || b != 0 {
		t.Errorf("digestHash(short) = %x, %x; want 0, 0", a, b)
	}
}

// TestMissWithEndedContextStartsNothing: a caller whose context has ended
// gets ErrUnavailable at once and the validator is not called.
func TestMissWithEndedContextStartsNothing(t *testing.T) {
	clk := testutil.NewClock(t0)
	v := newFake(clk.Now)
	v.set(valid(t0.Add(time.Hour)))
	c := newTestCache(t, v, Config{Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Validate(ctx, []byte("token-ended"))
	if !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	if n := v.calls.Load(); n != 0 {
		t.Fatalf("validator called %d times, want 0", n)
	}
}

// TestUnknownKeyIsNotNegativeCached: "unknown signing key" may turn good
// once the key set refreshes, so it is answered but never cached; other
// rejections are.
func TestUnknownKeyIsNotNegativeCached(t *testing.T) {
	for _, tc := range []struct {
		reason    auth.Reason
		wantCalls int64
	}{
		{auth.ReasonUnknownKey, 2},
		{auth.ReasonSignature, 1},
	} {
		t.Run(tc.reason.String(), func(t *testing.T) {
			f := newFake(time.Now)
			f.set(invalid(tc.reason))
			c := newTestCache(t, f, Config{NegativeTTL: time.Hour})
			for range 2 {
				if _, err := c.Validate(context.Background(), []byte("tok")); !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("Validate: %v, want ErrInvalidToken", err)
				}
				c.Wait()
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Errorf("validator called %d times, want %d", got, tc.wantCalls)
			}
		})
	}
}

// TestClockRejectionsCachedBriefly: "not yet valid" and "issued in the
// future" turn good as the clock moves on, so they are cached for at most
// a second whatever NegativeTTL says; "expired" for NegativeTTL.
func TestClockRejectionsCachedBriefly(t *testing.T) {
	for _, tc := range []struct {
		reason       auth.Reason
		callsAfter1s int64 // validator calls after a repeat 1.5 s later
		callsAtOnce  int64 // validator calls after a repeat at once
	}{
		{auth.ReasonNotYetValid, 2, 1},
		{auth.ReasonIssuedInFuture, 2, 1},
		{auth.ReasonExpired, 1, 1},
	} {
		t.Run(tc.reason.String(), func(t *testing.T) {
			clk := testutil.NewClock(time.Unix(1_700_000_000, 0))
			f := newFake(clk.Now)
			f.set(invalid(tc.reason))
			c := newTestCache(t, f, Config{Now: clk.Now, NegativeTTL: time.Hour})
			validate := func() {
				t.Helper()
				if _, err := c.Validate(context.Background(), []byte("tok")); !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("Validate: %v, want ErrInvalidToken", err)
				}
				c.Wait()
			}
			validate()
			validate()
			if got := f.calls.Load(); got != tc.callsAtOnce {
				t.Errorf("at once: validator called %d times, want %d", got, tc.callsAtOnce)
			}
			clk.Advance(1500 * time.Millisecond)
			validate()
			if got := f.calls.Load(); got != tc.callsAfter1s {
				t.Errorf("1.5 s later: validator called %d times, want %d", got, tc.callsAfter1s)
			}
		})
	}
}
