package authcache

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// FuzzTokensNeverShare feeds pairs of tokens through one cache: each token,
// asked twice (the second time from the cache), always gets its own principal.
func FuzzTokensNeverShare(f *testing.F) {
	f.Add([]byte("a"), []byte("b"))
	f.Add([]byte(""), []byte("\x00"))
	f.Add([]byte("abc"), []byte("abc "))
	f.Add(bytes.Repeat([]byte("x"), 8192), bytes.Repeat([]byte("x"), 8191))
	next := newFake(time.Now)
	c := newTestCache(f, next, Config{MaxCost: 1 << 20})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, tok := range [][]byte{a, b, a, b} {
			p, err := c.Validate(context.Background(), tok)
			if err != nil {
				t.Fatalf("Validate(%q): %v", tok, err)
			}
			if p.Subject != "sub-"+string(tok) {
				t.Fatalf("Validate(%q) answered for %q", tok, p.Subject)
			}
			c.Wait()
		}
	})
}
