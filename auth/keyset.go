package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"go.uber.org/zap"
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

	// RetryInterval is the wait after a failed background refresh (5s).
	RetryInterval time.Duration

	// UnknownKIDCooldown is the minimum time between two refreshes caused
	// by tokens naming a key the set does not hold (30s). Within it such
	// tokens are rejected at once, so made-up key ids cannot make the
	// KeySet hammer the authorization server, and no request waits on a
	// rate limiter.
	UnknownKIDCooldown time.Duration

	// MaxResponseSize is the largest JWKS body accepted (1 MiB). The
	// client's own limit (HTTPClientConfig.MaxResponseBodySize) is what
	// stops the read; this check catches clients built without one.
	MaxResponseSize int

	// Now is the clock for the unknown-kid cooldown (time.Now). Network
	// deadlines and the background timer always use the wall clock.
	Now func() time.Time

	// Logger receives refresh results and keys that are skipped
	// (zap.NewNop()).
	Logger *zap.Logger
}

// KeySet holds an authorization server's public signing keys (its JWKS),
// indexed by key id.
//
// Reads are lock-free: the keys are an immutable map behind an atomic
// pointer, replaced whole by each successful refresh, so a key removed
// from the JWKS stops validating after the next refresh. A failed refresh
// keeps the last good keys. Start runs a background refresher; a token
// naming an unknown key id triggers an immediate refresh, deduplicated
// (one fetch in flight, shared by every caller, each of which leaves when
// its own context ends) and rate-limited (UnknownKIDCooldown). Stats counts
// the fetches. A KeySet is safe for concurrent use; Close stops it.
type KeySet struct {
	disc          *Discovery
	client        HTTPClient
	fetchTimeout  time.Duration
	refreshEvery  time.Duration
	retryInterval time.Duration
	cooldown      time.Duration
	maxSize       int
	now           func() time.Time
	log           *zap.Logger

	keys atomic.Pointer[keySnapshot] // nil until the first successful refresh

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
	byKID map[string]*verifyKey
	all   []*verifyKey // including keys without kid
}

// verifyKey is one usable public key from the JWKS.
type verifyKey struct {
	kid string
	alg string // the JWK's "alg"; "" when it names none
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
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
	if cfg.UnknownKIDCooldown <= 0 {
		cfg.UnknownKIDCooldown = 30 * time.Second
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = defaultMaxDocumentSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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
		cooldown:      cfg.UnknownKIDCooldown,
		maxSize:       cfg.MaxResponseSize,
		now:           cfg.Now,
		log:           cfg.Logger,
		ctx:           ctx,
		cancel:        cancel,
		maxAge:        -1,
	}, nil
}

// Start runs the background refresher: a first fetch at once, then one
// every RefreshInterval (or the response's max-age), and RetryInterval
// after a failure. Calling Start again, or after Close, does nothing.
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

// Close stops the refresher and waits for it and for any fetch in flight
// (at most FetchTimeout, plus discovery). Keys already loaded remain
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
func (k *KeySet) Ready() error {
	if k.keys.Load() != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.lastErr != nil:
		return fmt.Errorf("auth: keys not loaded yet: %w", k.lastErr)
	case k.call != nil:
		return errors.New("auth: keys not loaded yet: first fetch in progress")
	default:
		return errors.New("auth: keys not loaded yet: no fetch attempted")
	}
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
	for {
		err := k.Refresh(k.ctx)
		if k.ctx.Err() != nil {
			return
		}
		wait := k.nextRefresh(err)
		t := time.NewTimer(wait)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// nextRefresh decides how long the refresher sleeps after a fetch.
func (k *KeySet) nextRefresh(err error) time.Duration {
	if err != nil {
		return k.retryInterval
	}
	k.mu.Lock()
	maxAge := k.maxAge
	k.mu.Unlock()
	return refreshWait(maxAge, k.refreshEvery)
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

// startOrJoin returns the fetch in flight, starting one if there is none.
// With unknownKID set it starts one only outside the cooldown and returns
// (nil, nil) when it may not.
func (k *KeySet) startOrJoin(unknownKID bool) (*refreshCall, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.call != nil {
		return k.call, nil
	}
	if k.closed {
		return nil, errors.New("auth: key set closed")
	}
	if unknownKID {
		now := k.now()
		if !k.lastUnknown.IsZero() && now.Sub(k.lastUnknown) < k.cooldown {
			return nil, nil
		}
		k.lastUnknown = now
		k.unknownKIDRuns.Add(1)
	}
	c := &refreshCall{done: make(chan struct{})}
	k.call = c
	k.wg.Add(1)
	go k.run(c)
	return c, nil
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
	if err == nil {
		k.keys.Store(snap)
		k.lastSuccess.Store(k.now().UnixNano())
		k.lastErr = nil
		k.maxAge = maxAge
	} else {
		k.lastErr = err
	}
	k.call = nil
	c.err = err
	k.mu.Unlock()
	close(c.done)

	if err != nil {
		k.log.Warn("auth: JWKS refresh failed; keeping the previous keys", zap.Error(err))
		return
	}
	if ce := k.log.Check(zap.DebugLevel, "auth: JWKS refreshed"); ce != nil {
		ce.Write(zap.Int("keys", len(snap.all)))
	}
}

// fetch discovers the jwks_uri if need be, then GETs and parses the JWKS.
func (k *KeySet) fetch() (*keySnapshot, time.Duration, error) {
	uri, err := k.disc.endpoint(k.ctx, func(m Metadata) string { return m.JWKSURI })
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: %w", err)
	}
	doc, err := fetchDocument(k.client, uri, k.fetchTimeout, k.maxSize)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	snap, err := parseJWKS(doc.body, k.log)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: GET %s: %w", redactURL(uri), err)
	}
	return snap, doc.maxAge, nil
}

// parseJWKS turns a JWKS document into a snapshot. Keys it cannot use
// (encryption keys, symmetric keys, keys published with their private
// half, short RSA keys, unknown types) are skipped and logged; a document
// with no usable key is an error.
func parseJWKS(body []byte, log *zap.Logger) (*keySnapshot, error) {
	var set struct {
		Keys []josejson.RawMessage `json:"keys"`
	}
	if err := josejson.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("invalid JWKS JSON: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS has no keys")
	}
	snap := &keySnapshot{byKID: make(map[string]*verifyKey, len(set.Keys))}
	for i, raw := range set.Keys {
		vk, err := parseJWK(raw)
		if err != nil {
			log.Warn("auth: skipping JWKS key", zap.Int("index", i), zap.Error(err))
			continue
		}
		if vk.kid != "" {
			if _, dup := snap.byKID[vk.kid]; dup {
				log.Warn("auth: skipping JWKS key with duplicate kid", zap.String("kid", vk.kid))
				continue
			}
			snap.byKID[vk.kid] = vk
		}
		snap.all = append(snap.all, vk)
	}
	if len(snap.all) == 0 {
		return nil, errors.New("JWKS has no usable signing key")
	}
	return snap, nil
}

// parseJWK checks that one JWK is a public signature key we can use.
func parseJWK(raw []byte) (*verifyKey, error) {
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
	vk := &verifyKey{kid: jwk.KeyID, alg: jwk.Algorithm}
	switch key := jwk.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSAKeyBits {
			return nil, fmt.Errorf("RSA key of %d bits is shorter than %d", key.N.BitLen(), minRSAKeyBits)
		}
		vk.key = key
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
	case *rsa.PublicKey:
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
		v, ok := s.byKID[kid]
		if !ok {
			return nil, nil
		}
		if !v.accepts(alg) {
			return nil, errKeyAlgMismatch
		}
		return v, nil
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
	if err != nil || c == nil {
		// No fetch to join and none allowed now. One may have finished
		// since snap was loaded (a rotation racing this request): run
		// publishes keys before it clears k.call, so look once more.
		if v, err := k.keys.Load().find(kid, alg); v != nil || err != nil {
			return v, err
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
