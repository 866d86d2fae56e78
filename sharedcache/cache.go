package sharedcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authcache"
)

// Cache is the Redis second level: an authcache.SecondLevel. It is safe for
// concurrent use. Build it with New; Close releases it.
type Cache struct {
	cfg    Config
	rdb    *redis.Client
	signer *signer

	stats counters

	// Rate limits for log lines: Redis trouble and entries failing
	// authentication each log at most once per logEvery.
	redisLog, macLog logLimiter

	mu      sync.Mutex // guards sub and closed
	sub     *subscriber
	closed  bool
	closing sync.Once
}

// Stats is a snapshot of a Cache's counters, for metrics. Counters only grow.
type Stats struct {
	Hits                 uint64 // Get found a usable entry (positive or negative)
	Misses               uint64 // Get found no usable entry: none, past its deadline, of another version, or failing authentication
	Errors               uint64 // calls that failed or timed out talking to Redis
	MACFailures          uint64 // entries and revocation messages that failed authentication (forged, moved or garbage)
	LeasesAcquired       uint64 // Lease calls that took the lease
	LeaseWaits           uint64 // Await calls
	LeaseWaitHits        uint64 // Await calls that got an entry in time
	RevocationsPublished uint64 // Revoke calls whose broadcast Redis accepted
	RevocationsReceived  uint64 // authenticated revocations handed to the callback
}

var _ authcache.SecondLevel = (*Cache)(nil)

// counters are the live Stats.
type counters struct {
	hits, misses, errors, macFailures         atomic.Uint64
	leasesAcquired, leaseWaits, leaseWaitHits atomic.Uint64
	revocationsPublished, revocationsReceived atomic.Uint64
}

// logEvery is the least interval between two log lines of one kind.
const logEvery = 10 * time.Second

// New returns a Cache for cfg. It does not contact Redis: a Redis that is
// down at start-up only makes calls miss until it is back.
func New(cfg Config) (*Cache, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts, err := cfg.redisOptions()
	if err != nil {
		return nil, err
	}
	return &Cache{
		cfg:    cfg,
		rdb:    redis.NewClient(opts),
		signer: newSigner(cfg.SigningKey),
	}, nil
}

// Get returns the entry stored for the token whose SHA-256 is digest.
//
// Any trouble is a miss: Redis down, slow (past Config.Timeout), or
// answering garbage; an entry that fails authentication (forged, or copied
// from another token's key: counted in Stats.MACFailures and logged, rate
// limited, with the digest's first 8 hex characters); an entry at or past
// its Deadline.
func (c *Cache) Get(ctx context.Context, digest [sha256.Size]byte) (authcache.L2Entry, bool) {
	e, found, err := c.lookup(ctx, &digest)
	switch {
	case err != nil:
	case found:
		c.stats.hits.Add(1)
	default:
		c.stats.misses.Add(1)
	}
	return e, found
}

// lookup is Get without the hit and miss counts: an error means Redis could
// not be asked (already counted and logged); found false without an error
// means no usable entry.
func (c *Cache) lookup(parent context.Context, digest *[sha256.Size]byte) (authcache.L2Entry, bool, error) {
	ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
	defer cancel()
	// GETRANGE, not GET: Redis sends at most maxValueSize+1 bytes however
	// large a value someone stored. A missing key reads as "". The
	// revocation marker comes in the same round trip (see Revoke).
	var get *redis.StringCmd
	var revoked *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.GetRange(ctx, c.entryKey(digest), 0, maxValueSize)
		revoked = p.Exists(ctx, c.revokedKey(digest))
		return nil
	})
	if err != nil {
		c.redisFailed(parent, "get", err)
		return authcache.L2Entry{}, false, err
	}
	v, _ := get.Bytes()
	if len(v) == 0 {
		return authcache.L2Entry{}, false, nil
	}
	e, err := c.signer.decodeEntry(digest, v)
	switch {
	case errors.Is(err, errMAC):
		c.stats.macFailures.Add(1)
		if ok, suppressed := c.macLog.allow(c.cfg.Now()); ok {
			c.cfg.Logger.Warn("sharedcache: entry failed authentication; ignored",
				zap.String("digest", hex.EncodeToString(digest[:4])),
				zap.Int("bytes", len(v)),
				zap.Uint64("suppressed", suppressed))
		}
		return authcache.L2Entry{}, false, nil
	case err != nil:
		// A good MAC over something this version cannot read: another
		// version of tokengate wrote it (rolling upgrade). A miss.
		return authcache.L2Entry{}, false, nil
	case !c.cfg.Now().Before(e.Deadline):
		return authcache.L2Entry{}, false, nil
	case e.Principal != nil && revoked.Val() != 0:
		// Set after a revocation by a replica whose validation asked
		// before it: the token is revoked.
		return authcache.L2Entry{}, false, nil
	}
	return e, true, nil
}

// Set stores e for the token whose SHA-256 is digest, for ttl.
//
// ttl comes from the caller's TTL rule (authcache decides it; Set neither
// extends nor caps it): the key expires after ttl (SET … PX, atomically with
// the value) and the signed Deadline is now+ttl, so that the entry is not
// served past it even if Redis keeps it. A ttl under a millisecond stores
// nothing. An existing entry for digest is replaced.
//
// The returned error is for tests and logs; callers may ignore it, since a
// failed Set only costs a later miss. It fails for a positive entry that
// carries a Reason, a negative one whose Reason is not an auth.Reason, one
// past the encoding limits (MaxListLen, 16 KiB in all), or when Redis does
// not accept it within Config.Timeout.
func (c *Cache) Set(parent context.Context, digest [sha256.Size]byte, e authcache.L2Entry, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return nil
	}
	e.Deadline = c.cfg.Now().Add(ttl)
	v, err := c.signer.encodeEntry(make([]byte, 0, 256), &digest, &e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
	defer cancel()
	if err := c.rdb.Set(ctx, c.entryKey(&digest), v, ttl).Err(); err != nil {
		c.redisFailed(parent, "set", err)
		return fmt.Errorf("sharedcache: set: %w", err)
	}
	return nil
}

// Lease tries to take, for Config.LeaseTTL, the right to validate the token
// whose SHA-256 is digest on behalf of every replica, so that a token new
// to all of them costs one validation rather than one each.
//
// It reports whether the caller should validate the token itself: true when
// it took the lease, and also when Redis could not be asked (Redis trouble
// never delays a validation). false means another caller holds the lease:
// Await its result. The lease is not released; it expires.
func (c *Cache) Lease(parent context.Context, digest [sha256.Size]byte) (acquired bool) {
	ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
	defer cancel()
	ok, err := c.rdb.SetNX(ctx, c.leaseKey(&digest), "1", c.cfg.LeaseTTL).Result()
	if err != nil {
		c.redisFailed(parent, "lease", err)
		return true
	}
	if ok {
		c.stats.leasesAcquired.Add(1)
	}
	return ok
}

// Await waits up to Config.LeaseWait, and never past ctx, for the holder of
// digest's lease to Set an entry, and returns it. It
// polls Redis (GETs from 0.5ms apart, doubling up to 2ms apart), so a result
// is seen about 1–2ms after it lands; a subscription would see it in a
// round trip (~0.1ms) but needs a PUBLISH per Set and a registry of
// waiters, for waiters that would otherwise run a validation of tens of
// milliseconds. It gives up at once, with a miss, when Redis cannot be
// asked: the caller then validates the token itself, as after any miss.
func (c *Cache) Await(ctx context.Context, digest [sha256.Size]byte) (authcache.L2Entry, bool) {
	c.stats.leaseWaits.Add(1)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseWait)
	defer cancel()
	var timer *time.Timer
	for pause := awaitFirstPoll; ; pause = min(2*pause, awaitMaxPoll) {
		e, found, err := c.lookup(ctx, &digest)
		switch {
		case found:
			c.stats.leaseWaitHits.Add(1)
			return e, true
		case err != nil:
			return authcache.L2Entry{}, false
		}
		if timer == nil {
			timer = time.NewTimer(pause)
			defer timer.Stop()
		} else {
			timer.Reset(pause)
		}
		select {
		case <-ctx.Done():
			return authcache.L2Entry{}, false
		case <-timer.C:
		}
	}
}

// Await's polling backoff (see Await and BenchmarkAwaitLatency).
const (
	awaitFirstPoll = 500 * time.Microsecond
	awaitMaxPoll   = 2 * time.Millisecond
)

// Revoke replaces the entry of the token whose SHA-256 is digest with the
// negative entry neg, for ttl (as Set does; a ttl of 0 deletes the entry
// instead, for callers that cache no negative verdicts), and broadcasts
// the digest on Config.Channel, so that every replica's subscriber (see
// Start), this one's included, can drop the token from its own memory.
// neg must be negative (no Principal).
//
// Revoke also leaves a marker, KeyPrefix + "revoked:" + hex(digest), until
// neg.RevokedUntil (when zero or past: for ttl, and at least LeaseTTL),
// and while it lives Get and Await serve no valid verdict for the token:
// a Set from a validation that asked the authorization server before the
// revocation but lands after it is ignored. Entry, marker and broadcast go
// to Redis in one round trip.
//
// A revocation is delivered only to subscribers connected when it is
// published: a replica cut off from Redis at that moment keeps its own
// copy until its own TTL ends.
func (c *Cache) Revoke(parent context.Context, digest [sha256.Size]byte, neg authcache.L2Entry, ttl time.Duration) error {
	if neg.Principal != nil {
		return errors.New("sharedcache: Revoke needs a negative entry (no Principal)")
	}
	if ttl < 0 || ttl > 0 && ttl < time.Millisecond {
		return fmt.Errorf("sharedcache: Revoke needs a ttl of 0 (delete) or at least 1ms, got %s", ttl)
	}
	var v []byte
	if ttl > 0 {
		neg.Deadline = c.cfg.Now().Add(ttl)
		var err error
		if v, err = c.signer.encodeEntry(make([]byte, 0, 128), &digest, &neg); err != nil {
			return err
		}
	}
	remember := neg.RevokedUntil.Sub(c.cfg.Now())
	if remember <= 0 {
		remember = max(ttl, c.cfg.LeaseTTL)
	}
	remember = max(remember, time.Millisecond)
	msg := c.signer.encodeRevocation(&digest)
	ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if v != nil {
			p.Set(ctx, c.entryKey(&digest), v, ttl)
		} else {
			p.Del(ctx, c.entryKey(&digest))
		}
		p.Set(ctx, c.revokedKey(&digest), "1", remember)
		p.Publish(ctx, c.cfg.Channel, msg)
		return nil
	})
	if err != nil {
		c.redisFailed(parent, "revoke", err)
		return fmt.Errorf("sharedcache: revoke: %w", err)
	}
	c.stats.revocationsPublished.Add(1)
	return nil
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	s := &c.stats
	return Stats{
		Hits:                 s.hits.Load(),
		Misses:               s.misses.Load(),
		Errors:               s.errors.Load(),
		MACFailures:          s.macFailures.Load(),
		LeasesAcquired:       s.leasesAcquired.Load(),
		LeaseWaits:           s.leaseWaits.Load(),
		LeaseWaitHits:        s.leaseWaitHits.Load(),
		RevocationsPublished: s.revocationsPublished.Load(),
		RevocationsReceived:  s.revocationsReceived.Load(),
	}
}

// Close stops the subscriber (waiting for it to return) and closes the
// connections. Calls after Close miss or fail at once. Close is idempotent.
func (c *Cache) Close() error {
	var err error
	c.closing.Do(func() {
		c.mu.Lock()
		c.closed = true
		sub := c.sub
		c.mu.Unlock()
		if sub != nil {
			sub.stop()
		}
		if cerr := c.rdb.Close(); cerr != nil {
			err = fmt.Errorf("sharedcache: close: %w", cerr)
		}
	})
	return err
}

// entryKey is KeyPrefix + hex(digest).
func (c *Cache) entryKey(digest *[sha256.Size]byte) string {
	return c.key("", digest)
}

// revokedKey is KeyPrefix + "revoked:" + hex(digest): the marker Revoke
// leaves.
func (c *Cache) revokedKey(digest *[sha256.Size]byte) string {
	return c.key("revoked:", digest)
}

// leaseKey is KeyPrefix + "lease:" + hex(digest).
func (c *Cache) leaseKey(digest *[sha256.Size]byte) string {
	return c.key("lease:", digest)
}

func (c *Cache) key(kind string, digest *[sha256.Size]byte) string {
	var buf [128]byte
	b := append(buf[:0], c.cfg.KeyPrefix...)
	b = append(b, kind...)
	b = hex.AppendEncode(b, digest[:])
	return string(b)
}

// redisFailed counts a failed call and logs it, rate-limited, unless the
// caller's own context (parent) ended it: a caller leaving is not Redis
// failing. The error text comes from go-redis and the network (addresses,
// timeouts), never from keys or values.
func (c *Cache) redisFailed(parent context.Context, op string, err error) {
	if parent.Err() != nil {
		return
	}
	if dl, ok := parent.Deadline(); ok && !time.Now().Before(dl) {
		// The caller's deadline has passed, and go-redis's socket deadline
		// (set from it) fired before the context's own timer marked it done.
		return
	}
	c.stats.errors.Add(1)
	if ok, suppressed := c.redisLog.allow(c.cfg.Now()); ok {
		c.cfg.Logger.Warn("sharedcache: redis call failed; treated as a miss",
			zap.String("op", op), zap.Error(err), zap.Uint64("suppressed", suppressed))
	}
}

// logLimiter lets one event through per logEvery and counts the others.
type logLimiter struct {
	next       atomic.Int64 // UnixNano before which events are suppressed
	suppressed atomic.Uint64
}

// allow reports whether an event at now may be logged and, if so, how many
// were suppressed since the last one that was.
func (l *logLimiter) allow(now time.Time) (bool, uint64) {
	n := l.next.Load()
	if now.UnixNano() < n || !l.next.CompareAndSwap(n, now.Add(logEvery).UnixNano()) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
