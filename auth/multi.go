package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tokengate/tokengate/internal/promtext"
)

// DefaultMaxOpaqueTries is how many issuers Multi asks about an opaque
// token when MultiConfig.MaxOpaqueTries is zero.
const DefaultMaxOpaqueTries = 2

// MultiIssuer is one trusted issuer of a Multi.
type MultiIssuer struct {
	// Name names the issuer in metrics and readiness ("okta"). Required,
	// unique.
	Name string
	// Issuer is its iss, exactly as its tokens carry it. Required, unique.
	Issuer string
	// Validator is the issuer's own validator (Local, Remote or Hybrid over
	// its own key set, introspection client and concurrency bound); it
	// still checks iss itself. Required.
	Validator Validator
	// Opaque says that Validator can check tokens that are not JWTs
	// (introspection: remote mode), so that Multi may ask it about a token
	// that names no issuer.
	Opaque bool
	// Ready reports the issuer's readiness (keys loaded, introspection
	// endpoint known); nil means always ready.
	Ready func() error
	// Keys is the issuer's key set, for SigningKeys and metrics; nil in
	// remote mode.
	Keys *KeySet
	// Remote is the issuer's introspection client, for metrics; nil in
	// local mode. Validator still does all the checking (in hybrid mode
	// it wraps Remote).
	Remote *Remote
}

// MultiConfig configures a Multi.
type MultiConfig struct {
	// Issuers are the trusted issuers, in the order opaque tokens are
	// tried. At least one.
	Issuers []MultiIssuer
	// MaxOpaqueTries bounds how many Opaque issuers an opaque token is
	// offered to, in Issuers order (DefaultMaxOpaqueTries); the first that
	// finds it active wins.
	MaxOpaqueTries int
	// MaxTokenSize is the longest token Multi reads the iss of, in bytes
	// (8192); a longer one is refused before any decoding.
	MaxTokenSize int
}

// Multi is the Validator of several trusted issuers: it reads the not yet
// verified iss of a JWT only to choose the issuer whose own validator then
// checks the token completely (iss included); nothing else is taken from
// the unverified payload. A JWT whose iss is not configured is refused
// (ReasonIssuer) without any network call. An opaque token names no
// issuer: it is offered to the Opaque issuers in configuration order, at
// most MaxOpaqueTries of them, and the first to find it active wins; when
// none does and one could not be asked, the answer is that one's
// ErrUnavailable, never a 401.
//
// Nothing above auth knows how many issuers there are: authcache wraps a
// Multi like any Validator (the cache key stays the token's SHA-256, the
// entry's Principal.Issuer records which issuer validated it). Multi is
// safe for concurrent use.
type Multi struct {
	issuers   []multiIssuer
	byIss     map[string]int
	opaque    []int // indexes of Opaque issuers, at most MaxOpaqueTries
	maxSize   int
	unknownIs atomic.Uint64 // tokens refused for an unknown iss
}

type multiIssuer struct {
	MultiIssuer
	valid, invalid, unavailable atomic.Uint64
}

var _ Validator = (*Multi)(nil)

// NewMulti validates cfg and builds the Multi.
func NewMulti(cfg MultiConfig) (*Multi, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("auth: NewMulti: no issuer")
	}
	if cfg.MaxOpaqueTries <= 0 {
		cfg.MaxOpaqueTries = DefaultMaxOpaqueTries
	}
	if cfg.MaxTokenSize <= 0 {
		cfg.MaxTokenSize = 8192
	}
	m := &Multi{
		issuers: make([]multiIssuer, len(cfg.Issuers)),
		byIss:   make(map[string]int, len(cfg.Issuers)),
		maxSize: cfg.MaxTokenSize,
	}
	names := make(map[string]bool, len(cfg.Issuers))
	for i, iss := range cfg.Issuers {
		switch {
		case iss.Name == "" || iss.Issuer == "" || iss.Validator == nil:
			return nil, fmt.Errorf("auth: NewMulti: issuer %d needs Name, Issuer and Validator", i)
		case names[iss.Name]:
			return nil, fmt.Errorf("auth: NewMulti: issuer name %q twice", iss.Name)
		}
		if _, dup := m.byIss[iss.Issuer]; dup {
			return nil, fmt.Errorf("auth: NewMulti: issuer %q twice", iss.Issuer)
		}
		names[iss.Name] = true
		m.byIss[iss.Issuer] = i
		m.issuers[i].MultiIssuer = iss
		if iss.Opaque && len(m.opaque) < cfg.MaxOpaqueTries {
			m.opaque = append(m.opaque, i)
		}
	}
	return m, nil
}

// Validate picks the token's issuer and returns that issuer's verdict.
func (m *Multi) Validate(ctx context.Context, token []byte) (*Principal, error) {
	if len(token) > m.maxSize {
		return nil, Invalid(ReasonTooLarge)
	}
	iss, jwt, err := unverifiedIssuer(token)
	if err != nil {
		return nil, err
	}
	if !jwt {
		return m.validateOpaque(ctx, token)
	}
	i, ok := m.byIss[iss]
	if !ok {
		m.unknownIs.Add(1)
		return nil, Invalid(ReasonIssuer)
	}
	return m.issuers[i].validate(ctx, token)
}

func (mi *multiIssuer) validate(ctx context.Context, token []byte) (*Principal, error) {
	p, err := mi.Validator.Validate(ctx, token)
	switch {
	case err == nil && p != nil && p.Issuer != mi.Issuer:
		// A validator must set Principal.Issuer to its own issuer; the
		// route's issuers: rule depends on it.
		mi.invalid.Add(1)
		return nil, &TokenError{Reason: ReasonIssuer, Err: errors.New("auth: validator returned another issuer")}
	case err == nil:
		mi.valid.Add(1)
	case errors.Is(err, ErrInvalidToken):
		mi.invalid.Add(1)
	default:
		mi.unavailable.Add(1)
	}
	return p, err
}

// validateOpaque offers an opaque token to the Opaque issuers in order.
func (m *Multi) validateOpaque(ctx context.Context, token []byte) (*Principal, error) {
	if len(m.opaque) == 0 {
		return nil, Invalid(ReasonMalformed)
	}
	var unavailable, invalid error
	for _, i := range m.opaque {
		p, err := m.issuers[i].validate(ctx, token)
		switch {
		case err == nil:
			return p, nil
		case errors.Is(err, ErrInvalidToken):
			if invalid == nil {
				invalid = err
			}
		default:
			if unavailable == nil {
				unavailable = err
			}
		}
	}
	if unavailable != nil {
		return nil, unavailable
	}
	return nil, invalid
}

// unverifiedIssuer reads the iss claim of a JWS compact token without
// verifying anything. jwt is false for a token that is not three
// dot-separated segments (an opaque token); a three-segment token whose
// payload is not a JSON object with a string iss is refused.
func unverifiedIssuer(token []byte) (iss string, jwt bool, err error) {
	first := bytes.IndexByte(token, '.')
	if first < 0 {
		return "", false, nil
	}
	rest := token[first+1:]
	second := bytes.IndexByte(rest, '.')
	if second < 0 || bytes.IndexByte(rest[second+1:], '.') >= 0 {
		return "", false, nil
	}
	if !jsonObjectSegment(token[:first]) {
		// Three segments, but no JWS header: another format with two
		// dots (PASETO's "v4.local.…"), for the opaque issuers.
		return "", false, nil
	}
	payload := rest[:second]
	buf := make([]byte, base64.RawURLEncoding.DecodedLen(len(payload)))
	n, derr := base64.RawURLEncoding.Decode(buf, payload)
	if derr != nil {
		return "", true, &TokenError{Reason: ReasonMalformed, Err: derr}
	}
	iss, err = issuerOf(buf[:n])
	return iss, true, err
}

// jsonObjectSegment reports whether seg, a JWS header segment, is
// base64url text whose first byte other than JSON white space is '{', as
// every JOSE header's is. It decodes at most the first 64 characters.
func jsonObjectSegment(seg []byte) bool {
	var buf [48]byte
	seg = seg[:min(len(seg), 64)]
	n, err := base64.RawURLEncoding.Decode(buf[:], seg[:len(seg)/4*4])
	if err != nil {
		return false
	}
	for _, c := range buf[:n] {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// issuerOf returns the string iss of a JSON claim set. The common shape
// takes Local's one-pass claims reader; anything it leaves (see
// decodeClaims) goes through encoding/json, whose answer on the shapes
// the reader takes is the same (FuzzIssuerOf).
func issuerOf(payload []byte) (string, error) {
	var c claimSet
	if fastDecodeClaims(payload, &c) {
		if c.issuer == "" {
			return "", Invalid(ReasonIssuer)
		}
		return c.issuer, nil
	}
	return issuerByJSON(payload)
}

// issuerByJSON is issuerOf through encoding/json.
func issuerByJSON(payload []byte) (iss string, err error) {
	// Exactly the key "iss" (encoding/json matches struct fields without
	// regard to case; a map does not).
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", &TokenError{Reason: ReasonMalformed, Err: err}
	}
	if err := json.Unmarshal(claims["iss"], &iss); err != nil || iss == "" {
		return "", Invalid(ReasonIssuer)
	}
	return iss, nil
}

// Ready is nil when at least one issuer is ready: one issuer down leaves
// the others serving. Otherwise it names every issuer and why.
func (m *Multi) Ready() error {
	var errs []error
	for i := range m.issuers {
		mi := &m.issuers[i]
		if mi.Ready == nil {
			return nil
		}
		err := mi.Ready()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("issuer %s: %w", mi.Name, err))
	}
	return errors.Join(errs...)
}

// KeyGeneration changes whenever any issuer's key set drops a key
// (authcache.SigningKeys). It does not allocate.
func (m *Multi) KeyGeneration() uint64 {
	var g uint64
	for i := range m.issuers {
		if k := m.issuers[i].Keys; k != nil {
			g += k.KeyGeneration()
		}
	}
	return g
}

// HoldsKey reports whether any issuer's key set holds the key
// (authcache.SigningKeys). A remote-mode issuer's principals carry no
// thumbprint, so they never reach here.
func (m *Multi) HoldsKey(thumbprint string) bool {
	for i := range m.issuers {
		if k := m.issuers[i].Keys; k != nil && k.HoldsKey(thumbprint) {
			return true
		}
	}
	return false
}

// AppendMetrics appends, in the Prometheus text format,
// tokengate_issuer_ready{issuer} and
// tokengate_issuer_validations_total{issuer,result} (valid, invalid,
// unavailable; the unverified-iss choice, before the cache),
// tokengate_issuer_unknown_total, then the key-set families of
// KeySetStats.AppendMetrics for the issuers with Keys and the
// introspection families of RemoteStats.AppendMetrics for those with
// Remote, their samples labelled issuer="<Name>" (the issuer label
// first); a family no issuer has is left out.
func (m *Multi) AppendMetrics(dst []byte) []byte {
	const ready = "tokengate_issuer_ready"
	dst = promtext.AppendHeader(dst, ready, promtext.Gauge, "1 when the issuer's tokens can be validated (keys loaded, or introspection endpoint known), else 0.")
	for i := range m.issuers {
		mi := &m.issuers[i]
		var v int64 = 1
		if mi.Ready != nil && mi.Ready() != nil {
			v = 0
		}
		dst = promtext.AppendIntSample(dst, ready, v, "issuer", mi.Name)
	}
	const vals = "tokengate_issuer_validations_total"
	dst = promtext.AppendHeader(dst, vals, promtext.Counter, "Validations (cache misses) by the issuer the token named and their result.")
	for i := range m.issuers {
		mi := &m.issuers[i]
		dst = promtext.AppendUintSample(dst, vals, mi.valid.Load(), "issuer", mi.Name, "result", "valid")
		dst = promtext.AppendUintSample(dst, vals, mi.invalid.Load(), "issuer", mi.Name, "result", "invalid")
		dst = promtext.AppendUintSample(dst, vals, mi.unavailable.Load(), "issuer", mi.Name, "result", "unavailable")
	}
	dst = promtext.AppendCounter(dst, "tokengate_issuer_unknown_total",
		"JWTs refused because their iss names no configured issuer (no network call).", m.unknownIs.Load())

	var keys []issuerStats[KeySetStats]
	var remotes []issuerStats[RemoteStats]
	for i := range m.issuers {
		mi := &m.issuers[i]
		if mi.Keys != nil {
			keys = append(keys, issuerStats[KeySetStats]{mi.Name, mi.Keys.Stats()})
		}
		if mi.Remote != nil {
			remotes = append(remotes, issuerStats[RemoteStats]{mi.Name, mi.Remote.Stats()})
		}
	}
	if len(keys) > 0 {
		dst = appendKeySetMetrics(dst, keys)
	}
	if len(remotes) > 0 {
		dst = appendRemoteMetrics(dst, remotes)
	}
	return dst
}
