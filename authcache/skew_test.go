package authcache

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
)

// TestSecondLevelFutureValidatedAt: a verdict in the second level stamped
// ahead of this replica's clock (the writing replica's clock runs fast, or
// was stepped back here) counts as checked now, not in the future: it
// neither postpones this replica's re-checks nor its MaxStaleness bound.
// The hit path on a fresh copy and the background re-check that takes a
// fresher verdict from the second level are both checked.
func TestSecondLevelFutureValidatedAt(t *testing.T) {
	const skew = time.Hour
	cfg := Config{RevalidateAfter: time.Minute, MaxStaleness: 2 * time.Minute, MaxTTL: 2 * time.Hour}
	d := sha256.Sum256([]byte("tok"))
	ahead := func(fl *fleet) {
		p := principalFor("tok", fl.clk.Now().Add(3*time.Hour))
		if err := fl.l2.Set(context.Background(), d, L2Entry{Principal: p, ValidatedAt: fl.clk.Now().Add(skew)}, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// stale asserts that, MaxStaleness and a bit after the replica last
	// had a real check, a hit waits for a re-check.
	stale := func(t *testing.T, fl *fleet) {
		t.Helper()
		c := fl.c[0]
		before := c.Stats().Revalidations
		fl.clk.Advance(2*time.Minute + time.Second)
		fl.l2.setDown(true) // nothing fresher to take from there
		mustValid(t, c, "tok")
		c.Wait()
		if s := c.Stats(); s.Revalidations == before || s.StaleWaits == 0 {
			t.Errorf("after MaxStaleness: Revalidations %d -> %d, StaleWaits %d; want a re-check waited for (the entry's check time was taken from a clock an hour ahead)",
				before, s.Revalidations, s.StaleWaits)
		}
	}

	t.Run("copied on a miss", func(t *testing.T) {
		fl := newFleet(t, 1, cfg, true)
		fl.next[0].set(valid(fl.clk.Now().Add(3 * time.Hour)))
		ahead(fl)
		mustValid(t, fl.c[0], "tok") // from the second level
		fl.wait()
		if s := fl.c[0].Stats(); s.L2Hits != 1 {
			t.Fatalf("L2Hits = %d, want 1", s.L2Hits)
		}
		stale(t, fl)
	})
	t.Run("taken by a re-check", func(t *testing.T) {
		fl := newFleet(t, 1, cfg, true)
		fl.next[0].set(valid(fl.clk.Now().Add(3 * time.Hour)))
		fl.l2.setDown(true)
		mustValid(t, fl.c[0], "tok") // validated here
		fl.wait()
		fl.l2.setDown(false)
		fl.clk.Advance(time.Minute)
		ahead(fl)
		mustValid(t, fl.c[0], "tok") // due: the re-check takes the second level's verdict
		fl.wait()
		if s := fl.c[0].Stats(); s.Revalidations != 0 {
			t.Fatalf("Revalidations = %d, want 0 (the re-check took the shared verdict)", s.Revalidations)
		}
		stale(t, fl)
	})
}

// TestSecondLevelRevokedUntilIsExp: a revocation is remembered in the
// second level until the token's exp when that comes before twice MaxTTL.
func TestSecondLevelRevokedUntilIsExp(t *testing.T) {
	fl := newFleet(t, 1, Config{RevalidateAfter: 30 * time.Second, MaxTTL: time.Hour}, true)
	exp := t0.Add(10 * time.Minute)
	fl.next[0].set(valid(exp))
	mustValid(t, fl.c[0], "tok")
	fl.wait()
	fl.next[0].set(invalid(auth.ReasonInactive))
	fl.clk.Advance(31 * time.Second)
	mustValid(t, fl.c[0], "tok") // starts the re-check, which revokes
	fl.wait()
	if e, _, ok := fl.l2.entry("tok"); !ok || e.Principal != nil || !e.RevokedUntil.Equal(exp) {
		t.Errorf("second level holds (%+v, %v), want a revocation remembered until exp %v", e, ok, exp)
	}
}

// TestSecondLevelVerdictAgeBoundedByMaxTTL: a valid verdict from the
// second level is served no longer than MaxTTL after the validation
// behind it (remote mode: INTROSPECTION_CACHE_TTL), whatever deadline its
// writer gave it (a replica with a longer TTL, during a rolling change of
// configuration). One older than that is not served at all: the token is
// validated afresh.
func TestSecondLevelVerdictAgeBoundedByMaxTTL(t *testing.T) {
	d := sha256.Sum256([]byte("tok"))
	put := func(fl *fleet, age time.Duration) {
		p := principalFor("tok", fl.clk.Now().Add(time.Hour))
		if err := fl.l2.Set(context.Background(), d, L2Entry{Principal: p, ValidatedAt: fl.clk.Now().Add(-age)}, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("too old", func(t *testing.T) {
		fl := newFleet(t, 1, Config{MaxTTL: 30 * time.Second}, false)
		put(fl, 4*time.Minute)
		mustValid(t, fl.c[0], "tok")
		if got := fl.calls(); got != 1 {
			t.Errorf("validator calls = %d, want 1 (a verdict 4m old is past MaxTTL 30s)", got)
		}
	})
	t.Run("copy lives out the rest of MaxTTL", func(t *testing.T) {
		fl := newFleet(t, 1, Config{MaxTTL: 30 * time.Second}, false)
		put(fl, 20*time.Second)
		mustValid(t, fl.c[0], "tok") // from the second level
		fl.wait()
		if got := fl.calls(); got != 0 {
			t.Fatalf("validator calls = %d, want 0", got)
		}
		fl.clk.Advance(11 * time.Second) // 31s after the validation
		mustValid(t, fl.c[0], "tok")
		if got := fl.calls(); got != 1 {
			t.Errorf("validator calls = %d, want 1 (the copy outlived MaxTTL since the validation)", got)
		}
	})
}
