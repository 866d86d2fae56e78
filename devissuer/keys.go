package devissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// KeyAlgorithms lists the values Config.Algorithm and AddKey accept. The
// slice is the caller's to keep. It is auth.DefaultAlgorithms, which
// devissuer may not import, in the same order: a test mints and verifies a
// token for each of auth's algorithms and fails if the lists differ.
func KeyAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// signingKey is one key pair. It is immutable once made.
type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
	pub  crypto.PublicKey
}

// keyStore holds every key the issuer ever made. Removed keys are kept
// (unpublished) so that Mint can still sign with them.
type keyStore struct {
	mu        sync.RWMutex // guards all fields below
	all       map[string]*signingKey
	published []*signingKey // publication order, oldest first
	current   *signingKey   // signs /v1/token and default Mint tokens
	jwks      []byte        // pre-encoded JWKS of published
}

// generateKey makes a fresh key pair for a JWS algorithm.
func generateKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case "ES256", "ES384", "ES512":
		return ecdsa.GenerateKey(esCurve(alg), rand.Reader)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("devissuer: algorithm %q: want one of %v", alg, KeyAlgorithms())
}

// esAlgorithms are the ECDSA JWS algorithms (RFC 7518 3.4).
var esAlgorithms = [...]string{"ES256", "ES384", "ES512"}

// esCurve returns the curve of an ECDSA JWS algorithm (P-256 for ES256,
// P-384 for ES384, P-521 for ES512), or nil for any other algorithm.
func esCurve(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return nil
}

// thumbprintKID is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url without padding: stable for a key and unique across keys.
func thumbprintKID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("devissuer: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// AddKey generates a key for alg (one of KeyAlgorithms), publishes it in
// the JWKS next to the existing keys and makes it the signing key. It
// returns the new key's kid, its RFC 7638 thumbprint.
func (i *Issuer) AddKey(alg string) (kid string, err error) {
	priv, err := generateKey(alg, i.cfg.RSABits)
	if err != nil {
		return "", fmt.Errorf("devissuer: generate %s key: %w", alg, err)
	}
	kid, err = thumbprintKID(priv.Public())
	if err != nil {
		return "", err
	}
	k := &signingKey{kid: kid, alg: alg, priv: priv, pub: priv.Public()}
	s := &i.keys
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = make(map[string]*signingKey)
	}
	s.all[kid] = k
	s.published = append(s.published, k)
	s.current = k
	if err := s.encodeLocked(); err != nil {
		return "", err
	}
	i.log.Info("new signing key", zap.String("kid", kid), zap.String("alg", alg))
	return kid, nil
}

// RotateKey adds a new signing key of Config.Algorithm (see AddKey): new
// tokens carry the new kid while tokens signed with older keys still
// verify, because their keys stay published until RemoveKey.
func (i *Issuer) RotateKey() (kid string, err error) {
	return i.AddKey(i.cfg.Algorithm)
}

// RemoveKey unpublishes the key kid: it leaves the JWKS, and introspection
// answers inactive for tokens it signed. If it was the signing key, the
// most recently published remaining key signs from now on; if none
// remains, tokens are still signed with the removed key (and verify
// nowhere) until AddKey. Mint can still sign with a removed key by naming
// its kid. RemoveKey reports whether kid was published.
func (i *Issuer) RemoveKey(kid string) bool {
	s := &i.keys
	s.mu.Lock()
	n := slices.IndexFunc(s.published, func(k *signingKey) bool { return k.kid == kid })
	if n < 0 {
		s.mu.Unlock()
		return false
	}
	s.published = slices.Delete(s.published, n, n+1)
	if s.current.kid == kid && len(s.published) > 0 {
		s.current = s.published[len(s.published)-1]
	}
	err := s.encodeLocked()
	s.mu.Unlock()
	if err != nil {
		// Encoding keys that encoded before cannot fail.
		i.log.Error("encode JWKS", zap.Error(err))
	}
	i.verified.clear()
	i.log.Info("key removed", zap.String("kid", kid))
	return true
}

// SigningKID returns the kid of the key that signs new tokens.
func (i *Issuer) SigningKID() string {
	i.keys.mu.RLock()
	defer i.keys.mu.RUnlock()
	return i.keys.current.kid
}

// PublishedKIDs returns the kids in the JWKS, oldest first.
func (i *Issuer) PublishedKIDs() []string {
	i.keys.mu.RLock()
	defer i.keys.mu.RUnlock()
	out := make([]string, len(i.keys.published))
	for n, k := range i.keys.published {
		out[n] = k.kid
	}
	return out
}

// PublicKey returns the public key of kid (published or removed): for
// tests that need the key's bytes, such as an HS256 token whose secret is
// the public key.
func (i *Issuer) PublicKey(kid string) (crypto.PublicKey, bool) {
	k := i.keys.get(kid)
	if k == nil {
		return nil, false
	}
	return k.pub, true
}

// get returns any key the issuer made, or nil.
func (s *keyStore) get(kid string) *signingKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.all[kid]
}

// signer returns the key Mint should use: kid's, or the current one.
func (s *keyStore) signer(kid string) (*signingKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if kid == "" {
		return s.current, nil
	}
	k := s.all[kid]
	if k == nil {
		return nil, fmt.Errorf("devissuer: no key with kid %q", kid)
	}
	return k, nil
}

// publishedKey returns the published key for a token header's kid. A
// token without kid is matched only when exactly one key is published.
func (s *keyStore) publishedKey(kid string) *signingKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if kid == "" {
		if len(s.published) == 1 {
			return s.published[0]
		}
		return nil
	}
	for _, k := range s.published {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// jwksBody returns the pre-encoded JWKS; the caller must not modify it.
func (s *keyStore) jwksBody() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.jwks
}

// encodeLocked re-encodes the JWKS. s.mu is held for writing.
func (s *keyStore) encodeLocked() error {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.published))}
	for _, k := range s.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("devissuer: encode JWKS: %w", err)
	}
	s.jwks = b
	return nil
}
