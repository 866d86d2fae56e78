package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// minRSAKeyBits is the smallest RSA modulus a KeySet accepts.
const minRSAKeyBits = 2048

// KeySetConfig configures a KeySet. Zero fields take the defaults in
// parentheses.
type KeySetConfig struct {
	// Discovery supplies the jwks_uri. Required. Set
	// DiscoveryConfig.Override.JWKSURI to use an explicit URL and skip
	// discovery for keys.
	Discovery *Discovery

	// Client fetches the JWKS (NewHTTPClient(HTTPClientConfig{}), which
	// caps a response at 1 MiB).
	Client HTTPClient

	// FetchTimeout bounds each JWKS request (5s). No request waits longer
	// than this for keys (plus discovery, the first time).
	FetchTimeout time.Duration

	// RefreshInterval is the longest time between background refreshes
	// (5m). A Cache-Control max-age on the JWKS response shortens it, down
	// to one minute (or RefreshInterval, if that is shorter).
	RefreshInterval time.Duration

	// RetryInterval is the wait after the first failed background refresh
	// (5s). Each further failure in a row doubles it, up to
	// MaxRetryInterval, and each wait is jittered down by up to half, so
	// that replicas started together do not retry together.
	RetryInterval time.Duration

	// MaxRetryInterval caps the background retry wait (1m). While
	// refreshes keep failing, the log gets the first failure and then at
	// most one summary line per MaxRetryInterval.
	MaxRetryInterval time.Duration

	// UnknownKIDCooldown is the minimum time between two refreshes caused
	// by tokens naming a key the set does not hold (30s). Within it such
	// tokens are rejected at once, so made-up key ids cannot make the
	// KeySet hammer the authorization server, and no request waits on a
	// rate limiter; the first of them schedules one refresh for the
	// cooldown's end, so that a key the issuer has just published is
	// loaded within one cooldown however many made-up kids arrive.
	UnknownKIDCooldown time.Duration

	// MaxResponseSize is the largest JWKS body accepted (1 MiB). The
	// client's own limit (HTTPClientConfig.MaxResponseBodySize) is what
	// stops the read; this check catches clients built without one.
	MaxResponseSize int

	// DisableFastRSA verifies RS256, RS384 and RS512 signatures of RSA
	// keys over 2048 bits with crypto/rsa, as for smaller keys (false:
	// such keys are prepared once, when the JWKS loads, for a
	// variable-time public operation that is several times faster for
	// 4096-bit keys; see fastRSAKey). The fast path only ever handles
	// public data, compares the whole expected encoding and is tested
	// against crypto/rsa, but it is tokengate's own arithmetic: set this
	// to rule it out. It is always off when Go's FIPS 140-3 mode is on.
	DisableFastRSA bool

	// Now is the clock for the unknown-kid cooldown and the log's summary
	// interval (time.Now). Network deadlines always use the wall clock.
	Now func() time.Time

	// After waits for the background refresher and the refresh scheduled
	// at a cooldown's end (time.After). Tests pass a manual clock's.
	After func(time.Duration) <-chan time.Time

	// Rand returns the retry jitter, a number in [0, 1)
	// (math/rand/v2.Float64). Tests pass a fixed one.
	Rand func() float64

	// Logger receives refresh results and keys that are skipped
	// (zap.NewNop()).
	Logger *zap.Logger
}

// KeySet holds an authorization server's public signing keys (its JWKS),
// indexed by key id. Keys of different types may share a key id (RFC 7517
// section 4.5); a token gets the one that fits its algorithm.
//
// Reads are lock-free: the keys are an immutable map behind an atomic
// pointer, replaced whole by each successful refresh, so a key removed
// from the JWKS stops validating after the next refresh, and
// KeyGeneration changes so that caches can notice (see HoldsKey). A failed
// refresh keeps the last good keys. Start runs a background refresher,
// which backs off exponentially while the issuer fails; a token naming an
// unknown key id triggers an immediate refresh, deduplicated (one fetch in
// flight, shared by every caller, each of which leaves when its own
// context ends) and rate-limited (UnknownKIDCooldown). Stats counts the
// fetches. A KeySet is safe for concurrent use; Close stops it.
type KeySet struct {
	disc          *Discovery
	client        HTTPClient
	fetchTimeout  time.Duration
	refreshEvery  time.Duration
	retryInterval time.Duration
	maxRetry      time.Duration
	cooldown      time.Duration
	maxSize       int
	fastRSA       bool
	now           func() time.Time
	after         func(time.Duration) <-chan time.Time
	rand          func() float64
	log           *zap.Logger

	keys atomic.Pointer[keySnapshot] // nil until the first successful refresh
	gen  atomic.Uint64               // KeyGeneration; bumped after a snapshot that dropped a key is stored

	// Counters for Stats; written off the hot path (a lookup of a known
	// kid touches none of them).
	fetches        atomic.Uint64
	fetchFailures  atomic.Uint64
	unknownKIDRuns atomic.Uint64
	lastSuccess    atomic.Int64 // UnixNano on k.now of the last good fetch; 0 before the first

	ctx    context.Context    // the key set's lifetime; fetches run on it
	cancel context.CancelFunc // ends ctx (Close)
	wg     sync.WaitGroup     // refresher loop and fetch goroutines

	mu          sync.Mutex    // guards everything below
	call        *refreshCall  // the fetch in flight, or nil
	lastUnknown time.Time     // start of the last unknown-kid refresh (k.now)
	lastErr     error         // cause of the last failed fetch; nil after a success
	maxAge      time.Duration // max-age of the last good response; -1 when absent
	streak      failureStreak // the failed fetches in a row, for the log
	scheduled   bool          // an unknown-kid refresh waits for the cooldown's end
	started     bool
	closed      bool
}

// refreshCall is one JWKS fetch that several callers may wait for.
type refreshCall struct {
	done chan struct{} // closed when err is set
	err  error
}

// keySnapshot is an immutable set of verification keys.
type keySnapshot struct {
	byKID        map[string][]*verifyKey // keys sharing a kid differ in the algorithms they accept
	byThumbprint map[string]*verifyKey
	all          []*verifyKey // including keys without kid
}

// verifyKey is one usable public key from the JWKS.
type verifyKey struct {
	kid        string
	alg        string // the JWK's "alg"; "" when it names none
	thumbprint string // RFC 7638 SHA-256 thumbprint, base64url: the key's identity
	// key is what go-jose verifies with: *rsa.PublicKey, *fastRSAKey
	// (an RSA key over 2048 bits, see rsaVerificationKey),
	// *ecdsa.PublicKey or ed25519.PublicKey.
	key any
}

// NewKeySet checks cfg and returns a KeySet. It makes no request: call
// Start (or Refresh).
func NewKeySet(cfg KeySetConfig) (*KeySet, error) {
	if cfg.Discovery == nil {
		return nil, errors.New("auth: key set: Discovery is required")
	}
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(HTTPClientConfig{})
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Minute
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	if cfg.MaxRetryInterval <= 0 {
		cfg.MaxRetryInterval = time.Minute
	}
	cfg.MaxRetryInterval = max(cfg.MaxRetryInterval, cfg.RetryInterval)
	if cfg.UnknownKIDCooldown <= 0 {
		cfg.UnknownKIDCooldown = 30 * time.Second
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = defaultMaxDocumentSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &KeySet{
		disc:          cfg.Discovery,
		client:        cfg.Client,
		fetchTimeout:  cfg.FetchTimeout,
		refreshEvery:  cfg.RefreshInterval,
		retryInterval: cfg.RetryInterval,
		maxRetry:      cfg.MaxRetryInterval,
		cooldown:      cfg.UnknownKIDCooldown,
		maxSize:       cfg.MaxResponseSize,
		fastRSA:       !cfg.DisableFastRSA,
		now:           cfg.Now,
		after:         cfg.After,
		rand:          cfg.Rand,
		log:           cfg.Logger,
		ctx:           ctx,
		cancel:        cancel,
		maxAge:        -1,
	}, nil
}

// Start runs the background refresher: a first fetch at once, then one
// every RefreshInterval (or the response's max-age); after failures it
// retries with exponential back-off from RetryInterval to
// MaxRetryInterval. Calling Start again, or after Close, does nothing.
func (k *KeySet) Start() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started || k.closed {
		return
	}
	k.started = true
	k.wg.Add(1)
	go k.loop()
}

// Close stops the refresher and any scheduled refresh, and waits for them
// and for any fetch in flight (at most FetchTimeout, plus discovery). Keys already loaded remain
// usable. Close does not close the Discovery.
func (k *KeySet) Close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
}

// Ready returns nil once keys have been loaded, and otherwise an error
// saying why not, for example
// "auth: keys not loaded yet: discovery: GET …: connection refused".
// After the first success it stays nil: later failures keep the last good
// keys.
//
// Every error matches ErrKeysNotLoaded (errors.Is); one that follows a
// failed fetch (the authorization server unreachable, or its answer
// unusable) matches ErrUnavailable as well and wraps the fetch's error.
func (k *KeySet) Ready() error {
	if k.keys.Load() != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.lastErr != nil:
		return &keysNotLoadedError{err: k.lastErr}
	case k.call != nil:
		return &keysNotLoadedError{detail: "first fetch in progress"}
	default:
		return &keysNotLoadedError{detail: "no fetch attempted"}
	}
}

// keysNotLoadedError is KeySet.Ready's error: the state of the first
// fetch (detail), or the error of the last one (err).
type keysNotLoadedError struct {
	detail string
	err    error
}

func (e *keysNotLoadedError) Error() string {
	if e.err != nil {
		return "auth: keys not loaded yet: " + e.err.Error()
	}
	return "auth: keys not loaded yet: " + e.detail
}

// Unwrap returns the last fetch's error, if any.
func (e *keysNotLoadedError) Unwrap() error { return e.err }

// Is matches ErrKeysNotLoaded, and ErrUnavailable after a failed fetch.
func (e *keysNotLoadedError) Is(target error) bool {
	return target == ErrKeysNotLoaded || (target == ErrUnavailable && e.err != nil)
}

// Refresh fetches the JWKS now, or joins the fetch already in flight, and
// returns its result. It ignores the unknown-kid cooldown. On failure the
// previous keys stay in use.
func (k *KeySet) Refresh(ctx context.Context) error {
	c, err := k.startOrJoin(false)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("auth: refresh keys: %w", c.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: refresh keys: %w", ctx.Err())
	}
}

// KeyIDs returns the ids of the keys currently loaded, sorted; keys
// without an id are left out. It is meant for diagnostics.
func (k *KeySet) KeyIDs() []string {
	s := k.keys.Load()
	if s == nil {
		return nil
	}
	ids := make([]string, 0, len(s.byKID))
	for id := range s.byKID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// KeyGeneration returns a number that changes whenever a refresh drops a
// key the set held; it never changes otherwise. A cache stamps an entry
// with it and, when it has changed, asks HoldsKey whether the key that
// verified the entry's token is still there. It is one atomic load.
func (k *KeySet) KeyGeneration() uint64 { return k.gen.Load() }

// HoldsKey reports whether the set holds the key whose RFC 7638 SHA-256
// thumbprint (base64url, as in Principal.KeyThumbprint) is thumbprint.
func (k *KeySet) HoldsKey(thumbprint string) bool {
	s := k.keys.Load()
	if s == nil {
		return false
	}
	_, ok := s.byThumbprint[thumbprint]
	return ok
}

// Stats returns a snapshot of the key set's counters. It takes no lock.
func (k *KeySet) Stats() KeySetStats {
	s := KeySetStats{
		Fetches:             k.fetches.Load(),
		FetchFailures:       k.fetchFailures.Load(),
		UnknownKIDRefreshes: k.unknownKIDRuns.Load(),
	}
	if snap := k.keys.Load(); snap != nil {
		s.KeysLoaded = len(snap.all)
	}
	if ns := k.lastSuccess.Load(); ns != 0 {
		s.LastSuccess = time.Unix(0, ns)
	}
	return s
}

// loop is the background refresher started by Start.
func (k *KeySet) loop() {
	defer k.wg.Done()
	failures := 0 // in a row
	for {
		err := k.Refresh(k.ctx)
		if k.ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		select {
		case <-k.ctx.Done():
			return
		case <-k.after(k.nextRefresh(failures)):
		}
	}
}

// nextRefresh decides how long the refresher sleeps after a fetch that
// ended failures failed fetches in a row (0: it succeeded).
func (k *KeySet) nextRefresh(failures int) time.Duration {
	if failures > 0 {
		return retryWait(failures, k.retryInterval, k.maxRetry, k.rand())
	}
	k.mu.Lock()
	maxAge := k.maxAge
	k.mu.Unlock()
	return refreshWait(maxAge, k.refreshEvery)
}

// retryWait is the back-off after failures (≥ 1) failed fetches in a row:
// base doubled per further failure and capped at maxWait, less up to half
// of it as jitter, r ∈ [0, 1) choosing how much ("equal jitter": the wait
// stays within [d/2, d) of the un-jittered d).
func retryWait(failures int, base, maxWait time.Duration, r float64) time.Duration {
	d := base
	for i := 1; i < failures && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	r = min(max(r, 0), 1)
	return d - time.Duration(r*float64(d/2))
}

// refreshWait bounds a Cache-Control max-age (negative: none) to
// [min(1m, interval), interval].
func refreshWait(maxAge, interval time.Duration) time.Duration {
	if maxAge < 0 {
		return interval
	}
	lo := min(time.Minute, interval)
	return min(max(maxAge, lo), interval)
}

// errKeySetClosed is startOrJoin's answer after Close.
var errKeySetClosed = errors.New("auth: key set closed")

// startOrJoin returns the fetch in flight, starting one if there is none.
// With unknownKID set it starts one only outside the cooldown; within it,
// it schedules one for the cooldown's end (see scheduleLocked) and returns
// no fetch, with the last fetch's error when that one failed.
func (k *KeySet) startOrJoin(unknownKID bool) (*refreshCall, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.call != nil {
		return k.call, nil
	}
	if k.closed {
		return nil, errKeySetClosed
	}
	if unknownKID {
		now := k.now()
		if !k.lastUnknown.IsZero() && now.Sub(k.lastUnknown) < k.cooldown {
			k.scheduleLocked(now)
			return nil, k.lastErr
		}
		k.lastUnknown = now
		k.unknownKIDRuns.Add(1)
	}
	return k.startLocked(), nil
}

// startLocked starts a fetch. k.mu is held and no fetch is in flight.
func (k *KeySet) startLocked() *refreshCall {
	c := &refreshCall{done: make(chan struct{})}
	k.call = c
	k.wg.Add(1)
	go k.run(c)
	return c
}

// scheduleLocked arranges one unknown-kid refresh at the end of the
// current cooldown, unless one is already arranged: however many unknown
// kids arrive within a cooldown, one fetch follows it. k.mu is held.
func (k *KeySet) scheduleLocked(now time.Time) {
	if k.scheduled || k.closed {
		return
	}
	k.scheduled = true
	// Armed here, not on the goroutine, so that the wait counts from now.
	due := k.after(k.lastUnknown.Add(k.cooldown).Sub(now))
	k.wg.Add(1)
	go k.runScheduled(due)
}

// runScheduled waits for the cooldown's end, then refreshes as for an
// unknown kid, unless Close came first, a fetch is already in flight (it
// began after the kid was seen, so it will do), or another unknown kid
// has meanwhile caused one.
func (k *KeySet) runScheduled(due <-chan time.Time) {
	defer k.wg.Done()
	select {
	case <-k.ctx.Done():
		return
	case <-due:
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.scheduled = false
	now := k.now()
	if k.closed || k.call != nil || now.Sub(k.lastUnknown) < k.cooldown {
		return
	}
	k.lastUnknown = now
	k.unknownKIDRuns.Add(1)
	k.startLocked()
}

// run performs one fetch for c and publishes the result.
func (k *KeySet) run(c *refreshCall) {
	defer k.wg.Done()
	k.fetches.Add(1)
	snap, maxAge, err := k.fetch()
	if err != nil {
		k.fetchFailures.Add(1)
	}

	k.mu.Lock()
	now := k.now()
	var (
		level            zapcore.Level
		failures         int
		failingSince     time.Time
		previouslyLoaded bool
	)
	if err == nil {
		old := k.keys.Swap(snap)
		if old != nil && old.dropsFrom(snap) {
			// After the store: a cache that sees the new generation must
			// find the new keys.
			k.gen.Add(1)
		}
		k.lastSuccess.Store(now.UnixNano())
		k.lastErr = nil
		k.maxAge = maxAge
		failures, failingSince = k.streak.succeed()
	} else {
		k.lastErr = err
		level = k.streak.fail(now, k.maxRetry)
		failures, failingSince = k.streak.count, k.streak.since
		previouslyLoaded = k.keys.Load() != nil
	}
	k.call = nil
	c.err = err
	k.mu.Unlock()
	// Logged before the waiters are released, so that whoever waited for
	// this fetch finds its line in the log.
	k.logFetch(snap, err, level, failures, now.Sub(failingSince), previouslyLoaded)
	close(c.done)
}

// logFetch reports one fetch's result: the failures of a run as state
// changes (see failureStreak), at the level it chose, or the recovery.
func (k *KeySet) logFetch(snap *keySnapshot, err error, level zapcore.Level, failures int, failingFor time.Duration, previouslyLoaded bool) {
	if err != nil {
		var de *discoveryError
		if errors.As(err, &de) {
			level = zap.DebugLevel // Discovery logs its own failures
		}
		msg := "auth: JWKS not loaded yet; not ready"
		if previouslyLoaded {
			msg = "auth: JWKS refresh failed; keeping the previous keys"
		}
		if ce := k.log.Check(level, msg); ce != nil {
			ce.Write(zap.Error(err), zap.Int("failures_in_a_row", failures), zap.Duration("failing_for", failingFor))
		}
		return
	}
	if failures > 0 {
		k.log.Info("auth: JWKS refresh recovered",
			zap.Int("keys", len(snap.all)), zap.Int("failures_before", failures), zap.Duration("failed_for", failingFor))
		return
	}
	if ce := k.log.Check(zap.DebugLevel, "auth: JWKS refreshed"); ce != nil {
		ce.Write(zap.Int("keys", len(snap.all)))
	}
}

// discoveryError marks a fetch that failed because the jwks_uri could not
// be discovered.
type discoveryError struct{ err error }

func (e *discoveryError) Error() string { return "discovery: " + e.err.Error() }
func (e *discoveryError) Unwrap() error { return e.err }

// dropsFrom reports whether next lacks a key that s holds.
func (s *keySnapshot) dropsFrom(next *keySnapshot) bool {
	for tp := range s.byThumbprint {
		if _, ok := next.byThumbprint[tp]; !ok {
			return true
		}
	}
	return false
}

// fetch discovers the jwks_uri if need be, then GETs and parses the JWKS.
func (k *KeySet) fetch() (*keySnapshot, time.Duration, error) {
	uri, err := k.disc.endpoint(k.ctx, func(m Metadata) string { return m.JWKSURI })
	if err != nil {
		return nil, 0, &discoveryError{err}
	}
	doc, err := fetchDocument(k.client, uri, k.fetchTimeout, k.maxSize)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	snap, err := parseJWKS(doc.body, k.fastRSA, k.log)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: GET %s: %w", RedactURL(uri), err)
	}
	return snap, doc.maxAge, nil
}

// parseJWKS turns a JWKS document into a snapshot. Keys it cannot use
// (encryption keys, symmetric keys, keys published with their private
// half, short RSA keys, unknown types) are skipped and logged, and so is a
// key whose kid an earlier key already has if the two accept a common
// algorithm (there would be no telling which one a token means); keys of
// different types may share a kid. A document with no usable key is an
// error. With fastRSA, RSA keys over 2048 bits are prepared for fast
// verification (rsaVerificationKey).
func parseJWKS(body []byte, fastRSA bool, log *zap.Logger) (*keySnapshot, error) {
	var set struct {
		Keys []josejson.RawMessage `json:"keys"`
	}
	if err := josejson.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("invalid JWKS JSON: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS has no keys")
	}
	snap := &keySnapshot{
		byKID:        make(map[string][]*verifyKey, len(set.Keys)),
		byThumbprint: make(map[string]*verifyKey, len(set.Keys)),
	}
	for i, raw := range set.Keys {
		vk, err := parseJWK(raw, fastRSA)
		if err != nil {
			log.Warn("auth: skipping JWKS key", zap.Int("index", i), zap.Error(err))
			continue
		}
		if vk.kid != "" {
			if slices.ContainsFunc(snap.byKID[vk.kid], vk.overlaps) {
				log.Warn("auth: skipping JWKS key with duplicate kid", zap.String("kid", vk.kid))
				continue
			}
			snap.byKID[vk.kid] = append(snap.byKID[vk.kid], vk)
		}
		snap.byThumbprint[vk.thumbprint] = vk
		snap.all = append(snap.all, vk)
	}
	if len(snap.all) == 0 {
		return nil, errors.New("JWKS has no usable signing key")
	}
	return snap, nil
}

// parseJWK checks that one JWK is a public signature key we can use, and
// prepares it for verification.
func parseJWK(raw []byte, fastRSA bool) (*verifyKey, error) {
	var meta struct {
		Use    string   `json:"use"`
		KeyOps []string `json:"key_ops"`
	}
	if err := josejson.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("invalid key: %w", err)
	}
	if meta.Use != "" && meta.Use != "sig" {
		return nil, fmt.Errorf("key use %q is not sig", meta.Use)
	}
	if meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify") {
		return nil, errors.New("key_ops lacks verify")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("invalid key: %w", err)
	}
	if !jwk.IsPublic() {
		// A published private (or symmetric) key is known to everyone:
		// a signature it verifies proves nothing.
		return nil, errors.New("key carries private or symmetric key material: not trusted")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	vk := &verifyKey{kid: jwk.KeyID, alg: jwk.Algorithm, thumbprint: base64.RawURLEncoding.EncodeToString(tp)}
	switch key := jwk.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSAKeyBits {
			return nil, fmt.Errorf("RSA key of %d bits is shorter than %d", key.N.BitLen(), minRSAKeyBits)
		}
		vk.key = rsaVerificationKey(key, fastRSA)
	case *ecdsa.PublicKey:
		vk.key = key
	case ed25519.PublicKey:
		vk.key = key
	default:
		return nil, fmt.Errorf("unusable key type %T", jwk.Key)
	}
	if vk.alg != "" && !vk.accepts(vk.alg) {
		return nil, fmt.Errorf("key does not fit its own alg %q", vk.alg)
	}
	return vk, nil
}

// accepts reports whether the key can verify a signature made with alg,
// and the JWK's own "alg", if any, is alg.
func (v *verifyKey) accepts(alg string) bool {
	if v.alg != "" && v.alg != alg {
		return false
	}
	switch key := v.key.(type) {
	case *rsa.PublicKey, *fastRSAKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.ES256:
			return key.Curve == elliptic.P256()
		case jose.ES384:
			return key.Curve == elliptic.P384()
		case jose.ES512:
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return jose.SignatureAlgorithm(alg) == jose.EdDSA
	}
	return false
}

// overlaps reports whether v and w accept a common algorithm.
func (v *verifyKey) overlaps(w *verifyKey) bool {
	for _, alg := range DefaultAlgorithms() {
		if v.accepts(alg) && w.accepts(alg) {
			return true
		}
	}
	return false
}

// Errors of a key lookup.
var (
	errUnknownKey     = &TokenError{Reason: ReasonUnknownKey}
	errKeyAlgMismatch = &TokenError{Reason: ReasonKeyAlgorithm}
	errAmbiguousKey   = &TokenError{Reason: ReasonNoKeyID}
)

// find picks the key for a token's kid and alg. It returns (nil, nil) when
// the set has no such key, so that the caller may refresh.
func (s *keySnapshot) find(kid, alg string) (*verifyKey, error) {
	if kid != "" {
		keys, ok := s.byKID[kid]
		if !ok {
			return nil, nil
		}
		for _, v := range keys {
			if v.accepts(alg) {
				return v, nil
			}
		}
		return nil, errKeyAlgMismatch
	}
	// No kid: only a single-key set will do (DESIGN.md); with several keys
	// there is no telling which one the issuer meant.
	if len(s.all) != 1 {
		return nil, errAmbiguousKey
	}
	if v := s.all[0]; v.accepts(alg) {
		return v, nil
	}
	return nil, errKeyAlgMismatch
}

// verificationKey returns the key for a token's kid and alg. Its error is
// a *TokenError when the token names a key the issuer does not publish,
// and an *UnavailableError when the keys could not be had: none loaded
// yet, the refresh this lookup needed failed, or ctx ended while waiting.
func (k *KeySet) verificationKey(ctx context.Context, kid, alg string) (*verifyKey, error) {
	return k.verificationKeyFrom(ctx, k.keys.Load(), kid, alg)
}

// verificationKeyFrom is verificationKey starting from snap, the keys the
// caller saw first (a test hands it a stale one).
func (k *KeySet) verificationKeyFrom(ctx context.Context, snap *keySnapshot, kid, alg string) (*verifyKey, error) {
	if snap == nil {
		return nil, &UnavailableError{
			Reason:     "signing keys not loaded",
			RetryAfter: k.retryInterval,
			Err:        k.Ready(),
		}
	}
	if v, err := snap.find(kid, alg); v != nil || err != nil {
		return v, err
	}

	// Unknown key: the issuer may have rotated. Join the fetch in flight
	// or, outside the cooldown, start one; otherwise answer at once.
	c, err := k.startOrJoin(true)
	if c == nil {
		// No fetch to join and none allowed now. One may have finished
		// since snap was loaded (a rotation racing this request): run
		// publishes keys before it clears k.call, so look once more.
		if v, err := k.keys.Load().find(kid, alg); v != nil || err != nil {
			return v, err
		}
		if err != nil && err != errKeySetClosed {
			// The last fetch failed: the issuer may have published this
			// key since, so the token could not be checked (503, never
			// 401, which a client takes as "drop this token").
			return nil, &UnavailableError{
				Reason:     "signing keys could not be refreshed",
				RetryAfter: k.retryInterval,
				Err:        err,
			}
		}
		return nil, errUnknownKey
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, &UnavailableError{Reason: "gave up waiting for signing keys", Err: ctx.Err()}
	}
	if v, err := k.keys.Load().find(kid, alg); v != nil || err != nil {
		return v, err
	}
	if c.err != nil {
		return nil, &UnavailableError{
			Reason:     "signing keys could not be refreshed",
			RetryAfter: k.retryInterval,
			Err:        c.err,
		}
	}
	return nil, errUnknownKey
}
