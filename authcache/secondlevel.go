package authcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/tokengate/tokengate/auth"
)

// SecondLevel is a cache of verdicts shared by the replicas of one
// deployment (package sharedcache implements it over Redis). A Cache asks
// it only on an in-process miss, from the one caller that leads the
// merged validation of a token, so that concurrent misses in one process
// make one call; the hit path never touches it.
//
// The second level must never be a reason to fail: every method returns
// within a bound of its own (a short timeout) whatever happens behind it,
// and reads any trouble (unreachable, slow, garbage, entries that fail
// authentication) as a miss. Its errors are for its own counters and logs:
// the Cache ignores them. Methods are safe for concurrent use. It stores
// digests and verdicts, never tokens.
type SecondLevel interface {
	// Get returns the entry stored for the token whose SHA-256 is digest,
	// with its Deadline set; false when there is none it can vouch for.
	Get(ctx context.Context, digest [sha256.Size]byte) (L2Entry, bool)

	// Set stores e for the token, for ttl (decided by the Cache's TTL
	// rule; Set neither extends nor caps it). It replaces any entry.
	Set(ctx context.Context, digest [sha256.Size]byte, e L2Entry, ttl time.Duration) error

	// Lease reports whether the caller should validate the token itself:
	// true when it took, for a short while, the right to do so on behalf
	// of every replica, or when it could not ask; false when another
	// caller holds that right, whose result Await waits for.
	Lease(ctx context.Context, digest [sha256.Size]byte) bool

	// Await waits briefly (a bound of the implementation's) for the
	// holder of the token's lease to Set an entry, and returns it; false
	// when none came in time (the caller then validates the token itself).
	Await(ctx context.Context, digest [sha256.Size]byte) (L2Entry, bool)

	// Revoke replaces the token's entry with the negative entry e for ttl
	// (or deletes it when ttl is 0) and tells every replica, so that each
	// calls its Cache's Forget with digest. Until e.RevokedUntil, Get and
	// Await serve no valid verdict for the token, even one Set after the
	// revocation by a replica whose validation asked before it.
	Revoke(ctx context.Context, digest [sha256.Size]byte, e L2Entry, ttl time.Duration) error
}

// L2Entry is one verdict about one token as the second level keeps it. It
// is positive (the token is good) when Principal is non-nil, and negative
// otherwise, Reason saying why. It never holds the token.
type L2Entry struct {
	// Principal is what a valid token yields; nil for a negative entry.
	// The second level keeps every field, Principal.KeyThumbprint
	// included: without it, a Cache with SigningKeys but no
	// SecondLevelVerifier could not tell that the token's key was retired.
	Principal *auth.Principal

	// Reason is why a negative entry's token was refused. Never
	// auth.ReasonUnknownKey: that rejection is not cached (a key-set
	// refresh may undo it), and a Cache ignores such an entry.
	Reason auth.Reason

	// ValidatedAt is when the validation (or the last re-check) behind the
	// entry ran, on the writing replica's clock.
	ValidatedAt time.Time

	// Deadline is when the entry stops being served; Get sets it. Set and
	// Revoke ignore it: the second level computes it from their ttl.
	Deadline time.Time

	// RevokedUntil, read by Revoke only, is how long the second level
	// must remember the revocation: until then it serves no valid verdict
	// for the token, whatever is Set after the revocation (a slower
	// replica's validation that asked the authorization server before
	// it). A Cache sets it to the revoked token's exp, capped at twice
	// MaxTTL from now (a validation in flight, then its entry's life).
	// Zero: the second level's own bound.
	RevokedUntil time.Time
}

// Forget drops this process's valid entry for the token whose SHA-256 is
// digest, because a replica (this one included) learned that the token is
// no longer good: the second level's subscriber calls it for each
// revocation it receives (see SecondLevel.Revoke). From its return on, no
// Validate serves that entry, including hits that had already found it;
// the next Validate for the token misses and asks the second level, which
// holds the negative verdict. A validation (or stale re-check) of the
// token in flight when Forget is called does not store a valid answer,
// and no caller arriving after Forget joins it: it asked before the
// revocation, so only the callers already waiting for it get its answer,
// and a later caller validates afresh. Negative entries are kept. Forget
// is cheap (ristretto's pending writes are flushed, then one lookup) and
// safe to call after Close, when it does nothing.
func (c *Cache) Forget(digest [sha256.Size]byte) {
	// Detach the work in flight for the token: its leader still answers
	// the callers already waiting, but stores no valid answer, and a
	// caller from now on starts anew.
	c.flightMu.Lock()
	if cl, ok := c.flight[digest]; ok {
		cl.forgotten.Store(true)
		delete(c.flight, digest)
	}
	c.flightMu.Unlock()
	sh := &c.shards[digest[0]&(lockShards-1)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if c.closed.Load() {
		return
	}
	c.rc.Wait() // an answer stored just before must be visible to Get
	e, ok := c.rc.Get(digest[:])
	if !ok || e == nil || e.digest != digest || e.principal == nil {
		return
	}
	if e.revoked.CompareAndSwap(nil, &revocation{err: errRevokedElsewhere}) {
		c.forgotten.Add(1)
	}
	c.rc.Del(digest[:])
}

// errRevokedElsewhere is what a hit gets that found an entry Forget
// dropped: the authorization server no longer considers the token active.
var errRevokedElsewhere error = &auth.TokenError{Reason: auth.ReasonInactive, Err: errors.New("authcache: revoked, as another replica learned")}

// fromSecondLevel asks the second level for the verdict on the token of
// the call cl, whose bytes are given, before the validator is called: Get, and on
// a miss Lease and, when another replica holds the lease, Await. It
// reports ok false when the caller must validate the token itself. lp is
// the SecondLevelVerifier's principal when it has already accepted the
// token (hybrid mode); nil otherwise.
//
// An answer it returns is stored in this process like the validator's,
// for no longer than its deadline in the second level (a valid one, nor
// than MaxTTL after the validation behind it), and with the
// second level's ValidatedAt, so that a hybrid re-check falls due when the
// fleet's last check is RevalidateAfter old.
func (c *Cache) fromSecondLevel(cl *call, token []byte, lp *auth.Principal, gen uint64) (*auth.Principal, error, bool) {
	digest := &cl.digest
	l2 := c.cfg.SecondLevel
	le, ok := l2.Get(c.ctx, *digest)
	// Under NoPositiveCaching no replica stores a valid verdict: waiting
	// for a lease holder would wait for nothing.
	if !ok && !c.cfg.NoPositiveCaching && !l2.Lease(c.ctx, *digest) {
		le, ok = l2.Await(c.ctx, *digest)
	}
	if !ok {
		return nil, nil, false
	}
	now := c.now()
	// A verdict stamped ahead of this clock (the writer's runs fast)
	// counts as checked now: a future time would postpone this replica's
	// re-checks and its MaxStaleness bound by the skew.
	le.ValidatedAt = notAfter(le.ValidatedAt, now)
	if le.Principal == nil {
		err := error(&auth.TokenError{Reason: le.Reason})
		if !cacheableRejection(err) {
			return nil, nil, false
		}
		c.secondLevelHits.Add(1)
		c.keep(digest, token, nil, err, now, now, ttlFor(now, nil, err, le.Deadline, &c.cfg), gen)
		return nil, err, true
	}
	p := le.Principal
	// A valid verdict is served no longer than MaxTTL after the
	// validation behind it (remote mode: the introspection TTL), whatever
	// deadline its writer gave it (a replica configured otherwise).
	servedUntil := le.ValidatedAt.Add(c.cfg.MaxTTL)
	if le.Deadline.Before(servedUntil) {
		servedUntil = le.Deadline
	}
	switch {
	case c.cfg.NoPositiveCaching:
		return nil, nil, false
	case !now.Before(servedUntil):
		return nil, nil, false // too old to serve: validate afresh
	case c.cfg.Revalidator != nil && now.Sub(le.ValidatedAt) >= c.cfg.MaxStaleness:
		return nil, nil, false // too old to serve: validate afresh
	case lp != nil:
		p = lp // every claim of the token, and the key that verified it
	case c.cfg.SigningKeys != nil && p.KeyThumbprint != "" && !c.cfg.SigningKeys.HoldsKey(p.KeyThumbprint):
		return nil, nil, false // the issuer retired the token's key: the validator refuses it
	}
	c.secondLevelHits.Add(1)
	c.keepValid(cl, token, p, le.ValidatedAt, now, ttlFor(now, p, nil, servedUntil, &c.cfg), gen)
	return p, nil, true
}

// shareAnswer stores the validator's answer (p, err) to the call cl,
// given at now and cacheable for ttl, in the second level, unless the
// answer is valid and a revocation of the token arrived while it was
// being validated (Forget set cl.forgotten).
func (c *Cache) shareAnswer(cl *call, p *auth.Principal, err error, now time.Time, ttl time.Duration) {
	digest := &cl.digest
	le := L2Entry{Principal: p, ValidatedAt: now}
	if p == nil {
		r, ok := auth.ReasonOf(err)
		if !ok {
			return
		}
		le.Reason = r
	} else if cl.forgotten.Load() {
		return
	}
	_ = c.cfg.SecondLevel.Set(c.ctx, *digest, le, ttl) // a failed Set costs a later miss, nothing more
}

// checkAgain answers a re-check of the positive entry e (background or
// stale-wait): the second level first, when there is one, since another
// replica may have re-checked the token since e's last check (then its
// time is e's), or learned that it was revoked; else the Revalidator, at
// now. shared reports that the answer came from the second level.
func (c *Cache) checkAgain(e *entry) (p *auth.Principal, err error, at time.Time, shared bool) {
	if l2 := c.cfg.SecondLevel; l2 != nil {
		if le, ok := l2.Get(c.ctx, e.digest); ok {
			now := c.now()
			le.ValidatedAt = notAfter(le.ValidatedAt, now) // as in fromSecondLevel
			switch {
			case le.Principal == nil:
				if err := error(&auth.TokenError{Reason: le.Reason}); cacheableRejection(err) {
					return nil, err, now, true
				}
			case le.ValidatedAt.UnixNano() > e.validatedAt.Load() && now.Sub(le.ValidatedAt) < c.cfg.RevalidateAfter:
				return e.principal, nil, le.ValidatedAt, true
			}
		}
	}
	c.revalidations.Add(1)
	p, err = c.callValidator(c.ctx, c.cfg.Revalidator, e.token, &e.digest)
	return p, err, c.now(), false
}

// shareRecheck tells the second level what this process's re-check of e
// found at now: a still-valid token is stored again with its new
// ValidatedAt (until e's own deadline, never later), a revoked one is
// revoked fleet-wide.
func (c *Cache) shareRecheck(e *entry, revokedErr error, now time.Time) {
	l2 := c.cfg.SecondLevel
	if revokedErr == nil {
		if e.revoked.Load() != nil {
			return // Forget ran meanwhile: never overwrite the revocation
		}
		ttl := ttlFor(now, e.principal, nil, e.expiresAt, &c.cfg)
		if ttl > 0 {
			_ = l2.Set(c.ctx, e.digest, L2Entry{Principal: e.principal, ValidatedAt: now}, ttl)
		}
		return
	}
	r, _ := auth.ReasonOf(revokedErr)
	// A valid verdict stored after the revocation, by a validation in
	// flight now, lives at most MaxTTL from that validation's end, and
	// never past the token's exp.
	until := now.Add(2 * c.cfg.MaxTTL)
	if exp := e.principal.ExpiresAt; !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	_ = l2.Revoke(c.ctx, e.digest, L2Entry{Reason: r, ValidatedAt: now, RevokedUntil: until}, ttlFor(now, nil, revokedErr, time.Time{}, &c.cfg))
}

// notAfter returns t, or now when t is later: the time of a check that
// another replica's clock stamped, read on this one's.
func notAfter(t, now time.Time) time.Time {
	if t.After(now) {
		return now
	}
	return t
}
