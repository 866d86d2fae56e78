package authcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"
)

// benchToken is about the size of an Okta RS256 access token; shortToken
// makes hashing cheap, so that its figures show the cache's own overhead.
var (
	benchToken = bytes.Repeat([]byte("eyJhbGciOiJSUzI1NiJ9."), 40)
	shortToken = []byte("short-opaque-token-0123456789abc")
)

// benchTokens are the token sizes the hit benchmarks run with.
var benchTokens = []struct {
	name  string
	token []byte
}{
	{"jwt-840B", benchToken},
	{"opaque-32B", shortToken},
}

// BenchmarkAuthCacheHit measures the hot path: one Validate answered from
// the cache.
func BenchmarkAuthCacheHit(b *testing.B) {
	for _, bt := range benchTokens {
		f := newFake(time.Now)
		c := newTestCache(b, f, Config{})
		ctx := context.Background()
		if _, err := c.Validate(ctx, bt.token); err != nil { // warm
			b.Fatal(err)
		}
		c.Wait()

		b.Run("serial/"+bt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bt.token)))
			for b.Loop() { // b.Loop starts the timer after the warm-up above
				if _, err := c.Validate(ctx, bt.token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel/"+bt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bt.token)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Validate(ctx, bt.token); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		if got := f.calls.Load(); got != 1 {
			b.Fatalf("validator called %d times, want 1", got)
		}
	}
}

// BenchmarkValidateMemoHit measures a connection's repeated token: a
// ValidateMemo answered from the memo (a comparison and the entry's
// checks, no hash, no lookup), beside a plain Validate hit of the same
// 713-byte token. In parallel, each goroutine is a connection with its own
// Memo.
func BenchmarkValidateMemoHit(b *testing.B) {
	tok := benchToken[:713]
	f := newFake(time.Now)
	c := newTestCache(b, f, Config{})
	ctx := context.Background()
	if _, err := c.Validate(ctx, tok); err != nil { // warm
		b.Fatal(err)
	}
	c.Wait()
	var m Memo
	if _, err := c.ValidateMemo(ctx, tok, &m); err != nil || m.e == nil {
		b.Fatalf("the memo did not remember the token: %v", err)
	}

	b.Run("memo/serial/jwt-713B", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(tok)))
		for b.Loop() {
			if _, err := c.ValidateMemo(ctx, tok, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate/serial/jwt-713B", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(tok)))
		for b.Loop() {
			if _, err := c.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memo/parallel/jwt-713B", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(tok)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var m Memo
			for pb.Next() {
				if _, err := c.ValidateMemo(ctx, tok, &m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	if got := f.calls.Load(); got != 1 {
		b.Fatalf("validator called %d times, want 1", got)
	}
}

// BenchmarkAuthCacheHitBaseline is the floor under a hit: hashing the token.
func BenchmarkAuthCacheHitBaseline(b *testing.B) {
	for _, bt := range benchTokens {
		b.Run(bt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bt.token)))
			var sink byte
			for b.Loop() {
				d := sha256.Sum256(bt.token)
				sink ^= d[0]
			}
			_ = sink
		})
	}
}

// BenchmarkAuthCacheMiss measures a miss: a new token each time, validated
// by the fake (which costs next to nothing) and stored.
func BenchmarkAuthCacheMiss(b *testing.B) {
	f := newFake(time.Now)
	c := newTestCache(b, f, Config{})
	ctx := context.Background()
	tok := append([]byte(nil), benchToken...)
	n := len(tok)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tok = strconv.AppendInt(tok[:n], int64(i), 10)
		i++
		if _, err := c.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
