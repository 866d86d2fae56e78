// Package proxytest starts real third-party reverse proxies (nginx and
// Caddy, from Debian's packages) on loopback ports with generated
// configurations, and an upstream that echoes what it received, so that
// tests can put tokengate's decision endpoints behind the proxies users
// run. It is for tests only: nothing in tokengate's binary imports it.
//
// Every process a test starts listens on 127.0.0.1, lives in the test's
// temporary directory and is stopped by pid in tb.Cleanup; running the
// processes is internal/proxyrun's job. When a proxy's binary is missing
// the test is skipped, unless the CI environment variable is set: CI
// installs the packages, so there a missing binary fails the test instead
// of hiding a gap.
package proxytest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokengate/tokengate/internal/proxyrun"
)

// Require returns the path of the named binary, skipping tb when it is not
// installed and failing it when CI is set.
func Require(tb testing.TB, name string) string {
	tb.Helper()
	path, err := proxyrun.Lookup(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("proxytest: %s is not installed; .ci/run must install it", name)
	}
	tb.Skipf("proxytest: %v", err)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := proxyrun.FreePort()
	if err != nil {
		tb.Fatalf("proxytest: %v", err)
	}
	return port
}

// Proc is a running proxy (proxyrun.Proc): Addr, Dir, URL and Log.
type Proc = proxyrun.Proc

// Nginx starts nginx with an http block whose body is http (upstreams and
// servers; use {{LISTEN}} where the server's listen address goes). The
// global part (pid, temporary paths, logs, one worker) is generated; the
// process is stopped by tb.Cleanup.
func Nginx(tb testing.TB, http string) *Proc {
	tb.Helper()
	p, err := proxyrun.Nginx(context.Background(), proxyrun.NginxConfig{Bin: Require(tb, "nginx"), Dir: tb.TempDir(), HTTP: http})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	return p
}

// Caddy starts Caddy with the Caddyfile site blocks in sites (use
// {{LISTEN}} for the site address, e.g. "http://{{LISTEN}} { … }"). The
// global options (no admin endpoint, no automatic HTTPS, state in the
// test's directory) are generated; the process is stopped by tb.Cleanup.
func Caddy(tb testing.TB, sites string) *Proc {
	tb.Helper()
	p, err := proxyrun.Caddy(context.Background(), proxyrun.CaddyConfig{Bin: Require(tb, "caddy"), Dir: tb.TempDir(), Sites: sites})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	return p
}

// Echo is an upstream that answers every request with a JSON Echoed of what
// it received, and counts the requests.
type Echo struct {
	srv  *httptest.Server
	hits atomic.Int64
}

// Echoed is what Echo answers: the request as the upstream saw it.
type Echoed struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"`
}

// NewEcho starts an Echo on a loopback port, closed by tb.Cleanup.
func NewEcho(tb testing.TB) *Echo {
	tb.Helper()
	e := &Echo{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Echoed{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header})
	}))
	tb.Cleanup(e.srv.Close)
	return e
}

// NewSilent starts an upstream on a loopback port that takes every
// request and never answers it while the test runs (a hung service), and
// returns its URL; tb.Cleanup releases the requests and closes it.
func NewSilent(tb testing.TB) string {
	tb.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	tb.Cleanup(func() { close(release); srv.Close() })
	return srv.URL
}

// Pattern returns a reader of n bytes of a fixed sequence (byte i is i mod
// 251), for streaming bodies whose digest a test can compute again.
func Pattern(n int64) io.Reader { return &pattern{n: n} }

// PatternSum returns the SHA-256 of Pattern(n)'s bytes.
func PatternSum(n int64) [sha256.Size]byte {
	h := sha256.New()
	_, _ = io.Copy(h, Pattern(n))
	var s [sha256.Size]byte
	copy(s[:], h.Sum(nil))
	return s
}

type pattern struct{ n, off int64 }

func (r *pattern) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	for i := range p {
		p[i] = byte((r.off + int64(i)) % 251)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// Addr returns the upstream's host:port.
func (e *Echo) Addr() string { return strings.TrimPrefix(e.srv.URL, "http://") }

// Hits returns how many requests reached the upstream.
func (e *Echo) Hits() int64 { return e.hits.Load() }

// Decode parses an Echo answer.
func Decode(body []byte) (Echoed, error) {
	var e Echoed
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("proxytest: not an echo answer: %w: %q", err, body)
	}
	if e.Method == "" {
		return e, errors.New("proxytest: not an echo answer: no method")
	}
	return e, nil
}
