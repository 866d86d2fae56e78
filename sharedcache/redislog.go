package sharedcache

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// RedisLogger is go-redis's logger interface (redis.SetLogger) over zap,
// rate-limited: go-redis logs every failed dial to a Redis that is down,
// which a second level that must shrug Redis off would otherwise turn into
// a flood. Build it with NewRedisLogger.
type RedisLogger struct {
	log   *zap.Logger
	now   func() time.Time
	limit logLimiter
}

// NewRedisLogger returns a RedisLogger that writes at most one line per
// 10 seconds to log, at Warn level, with how many it suppressed since the
// last. now is its clock (nil: time.Now). Install it once, from main:
// redis.SetLogger(sharedcache.NewRedisLogger(log, nil)). go-redis's
// messages name addresses and errors, never keys, values or passwords.
func NewRedisLogger(log *zap.Logger, now func() time.Time) *RedisLogger {
	if now == nil {
		now = time.Now
	}
	return &RedisLogger{log: log, now: now}
}

// Printf logs one go-redis message, unless the rate limit drops it.
func (l *RedisLogger) Printf(_ context.Context, format string, v ...any) {
	ok, suppressed := l.limit.allow(l.now())
	if !ok {
		return
	}
	l.log.Warn("sharedcache: go-redis: "+fmt.Sprintf(format, v...), zap.Uint64("suppressed", suppressed))
}
