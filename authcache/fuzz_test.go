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

// FuzzEqualConstantTime: the memo's comparison agrees with bytes.Equal,
// and finds every input equal to a copy of itself.
func FuzzEqualConstantTime(f *testing.F) {
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("abcdefgh"), []byte("abcdefgh"))
	f.Add([]byte("abcdefghi"), []byte("abcdefghj"))
	f.Add([]byte("abcdefgh"), []byte("bbcdefgh"))
	f.Add([]byte("abc"), []byte("abcd"))
	f.Add(benchToken[:713], append(bytes.Clone(benchToken[:712]), 'x'))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if got, want := equalConstantTime(a, b), bytes.Equal(a, b); got != want {
			t.Fatalf("equalConstantTime(%x, %x) = %v, bytes.Equal says %v", a, b, got, want)
		}
		if !equalConstantTime(a, bytes.Clone(a)) {
			t.Fatalf("equalConstantTime(%x, a copy) = false", a)
		}
	})
}
