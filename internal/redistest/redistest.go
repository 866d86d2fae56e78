// Package redistest runs a redis-server of its own (Debian's package) on a
// free loopback port, for the tests and the load test that need a real
// Redis. Production code never imports it.
//
// A Server is a child process with a throw-away configuration (no
// persistence, loopback only); Stop kills it by its pid and waits for it,
// and Start brings it back on the same port, so that tests can take Redis
// away mid-run.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrNotInstalled is returned by Start when no redis-server is on PATH.
var ErrNotInstalled = errors.New("redistest: redis-server not installed (apt-get install redis-server)")

// startTimeout bounds how long Start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server child process on a loopback port. Its methods
// are safe for concurrent use.
type Server struct {
	bin  string
	dir  string // holds the configuration and the log
	conf string
	addr string

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd  // nil while stopped
}

// Launch starts a redis-server on a free loopback port and waits until it
// answers PING. The caller stops it with Close.
func Launch() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redistest: finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s := &Server{bin: bin, dir: dir, conf: filepath.Join(dir, "redis.conf"), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\nlogfile %s\n",
		port, dir, filepath.Join(dir, "redis.log"))
	if err := os.WriteFile(s.conf, []byte(body), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("redistest: %w", err)
	}
	if err := s.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// New is Launch for a test: the server stops when the test ends. Without
// redis-server the test is skipped, unless the environment variable CI is
// set: there it fails, since CI must run the tests against a real Redis.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := Launch()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		tb.Skipf("skipping the tests against a real Redis: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.addr + "/0" }

// Start runs the server (again, on the same port) and waits until it
// answers PING. It does nothing when the server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.bin, s.conf)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: starting redis-server: %w", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.pong() {
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redistest: redis-server on %s did not answer PING within %s", s.addr, startTimeout)
		}
		<-tick.C
	}
	return nil
}

// Stop kills the server by its pid and waits for it to exit. It does
// nothing when the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// pong reports whether the server answers PING.
func (s *Server) pong() bool {
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
