// Package proxytest starts real third-party reverse proxies (nginx and
// Caddy, from Debian's packages) on loopback ports with generated
// configurations, and an upstream that echoes what it received, so that
// tests can put tokengate's decision endpoints behind the proxies users
// run. It is for tests only: nothing in tokengate's binary imports it.
//
// Every process a test starts listens on 127.0.0.1, lives in the test's
// temporary directory and is stopped by pid in tb.Cleanup. When a proxy's
// binary is missing the test is skipped, unless the CI environment
// variable is set: CI installs the packages, so there a missing binary
// fails the test instead of hiding a gap.
package proxytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a proxy may take to accept connections.
const startTimeout = 15 * time.Second

// Require returns the path of the named binary, skipping tb when it is not
// installed and failing it when CI is set.
func Require(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("proxytest: %s is not installed; .ci/run must install it", name)
	}
	tb.Skipf("proxytest: %s is not installed (apt-get install %s)", name, name)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxytest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Proc is a running proxy.
type Proc struct {
	// Addr is the proxy's listening address, host:port on 127.0.0.1.
	Addr string
	// Dir holds its configuration and logs.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	log  string // the file the proxy's own output goes to
}

// URL returns "http://" + Addr.
func (p *Proc) URL() string { return "http://" + p.Addr }

// Log returns what the proxy wrote to its output and error log so far, for
// failure messages.
func (p *Proc) Log() string {
	var b strings.Builder
	for _, f := range []string{p.log, filepath.Join(p.Dir, "error.log")} {
		if data, err := os.ReadFile(f); err == nil {
			b.Write(data)
		}
	}
	return b.String()
}

// start runs bin with args in dir, waits until addr accepts connections
// and registers the stop with tb.Cleanup.
func start(tb testing.TB, dir, addr string, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	logPath := filepath.Join(dir, "output.log")
	out, err := os.Create(logPath)
	if err != nil {
		tb.Fatalf("proxytest: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		tb.Fatalf("proxytest: start %s: %v", bin, err)
	}
	p := &Proc{Addr: addr, Dir: dir, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	tb.Cleanup(p.stop)

	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			tb.Fatalf("proxytest: %s exited before listening on %s:\n%s", filepath.Base(bin), addr, p.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("proxytest: %s did not listen on %s within %v:\n%s", filepath.Base(bin), addr, startTimeout, p.Log())
		}
	}
}

// stop sends SIGTERM to the proxy's process group and waits for it,
// killing it when it does not go within five seconds.
func (p *Proc) stop() {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Nginx starts nginx with an http block whose body is http (upstreams and
// servers; use {{LISTEN}} where the server's listen address goes). The
// global part (pid, temporary paths, logs, one worker) is generated.
func Nginx(tb testing.TB, http string) *Proc {
	tb.Helper()
	bin := Require(tb, "nginx")
	dir := tb.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, strings.ReplaceAll(http, "{{LISTEN}}", addr))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatalf("proxytest: %v", err)
	}
	if out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-c", path).CombinedOutput(); err != nil {
		tb.Fatalf("proxytest: nginx -t refused the generated configuration: %v\n%s\n%s", err, out, conf)
	}
	return start(tb, dir, addr, nil, bin, "-p", dir, "-c", path)
}

// Caddy starts Caddy with the Caddyfile site blocks in sites (use
// {{LISTEN}} for the site address, e.g. "http://{{LISTEN}} { … }"). The
// global options (no admin endpoint, no automatic HTTPS, state in the
// test's directory) are generated.
func Caddy(tb testing.TB, sites string) *Proc {
	tb.Helper()
	bin := Require(tb, "caddy")
	dir := tb.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/data
}

%[2]s
`, dir, strings.ReplaceAll(sites, "{{LISTEN}}", addr))
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatalf("proxytest: %v", err)
	}
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir + "/data", "XDG_CONFIG_HOME=" + dir + "/config"}
	return start(tb, dir, addr, env, bin, "run", "--config", path, "--adapter", "caddyfile")
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
