package sharedcache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokengate/tokengate/internal/redistest"
)

// redisServer is a redis-server child process on a loopback port, for
// tests (internal/redistest). It can be stopped and started again on the
// same port.
type redisServer struct {
	*redistest.Server
	tb testing.TB
}

// startRedis starts a redis-server of its own on a free loopback port and
// stops it when the test ends. Without redis-server it skips the test,
// unless CI is set: there it fails, since CI must run these tests.
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	return &redisServer{Server: redistest.New(tb), tb: tb}
}

// url is the redis:// URL of the server.
func (s *redisServer) url() string { return s.URL() }

// start runs the server again and waits until it answers PING.
func (s *redisServer) start() {
	s.tb.Helper()
	if err := s.Start(); err != nil {
		s.tb.Fatal(err)
	}
}

// stop kills the server and waits for it to exit.
func (s *redisServer) stop() { s.Stop() }

// client is a plain go-redis client on the server, to look behind the
// Cache's back (PTTL, raw writes, PUBSUB NUMSUB).
func (s *redisServer) client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after 10s. It waits for an outside event (a subscription, a server
// coming back), never for a fixed time.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// waitSubscribed waits until n clients are subscribed to channel.
func waitSubscribed(tb testing.TB, rdb *redis.Client, channel string, n int64) {
	tb.Helper()
	waitFor(tb, fmt.Sprintf("%d subscriber(s) on %s", n, channel), func() bool {
		m, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		return err == nil && m[channel] == n
	})
}
