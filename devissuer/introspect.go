package devissuer

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// maxTokenSize bounds the tokens introspection and revocation look at;
// longer ones are inactive without parsing.
const maxTokenSize = 16 << 10

// verifyAlgorithms are the JWS algorithms introspection accepts: those of
// the keys the issuer can make (KeyAlgorithms). none and HS* never verify.
// Read only.
var verifyAlgorithms = func() []jose.SignatureAlgorithm {
	var algs []jose.SignatureAlgorithm
	for _, a := range KeyAlgorithms() {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	return algs
}()

// inactiveBody is the RFC 7662 answer for every token that is not active.
const inactiveBody = `{"active":false}`

// verifiedToken is what introspection learned from a token whose signature
// verified: its time bounds, client, and the pre-encoded active answer.
type verifiedToken struct {
	exp, nbf       float64
	hasExp, hasNbf bool
	clientID       string
	body           []byte
}

// active reports whether the token is within its time bounds at now (Unix
// seconds): exp is exclusive, nbf inclusive (RFC 7519 4.1.4, 4.1.5).
func (v *verifiedToken) active(now float64) bool {
	if v.hasExp && now >= v.exp {
		return false
	}
	if v.hasNbf && now < v.nbf {
		return false
	}
	return true
}

// verifiedCache remembers verified tokens by SHA-256, so that a load test
// introspecting the same token repeatedly costs one signature check. It is
// emptied when it reaches maxVerified entries and whenever a key is
// removed.
type verifiedCache struct {
	mu  sync.RWMutex // guards m, gen
	m   map[[32]byte]*verifiedToken
	gen uint64 // bumped by clear; a put from an older generation is dropped
}

const maxVerified = 1 << 16

func (c *verifiedCache) init() { c.m = make(map[[32]byte]*verifiedToken) }

func (c *verifiedCache) get(sum [32]byte) (*verifiedToken, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[sum], c.gen
}

func (c *verifiedCache) put(sum [32]byte, v *verifiedToken, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= maxVerified {
		clear(c.m)
	}
	c.m[sum] = v
}

func (c *verifiedCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.gen++
}

// revocations holds the SHA-256 digests of revoked tokens until their
// exp, so that it is bounded by the number of live tokens revoked.
type revocations struct {
	mu sync.RWMutex         // guards m
	m  map[[32]byte]float64 // digest → exp (0: never expires)
}

func (r *revocations) init() { r.m = make(map[[32]byte]float64) }

func (r *revocations) has(sum [32]byte) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.m[sum]
	return ok
}

func (r *revocations) add(sum [32]byte, v *verifiedToken, now float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= 1024 {
		for k, exp := range r.m {
			if exp != 0 && exp <= now {
				delete(r.m, k)
			}
		}
	}
	exp := 0.0
	if v.hasExp {
		exp = v.exp
	}
	r.m[sum] = exp
}

// lookup returns the verified form of a token signed by a published key,
// or nil for a token the issuer cannot vouch for. Revocation and time
// bounds are not checked here.
func (i *Issuer) lookup(token []byte) (*verifiedToken, [32]byte) {
	sum := sha256.Sum256(token)
	v, gen := i.verified.get(sum)
	if v != nil {
		return v, sum
	}
	v = i.verify(token)
	if v != nil {
		i.verified.put(sum, v, gen)
	}
	return v, sum
}

// introspect answers an RFC 7662 request for token. The body is shared:
// the caller must not modify it.
func (i *Issuer) introspect(token []byte) (body []byte, active bool) {
	v, sum := i.lookup(token)
	if v == nil || i.revoked.has(sum) || !v.active(unixNow(i.cfg.Now)) {
		return []byte(inactiveBody), false
	}
	return v.body, true
}

// Revoke revokes token as /v1/revoke would, without client
// authentication: introspection answers inactive for it from then on.
// Tokens the issuer cannot verify are inactive already and are ignored.
func (i *Issuer) Revoke(token string) {
	v, sum := i.lookup([]byte(token))
	if v == nil {
		return
	}
	i.revoked.add(sum, v, unixNow(i.cfg.Now))
}

// tokenClaims is the part of a token's claims introspection reports. It is
// decoded with go-jose's JSON (case-sensitive names, duplicates refused).
type tokenClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Jti      string          `json:"jti"`
	Exp      *float64        `json:"exp"`
	Iat      *float64        `json:"iat"`
	Nbf      *float64        `json:"nbf"`
	Cid      string          `json:"cid"`
	ClientID string          `json:"client_id"`
	UID      string          `json:"uid"`
	Scp      json.RawMessage `json:"scp"`
	Scope    string          `json:"scope"`
}

// introspection is the RFC 7662 active answer, in Okta's field order.
type introspection struct {
	Active    bool            `json:"active"`
	Scope     string          `json:"scope,omitempty"`
	Username  string          `json:"username,omitempty"`
	Exp       *float64        `json:"exp,omitempty"`
	Iat       *float64        `json:"iat,omitempty"`
	Nbf       *float64        `json:"nbf,omitempty"`
	Sub       string          `json:"sub,omitempty"`
	Aud       json.RawMessage `json:"aud,omitempty"`
	Iss       string          `json:"iss,omitempty"`
	Jti       string          `json:"jti,omitempty"`
	TokenType string          `json:"token_type"`
	ClientID  string          `json:"client_id,omitempty"`
	UID       string          `json:"uid,omitempty"`
}

// verify checks a compact JWS against the published keys (chosen by kid;
// a token without kid only when one key is published; its alg must be the
// key's) and decodes its claims. It returns nil for anything else.
func (i *Issuer) verify(token []byte) *verifiedToken {
	if len(token) == 0 || len(token) > maxTokenSize {
		return nil
	}
	jws, err := jose.ParseSignedCompact(string(token), verifyAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil
	}
	h := jws.Signatures[0].Header
	key := i.keys.publishedKey(h.KeyID)
	if key == nil || h.Algorithm != key.alg {
		return nil
	}
	payload, err := jws.Verify(key.pub)
	if err != nil {
		return nil
	}
	var c tokenClaims
	if err := josejson.Unmarshal(payload, &c); err != nil {
		return nil
	}
	scope, ok := scopeString(c.Scp, c.Scope)
	if !ok || (len(c.Aud) > 0 && !validAudience(c.Aud)) {
		return nil
	}
	cid := c.Cid
	if cid == "" {
		cid = c.ClientID
	}
	answer := introspection{
		Active:    true,
		Scope:     scope,
		Username:  c.Sub, // Okta reports the subject as username
		Exp:       c.Exp,
		Iat:       c.Iat,
		Nbf:       c.Nbf,
		Sub:       c.Sub,
		Aud:       c.Aud,
		Iss:       c.Iss,
		Jti:       c.Jti,
		TokenType: "Bearer",
		ClientID:  cid,
		UID:       c.UID,
	}
	body, err := json.Marshal(answer)
	if err != nil {
		return nil
	}
	v := &verifiedToken{clientID: cid, body: body}
	if c.Exp != nil {
		v.exp, v.hasExp = *c.Exp, true
	}
	if c.Nbf != nil {
		v.nbf, v.hasNbf = *c.Nbf, true
	}
	return v
}

// scopeString returns the space-separated scope of a token: scp as an
// array of strings or a string, else scope. ok is false for an scp of any
// other JSON type.
func scopeString(scp json.RawMessage, scope string) (string, bool) {
	scp = bytes.TrimSpace(scp)
	if len(scp) == 0 || bytes.Equal(scp, []byte("null")) {
		return scope, true
	}
	var list []string
	if err := josejson.Unmarshal(scp, &list); err == nil {
		return strings.Join(list, " "), true
	}
	var s string
	if err := josejson.Unmarshal(scp, &s); err == nil {
		return s, true
	}
	return "", false
}

// validAudience reports whether aud is a string or an array of strings.
func validAudience(aud json.RawMessage) bool {
	var s string
	if josejson.Unmarshal(aud, &s) == nil {
		return true
	}
	var list []string
	return josejson.Unmarshal(aud, &list) == nil
}
