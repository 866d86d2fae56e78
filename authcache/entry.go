package authcache

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tokengate/tokengate/auth"
)

// entry is one cached answer. It is stored by pointer, so the hit path copies
// nothing; every field but the atomics is immutable once the entry is
// published to ristretto.
type entry struct {
	// digest is the SHA-256 of the token. ristretto indexes by 128 bits of
	// it; a hit compares all 256.
	digest [sha256.Size]byte
	// principal is the validator's answer for a positive entry; nil for a
	// negative one.
	principal *auth.Principal
	// err is the validator's ErrInvalidToken answer for a negative entry;
	// nil for a positive one.
	err error
	// expiresAt is the cache-local deadline on the injected clock. It is
	// authoritative: a hit at or after it is a miss, whatever ristretto's
	// own (wall-clock) TTL says.
	expiresAt time.Time
	// token is a copy of the raw token, kept only for positive entries of a
	// cache with a Revalidator (the background re-check needs it). nil
	// otherwise.
	token []byte
	// cost is the estimate in bytes handed to ristretto.
	cost int64

	// validatedAt is the UnixNano (injected clock) of the last successful
	// validation or revalidation.
	validatedAt atomic.Int64
	// revalidating is true while a background re-check of this entry runs,
	// so that at most one runs per entry.
	revalidating atomic.Bool
	// revoked is set, once, when a revalidation says the token is no longer
	// good. A revoked entry is never served as positive, even by a hit that
	// found it before it was replaced by a negative entry.
	revoked atomic.Pointer[revocation]
	// keyGen is the Config.SigningKeys generation at which the key that
	// verified the token was last known to be held.
	keyGen atomic.Uint64
	// exited is set when ristretto lets go of the entry (evicted, replaced,
	// deleted, cleared): a Memo serves only entries still stored.
	exited atomic.Bool
}

// revocation carries the revalidator's ErrInvalidToken answer.
type revocation struct{ err error }

// Cost estimate constants, in bytes.
const (
	entrySize     = int64(unsafe.Sizeof(entry{}))
	principalSize = int64(unsafe.Sizeof(auth.Principal{}))
	stringSize    = int64(unsafe.Sizeof(""))
	// negErrSize is a flat estimate of the error a negative entry keeps
	// (an *auth.TokenError and its reason).
	negErrSize = 64
	// avgEntryCost is the expected cost of an average entry, used only to
	// size ristretto's admission counters.
	avgEntryCost = 512
)

// newEntry builds a positive (p != nil) or negative (err != nil) entry that
// the cache serves until now+ttl. token must already be a private copy (or
// nil); it is kept only for positive entries.
func newEntry(digest [sha256.Size]byte, p *auth.Principal, err error, token []byte, now time.Time, ttl time.Duration) *entry {
	e := &entry{
		digest:    digest,
		principal: p,
		err:       err,
		expiresAt: now.Add(ttl),
	}
	if p != nil {
		e.token = token
	}
	e.validatedAt.Store(now.UnixNano())
	e.cost = entryCost(e)
	return e
}

// entryCost estimates the bytes an entry holds: the entry itself, the kept
// token, and the principal with its strings and slices. ristretto adds its own
// per-item overhead on top (Config.IgnoreInternalCost is false).
func entryCost(e *entry) int64 {
	n := entrySize + int64(cap(e.token))
	if e.err != nil {
		n += negErrSize
	}
	if p := e.principal; p != nil {
		n += principalSize
		n += int64(len(p.Subject) + len(p.ClientID) + len(p.Issuer) + len(p.TokenID) + len(p.KeyThumbprint))
		n += int64(cap(p.Audience)) * stringSize
		for _, s := range p.Audience {
			n += int64(len(s))
		}
		n += int64(cap(p.Scopes)) * stringSize
		for _, s := range p.Scopes {
			n += int64(len(s))
		}
	}
	return n
}

// ttlFor is the cache's one TTL rule: how long the answer (p, err) that the
// validator gave at now may be served, in this process and in the second
// level alike. Zero means "do not cache".
//
//   - A principal lives min(p.ExpiresAt − now, MaxTTL): never past its
//     token's exp. A principal with no ExpiresAt (a remote answer without
//     exp) lives MaxTTL. Nothing is cached under NoPositiveCaching, or when
//     the token is already at or past exp (a validator with leeway may still
//     accept it; the cache then asks the validator every time).
//   - An ErrInvalidToken answer lives NegativeTTL (0 when negative caching
//     is disabled), unless it may turn good soon (see cacheableRejection).
//   - Anything else — ErrUnavailable, context errors, unknown errors — is
//     never cached: the token may be fine.
//   - A non-zero notAfter caps all of the above: an answer taken from the
//     second level lives no longer than its Deadline there, and a re-checked
//     entry keeps its own deadline. Nothing ever extends a verdict.
//
// For remote (introspection) results MaxTTL is the introspection TTL, and
// NoPositiveCaching is INTROSPECTION_CACHE_TTL=0.
func ttlFor(now time.Time, p *auth.Principal, err error, notAfter time.Time, cfg *Config) time.Duration {
	var ttl time.Duration
	switch {
	case err != nil:
		if cacheableRejection(err) && cfg.NegativeTTL > 0 {
			ttl = cfg.NegativeTTL
			if clockRejection(err) {
				ttl = min(ttl, clockRejectionTTL)
			}
		}
	case p == nil, cfg.NoPositiveCaching:
	case p.ExpiresAt.IsZero():
		ttl = cfg.MaxTTL
	default:
		ttl = max(min(p.ExpiresAt.Sub(now), cfg.MaxTTL), 0)
	}
	if !notAfter.IsZero() {
		ttl = max(min(ttl, notAfter.Sub(now)), 0)
	}
	return ttl
}

// cacheableRejection reports whether err says the token is bad for good:
// an ErrInvalidToken (and not ErrUnavailable) other than "unknown signing
// key", which a key-set refresh (a rotation the set has not seen yet) may
// turn into a valid answer at any moment.
func cacheableRejection(err error) bool {
	if !errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
		return false
	}
	return !errors.Is(err, auth.ErrUnknownKey)
}

// clockRejectionTTL bounds how long a refusal that the clock will undo
// ("not yet valid", "issued in the future") is cached: a genuine token
// from an authorization server whose clock runs ahead by more than the
// leeway, tried a moment early, is refused for at most this long after it
// becomes valid (not NegativeTTL), while repeating it still costs at most
// one validation per token in each such period.
const clockRejectionTTL = time.Second

// clockRejection reports whether err is a refusal the clock will undo.
func clockRejection(err error) bool {
	return errors.Is(err, auth.ErrNotYetValid) || errors.Is(err, auth.ErrIssuedInFuture)
}

// digestHash is ristretto's KeyToHash: the key is a SHA-256 digest, so its
// first two 64-bit words already are a 128-bit cryptographic hash (ristretto
// keeps both: one as the index, one as the conflict check). Keys shorter than
// 16 bytes never occur; they hash to 0, 0 rather than panic.
func digestHash(k []byte) (uint64, uint64) {
	if len(k) < 16 {
		return 0, 0
	}
	return binary.LittleEndian.Uint64(k[0:8]), binary.LittleEndian.Uint64(k[8:16])
}

// numCounters sizes ristretto's admission counters at ten per expected item,
// expecting items of about avgEntryCost bytes.
func numCounters(maxCost int64) int64 {
	return max(maxCost/avgEntryCost*10, 1000)
}
