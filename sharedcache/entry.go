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
)

// Entry is one verdict about one token, as stored in Redis.
//
// An entry is positive (the token is good) when Principal is non-nil, and
// negative (the token is bad) otherwise; a negative entry says why in
// Reason. An entry never holds the token.
type Entry struct {
	// Principal is what a valid token yields; nil for a negative entry.
	Principal *auth.Principal

	// Reason is a negative entry's short, client-safe reason (an
	// auth.TokenError Reason such as "token expired"); empty for a
	// positive entry. At most MaxReasonLen bytes.
	Reason string

	// ValidatedAt is when the validation behind the entry ran, on the
	// writing replica's clock.
	ValidatedAt time.Time

	// Deadline is when the entry stops being served: Set and Revoke stamp
	// it to now+ttl on the writer's clock and sign it with the rest, and Get
	// misses an entry at or past it on the reader's clock, whatever Redis's
	// own expiry says (so a replayed old value is worthless after its
	// deadline). Set and Revoke ignore the field on input.
	Deadline time.Time
}

// Positive reports whether e says the token is good.
func (e Entry) Positive() bool { return e.Principal != nil }

// Limits of the entry encoding; Set refuses an entry past them and Get
// misses one.
const (
	// maxValueSize bounds a stored value, MAC included, in bytes. Get reads
	// at most this many bytes plus one (GETRANGE), so a larger value is a
	// miss that never travels whole.
	maxValueSize = 16 << 10
	// MaxListLen bounds Principal.Audience and Principal.Scopes, each.
	MaxListLen = 256
	// MaxReasonLen bounds Entry.Reason, in bytes.
	MaxReasonLen = 256
)

// Encoding: version byte, kind byte, then for both kinds ValidatedAt and
// Deadline; a positive entry then has IssuedAt, ExpiresAt, Subject,
// ClientID, Issuer, TokenID, Audience, Scopes; a negative one Reason; then
// the 32-byte MAC. A time is a varint of Unix seconds and a uvarint of
// nanoseconds (the zero time is the pair zeroTimeSec, 0); a string a uvarint
// length and its bytes; a list a uvarint count and its strings.
const (
	entryVersion  = 1
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
	errBadEntry   = errors.New("sharedcache: an entry needs a Principal, or else a Reason, not both")
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
func (s *signer) encodeEntry(dst []byte, digest *[sha256.Size]byte, e *Entry) ([]byte, error) {
	p := e.Principal
	if (p == nil) == (e.Reason == "") {
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
	} else {
		if len(e.Reason) > MaxReasonLen {
			return nil, errTooLarge
		}
		dst = append(dst, kindNegative)
		dst = appendTime(dst, e.ValidatedAt)
		dst = appendTime(dst, e.Deadline)
		dst = appendString(dst, e.Reason)
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
func (s *signer) decodeEntry(digest *[sha256.Size]byte, value []byte) (Entry, error) {
	if len(value) < minEntrySize || len(value) > maxValueSize {
		return Entry{}, errMAC
	}
	body, mac := value[:len(value)-macSize], value[len(value)-macSize:]
	if !s.verify(mac, domainEntry, digest, body) {
		return Entry{}, errMAC
	}
	if body[0] != entryVersion {
		return Entry{}, errBadVersion
	}
	d := decoder{s: string(body[2:])}
	var e Entry
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
		e.Principal = p
	case kindNegative:
		e.Reason = d.string()
		if e.Reason == "" || len(e.Reason) > MaxReasonLen {
			d.bad = true
		}
	default:
		d.bad = true
	}
	if d.bad || d.s != "" {
		return Entry{}, errMalformed
	}
	return e, nil
}

var errMAC = errors.New("sharedcache: entry failed authentication")

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
