package authcache

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAuthCacheMissParallel is BenchmarkAuthCacheMiss on every
// processor at once: each call a new token, so every call leads its own
// validation and none waits for another's. It shows what the miss path
// costs in hand-offs between goroutines, which a serial run cannot.
func BenchmarkAuthCacheMissParallel(b *testing.B) {
	f := newFake(time.Now)
	c := newTestCache(b, f, Config{})
	ctx := context.Background()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tok := append([]byte(nil), benchToken...)
		n := len(tok)
		for pb.Next() {
			tok = strconv.AppendInt(tok[:n], seq.Add(1), 10)
			if _, err := c.Validate(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
