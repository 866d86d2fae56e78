package sharedcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestCache returns a Cache on srv with the test key, closed when the
// test ends. edit, when given, adjusts the Config first. Its Timeout is a
// generous 2s, so that a loaded test machine does not turn hits into
// misses; the tests of bounds set Timeout back to 0 (the 50ms default).
func newTestCache(tb testing.TB, srv *redisServer, edit func(*Config)) *Cache {
	tb.Helper()
	cfg := Config{URL: srv.url(), SigningKey: testKey, Timeout: 2 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func digestOf(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

func fullPrincipal(now time.Time) *auth.Principal {
	return &auth.Principal{
		Subject:   "alice@example.com",
		ClientID:  "0oa1client",
		Issuer:    "https://issuer.example.com/oauth2/default",
		Audience:  []string{"api://default", "api://items"},
		Scopes:    []string{"items:read", "items:write", "openid"},
		TokenID:   "AT.jti-123",
		IssuedAt:  now.Add(-time.Minute).Truncate(time.Second),
		ExpiresAt: now.Add(time.Hour).Truncate(time.Second),
		// The key set's thumbprint of the key that verified the token: a
		// replica that takes the verdict must be able to tell when the
		// issuer retires that key.
		KeyThumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
	}
}

// sameEntry fails the test unless got says what want says (times compared
// as instants, Deadline not compared).
func sameEntry(tb testing.TB, got, want authcache.L2Entry) {
	tb.Helper()
	if (got.Principal == nil) != (want.Principal == nil) || got.Reason != want.Reason || !got.ValidatedAt.Equal(want.ValidatedAt) {
		tb.Fatalf("entry = %+v, want %+v", got, want)
	}
	if want.Principal == nil {
		return
	}
	g, w := *got.Principal, *want.Principal
	if !g.IssuedAt.Equal(w.IssuedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) {
		tb.Fatalf("principal times = %v, %v, want %v, %v", g.IssuedAt, g.ExpiresAt, w.IssuedAt, w.ExpiresAt)
	}
	g.IssuedAt, g.ExpiresAt, w.IssuedAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g.Subject != w.Subject || g.ClientID != w.ClientID || g.Issuer != w.Issuer || g.TokenID != w.TokenID || g.KeyThumbprint != w.KeyThumbprint ||
		strings.Join(g.Audience, " ") != strings.Join(w.Audience, " ") || strings.Join(g.Scopes, " ") != strings.Join(w.Scopes, " ") {
		tb.Fatalf("principal = %+v, want %+v", g, w)
	}
}

type roundTripCase struct {
	name  string
	entry func(now time.Time) authcache.L2Entry
	ttl   time.Duration
}

func (tc roundTripCase) run(t *testing.T) {
	srv := startRedis(t)
	clock := newFakeClock()
	c := newTestCache(t, srv, func(cfg *Config) { cfg.Now = clock.Now })
	ctx := context.Background()
	d := digestOf("token-" + tc.name)
	want := tc.entry(clock.Now())
	if err := c.Set(ctx, d, want, tc.ttl); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, ok := c.Get(ctx, d)
	if !ok {
		t.Fatalf("Get after Set missed; stats %+v", c.Stats())
	}
	sameEntry(t, got, want)
	if !got.Deadline.Equal(clock.Now().Add(tc.ttl)) {
		t.Errorf("Deadline = %v, want now+ttl = %v", got.Deadline, clock.Now().Add(tc.ttl))
	}

	// Redis expires the key after ttl, never later: Set does not extend it.
	pttl, err := srv.client(t).PTTL(ctx, c.entryKey(&d)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 0 || pttl > tc.ttl {
		t.Errorf("PTTL = %v, want in (0, %v]", pttl, tc.ttl)
	}

	// The signed deadline holds even if Redis keeps the value longer.
	clock.Advance(tc.ttl)
	if _, ok := c.Get(ctx, d); ok {
		t.Error("Get at the entry's deadline hit; want a miss")
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 || s.Errors != 0 || s.MACFailures != 0 {
		t.Errorf("stats = %+v, want 1 hit, 1 miss", s)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []roundTripCase{
		{"positive, every field", func(now time.Time) authcache.L2Entry {
			return authcache.L2Entry{Principal: fullPrincipal(now), ValidatedAt: now}
		}, time.Minute},
		{"positive, bare", func(now time.Time) authcache.L2Entry {
			return authcache.L2Entry{Principal: &auth.Principal{Subject: "s"}, ValidatedAt: now}
		}, 30 * time.Second},
		{"positive, unicode and empty strings", func(now time.Time) authcache.L2Entry {
			return authcache.L2Entry{Principal: &auth.Principal{Subject: "zoë ☃", Audience: []string{""}, Scopes: []string{"a", ""}}, ValidatedAt: now}
		}, time.Second},
		{"negative", func(now time.Time) authcache.L2Entry {
			return authcache.L2Entry{Reason: auth.ReasonExpired, ValidatedAt: now}
		}, 5 * time.Second},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestGetMissAndShortTTL(t *testing.T) {
	srv := startRedis(t)
	c := newTestCache(t, srv, nil)
	ctx := context.Background()
	d := digestOf("never stored")
	if _, ok := c.Get(ctx, d); ok {
		t.Fatal("Get of an absent key hit")
	}
	if err := c.Set(ctx, d, authcache.L2Entry{Reason: auth.ReasonMalformed}, 999*time.Microsecond); err != nil {
		t.Fatalf("Set with a sub-millisecond ttl: %v", err)
	}
	if n, _ := srv.client(t).Exists(ctx, c.entryKey(&d)).Result(); n != 0 {
		t.Fatal("Set with a sub-millisecond ttl stored something")
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits != 0 || s.Errors != 0 {
		t.Errorf("stats = %+v, want 1 miss", s)
	}
}

func TestSetRefusesBadEntries(t *testing.T) {
	srv := startRedis(t)
	c := newTestCache(t, srv, nil)
	long := make([]string, MaxListLen+1)
	for _, tc := range []struct {
		name string
		e    authcache.L2Entry
	}{
		{"both", authcache.L2Entry{Principal: &auth.Principal{}, Reason: auth.ReasonMalformed}},
		{"unknown reason", authcache.L2Entry{Reason: auth.NumReasons}},
		{"too many scopes", authcache.L2Entry{Principal: &auth.Principal{Scopes: long}}},
		{"too large", authcache.L2Entry{Principal: &auth.Principal{Subject: strings.Repeat("s", maxValueSize)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Set(context.Background(), digestOf(tc.name), tc.e, time.Minute); err == nil {
				t.Fatal("Set accepted it")
			}
		})
	}
}

// forgeryCase writes something straight into Redis under victim's key; Get
// must ignore it.
type forgeryCase struct {
	name string
	// write stores the forgery for victim, given a genuine cache c.
	write func(t *testing.T, c *Cache, victim [sha256.Size]byte)
	// mac is whether the miss counts as an authentication failure.
	mac bool
}

func (tc forgeryCase) run(t *testing.T) {
	srv := startRedis(t)
	core, logs := observer.New(zap.WarnLevel)
	c := newTestCache(t, srv, func(cfg *Config) { cfg.Logger = zap.New(core) })
	victim := digestOf("victim-token")
	tc.write(t, c, victim)
	if e, ok := c.Get(context.Background(), victim); ok {
		t.Fatalf("Get served the forgery: %+v", e)
	}
	s := c.Stats()
	if tc.mac {
		if s.MACFailures != 1 {
			t.Fatalf("MACFailures = %d, want 1", s.MACFailures)
		}
		entries := logs.FilterMessageSnippet("failed authentication").All()
		if len(entries) != 1 {
			t.Fatalf("logged %d authentication failures, want 1", len(entries))
		}
		if got, want := entries[0].ContextMap()["digest"], hexPrefix(victim); got != want {
			t.Errorf("logged digest %v, want its first 8 hex %q", got, want)
		}
	} else if s.MACFailures != 0 {
		t.Fatalf("MACFailures = %d, want 0", s.MACFailures)
	}
}

func hexPrefix(d [sha256.Size]byte) string { return hex.EncodeToString(d[:4]) }

// rawSet stores value under d's entry key, behind the cache's back.
func rawSet(t *testing.T, c *Cache, d [sha256.Size]byte, value any) {
	t.Helper()
	rdb := c.rdb // same server; a raw command, no signing
	if err := rdb.Set(context.Background(), c.entryKey(&d), value, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestForgedEntriesAreIgnored(t *testing.T) {
	for _, tc := range []forgeryCase{
		{"signed with another key", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			other := newSigner(bytes.Repeat([]byte{0x43}, 32))
			e := authcache.L2Entry{Principal: &auth.Principal{Subject: "mallory"}, Deadline: time.Now().Add(time.Hour)}
			v, err := other.encodeEntry(nil, &victim, &e)
			if err != nil {
				t.Fatal(err)
			}
			rawSet(t, c, victim, v)
		}, true},
		{"genuine entry of another token, copied", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			ctx := context.Background()
			mallory := digestOf("mallory-token")
			if err := c.Set(ctx, mallory, authcache.L2Entry{Principal: &auth.Principal{Subject: "mallory"}}, time.Minute); err != nil {
				t.Fatal(err)
			}
			v, err := c.rdb.Get(ctx, c.entryKey(&mallory)).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			rawSet(t, c, victim, v)
			if _, ok := c.Get(ctx, mallory); !ok {
				t.Fatal("the genuine entry no longer reads under its own key")
			}
		}, true},
		{"genuine entry, one bit flipped", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			ctx := context.Background()
			if err := c.Set(ctx, victim, authcache.L2Entry{Reason: auth.ReasonExpired}, time.Minute); err != nil {
				t.Fatal(err)
			}
			v, _ := c.rdb.Get(ctx, c.entryKey(&victim)).Bytes()
			v[len(v)-macSize-1] ^= 1 // the last byte of the reason: "token expirec"
			rawSet(t, c, victim, v)
		}, true},
		{"genuine entry, truncated", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			ctx := context.Background()
			if err := c.Set(ctx, victim, authcache.L2Entry{Reason: auth.ReasonExpired}, time.Minute); err != nil {
				t.Fatal(err)
			}
			v, _ := c.rdb.Get(ctx, c.entryKey(&victim)).Bytes()
			rawSet(t, c, victim, v[:len(v)-1])
		}, true},
		{"garbage", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			rawSet(t, c, victim, "hello, world")
		}, true},
		{"huge value", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			rawSet(t, c, victim, bytes.Repeat([]byte{1}, 1<<20))
		}, true},
		{"another key type", func(t *testing.T, c *Cache, victim [sha256.Size]byte) {
			if err := c.rdb.RPush(context.Background(), c.entryKey(&victim), "x").Err(); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestLeaseAndAwait(t *testing.T) {
	srv := startRedis(t)
	a := newTestCache(t, srv, nil)
	b := newTestCache(t, srv, func(cfg *Config) { cfg.LeaseWait = 10 * time.Second })
	ctx := context.Background()
	d := digestOf("new to everyone")

	if !a.Lease(ctx, d) {
		t.Fatal("first Lease: not acquired")
	}
	if b.Lease(ctx, d) {
		t.Fatal("second Lease, while the first holds: acquired")
	}
	pttl, _ := srv.client(t).PTTL(ctx, a.leaseKey(&d)).Result()
	if pttl <= 0 || pttl > DefaultLeaseTTL {
		t.Errorf("lease PTTL = %v, want in (0, %v]", pttl, DefaultLeaseTTL)
	}

	type result struct {
		e  authcache.L2Entry
		ok bool
	}
	done := make(chan result, 1)
	go func() {
		e, ok := b.Await(ctx, d) // Config.LeaseWait: 10s
		done <- result{e, ok}
	}()
	// Let the waiter find nothing first, then publish the result.
	waitFor(t, "the waiter to start", func() bool { return b.Stats().LeaseWaits == 1 })
	want := authcache.L2Entry{Principal: &auth.Principal{Subject: "alice"}, ValidatedAt: time.Now()}
	if err := a.Set(ctx, d, want, time.Minute); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if !r.ok {
		t.Fatal("Await missed the holder's result")
	}
	sameEntry(t, r.e, want)
	if sa, sb := a.Stats(), b.Stats(); sa.LeasesAcquired != 1 || sb.LeasesAcquired != 0 || sb.LeaseWaits != 1 || sb.LeaseWaitHits != 1 {
		t.Errorf("stats a %+v, b %+v", sa, sb)
	}
	if sb := b.Stats(); sb.Hits != 0 || sb.Misses != 0 {
		t.Errorf("Await's polls counted as Get hits/misses: %+v", sb)
	}

	// Nobody sets: Await gives up after its wait (here the caller's ctx).
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, ok := b.Await(short, digestOf("abandoned")); ok {
		t.Fatal("Await of a result nobody sets hit")
	}
	if sb := b.Stats(); sb.LeaseWaits != 2 || sb.LeaseWaitHits != 1 || sb.Errors != 0 {
		t.Errorf("stats b %+v, want 2 waits, 1 hit, no errors (a wait ending is no Redis error)", sb)
	}

	// A caller that has left is not a Redis failure either.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := b.Get(gone, d); ok {
		t.Error("Get with a cancelled context hit")
	}
	if !b.Lease(gone, digestOf("another")) {
		t.Error("Lease with a cancelled context: not \"validate it yourself\"")
	}
	if sb := b.Stats(); sb.Errors != 0 {
		t.Errorf("Errors = %d after cancelled calls, want 0", sb.Errors)
	}
}

// revocations collects a subscriber's callbacks.
func revocations() (chan [sha256.Size]byte, func([sha256.Size]byte)) {
	ch := make(chan [sha256.Size]byte, 16)
	return ch, func(d [sha256.Size]byte) { ch <- d }
}

func TestRevokeBroadcast(t *testing.T) {
	srv := startRedis(t)
	raw := srv.client(t)
	a := newTestCache(t, srv, nil)
	b := newTestCache(t, srv, nil)
	gotA, onA := revocations()
	gotB, onB := revocations()
	if err := a.Start(onA); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(onB); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitSubscribed(t, raw, a.cfg.Channel, 2)

	d := digestOf("revoked-token")
	if err := a.Set(ctx, d, authcache.L2Entry{Principal: &auth.Principal{Subject: "alice"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// A forged message, a truncated one, then a genuine revocation: only
	// the genuine one reaches the callbacks (Pub/Sub keeps the order).
	forged := newSigner(bytes.Repeat([]byte{9}, 32)).encodeRevocation(&d)
	genuine := a.signer.encodeRevocation(&d)
	for _, m := range [][]byte{forged, genuine[:len(genuine)-1]} {
		if err := raw.Publish(ctx, a.cfg.Channel, m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Revoke(ctx, d, authcache.L2Entry{Reason: auth.ReasonInactive}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan [sha256.Size]byte{"a": gotA, "b": gotB} {
		if got := <-ch; got != d {
			t.Errorf("%s's callback got %x, want %x", name, got, d)
		}
	}
	e, ok := b.Get(ctx, d)
	if !ok || (e.Principal != nil) || e.Reason != auth.ReasonInactive {
		t.Fatalf("after Revoke, Get = %+v, %v; want the negative entry", e, ok)
	}
	pttl, _ := raw.PTTL(ctx, a.entryKey(&d)).Result()
	if pttl <= 0 || pttl > 10*time.Second {
		t.Errorf("revoked entry PTTL = %v, want in (0, 10s]", pttl)
	}
	if sa, sb := a.Stats(), b.Stats(); sa.RevocationsPublished != 1 || sa.RevocationsReceived != 1 || sb.RevocationsReceived != 1 || sb.MACFailures != 2 {
		t.Errorf("stats a %+v, b %+v", sa, sb)
	}

	if err := a.Revoke(ctx, d, authcache.L2Entry{Principal: &auth.Principal{}}, time.Second); err == nil {
		t.Error("Revoke with a positive entry: no error")
	}
	if err := a.Revoke(ctx, d, authcache.L2Entry{Reason: auth.ReasonMalformed}, time.Microsecond); err == nil {
		t.Error("Revoke with a ttl under 1ms: no error")
	}

	// A ttl of 0 deletes the entry, and still broadcasts.
	if err := a.Set(ctx, d, authcache.L2Entry{Principal: &auth.Principal{Subject: "alice"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, d, authcache.L2Entry{Reason: auth.ReasonInactive}, 0); err != nil {
		t.Fatal(err)
	}
	if got := <-gotB; got != d {
		t.Errorf("b's callback got %x after a deleting Revoke, want %x", got, d)
	}
	<-gotA
	if n, _ := raw.Exists(ctx, a.entryKey(&d)).Result(); n != 0 {
		t.Error("Revoke with ttl 0 left the entry in Redis")
	}
}

// boundedCall is one Cache method called while Redis misbehaves.
type boundedCall struct {
	name string
	// do makes the call and reports whether it behaved: a miss, an error,
	// or "validate it yourself".
	do func(c *Cache, d [sha256.Size]byte) bool
}

var boundedCalls = []boundedCall{
	{"Get", func(c *Cache, d [sha256.Size]byte) bool { _, ok := c.Get(context.Background(), d); return !ok }},
	{"Set", func(c *Cache, d [sha256.Size]byte) bool {
		return c.Set(context.Background(), d, authcache.L2Entry{Reason: auth.ReasonMalformed}, time.Minute) != nil
	}},
	{"Lease", func(c *Cache, d [sha256.Size]byte) bool { return c.Lease(context.Background(), d) }},
	{"Await", func(c *Cache, d [sha256.Size]byte) bool {
		_, ok := c.Await(context.Background(), d)
		return !ok
	}},
	{"Revoke", func(c *Cache, d [sha256.Size]byte) bool {
		return c.Revoke(context.Background(), d, authcache.L2Entry{Reason: auth.ReasonMalformed}, time.Minute) != nil
	}},
}

// checkBounded makes every call three times and fails the test unless each
// returns a miss or failure, fast. It returns how many calls it made.
func checkBounded(t *testing.T, c *Cache, d [sha256.Size]byte) uint64 {
	t.Helper()
	var n uint64
	for _, call := range boundedCalls {
		for i := range 3 {
			n++
			start := time.Now()
			ok := call.do(c, d)
			took := time.Since(start)
			if !ok {
				t.Errorf("%s #%d: not a miss/failure", call.name, i)
			}
			// Generous: the bound is Config.Timeout (50ms); this only
			// catches go-redis defaults (5s timeouts, dial retries)
			// leaking through.
			if took > time.Second {
				t.Errorf("%s #%d took %v", call.name, i, took)
			}
			t.Logf("%s #%d: %v", call.name, i, took)
		}
	}
	return n
}

// TestRedisDownAndBack stops Redis under a working cache: every call returns
// fast as a miss or an error, then, once Redis is back on the same port, the
// cache and its subscriber work again without help.
func TestRedisDownAndBack(t *testing.T) {
	srv := startRedis(t)
	c := newTestCache(t, srv, func(cfg *Config) { cfg.Timeout = 0 }) // the 50ms default
	got, on := revocations()
	if err := c.Start(on); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := digestOf("token")
	alice := authcache.L2Entry{Principal: &auth.Principal{Subject: "alice"}}
	waitSubscribed(t, srv.client(t), c.cfg.Channel, 1)
	waitFor(t, "a first Set", func() bool { return c.Set(ctx, d, alice, time.Minute) == nil })

	srv.stop()
	calls := checkBounded(t, c, d)
	if s := c.Stats(); s.Errors < calls {
		t.Errorf("Errors = %d, want each of the %d calls with Redis down counted", s.Errors, calls)
	}

	srv.start() // same port, empty: save "" and no AOF
	waitFor(t, "Set and Get to work again", func() bool {
		if c.Set(ctx, d, alice, time.Minute) != nil {
			return false
		}
		_, ok := c.Get(ctx, d)
		return ok
	})
	waitSubscribed(t, srv.client(t), c.cfg.Channel, 1)
	waitFor(t, "a Revoke", func() bool {
		return c.Revoke(ctx, d, authcache.L2Entry{Reason: auth.ReasonInactive}, time.Minute) == nil
	})
	if r := <-got; r != d {
		t.Fatalf("callback got %x, want %x", r, d)
	}
}

// hostileServer is a TCP listener on loopback that speaks no Redis: it
// reads whatever comes and answers with reply (nothing when reply is
// empty), never closing first. With handshake, it first plays Redis for
// the commands go-redis sends on a new connection (HELLO refused, CLIENT
// SETNAME accepted), so that reply answers the Cache's own commands.
func hostileServer(t *testing.T, reply string, handshake bool) string {
	t.Helper()
	out := []byte(reply) // once: the test counts the bytes allocated
	return fakeServer(t, func(cmd string) []byte {
		switch {
		case handshake && strings.Contains(cmd, "hello"):
			return []byte("-ERR unknown command 'HELLO'\r\n")
		case handshake && strings.Contains(cmd, "setname"):
			return []byte("+OK\r\n")
		}
		return out
	})
}

// fakeServer is a TCP listener on loopback that answers each read with
// what respond returns for the bytes read, lowercased (nothing when it
// returns nothing), never closing first. It returns the server's redis://
// URL.
func fakeServer(t *testing.T, respond func(cmd string) []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					if answer := respond(strings.ToLower(string(buf[:n]))); len(answer) > 0 {
						if _, err := conn.Write(answer); err != nil {
							return
						}
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "redis://" + l.Addr().String() + "/0"
}

// TestHostileServer points a cache at servers that accept connections but
// never answer, or answer garbage: every call returns fast as a miss or a
// failure, allocates no more than a bounded reply takes, and Close does not
// hang on the subscriber. The handshake cases get past go-redis's
// connection set-up, so that their reply answers GETRANGE, SET, SUBSCRIBE:
// a reply header announcing more than any reply of this package (a bulk
// string of 100 MB or 9 EB, an array of 9e18 elements) or nesting arrays
// without end must not be believed (go-redis allocates what it announces,
// and panics past what make can).
func TestHostileServer(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		handshake   bool
	}{
		{"silent", "", false},
		{"garbage", "hello, world\r\n", false},
		{"wrong types", ":42\r\n", false},
		{"error replies", "-ERR no\r\n", false},
		{"endless bulk", "$1000000\r\nxx", false},
		{"after handshake: silent", "", true},
		{"after handshake: 100 MB bulk", "$100000000\r\nxx", true},
		{"after handshake: 9 EB bulk", "$9000000000000000000\r\n", true},
		{"after handshake: 9e18 elements", "*9000000000000000000\r\n", true},
		{"after handshake: deep arrays", strings.Repeat("*1\r\n", 100000), true},
		{"after handshake: endless line", "+" + strings.Repeat("a", 1<<20), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{URL: hostileServer(t, tc.reply, tc.handshake), SigningKey: testKey})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(func([sha256.Size]byte) { t.Error("a revocation from a hostile server") }); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			checkBounded(t, c, digestOf("token"))
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
				t.Errorf("the calls allocated %d MB", n>>20)
			}
			if s := c.Stats(); s.Hits != 0 || s.LeasesAcquired != 0 || s.RevocationsPublished != 0 {
				t.Errorf("stats %+v, want no successes", s)
			}
			start := time.Now()
			c.Close()
			if took := time.Since(start); took > time.Second {
				t.Errorf("Close took %v", took)
			}
		})
	}
}

func TestCloseStopsSubscriber(t *testing.T) {
	srv := startRedis(t)
	c := newTestCache(t, srv, nil)
	var calls sync.WaitGroup
	if err := c.Start(func([sha256.Size]byte) { calls.Done() }); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(func([sha256.Size]byte) {}); err == nil {
		t.Error("second Start: no error")
	}
	raw := srv.client(t)
	waitSubscribed(t, raw, c.cfg.Channel, 1)
	calls.Add(1)
	if err := c.Revoke(context.Background(), digestOf("t"), authcache.L2Entry{Reason: auth.ReasonMalformed}, time.Second); err != nil {
		t.Fatal(err)
	}
	calls.Wait()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitSubscribed(t, raw, c.cfg.Channel, 0)
	if err := c.Start(func([sha256.Size]byte) {}); err == nil {
		t.Error("Start after Close: no error")
	}
	if _, ok := c.Get(context.Background(), digestOf("t")); ok {
		t.Error("Get after Close hit")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	const secret = "s3cr3t-pa55"
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no URL", func(c *Config) { c.URL = "" }, "URL is required"},
		{"short key", func(c *Config) { c.SigningKey = testKey[:31] }, "at least 32"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout is negative"},
		{"negative lease TTL", func(c *Config) { c.LeaseTTL = -1 }, "LeaseTTL is negative"},
		{"sub-ms lease TTL", func(c *Config) { c.LeaseTTL = time.Microsecond }, "1ms"},
		{"negative lease wait", func(c *Config) { c.LeaseWait = -1 }, "LeaseWait is negative"},
		{"negative pool", func(c *Config) { c.PoolSize = -1 }, "PoolSize is negative"},
		{"idle over pool", func(c *Config) { c.PoolSize = 2; c.MinIdleConns = 3 }, "MinIdleConns"},
		{"negative idle time", func(c *Config) { c.ConnMaxIdleTime = -1 }, "ConnMaxIdleTime is negative"},
		{"query parameters", func(c *Config) { c.URL = "redis://:" + secret + "@127.0.0.1:6379/0?dial_timeout=10s" }, "query parameters"},
		{"bad scheme", func(c *Config) { c.URL = "http://:" + secret + "@127.0.0.1:6379" }, "invalid URL scheme"},
		{"bad database", func(c *Config) { c.URL = "redis://:" + secret + "@127.0.0.1:6379/x" }, "invalid database"},
		{"unparsable, secret in it", func(c *Config) { c.URL = "redis://u:" + secret + "@[::1" }, "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{URL: "redis://127.0.0.1:6379/0", SigningKey: testKey}
			tc.edit(&cfg)
			c, err := New(cfg)
			if err == nil {
				c.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sharedcache: ") {
				t.Errorf("error %q, want it to start with sharedcache: and mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestNewSetsEveryBound(t *testing.T) {
	key := bytes.Clone(testKey)
	c, err := New(Config{URL: "rediss://user:pw@redis.example.com:6380/3", SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key[0] ^= 1 // New copied the key
	if !c.signer.verify(c.signer.sum(nil, domainEntry, nil, []byte("x")), domainEntry, nil, []byte("x")) || c.cfg.SigningKey[0] != testKey[0] {
		t.Fatal("New did not copy the signing key")
	}
	o := c.rdb.Options()
	for _, check := range []struct {
		name string
		ok   bool
	}{
		{"TLS with server name", o.TLSConfig != nil && o.TLSConfig.ServerName == "redis.example.com"},
		{"database", o.DB == 3},
		{"credentials", o.Username == "user" && o.Password == "pw"},
		{"timeouts", o.DialTimeout == DefaultTimeout && o.ReadTimeout == DefaultTimeout && o.WriteTimeout == DefaultTimeout && o.PoolTimeout == DefaultTimeout},
		{"context deadlines honoured", o.ContextTimeoutEnabled},
		{"one dial attempt", o.DialerRetries == 1},
		{"at most one retry", o.MaxRetries == 1},
		{"pool bounds", o.PoolSize == DefaultPoolSize && o.MaxActiveConns == DefaultPoolSize && o.MaxIdleConns == DefaultPoolSize},
		{"idle time", o.ConnMaxIdleTime == DefaultConnMaxIdleTime},
		{"channel", c.cfg.Channel == "tokengate:v1:revocations"},
	} {
		if !check.ok {
			t.Errorf("%s: not set as expected (options %+v)", check.name, o)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	now := time.Unix(1000, 0)
	for i, tc := range []struct {
		at         time.Duration
		ok         bool
		suppressed uint64
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{logEvery - 1, false, 0},
		{logEvery, true, 2},
		{logEvery + 1, false, 0},
	} {
		ok, n := l.allow(now.Add(tc.at))
		if ok != tc.ok || n != tc.suppressed {
			t.Errorf("#%d at +%v: allow = %v, %d; want %v, %d", i, tc.at, ok, n, tc.ok, tc.suppressed)
		}
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	srv := startRedis(t)
	c := newTestCache(t, srv, nil)
	srv.stop()
	err := c.Set(context.Background(), digestOf("x"), authcache.L2Entry{Reason: auth.ReasonMalformed}, time.Minute)
	if err == nil || !strings.HasPrefix(err.Error(), "sharedcache: set: ") || errors.Unwrap(err) == nil {
		t.Fatalf("Set with Redis down: %v; want a wrapped sharedcache: error", err)
	}
}

// TestSubscriberReportsDeadConnection: a Redis that takes the subscription
// and then answers nothing, pings included (a host gone without a reset, a
// frozen server), has the subscriber replace the connection, and that is
// counted and logged as Redis trouble: revocations may have been missed
// meanwhile, and the operator must be able to tell.
func TestSubscriberReportsDeadConnection(t *testing.T) {
	url := fakeServer(t, func(cmd string) []byte {
		switch {
		case strings.Contains(cmd, "hello"):
			return []byte("-ERR unknown command 'HELLO'\r\n")
		case strings.Contains(cmd, "setname"):
			return []byte("+OK\r\n")
		case strings.Contains(cmd, "subscribe"):
			ch := DefaultKeyPrefix + DefaultChannelSuffix
			return []byte("*3\r\n$9\r\nsubscribe\r\n$" + strconv.Itoa(len(ch)) + "\r\n" + ch + "\r\n:1\r\n")
		}
		return nil // PING goes unanswered
	})
	core, logs := observer.New(zap.WarnLevel)
	c, err := New(Config{URL: url, SigningKey: testKey, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(func([sha256.Size]byte) { t.Error("a revocation from a silent server") }); err != nil {
		t.Fatal(err)
	}
	// One health period, one unanswered ping: about 2 × subHealthEvery.
	waitFor(t, "the dead subscription to be counted", func() bool { return c.Stats().Errors > 0 })
	if n := logs.FilterMessageSnippet("redis call failed").FilterField(zap.String("op", "subscribe")).Len(); n == 0 {
		t.Errorf("no log line for the dead subscription; logged: %v", logs.All())
	}
}
