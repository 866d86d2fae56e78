package authcache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
)

// maybeRevalidate starts a background re-check of the positive entry e if it
// was last validated RevalidateAfter or more before now, none runs for it yet,
// and a revalidation slot is free. It never blocks, and allocates only when it
// starts a re-check.
func (c *Cache) maybeRevalidate(e *entry, now time.Time) {
	if now.UnixNano()-e.validatedAt.Load() < int64(c.cfg.RevalidateAfter) {
		return
	}
	if !e.revalidating.CompareAndSwap(false, true) {
		return
	}
	select {
	case c.slots <- struct{}{}:
	default: // all slots busy: a later hit retries
		e.revalidating.Store(false)
		return
	}
	if !c.begin() { // closing
		<-c.slots
		e.revalidating.Store(false)
		return
	}
	go c.revalidate(e)
}

// revalidate re-checks e's token with the Revalidator on the cache's context.
//
//   - valid: e counts as validated now (it keeps its principal and its
//     deadline);
//   - ErrInvalidToken: e is marked revoked (no hit serves it as valid from
//     now on) and replaced by a negative entry (or deleted when negative
//     caching is off); e's revalidating flag stays set, as e is dead;
//   - anything else (ErrUnavailable, Close): e is kept and a later hit
//     retries.
//
// Log lines name the token by fingerprint: the first 8 hex characters of its
// SHA-256, what auth.Fingerprint returns.
func (c *Cache) revalidate(e *entry) {
	defer c.end()
	defer func() { <-c.slots }()

	p, err, at, shared := c.checkAgain(e)
	if c.settle(e, p, err, at, shared) {
		return // revoked: e stays marked as re-checking
	}
	e.revalidating.Store(false)
}

// recheck re-validates e, a positive entry found older than MaxStaleness,
// for the callers waiting on it, and returns their answer: e's principal
// if the Revalidator says the token is still good; otherwise its error
// (ErrInvalidToken: e is revoked as by revalidate; ErrUnavailable: e is
// kept, and is not served until a re-check succeeds). With every re-check
// slot busy it answers ErrUnavailable at once. It runs on the leader's
// goroutine, registered as cache-owned work.
func (c *Cache) recheck(e *entry) (*auth.Principal, error) {
	// Another leader may have settled e between this caller's hit and its
	// joining the flight map.
	if r := e.revoked.Load(); r != nil {
		return nil, r.err
	}
	if c.now().UnixNano()-e.validatedAt.Load() < int64(c.cfg.MaxStaleness) {
		return e.principal, nil
	}
	if !c.begin() {
		return nil, errClosed
	}
	defer c.end()
	select {
	case c.slots <- struct{}{}:
	default:
		return nil, fmt.Errorf("authcache: %w", &auth.UnavailableError{
			Reason: "cached answer too old to serve and no re-check slot free",
		})
	}
	defer func() { <-c.slots }()

	p, err, at, shared := c.checkAgain(e)
	c.settle(e, p, err, at, shared)
	if err == nil && p != nil {
		return e.principal, nil
	}
	if err == nil {
		err = errNoAnswer
	}
	return nil, err
}

// errNoAnswer is what a re-check gets from a Revalidator that returned
// neither a principal nor an error.
var errNoAnswer = errors.New("authcache: revalidator returned neither a principal nor an error")

// settle applies a re-check's answer (p, err), found at at, to e: valid, e
// counts as validated at at; ErrInvalidToken, e is revoked and replaced by
// a negative entry (deleted when negative caching is off), and settle
// reports true; anything else leaves e as it is, and is logged. Unless the
// answer came from the second level (shared), the second level learns it:
// a valid token's new check time, or its revocation, which every replica
// hears of.
func (c *Cache) settle(e *entry, p *auth.Principal, err error, at time.Time, shared bool) (revoked bool) {
	now := c.now()
	l2 := c.cfg.SecondLevel != nil && !shared
	switch {
	case err == nil && p != nil:
		e.validatedAt.Store(at.UnixNano())
		if l2 {
			c.shareRecheck(e, nil, now)
		}
		return false
	case errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrUnavailable):
		e.revoked.Store(&revocation{err: err})
		c.revoked.Add(1)
		if ttl := ttlFor(now, nil, err, time.Time{}, &c.cfg); ttl > 0 {
			neg := newEntry(e.digest, nil, err, nil, now, ttl)
			c.rc.SetWithTTL(e.digest[:], neg, neg.cost, ttl)
		} else {
			c.rc.Del(e.digest[:])
		}
		if ce := c.log.Check(zap.InfoLevel, "authcache: revalidation revoked a cached token"); ce != nil {
			ce.Write(zap.String("token", hex.EncodeToString(e.digest[:4])), zap.Bool("from_second_level", shared), zap.Error(err))
		}
		if l2 {
			c.shareRecheck(e, err, now)
		}
		return true
	default:
		if err == nil {
			err = errNoAnswer
		}
		level := zap.WarnLevel
		if c.ctx.Err() != nil { // Close: expected
			level = zap.DebugLevel
		}
		if ce := c.log.Check(level, "authcache: revalidation failed; keeping the cached answer"); ce != nil {
			ce.Write(zap.String("token", hex.EncodeToString(e.digest[:4])), zap.Error(err))
		}
		return false
	}
}
