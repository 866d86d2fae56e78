package sharedcache

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestRedisLoggerRateLimits: a burst of go-redis messages writes one line,
// and the next line, a logEvery later, counts what was dropped.
func TestRedisLoggerRateLimits(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	clock := newFakeClock()
	l := NewRedisLogger(zap.New(core), clock.Now)
	_ = func() { redis.SetLogger(l) } // compiles only if it is go-redis's logger type; never called
	ctx := context.Background()
	for i := range 100 {
		l.Printf(ctx, "redis: dial %d failed", i)
	}
	clock.Advance(logEvery)
	l.Printf(ctx, "redis: dial %d failed", 100)
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d lines for 101 messages, want 2", len(entries))
	}
	if got := entries[0].Message; got != "sharedcache: go-redis: redis: dial 0 failed" {
		t.Errorf("first line %q", got)
	}
	if got := entries[1].ContextMap()["suppressed"]; got != uint64(99) {
		t.Errorf("second line's suppressed = %v, want 99", got)
	}
}
