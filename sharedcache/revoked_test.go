package sharedcache

import (
	"context"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

// TestRevocationOutlivesLateSet: a valid verdict that a slower replica
// stores after a revocation (its validation asked the authorization server
// before it) is never served while the revocation is remembered: not by
// Get, not by Await, whether Revoke left a negative entry or deleted the
// entry (no negative caching). Negative verdicts stay readable, and other
// tokens are untouched.
func TestRevocationOutlivesLateSet(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ttl  time.Duration // of Revoke's negative entry
	}{
		{"negative entry", 10 * time.Second},
		{"entry deleted", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestCache(t, srv, func(c *Config) { c.LeaseWait = 20 * time.Millisecond })
			b := newTestCache(t, srv, nil)
			d := digestOf("late-" + tc.name)
			other := digestOf("other-" + tc.name)
			good := authcache.L2Entry{Principal: fullPrincipal(time.Now()), ValidatedAt: time.Now()}
			for _, dd := range [][32]byte{d, other} {
				if err := b.Set(ctx, dd, good, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			neg := authcache.L2Entry{Reason: auth.ReasonInactive, ValidatedAt: time.Now(), RevokedUntil: time.Now().Add(time.Hour)}
			if err := a.Revoke(ctx, d, neg, tc.ttl); err != nil {
				t.Fatal(err)
			}
			// The slower replica's answer lands after the revocation.
			if err := b.Set(ctx, d, good, time.Minute); err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]*Cache{"a": a, "b": b} {
				if e, ok := c.Get(ctx, d); ok && e.Principal != nil {
					t.Errorf("%s: Get after the revocation = a valid verdict", name)
				}
				if e, ok := c.Await(ctx, d); ok && e.Principal != nil {
					t.Errorf("%s: Await after the revocation = a valid verdict", name)
				}
				if _, ok := c.Get(ctx, other); !ok {
					t.Errorf("%s: another token's valid verdict was not served", name)
				}
			}
			if tc.ttl > 0 {
				if err := b.Set(ctx, d, authcache.L2Entry{Reason: auth.ReasonInactive}, time.Minute); err != nil {
					t.Fatal(err)
				}
				if e, ok := a.Get(ctx, d); !ok || e.Principal != nil || e.Reason != auth.ReasonInactive {
					t.Errorf("negative verdict after the revocation: Get = %+v, %v", e, ok)
				}
			}
			pttl, err := srv.client(t).PTTL(ctx, a.revokedKey(&d)).Result()
			if err != nil || pttl <= 59*time.Minute || pttl > time.Hour {
				t.Errorf("revocation marker PTTL = %v, %v; want about RevokedUntil (1h)", pttl, err)
			}
		})
	}
}
