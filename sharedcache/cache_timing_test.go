package sharedcache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

// BenchmarkGetHit is one second-level hit against a real redis-server on
// loopback, with the default 50ms Timeout: round trip, MAC check and decode
// of a full principal.
func BenchmarkGetHit(b *testing.B) {
	srv := startRedis(b)
	c := newTestCache(b, srv, func(cfg *Config) { cfg.Timeout = 0 })
	ctx := context.Background()
	d := digestOf("bench-token")
	now := time.Now()
	if err := c.Set(ctx, d, authcache.L2Entry{Principal: fullPrincipal(now), ValidatedAt: now}, time.Hour); err != nil {
		b.Fatal(err)
	}
	if _, ok := c.Get(ctx, d); !ok {
		b.Fatal("warm-up Get missed")
	}
	// A loaded machine can push a call past the 50ms Timeout: that is a
	// miss by design, so misses are counted, not fatal.
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		before := c.Stats().Errors
		for b.Loop() {
			c.Get(ctx, d)
		}
		b.ReportMetric(float64(c.Stats().Errors-before), "timeouts")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		before := c.Stats().Errors
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Get(ctx, d)
			}
		})
		b.ReportMetric(float64(c.Stats().Errors-before), "timeouts")
	})
}

// BenchmarkDecode is the local part of a hit: MAC check and decode.
func BenchmarkDecode(b *testing.B) {
	s := newSigner(testKey)
	d := digestOf("bench-token")
	now := time.Now()
	e := authcache.L2Entry{Principal: fullPrincipal(now), ValidatedAt: now, Deadline: now.Add(time.Hour)}
	v, err := s.encodeEntry(nil, &d, &e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.decodeEntry(&d, v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAwaitLatency measures how long after a Set lands a waiting
// Await returns, for results that take delay to come (the validation the
// lease holder runs): the price of polling, at most awaitMaxPoll plus a
// round trip. BenchmarkPubSubLatency is what a subscription-based Await
// could reach instead.
func BenchmarkAwaitLatency(b *testing.B) {
	srv := startRedis(b)
	holder := newTestCache(b, srv, nil)
	waiter := newTestCache(b, srv, nil)
	ctx := context.Background()
	e := authcache.L2Entry{Principal: &auth.Principal{Subject: "alice"}}
	for _, delay := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 20 * time.Millisecond} {
		b.Run(delay.String(), func(b *testing.B) {
			var total time.Duration
			n := 0
			for b.Loop() {
				n++
				d := digestOf(fmt.Sprintf("%s-%d", delay, n))
				landed := make(chan time.Time, 1)
				// Simulated validation time, not synchronisation: the
				// waiter polls from the start either way.
				t := time.AfterFunc(delay, func() {
					_ = holder.Set(ctx, d, e, time.Minute)
					landed <- time.Now()
				})
				if _, ok := waiter.Await(ctx, d); !ok {
					t.Stop()
					b.Fatal("Await missed")
				}
				total += time.Since(<-landed)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(n), "µs-after-set")
		})
	}
}

// BenchmarkPubSubLatency is the time from PUBLISH to a subscriber's
// receipt on the same redis-server: the best a subscription-based Await
// could do.
func BenchmarkPubSubLatency(b *testing.B) {
	srv := startRedis(b)
	rdb := srv.client(b)
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, "bench")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		b.Fatal(err)
	}
	for b.Loop() {
		if err := rdb.Publish(ctx, "bench", "x").Err(); err != nil {
			b.Fatal(err)
		}
		if _, err := ps.ReceiveMessage(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
