package authcache

import (
	"context"
	"encoding/binary"
	"unsafe"

	"github.com/tokengate/tokengate/auth"
)

// MaxMemoToken is the longest token a Memo remembers, in bytes. A longer
// token is validated through the cache every time; the bound keeps a
// connection's memo small (a typical JWT is under 2 KiB, an RSA-4096 one
// about 1 KiB).
const MaxMemoToken = 4096

// A Memo remembers, for one connection, the last token that hit the cache
// and the entry it hit, so that the connection's next request with the same
// token skips the SHA-256 and the ristretto lookup: on a keep-alive
// connection a client sends the same token request after request, and the
// hash of a 700-byte token is most of a hit's cost.
//
// It is not a second cache key. The token is recognised by comparing every
// byte with the remembered copy (in constant time, as connections behind a
// proxy carry many clients' tokens), which no collision can pass, and the
// remembered entry is served only while the cache would still serve it from
// ristretto: while it is stored there (any eviction, replacement, Forget or
// Close ends that), unexpired, not revoked, its signing key not retired
// and, in hybrid mode, not stale. Anything else goes through the cache as
// if there were no memo. So a memo changes what a request costs, never what
// it is answered.
//
// The zero value is empty and ready. A Memo is not safe for concurrent use:
// it belongs to one connection, whose requests a server answers one after
// another. It keeps a copy of the token (at most MaxMemoToken bytes) for as
// long as the Memo lives, as the connection's read buffer does; Reset drops
// it.
type Memo struct {
	c     *Cache // the cache e belongs to
	e     *entry // nil: nothing remembered
	token []byte // a copy of e's token
	hits  *shard // where c counts m's hits (memoShard); set with c
}

// Reset forgets the remembered token and zeroes its copy: the whole
// buffer, which may still hold the tail of an earlier, longer token.
func (m *Memo) Reset() {
	clear(m.token[:cap(m.token)])
	*m = Memo{token: m.token[:0]}
}

// ValidateMemo is Validate for a caller that keeps one Memo per
// connection: when token is the one m remembers and the cache still serves
// its entry, the answer is that entry's principal, at the cost of a
// comparison and the entry's checks (Recall); otherwise it is Validate's
// answer, and a hit on a valid entry is remembered in m for the next
// request. The answers are Validate's in every case, and a memo hit counts
// as a hit in Stats. m may be nil (plain Validate).
func (c *Cache) ValidateMemo(ctx context.Context, token []byte, m *Memo) (*auth.Principal, error) {
	if m == nil {
		return c.validate(ctx, token, nil)
	}
	if p := c.Recall(token, m); p != nil {
		return p, nil
	}
	return c.validate(ctx, token, m)
}

// Recall is ValidateMemo's first step on its own, for a caller that would
// otherwise build a context for every request: the principal of the entry
// m remembers, when token is the one m remembers and the cache still
// serves that entry (counted as a hit in Stats); else nil, and m no
// longer offers that entry. nil is not an answer about the token: pass it
// to ValidateMemo (or Validate), which validates it. Recall itself
// validates nothing, waits for nothing and allocates nothing. m may be
// nil (nil).
func (c *Cache) Recall(token []byte, m *Memo) *auth.Principal {
	if m == nil {
		return nil
	}
	if m.e != nil && m.c == c && equalConstantTime(token, m.token) {
		if p := c.memoHit(m.e, m.hits); p != nil {
			return p
		}
	}
	m.e = nil
	return nil
}

// memoHit returns e's principal when the cache would serve e as it
// stands (judge) and ristretto still holds it, and counts the hit on sh;
// nil means "ask the cache": e may still be good (an older key generation
// that a check would confirm, a re-check due), but that is for Validate
// to find out.
func (c *Cache) memoHit(e *entry, sh *shard) *auth.Principal {
	if c.closed.Load() || e.exited.Load() {
		return nil
	}
	now := c.now()
	if c.judge(e, now) != hitServe {
		return nil
	}
	return c.serve(e, now, sh)
}

// remember makes m remember token and e, the positive entry a hit on
// token just served. A token over MaxMemoToken is not remembered.
func (m *Memo) remember(c *Cache, e *entry, token []byte) {
	if len(token) > MaxMemoToken {
		return
	}
	if m.c != c || m.hits == nil {
		m.hits = &c.shards[memoShard(m)]
	}
	m.c, m.e = c, e
	m.token = append(m.token[:0], token...)
}

// memoShard is the counter shard of m's hits: one per memo, picked from
// its address (Fibonacci hashing; the address is never turned back into a
// pointer). A connection's hits then write one cache line, which stays
// with the core that serves it, where a shard picked at random per hit
// (as a plain hit does) is as often as not a line the other core wrote
// last.
func memoShard(m *Memo) uint64 {
	p := uint64(uintptr(unsafe.Pointer(m)))
	return (p * 0x9e3779b97f4a7c15) >> (64 - lockShardBits)
}

// equalConstantTime reports whether a and b are equal, in a time that
// depends on their lengths only: 32 bytes a step in four independent
// words, then eight, then the tail. (crypto/subtle.ConstantTimeCompare
// takes a byte a step, ten times longer for a 700-byte token.)
func equalConstantTime(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	le := binary.LittleEndian
	var v0, v1, v2, v3 uint64
	for len(a) >= 32 && len(b) >= 32 {
		v0 |= le.Uint64(a[0:8]) ^ le.Uint64(b[0:8])
		v1 |= le.Uint64(a[8:16]) ^ le.Uint64(b[8:16])
		v2 |= le.Uint64(a[16:24]) ^ le.Uint64(b[16:24])
		v3 |= le.Uint64(a[24:32]) ^ le.Uint64(b[24:32])
		a, b = a[32:], b[32:]
	}
	for len(a) >= 8 && len(b) >= 8 {
		v0 |= le.Uint64(a[0:8]) ^ le.Uint64(b[0:8])
		a, b = a[8:], b[8:]
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		v1 |= uint64(a[i] ^ b[i])
	}
	return v0|v1|v2|v3 == 0
}
