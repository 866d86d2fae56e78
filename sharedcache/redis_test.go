package sharedcache

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokengate/tokengate/internal/testutil"
)

// redisServer is a redis-server child process on a loopback port, for
// tests. It can be stopped and started again on the same port.
type redisServer struct {
	tb   testing.TB
	bin  string
	conf string
	addr string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server of its own on a free loopback port and
// stops it when the test ends. Without redis-server it skips the test,
// unless CI is set: there it fails, since CI must run these tests.
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is required in CI (apt-get install redis-server): %v", err)
		}
		tb.Skipf("redis-server not installed (apt-get install redis-server); skipping the tests against a real Redis: %v", err)
	}
	port := testutil.FreePort(tb)
	dir := tb.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\nlogfile %s\n",
		port, dir, filepath.Join(dir, "redis.log"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	s := &redisServer{tb: tb, bin: bin, conf: conf, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	s.start()
	tb.Cleanup(s.stop)
	return s
}

// url is the redis:// URL of the server.
func (s *redisServer) url() string { return "redis://" + s.addr + "/0" }

// start runs the server and waits until it answers PING.
func (s *redisServer) start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.bin, s.conf)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.pong() {
		if time.Now().After(deadline) {
			s.stop()
			s.tb.Fatalf("redis-server on %s did not answer PING within 10s", s.addr)
		}
		<-tick.C
	}
}

// pong reports whether the server answers PING.
func (s *redisServer) pong() bool {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// stop kills the server and waits for it to exit. It is a no-op when the
// server is not running.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// client is a plain go-redis client on the server, to look behind the
// Cache's back (PTTL, raw writes, PUBSUB NUMSUB).
func (s *redisServer) client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// waitSubscribed waits until n clients are subscribed to channel.
func waitSubscribed(tb testing.TB, rdb *redis.Client, channel string, n int64) {
	tb.Helper()
	testutil.WaitFor(tb, fmt.Sprintf("%d subscriber(s) on %s", n, channel), func() bool {
		m, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		return err == nil && m[channel] == n
	})
}
