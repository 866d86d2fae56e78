package sharedcache

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"math"
	"sync"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

// The entries this package stores are authcache.L2Entry values: a
// verdict, the auth.Principal of a valid token (its KeyThumbprint
// included) or the auth.Reason of an invalid one, when it was
// validated, and a Deadline that Set and Revoke compute from their ttl and
// sign with the rest, so that Get misses an entry at or past it on the
// reader's clock whatever Redis's own expiry says (a replayed old value is
// worthless after its deadline).

// Limits of the entry encoding; Set refuses an entry past them and Get
// misses one.
const (
	// maxValueSize bounds a stored value, MAC included, in bytes. Get reads
	// at most this many bytes plus one (GETRANGE), so a larger value is a
	// miss that never travels whole.
	maxValueSize = 16 << 10
	// MaxListLen bounds Principal.Audience and Principal.Scopes, each.
	MaxListLen = 256
)

// Encoding: version byte, kind byte, then for both kinds ValidatedAt and
// Deadline; a positive entry then has IssuedAt, ExpiresAt, Subject,
// ClientID, Issuer, TokenID, Audience, Scopes, KeyThumbprint (so that a
// reader stops serving the token once its key set drops that key; version 1
// left it out); a negative one the Reason's
// label (auth.Reason.String: stable across versions, unlike its number); then
// the 32-byte MAC. A time is a varint of Unix seconds and a uvarint of
// nanoseconds (the zero time is the pair zeroTimeSec, 0); a string a uvarint
// length and its bytes; a list a uvarint count and its strings.
const (
	entryVersion  = 2
	kindPositive  = 1
	kindNegative  = 2
	macSize       = sha256.Size
	minEntrySize  = 2 + macSize
	msgVersion    = 1
	revocationLen = 1 + sha256.Size + macSize

	// MAC domains: an entry's MAC and a revocation's can never be swapped.
	domainEntry      = 'E'
	domainRevocation = 'R'

	zeroTimeSec = math.MinInt64
)

var (
	errTooLarge   = errors.New("sharedcache: entry too large")
	errMalformed  = errors.New("sharedcache: malformed entry")
	errBadVersion = errors.New("sharedcache: unknown entry version")
	errBadEntry   = errors.New("sharedcache: a positive entry (with a Principal) carries no Reason")
)

// signer computes HMAC-SHA-256 under one key. Its pool is per Cache; a
// hash is reset before each use.
type signer struct {
	pool sync.Pool // of hash.Hash, each an HMAC under the key
}

func newSigner(key []byte) *signer {
	s := &signer{}
	s.pool.New = func() any { return hmac.New(sha256.New, key) }
	return s
}

// sum appends to dst the MAC of domain || digest || body.
func (s *signer) sum(dst []byte, domain byte, digest *[sha256.Size]byte, body []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte{domain})
	if digest != nil {
		h.Write(digest[:])
	}
	h.Write(body)
	dst = h.Sum(dst)
	s.pool.Put(h)
	return dst
}

// verify reports whether mac is the MAC of domain || digest || body.
func (s *signer) verify(mac []byte, domain byte, digest *[sha256.Size]byte, body []byte) bool {
	var buf [macSize]byte
	return hmac.Equal(mac, s.sum(buf[:0], domain, digest, body))
}

// encodeEntry appends e, signed for digest, to dst.
func (s *signer) encodeEntry(dst []byte, digest *[sha256.Size]byte, e *authcache.L2Entry) ([]byte, error) {
	p := e.Principal
	if p != nil && e.Reason != auth.ReasonInvalid {
		return nil, errBadEntry
	}
	start := len(dst)
	dst = append(dst, entryVersion)
	if p != nil {
		if len(p.Audience) > MaxListLen || len(p.Scopes) > MaxListLen {
			return nil, errTooLarge
		}
		dst = append(dst, kindPositive)
		dst = appendTime(dst, e.ValidatedAt)
		dst = appendTime(dst, e.Deadline)
		dst = appendTime(dst, p.IssuedAt)
		dst = appendTime(dst, p.ExpiresAt)
		for _, f := range [...]string{p.Subject, p.ClientID, p.Issuer, p.TokenID} {
			dst = appendString(dst, f)
		}
		dst = appendList(dst, p.Audience)
		dst = appendList(dst, p.Scopes)
		dst = appendString(dst, p.KeyThumbprint)
	} else {
		if e.Reason >= auth.NumReasons {
			return nil, errBadEntry
		}
		dst = append(dst, kindNegative)
		dst = appendTime(dst, e.ValidatedAt)
		dst = appendTime(dst, e.Deadline)
		dst = appendString(dst, e.Reason.String())
	}
	if len(dst)-start+macSize > maxValueSize {
		return nil, errTooLarge
	}
	return s.sum(dst, domainEntry, digest, dst[start:]), nil
}

// decodeEntry checks value's MAC for digest and decodes it. A MAC failure
// (including a value too short or too long to carry one) is errMAC; a value
// with a good MAC that does not decode is errMalformed or errBadVersion.
// The decoded strings share one allocation.
func (s *signer) decodeEntry(digest *[sha256.Size]byte, value []byte) (authcache.L2Entry, error) {
	if len(value) < minEntrySize || len(value) > maxValueSize {
		return authcache.L2Entry{}, errMAC
	}
	body, mac := value[:len(value)-macSize], value[len(value)-macSize:]
	if !s.verify(mac, domainEntry, digest, body) {
		return authcache.L2Entry{}, errMAC
	}
	if body[0] != entryVersion {
		return authcache.L2Entry{}, errBadVersion
	}
	d := decoder{s: string(body[2:])}
	var e authcache.L2Entry
	e.ValidatedAt = d.time()
	e.Deadline = d.time()
	switch body[1] {
	case kindPositive:
		p := &auth.Principal{}
		p.IssuedAt = d.time()
		p.ExpiresAt = d.time()
		p.Subject = d.string()
		p.ClientID = d.string()
		p.Issuer = d.string()
		p.TokenID = d.string()
		p.Audience = d.list()
		p.Scopes = d.list()
		p.KeyThumbprint = d.string()
		e.Principal = p
	case kindNegative:
		var ok bool
		if e.Reason, ok = reasonByLabel(d.string()); !ok {
			d.bad = true // a reason this version does not know
		}
	default:
		d.bad = true
	}
	if d.bad || d.s != "" {
		return authcache.L2Entry{}, errMalformed
	}
	return e, nil
}

var errMAC = errors.New("sharedcache: entry failed authentication")

// reasonByLabel returns the auth.Reason whose String is label.
func reasonByLabel(label string) (auth.Reason, bool) {
	for r := range auth.NumReasons {
		if r.String() == label {
			return r, true
		}
	}
	return auth.ReasonInvalid, false
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendUvarint(binary.AppendVarint(dst, zeroTimeSec), 0)
	}
	return binary.AppendUvarint(binary.AppendVarint(dst, t.Unix()), uint64(t.Nanosecond()))
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendList(dst []byte, l []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for _, s := range l {
		dst = appendString(dst, s)
	}
	return dst
}

// decoder reads the encoding from s; the first error sets bad and every
// later read returns a zero value.
type decoder struct {
	s   string
	bad bool
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	var v uint64
	for i := 0; i < binary.MaxVarintLen64 && i < len(d.s); i++ {
		b := d.s[i]
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break // overflow
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.bad = true
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	switch {
	case d.bad:
		return time.Time{}
	case nsec >= 1e9:
		d.bad = true
		return time.Time{}
	case sec == zeroTimeSec && nsec == 0:
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)) {
		d.bad = true
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) list() []string {
	n := d.uvarint()
	if d.bad || n > MaxListLen || n > uint64(len(d.s)) { // each string takes at least one byte
		d.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.string()
	}
	return l
}

// encodeRevocation returns the signed revocation message for digest.
func (s *signer) encodeRevocation(digest *[sha256.Size]byte) []byte {
	msg := make([]byte, 0, revocationLen)
	msg = append(msg, msgVersion)
	msg = append(msg, digest[:]...)
	return s.sum(msg, domainRevocation, nil, msg)
}

// decodeRevocation returns the digest a revocation message names, and
// false when the message is not one this package signed with its key.
func (s *signer) decodeRevocation(msg string) ([sha256.Size]byte, bool) {
	var digest [sha256.Size]byte
	if len(msg) != revocationLen || msg[0] != msgVersion {
		return digest, false
	}
	var buf [revocationLen]byte
	copy(buf[:], msg)
	body, mac := buf[:1+sha256.Size], buf[1+sha256.Size:]
	if !s.verify(mac, domainRevocation, nil, body) {
		return digest, false
	}
	copy(digest[:], body[1:])
	return digest, true
}
