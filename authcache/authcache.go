package authcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxCost          = 64 << 20 // bytes
	DefaultMaxTTL           = 5 * time.Minute
	DefaultNegativeTTL      = 5 * time.Second
	DefaultRevalidateAfter  = 30 * time.Second
	DefaultMaxRevalidations = 16
)

// Config configures a Cache. The zero value is usable: every zero field takes
// the default named in its comment. New copies the struct; later changes to
// the caller's copy have no effect.
type Config struct {
	// MaxCost bounds the memory the cache holds, in bytes (an estimate per
	// entry: the entry, its principal's strings and slices, the kept token,
	// plus ristretto's per-item overhead). A flood of unique tokens evicts
	// or is refused admission; it never grows memory past this. 0 means
	// DefaultMaxCost (64 MiB); negative is an error. An average entry costs
	// about 500 bytes, so 64 MiB holds some 130,000 tokens. ristretto's
	// admission counters (ten per expected entry) add a fixed ~6% on top.
	MaxCost int64

	// MaxTTL caps how long a valid token's answer is served: an entry lives
	// min(exp − now, MaxTTL), and MaxTTL for a principal without an expiry.
	// For remote (introspection) validation set it to the introspection
	// cache TTL. 0 means DefaultMaxTTL (5m); negative is an error.
	MaxTTL time.Duration

	// NoPositiveCaching disables caching of valid answers: every request
	// with a good token goes to the validator (remote mode with
	// INTROSPECTION_CACHE_TTL=0, for those who need every request checked).
	// Negative entries still follow NegativeTTL.
	NoPositiveCaching bool

	// NegativeTTL is how long an ErrInvalidToken answer is served from the
	// cache, so that a repeated bad token costs one lookup. 0 means
	// DefaultNegativeTTL (5s); negative disables negative caching.
	// ErrUnavailable and all other errors are never cached, and neither is
	// the rejection of a token naming a signing key the key set does not
	// hold: a refresh may bring the key (see cacheableRejection).
	NegativeTTL time.Duration

	// Revalidator, when set, turns on the hybrid mode's background
	// revalidation: a hit on a valid entry last validated RevalidateAfter or
	// more ago (but less than MaxStaleness) is served at once while one
	// background call to Revalidator
	// (usually the introspection validator, the wrapped one being the
	// hybrid validator) re-checks the token. If it answers the token is
	// good, the entry counts as validated now (it keeps its principal and
	// its deadline). If it answers ErrInvalidToken, the entry is never
	// served as valid again and is replaced by a negative entry living
	// NegativeTTL (deleted when negative caching is off). If it cannot
	// answer, the entry is kept and a later hit retries. nil (the default)
	// disables revalidation.
	//
	// With a Revalidator, every positive entry keeps a copy of its token in
	// memory (the re-check needs it); the copy is counted in the entry's
	// cost and is never logged.
	Revalidator auth.Validator

	// RevalidateAfter is the age after which a hit starts a background
	// re-check (hybrid mode's REVALIDATE_AFTER). 0 means
	// DefaultRevalidateAfter (30s); negative is an error.
	RevalidateAfter time.Duration

	// MaxStaleness bounds how old, since its last successful validation or
	// re-check, a positive entry may be and still be served when a
	// Revalidator is set (hybrid mode's MAX_STALENESS). A hit on an older
	// entry (a token idle for a while, then used) is not served: the caller
	// waits for a re-check by the Revalidator, one for all callers of the
	// same token, and gets its answer; when none can be had (the
	// Revalidator cannot answer, or every re-check slot is busy) it gets
	// an *auth.UnavailableError, never the stale principal. 0 means twice
	// RevalidateAfter; below RevalidateAfter, or negative, is an error.
	// Unused without a Revalidator.
	MaxStaleness time.Duration

	// MaxRevalidations bounds the background re-checks running at once.
	// When all slots are busy a due entry is not re-checked now; a later hit
	// retries. 0 means DefaultMaxRevalidations (16); negative is an error.
	MaxRevalidations int

	// SigningKeys, when set, lets the cache stop serving a token whose
	// signing key the issuer has retired: an entry whose principal names a
	// key (auth.Principal.KeyThumbprint) is served only while SigningKeys
	// holds that key. *auth.KeySet implements it. nil (remote mode) skips
	// the check.
	SigningKeys SigningKeys

	// SecondLevel, when set, is a cache shared with the other replicas
	// (sharedcache over Redis), asked on an in-process miss before the
	// validator: its verdict, valid or not, answers the token, and what
	// the validator answers is stored there for as long as ttlFor allows.
	// Concurrent misses on several replicas share one validation through
	// its Lease and Await. With a Revalidator, a re-check asks it first
	// (another replica's re-check may answer for this one), and one that
	// finds the token revoked revokes it there, which reaches every
	// replica's Forget. The second level never makes Validate fail: its
	// trouble is a miss. nil (the default) means none.
	SecondLevel SecondLevel

	// SecondLevelVerifier, when set with SecondLevel, checks a token before
	// the second level is asked, and a valid verdict from there is served
	// only with its principal (hybrid mode: the local JWT validator, so a
	// token the second level says is good still needs a good signature,
	// this replica's claim checks and a key the key set holds, and a
	// token it refuses never costs a Redis round trip). Its refusals are
	// cached in this process only; recomputing them costs less than
	// asking the second level. nil: the second level's verdict replaces
	// the validator's (remote mode). A verifier that cannot check a token
	// (an opaque token, or one of an issuer checked by introspection only,
	// when several issuers share one cache) answers ErrUnverifiable, and
	// that token is treated as with no verifier.
	SecondLevelVerifier auth.Validator

	// Now is the clock for entry deadlines and revalidation ages; nil means
	// time.Now. (ristretto's own sweep of expired items uses the wall
	// clock; the entry's deadline on this clock is what decides a hit.)
	Now func() time.Time

	// Logger receives revalidation outcomes (tokens appear only as
	// auth.Fingerprint). nil means zap.NewNop().
	Logger *zap.Logger
}

// Stats is a snapshot of a Cache's counters, for metrics. Counters only grow.
type Stats struct {
	Hits          uint64 // Validate answered from a positive entry
	NegativeHits  uint64 // Validate answered from a negative (or revoked) entry
	Misses        uint64 // Validate calls that joined or started a validation
	Validations   uint64 // calls to the wrapped validator
	Revalidations uint64 // calls to Config.Revalidator (background re-checks)
	Revoked       uint64 // positive entries turned negative by a re-check
	StaleWaits    uint64 // Validate calls that found an entry older than MaxStaleness and waited for its re-check
	RetiredKeys   uint64 // Validate calls that found an entry whose signing key SigningKeys no longer holds (then validated afresh)
	L2Hits        uint64 // in-process misses answered by the second level's verdict, without the validator
	Forgotten     uint64 // valid entries dropped by Forget (a revocation another replica, or this one, published)
	Evictions     uint64 // entries removed by the cost bound or ristretto's TTL sweep
	Rejections    uint64 // entries refused by ristretto's admission policy
	Cost          int64  // bytes currently accounted in the cache (0 after Close)
	MaxCost       int64  // the configured bound, in bytes
}

// lockShards is the number of shards of the close guard and hit counters,
// 1<<lockShardBits.
const (
	lockShardBits = 6
	lockShards    = 1 << lockShardBits
)

// shard guards ristretto against Close for the hits that picked it and
// counts them. A hit picks its shard at random (math/rand/v2's generator
// has per-thread state), not by its digest: the hits of one hot token on
// several cores would otherwise all read-lock and count on the same cache
// line, which then moves between the cores on every request. Close
// write-locks every shard, so any shard guards any hit. A memo hit, which
// calls no ristretto, counts on its memo's shard instead (memoShard). The
// padding keeps shards off each other's lines.
type shard struct {
	mu      sync.RWMutex // read-held around every ristretto call on the hit path; Close write-locks all shards
	hits    atomic.Uint64
	negHits atomic.Uint64
	_       [128 - (unsafe.Sizeof(sync.RWMutex{})+16)%128]byte
}

// Cache is a caching auth.Validator. It is safe for concurrent use. Create it
// with New and stop it with Close.
type Cache struct {
	// Read-mostly fields, which every hit reads.
	next   auth.Validator
	cfg    Config // defaults filled
	now    func() time.Time
	log    *zap.Logger
	rc     *ristretto.Cache[[]byte, *entry]
	slots  chan struct{} // one token per running revalidation
	closed atomic.Bool   // set once, under mu, by Close

	// ctx is the context of every validation the cache runs on its own
	// behalf (shared misses, revalidations); Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// digests recycles the *[32]byte scratch buffers of the hit path: a
	// digest on the stack would escape (ristretto passes the key to a func
	// value) and cost an allocation per hit.
	digests sync.Pool

	_ [128]byte // keeps the fields every miss writes off the lines above

	mu      sync.Mutex // guards pending and the closed transition
	idle    sync.Cond  // signalled (with mu) when pending drops to 0
	pending int        // work items in progress: shared validations and revalidations

	flightMu sync.Mutex                  // guards flight
	flight   map[[sha256.Size]byte]*call // the validation in progress per token digest

	closeOnce sync.Once

	_             [128]byte // keeps the shards off the cache lines of the fields above
	shards        [lockShards]shard
	misses        atomic.Uint64
	validations   atomic.Uint64
	revalidations atomic.Uint64
	revoked       atomic.Uint64
	staleWaits    atomic.Uint64
	retiredKeys   atomic.Uint64
	evictions     atomic.Uint64
	// secondLevelHits and forgotten are Stats.L2Hits and Stats.Forgotten.
	secondLevelHits atomic.Uint64
	forgotten       atomic.Uint64
	rejections      atomic.Uint64

	// beforeStore, when set (tests only), runs in keepValid between its
	// first check of the call's forgotten flag and the store.
	beforeStore func()
}

var _ auth.Validator = (*Cache)(nil)

// SigningKeys is what a Cache needs to notice that the issuer retired the
// key that verified a cached token. *auth.KeySet implements it.
type SigningKeys interface {
	// KeyGeneration returns a number that changes whenever the set drops
	// a key. Every hit on an entry with a key calls it, so it must be
	// cheap (an atomic load) and must not allocate.
	KeyGeneration() uint64
	// HoldsKey reports whether the set holds the key whose thumbprint is
	// given (auth.Principal.KeyThumbprint). Called only after
	// KeyGeneration changed, and on a verdict taken from the second level.
	HoldsKey(thumbprint string) bool
}

// errClosed tells a waiter that the shared validation did not run because
// the cache was closed; the waiter then validates uncached.
var errClosed = errors.New("authcache: closed")

// New returns a Cache in front of next. It starts ristretto's goroutines;
// call Close to stop them.
func New(next auth.Validator, cfg Config) (*Cache, error) {
	if next == nil {
		return nil, errors.New("authcache: a validator to wrap is required")
	}
	switch {
	case cfg.MaxCost < 0:
		return nil, fmt.Errorf("authcache: MaxCost %d is negative", cfg.MaxCost)
	case cfg.MaxTTL < 0:
		return nil, fmt.Errorf("authcache: MaxTTL %v is negative", cfg.MaxTTL)
	case cfg.RevalidateAfter < 0:
		return nil, fmt.Errorf("authcache: RevalidateAfter %v is negative", cfg.RevalidateAfter)
	case cfg.MaxRevalidations < 0:
		return nil, fmt.Errorf("authcache: MaxRevalidations %d is negative", cfg.MaxRevalidations)
	case cfg.MaxStaleness < 0:
		return nil, fmt.Errorf("authcache: MaxStaleness %v is negative", cfg.MaxStaleness)
	}
	if cfg.MaxCost == 0 {
		cfg.MaxCost = DefaultMaxCost
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = DefaultMaxTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.RevalidateAfter == 0 {
		cfg.RevalidateAfter = DefaultRevalidateAfter
	}
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = 2 * cfg.RevalidateAfter
	}
	if cfg.MaxStaleness < cfg.RevalidateAfter {
		return nil, fmt.Errorf("authcache: MaxStaleness %v is below RevalidateAfter %v", cfg.MaxStaleness, cfg.RevalidateAfter)
	}
	if cfg.MaxRevalidations == 0 {
		cfg.MaxRevalidations = DefaultMaxRevalidations
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}

	c := &Cache{
		next:   next,
		cfg:    cfg,
		now:    cfg.Now,
		log:    cfg.Logger,
		slots:  make(chan struct{}, cfg.MaxRevalidations),
		flight: make(map[[sha256.Size]byte]*call),
	}
	c.idle.L = &c.mu
	c.digests.New = func() any { return new([sha256.Size]byte) }
	rc, err := ristretto.NewCache(&ristretto.Config[[]byte, *entry]{
		NumCounters: numCounters(cfg.MaxCost),
		MaxCost:     cfg.MaxCost,
		BufferItems: 64,
		KeyToHash:   digestHash,
		OnEvict: func(*ristretto.Item[*entry]) {
			if !c.closed.Load() { // Close clears the cache: not evictions
				c.evictions.Add(1)
			}
		},
		OnReject: func(*ristretto.Item[*entry]) { c.rejections.Add(1) },
		// Every way out of ristretto (eviction, rejection, replacement,
		// Del, Clear) ends here; a Memo stops serving the entry.
		OnExit: func(e *entry) {
			if e != nil {
				e.exited.Store(true)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("authcache: creating ristretto cache: %w", err)
	}
	c.rc = rc
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Validate returns the cached answer for token, or asks the wrapped validator
// once for all concurrent callers with the same token and caches the answer
// for as long as the package's TTL rule allows (see Config).
//
// A hit allocates nothing (ristretto's access buffer aside: it allocates one
// 512-byte batch per 64 lookups it hands to its admission policy, under
// 8 bytes per hit amortised, and 0 allocs/op).
//
// On a miss, the first caller for a token (the leader) runs the validation
// itself, on its own goroutine but with the cache's context, not ctx; the
// callers that miss on the same token while it runs wait for its answer or
// for their own ctx, and one whose ctx ends leaves at once with an
// *auth.UnavailableError wrapping ctx.Err(). The leader cannot leave before
// its validation ends (see miss). Errors of the wrapped validator are
// returned unchanged; a panic in it is logged and returned, to the leader
// and every waiting caller, as an error that is neither ErrInvalidToken nor
// ErrUnavailable, and never cached.
//
// After Close, Validate still answers, uncached: it calls the wrapped
// validator directly with ctx. A miss in flight when Close is called may fail
// with the validator's ErrUnavailable answer to the cancelled context.
func (c *Cache) Validate(ctx context.Context, token []byte) (*auth.Principal, error) {
	return c.validate(ctx, token, nil)
}

// validate is Validate; a hit that serves a valid entry is remembered in
// m when m is not nil (see ValidateMemo).
func (c *Cache) validate(ctx context.Context, token []byte, m *Memo) (*auth.Principal, error) {
	d := c.digests.Get().(*[sha256.Size]byte)
	*d = sha256.Sum256(token)
	sh := &c.shards[rand.Uint32()&(lockShards-1)]

	sh.mu.RLock()
	if c.closed.Load() {
		sh.mu.RUnlock()
		c.digests.Put(d)
		return c.validateUncached(ctx, token)
	}
	e, ok := c.rc.Get(d[:])
	sh.mu.RUnlock()

	if ok && e != nil && e.digest == *d {
		now := c.now()
		v := c.judge(e, now)
		if v == hitKeyChanged {
			if !c.keyStillHeld(e) {
				// The issuer retired the token's key: validate afresh
				// (the validator refuses it), never serve the entry.
				c.retiredKeys.Add(1)
				return c.miss(ctx, token, d)
			}
			v = c.judgeStaleness(e, now)
		}
		switch v {
		case hitRevoked:
			c.digests.Put(d)
			sh.negHits.Add(1)
			return nil, e.revoked.Load().err
		case hitNegative:
			c.digests.Put(d)
			sh.negHits.Add(1)
			return nil, e.err
		case hitStale:
			c.digests.Put(d)
			return c.share(ctx, token, e.digest, e)
		case hitServe:
			c.digests.Put(d)
			if m != nil {
				m.remember(c, e, token)
			}
			return c.serve(e, now, sh), nil
		}
		// hitExpired: a miss.
	}
	return c.miss(ctx, token, d)
}

// hitVerdict is what a hit may do with an entry it found.
type hitVerdict uint8

const (
	hitServe      hitVerdict = iota // serve the principal (Cache.serve)
	hitExpired                      // past its deadline: a miss
	hitRevoked                      // revoked by a re-check or Forget: its error
	hitNegative                     // a negative entry: its error
	hitKeyChanged                   // the key set dropped a key since e was stamped: keyStillHeld decides
	hitStale                        // hybrid, not re-checked for MaxStaleness: one shared re-check first
)

// judge is the one place that decides what a hit at now may do with e;
// the hit path (validate) and a Memo's (memoHit) both follow it.
func (c *Cache) judge(e *entry, now time.Time) hitVerdict {
	switch {
	case !now.Before(e.expiresAt):
		return hitExpired
	case e.revoked.Load() != nil:
		return hitRevoked
	case e.principal == nil:
		return hitNegative
	}
	if keys := c.cfg.SigningKeys; keys != nil && e.keyGen.Load() != keys.KeyGeneration() {
		return hitKeyChanged
	}
	return c.judgeStaleness(e, now)
}

// judgeStaleness is judge's last step, for a valid entry whose key is
// known to be held: hitStale when a hybrid entry was not re-checked for
// MaxStaleness, else hitServe.
func (c *Cache) judgeStaleness(e *entry, now time.Time) hitVerdict {
	if c.cfg.Revalidator != nil && now.UnixNano()-e.validatedAt.Load() >= int64(c.cfg.MaxStaleness) {
		return hitStale
	}
	return hitServe
}

// serve is a hit that judge allowed: it starts e's background re-check
// when one is due, counts the hit on sh, and returns the principal.
func (c *Cache) serve(e *entry, now time.Time, sh *shard) *auth.Principal {
	if c.cfg.Revalidator != nil {
		c.maybeRevalidate(e, now)
	}
	sh.hits.Add(1)
	return e.principal
}

// keyStillHeld is the slow path of a hit on an entry stamped with an
// older key generation: it reports whether the key that verified the
// entry's token is still held and, if so, stamps the entry with the
// current generation, so that later hits take the fast path again. (The
// generation is read first: a key dropped after that changes it again.)
func (c *Cache) keyStillHeld(e *entry) bool {
	gen := c.cfg.SigningKeys.KeyGeneration()
	if tp := e.principal.KeyThumbprint; tp != "" && !c.cfg.SigningKeys.HoldsKey(tp) {
		return false
	}
	e.keyGen.Store(gen)
	return true
}

// call is one validation in progress, shared by every caller that misses on
// its token while it runs, or one re-check of a stale entry, shared by
// every caller that finds it. p and err are written once, by the leader,
// before done is closed; waiters read them only after done is closed.
type call struct {
	digest [sha256.Size]byte // the token's; the call's key in Cache.flight
	stale  *entry            // the entry to re-check; nil for a validation
	ctx    context.Context   // the validation's: see validationContext
	done   chan struct{}
	p      *auth.Principal
	err    error
	// forgotten is set by Forget for the token while the call runs: its
	// valid answer predates the revocation and must not be stored.
	forgotten atomic.Bool
}

// miss joins or starts the shared validation of token. It returns d to the
// pool.
//
// The first caller for a digest leads: it registers a call, validates token
// inline on its own goroutine (no goroutine per miss, no hand-off: under
// load the processors stay busy with validations instead of waking
// waiters), publishes the answer and removes the call. Later callers for
// the same digest wait for the call's answer or for their own ctx,
// whichever comes first.
//
// The trade-off: the leader cannot leave when its ctx ends, because the
// validation runs on its stack. Its wait is bounded all the same: the
// validation runs on the cache's context (which Close cancels), and every
// validator bounds its own work — key-set fetches and introspection calls
// by their timeouts, local verification being CPU work only. This is the
// price of not handing every miss to another goroutine; the waiters, who
// gain nothing from staying, still leave on their own ctx.
func (c *Cache) miss(ctx context.Context, token []byte, d *[sha256.Size]byte) (*auth.Principal, error) {
	digest := *d
	c.digests.Put(d)
	return c.share(ctx, token, digest, nil)
}

// share is miss after the digest is taken: it joins or leads the work in
// flight for digest, which is a validation of token or, when stale is set,
// a re-check of that entry (see recheck). Either answers for the token, so
// a caller joins whichever is running.
func (c *Cache) share(ctx context.Context, token []byte, digest [sha256.Size]byte, stale *entry) (*auth.Principal, error) {
	count := &c.misses
	if stale != nil {
		count = &c.staleWaits
	}

	// A caller that has already gone (client away, server stopping) starts
	// no validation: a leader cannot leave one half-way.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("authcache: %w", &auth.UnavailableError{
			Reason: "request ended before the token was validated",
			Err:    err,
		})
	}

	c.flightMu.Lock()
	if cl, ok := c.flight[digest]; ok {
		c.flightMu.Unlock()
		// Counted once joined: when Misses says n, n callers share a call
		// (or have led their own).
		count.Add(1)
		select {
		case <-cl.done:
			if cl.err == errClosed {
				return c.validateUncached(ctx, token)
			}
			return cl.p, cl.err
		case <-ctx.Done():
			return nil, fmt.Errorf("authcache: %w", &auth.UnavailableError{
				Reason: "request ended while the token was being validated",
				Err:    ctx.Err(),
			})
		}
	}
	cl := &call{digest: digest, stale: stale, done: make(chan struct{}), ctx: c.validationContext(ctx)}
	c.flight[digest] = cl
	c.flightMu.Unlock()
	count.Add(1)

	c.lead(cl, token)
	if cl.err == errClosed {
		return c.validateUncached(ctx, token)
	}
	return cl.p, cl.err
}

// lead runs the validation of cl and publishes its answer to cl's waiters.
// Whatever happens, even a panic escaping fill (a bug of this package: the
// validator's own panics are recovered in callValidator), the call is
// removed from the in-flight map and its waiters are released with an
// error, so that none waits forever and the next caller starts afresh.
func (c *Cache) lead(cl *call, token []byte) {
	finished := false
	defer func() {
		if !finished {
			cl.p, cl.err = nil, errValidatorPanicked
		}
		c.flightMu.Lock()
		if c.flight[cl.digest] == cl { // Forget may have detached it
			delete(c.flight, cl.digest)
		}
		c.flightMu.Unlock()
		close(cl.done)
	}()
	if cl.stale != nil {
		cl.p, cl.err = c.recheck(cl.stale)
	} else {
		cl.p, cl.err = c.fill(cl, token)
	}
	finished = true
}

// fill runs the shared validation cl of one token on cl.ctx
// (validationContext) and stores the answer. It runs on the leader's goroutine, with the leader's
// token bytes, which stay valid and unchanged until Validate returns; the
// entry it stores keeps a copy, never them. fill registers itself as
// cache-owned work so that Close waits for it (or, once Close has begun,
// returns errClosed without running).
func (c *Cache) fill(cl *call, token []byte) (*auth.Principal, error) {
	ctx, digest := cl.ctx, &cl.digest
	if !c.begin() {
		return nil, errClosed
	}
	defer c.end()

	var gen uint64
	if c.cfg.SigningKeys != nil {
		gen = c.cfg.SigningKeys.KeyGeneration() // before: a key dropped during the validation changes it
	}
	if c.cfg.SecondLevel != nil {
		var lp *auth.Principal
		if v := c.cfg.SecondLevelVerifier; v != nil {
			var err error
			switch lp, err = c.callValidator(ctx, v, token, digest); {
			case errors.Is(err, ErrUnverifiable):
				lp = nil // the second level's verdict stands, as with no verifier
			case err != nil || lp == nil:
				if err == nil {
					err = errNeither
				}
				now := c.now()
				c.keep(digest, token, nil, err, now, now, ttlFor(now, nil, err, time.Time{}, &c.cfg), gen)
				return nil, err
			}
		}
		if p, err, ok := c.fromSecondLevel(cl, token, lp, gen); ok {
			return p, err
		}
		// On to the wrapped validator, which repeats the verifier's
		// check (hybrid mode: tens of microseconds, before an
		// introspection of milliseconds).
	}
	c.validations.Add(1)
	p, err := c.callValidator(ctx, c.next, token, digest)
	if p == nil && err == nil {
		err = errNeither
	}
	now := c.now()
	ttl := ttlFor(now, p, err, time.Time{}, &c.cfg)
	if p == nil {
		c.keep(digest, token, nil, err, now, now, ttl, gen)
	} else {
		c.keepValid(cl, token, p, now, now, ttl, gen)
	}
	if c.cfg.SecondLevel != nil && ttl > 0 {
		c.shareAnswer(cl, p, err, now, ttl)
	}
	return p, err
}

// keep stores the answer (p, err) in this process for ttl from now (nothing
// when ttl is 0), as validated at validatedAt and with the key generation
// gen. token is the caller's: a positive entry of a cache with a
// Revalidator keeps a copy.
func (c *Cache) keep(digest *[sha256.Size]byte, token []byte, p *auth.Principal, err error, validatedAt, now time.Time, ttl time.Duration, gen uint64) {
	if ttl <= 0 {
		return
	}
	var kept []byte
	if c.cfg.Revalidator != nil && p != nil {
		kept = bytes.Clone(token) // the caller reuses its buffer after we return
	}
	e := newEntry(*digest, p, negativeErr(p, err), kept, now, ttl)
	e.validatedAt.Store(validatedAt.UnixNano())
	e.keyGen.Store(gen)
	c.rc.SetWithTTL(digest[:], e, e.cost, ttl)
}

// keepValid is keep for the valid answer p of the call cl, which must not
// be stored once Forget has been called for its token while cl ran: Forget
// drops only an entry it finds, so one stored just after Forget looked
// would outlive the revocation. The call's forgotten flag is read before
// the store and again after it; set after the store, it drops the entry.
// A Forget that sets it later finds the stored entry (it waits for the
// store). Only a revocation of this token counts: revocations of others,
// replayed ones included, cost this token nothing.
func (c *Cache) keepValid(cl *call, token []byte, p *auth.Principal, validatedAt, now time.Time, ttl time.Duration, gen uint64) {
	if cl.forgotten.Load() {
		return
	}
	if c.beforeStore != nil {
		c.beforeStore()
	}
	c.keep(&cl.digest, token, p, nil, validatedAt, now, ttl, gen)
	if cl.forgotten.Load() {
		c.rc.Del(cl.digest[:])
	}
}

// ErrUnverifiable is what a Config.SecondLevelVerifier answers for a token
// it has no means to check (see there): the second level's verdict on it
// is taken as it is. It is never cached and never reaches a caller.
var ErrUnverifiable = errors.New("authcache: the second-level verifier cannot check this token")

// errNeither is what a token gets whose validator returned neither a
// principal nor an error.
var errNeither = errors.New("authcache: validator returned neither a principal nor an error")

// errValidatorPanicked is what a token gets whose validation panicked.
var errValidatorPanicked = errors.New("authcache: validator panicked (see the log)")

// callValidator calls v.Validate with ctx, the cache's context or one
// derived from it (validationContext). A panic in v (a bug
// reached by crafted input) becomes an error for this token, which is never
// cached, instead of a crash of the process or of the request: the leader of
// a shared validation answers its waiters too, and a revalidation runs on a
// goroutine of its own.
func (c *Cache) callValidator(ctx context.Context, v auth.Validator, tok []byte, digest *[sha256.Size]byte) (p *auth.Principal, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, errValidatorPanicked
			c.log.Error("authcache: validator panicked",
				zap.String("token", hex.EncodeToString(digest[:4])), zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	return v.Validate(ctx, tok)
}

// validationContext is the context of a validation the cache runs for a
// caller with ctx: the cache's own, so that the caller leaving does not
// cancel work others share, naming the caller's client when ctx names one
// (auth.WithClient), so that the validator can bound its work per client
// (auth.RemoteConfig.MaxPerClient). It runs on misses only: a hit never
// looks at ctx.
func (c *Cache) validationContext(ctx context.Context) context.Context {
	if addr, ok := auth.ClientFrom(ctx); ok {
		return auth.WithClient(c.ctx, addr)
	}
	return c.ctx
}

// negativeErr returns err for a negative entry, nil for a positive one.
func negativeErr(p *auth.Principal, err error) error {
	if p != nil {
		return nil
	}
	return err
}

// validateUncached is Validate after Close.
func (c *Cache) validateUncached(ctx context.Context, token []byte) (*auth.Principal, error) {
	c.validations.Add(1)
	return c.next.Validate(ctx, token)
}

// begin registers one unit of cache-owned background work. It reports false
// once Close has begun.
func (c *Cache) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.pending++
	return true
}

// end marks one unit of background work done.
func (c *Cache) end() {
	c.mu.Lock()
	c.pending--
	if c.pending == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// waitIdle blocks until no background work runs.
func (c *Cache) waitIdle() {
	c.mu.Lock()
	for c.pending > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
}

// Wait blocks until the background work running when it is called — shared
// validations and revalidations — has finished and every answer they stored
// is visible to Validate (ristretto applies writes asynchronously). Tests use
// it instead of sleeping. It returns at once after Close.
func (c *Cache) Wait() {
	c.waitIdle()
	sh := &c.shards[0]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if !c.closed.Load() {
		c.rc.Wait()
	}
}

// Close cancels the cache's context (stopping shared validations and
// revalidations in flight), waits for them (a shared validation runs on its
// leader's goroutine, a revalidation on one of the cache's), and closes
// ristretto, dropping every entry. It is safe to call more than once and
// concurrently with Validate, which keeps answering, uncached.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		c.mu.Unlock()
		c.cancel()
		c.waitIdle()
		// Hits that passed the closed check still hold a shard's read
		// lock while they call ristretto; wait them out.
		for i := range c.shards {
			c.shards[i].mu.Lock()
		}
		c.rc.Close()
		for i := range c.shards {
			c.shards[i].mu.Unlock()
		}
	})
}

// Stats returns a snapshot of the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Misses:        c.misses.Load(),
		Validations:   c.validations.Load(),
		Revalidations: c.revalidations.Load(),
		Revoked:       c.revoked.Load(),
		StaleWaits:    c.staleWaits.Load(),
		RetiredKeys:   c.retiredKeys.Load(),
		L2Hits:        c.secondLevelHits.Load(),
		Forgotten:     c.forgotten.Load(),
		Evictions:     c.evictions.Load(),
		Rejections:    c.rejections.Load(),
		MaxCost:       c.cfg.MaxCost,
	}
	for i := range c.shards {
		s.Hits += c.shards[i].hits.Load()
		s.NegativeHits += c.shards[i].negHits.Load()
	}
	sh := &c.shards[0]
	sh.mu.RLock()
	if !c.closed.Load() {
		s.Cost = c.rc.MaxCost() - c.rc.RemainingCost()
	}
	sh.mu.RUnlock()
	return s
}
