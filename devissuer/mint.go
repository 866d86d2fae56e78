package devissuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256, HS256
	_ "crypto/sha512" // SHA-384 and SHA-512 for the *384 and *512 algorithms
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// MintOptions shapes a token made by Mint. The zero value mints the same
// token /v1/token would give the first client with its default scopes.
type MintOptions struct {
	// ClientID is the cid claim (and sub, unless Subject is set). Empty
	// means the first registered client.
	ClientID string
	// Subject is the sub claim. Empty means ClientID, as Okta does for
	// client-credentials tokens.
	Subject string
	// Audience is the aud claim. Empty means Config.Audience.
	Audience string
	// Scopes is the scp claim. nil means the client's default scopes
	// (Config.DefaultScopes for an unknown client); an empty non-nil slice
	// gives "scp": []. Remove the claim with Claims{"scp": nil}.
	Scopes []string
	// IssuedAt is the iat claim. Zero means Config.Now().
	IssuedAt time.Time
	// Lifetime sets exp = iat + Lifetime. Zero means Config.TokenLifetime;
	// a negative value mints a token that has already expired.
	Lifetime time.Duration

	// Claims overrides the claims above or adds others; a nil value
	// removes a claim (e.g. Claims{"exp": nil}). Values are encoded with
	// encoding/json.
	Claims map[string]any
	// Header overrides or adds JOSE header parameters; a nil value removes
	// one. Use it for "typ", a foreign or missing "kid", "jku", "x5u",
	// "crit", or an "alg" that differs from the algorithm actually used.
	Header map[string]any

	// KID selects the signing key: any key the issuer made, published or
	// removed. Empty means the current signing key. Ignored when Key is
	// set.
	KID string
	// Key signs with a key the issuer never published (an attacker's
	// key); the kid header is then its RFC 7638 thumbprint. An
	// *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey.
	Key crypto.Signer
	// Algorithm is the JWS algorithm actually used to sign, and the "alg"
	// header unless Header overrides it. Empty means the key's algorithm.
	// Besides the asymmetric algorithms of KeyAlgorithms, "HS256",
	// "HS384" and "HS512" sign with HMACKey, and "none" leaves the
	// signature empty.
	Algorithm string
	// HMACKey is the secret for the HS* algorithms.
	HMACKey []byte
	// EmbedJWK adds a "jwk" header carrying the public key of the signing
	// key (with Key: the embedded-key attack).
	EmbedJWK bool
}

// field is one member of a JSON object, kept in order.
type field struct {
	name  string
	value any
}

// Mint signs a token with arbitrary claims and headers (see MintOptions).
// Tokens signed with a published key and not broken by the options
// introspect as active, exactly like tokens from /v1/token. Mint does not
// touch the counters and works after Close. An RS256 2048-bit signature
// costs about 1 ms; MintN spreads many over all CPUs.
func (i *Issuer) Mint(o MintOptions) (string, error) {
	tok, _, err := i.mint(&o)
	return tok, err
}

// MintN mints n tokens with the same options (each with its own jti) on
// GOMAXPROCS goroutines, for load-test token pools. It returns when all are
// done, or at the first error.
func (i *Issuer) MintN(n int, o MintOptions) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("devissuer: MintN: negative count %d", n)
	}
	out := make([]string, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		first  error // set by the worker that sets failed
		failed atomic.Bool
	)
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				idx := int(next.Add(1) - 1)
				if idx >= n {
					return
				}
				opts := o
				tok, _, err := i.mint(&opts)
				if err != nil {
					if failed.CompareAndSwap(false, true) {
						first = err
					}
					return
				}
				out[idx] = tok
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// minted describes a token made by mint, for the token response.
type minted struct {
	scopes   []string
	lifetime time.Duration
}

// mint builds, encodes and signs one token.
func (i *Issuer) mint(o *MintOptions) (string, minted, error) {
	var (
		key *signingKey
		err error
	)
	if o.Key != nil {
		key, err = foreignKey(o.Key)
	} else {
		key, err = i.keys.signer(o.KID)
	}
	if err != nil {
		return "", minted{}, err
	}
	alg := o.Algorithm
	if alg == "" {
		alg = key.alg
	}

	header := make([]field, 0, 4)
	header = append(header, field{"kid", key.kid}, field{"alg", alg})
	if i.cfg.TokenType != "" {
		header = append(header, field{"typ", i.cfg.TokenType})
	}
	if o.EmbedJWK {
		header = append(header, field{"jwk", jose.JSONWebKey{Key: key.pub, KeyID: key.kid, Algorithm: key.alg, Use: "sig"}})
	}
	header = override(header, o.Header)

	cid := o.ClientID
	if cid == "" {
		cid = i.cfg.Clients[0].ID
	}
	sub := o.Subject
	if sub == "" {
		sub = cid
	}
	aud := o.Audience
	if aud == "" {
		aud = i.cfg.Audience
	}
	scopes := o.Scopes
	if scopes == nil {
		if c := i.clients[cid]; c != nil {
			scopes = c.DefaultScopes
		} else {
			scopes = i.cfg.DefaultScopes
		}
		if scopes == nil {
			scopes = []string{} // "scp": [] rather than null
		}
	}
	iat := o.IssuedAt
	if iat.IsZero() {
		iat = i.cfg.Now()
	}
	lifetime := o.Lifetime
	if lifetime == 0 {
		lifetime = i.cfg.TokenLifetime
	}
	jti, err := newJTI()
	if err != nil {
		return "", minted{}, err
	}
	claims := []field{
		{"ver", 1},
		{"jti", jti},
		{"iss", i.issuer},
		{"aud", aud},
		{"iat", iat.Unix()},
		{"exp", iat.Add(lifetime).Unix()},
		{"cid", cid},
		{"scp", scopes},
		{"sub", sub},
	}
	claims = override(claims, o.Claims)

	var buf bytes.Buffer
	buf.Grow(1024)
	if err := encodeSegment(&buf, header); err != nil {
		return "", minted{}, fmt.Errorf("devissuer: encode header: %w", err)
	}
	buf.WriteByte('.')
	if err := encodeSegment(&buf, claims); err != nil {
		return "", minted{}, fmt.Errorf("devissuer: encode claims: %w", err)
	}
	sig, err := sign(alg, key.priv, o.HMACKey, buf.Bytes())
	if err != nil {
		return "", minted{}, err
	}
	buf.WriteByte('.')
	writeB64(&buf, sig)
	return buf.String(), minted{scopes: scopes, lifetime: lifetime}, nil
}

// foreignKey wraps a caller's key for Mint.
func foreignKey(priv crypto.Signer) (*signingKey, error) {
	var alg string
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		alg = "RS256"
	case *ecdsa.PrivateKey:
		n := slices.IndexFunc(esAlgorithms[:], func(a string) bool { return esCurve(a) == k.Curve })
		if n < 0 {
			return nil, errors.New("devissuer: MintOptions.Key: unsupported curve")
		}
		alg = esAlgorithms[n]
	case ed25519.PrivateKey:
		alg = "EdDSA"
	default:
		return nil, fmt.Errorf("devissuer: MintOptions.Key: unsupported key type %T", priv)
	}
	kid, err := thumbprintKID(priv.Public())
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, alg: alg, priv: priv, pub: priv.Public()}, nil
}

// override applies overrides to fields: existing names are replaced in
// place (or dropped for nil), new ones are appended in sorted order.
func override(fields []field, over map[string]any) []field {
	if len(over) == 0 {
		return fields
	}
	out := fields[:0:0]
	for _, f := range fields {
		v, ok := over[f.name]
		switch {
		case !ok:
			out = append(out, f)
		case v != nil:
			out = append(out, field{f.name, v})
		}
	}
	extra := make([]string, 0, len(over))
	for name, v := range over {
		if v != nil && !slices.ContainsFunc(fields, func(f field) bool { return f.name == name }) {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		out = append(out, field{name, over[name]})
	}
	return out
}

// encodeSegment writes the base64url encoding of the JSON object fields.
func encodeSegment(buf *bytes.Buffer, fields []field) error {
	var obj bytes.Buffer
	obj.WriteByte('{')
	for n, f := range fields {
		if n > 0 {
			obj.WriteByte(',')
		}
		name, err := json.Marshal(f.name)
		if err != nil {
			return err
		}
		value, err := json.Marshal(f.value)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		obj.Write(name)
		obj.WriteByte(':')
		obj.Write(value)
	}
	obj.WriteByte('}')
	writeB64(buf, obj.Bytes())
	return nil
}

func writeB64(buf *bytes.Buffer, b []byte) {
	n := base64.RawURLEncoding.EncodedLen(len(b))
	buf.Grow(n)
	start := buf.Len()
	buf.Write(make([]byte, n))
	base64.RawURLEncoding.Encode(buf.Bytes()[start:], b)
}

// newJTI returns an Okta-shaped token id, "AT." and 32 random base64url
// characters.
func newJTI() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("devissuer: jti: %w", err)
	}
	return "AT." + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashFor returns the hash of an algorithm's size suffix.
func hashFor(alg string) crypto.Hash {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

// sign computes the JWS signature of input (RFC 7518 section 3).
func sign(alg string, priv crypto.Signer, hmacKey, input []byte) ([]byte, error) {
	switch alg {
	case "none":
		return nil, nil
	case "HS256", "HS384", "HS512":
		if len(hmacKey) == 0 {
			return nil, fmt.Errorf("devissuer: %s needs MintOptions.HMACKey", alg)
		}
		m := hmac.New(hashFor(alg).New, hmacKey)
		m.Write(input)
		return m.Sum(nil), nil
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("devissuer: %s needs an RSA key, not %T", alg, priv)
		}
		h := hashFor(alg)
		d := h.New()
		d.Write(input)
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, k, h, d.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(nil, k, h, d.Sum(nil))
	case "ES256", "ES384", "ES512":
		k, ok := priv.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("devissuer: %s needs an ECDSA key, not %T", alg, priv)
		}
		if want := esCurve(alg); k.Curve != want {
			return nil, fmt.Errorf("devissuer: %s needs curve %s, not %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		d := hashFor(alg).New()
		d.Write(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, d.Sum(nil))
		if err != nil {
			return nil, fmt.Errorf("devissuer: %s: %w", alg, err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig, nil
	case "EdDSA":
		k, ok := priv.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("devissuer: EdDSA needs an Ed25519 key, not %T", priv)
		}
		return ed25519.Sign(k, input), nil
	}
	return nil, fmt.Errorf("devissuer: cannot sign with algorithm %q", alg)
}
