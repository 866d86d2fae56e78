// Package proxyrun runs real third-party reverse proxies (nginx and Caddy,
// from Debian's packages) as child processes on loopback ports with
// generated configurations, and stops them by pid. It returns errors and
// leaves skipping, failing and cleaning up to its callers: internal/proxytest
// wraps it for tests, and the load test's -nginx mode uses it directly.
//
// A proxy listens on 127.0.0.1 only, keeps its configuration, pid file,
// temporary files and logs in a directory the caller owns, and runs in its
// own process group, so that Stop reaches its workers too.
package proxyrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartTimeout bounds how long a proxy may take to accept connections.
const StartTimeout = 15 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// ErrNotInstalled is returned by Lookup for a binary found nowhere.
var ErrNotInstalled = errors.New("proxyrun: not installed")

// Lookup returns the path of the named binary: from PATH, else from the
// sbin and bin directories where Debian installs it (a non-root PATH often
// lacks /usr/sbin, where nginx lives). The error wraps ErrNotInstalled.
func Lookup(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s (apt-get install %s)", ErrNotInstalled, name, name)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("proxyrun: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a running proxy. Its owner calls Stop.
type Proc struct {
	// Addr is the proxy's listening address, host:port on 127.0.0.1.
	Addr string
	// Dir holds its configuration and logs.
	Dir string

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	log      string        // the file the proxy's own output goes to
	stopOnce sync.Once
}

// URL returns "http://" + Addr.
func (p *Proc) URL() string { return "http://" + p.Addr }

// Pid returns the process id of the proxy (the leader of its group).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

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

// Stop sends SIGTERM to the proxy's process group and waits for the proxy
// to exit, killing the group when it does not go within five seconds. It
// may be called more than once.
func (p *Proc) Stop() {
	p.stopOnce.Do(func() {
		pgid := -p.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// start runs bin with args in dir and waits until addr accepts
// connections, ctx ends or StartTimeout passes. On error the process is
// stopped.
func start(ctx context.Context, dir, addr string, env []string, bin string, args ...string) (*Proc, error) {
	logPath := filepath.Join(dir, "output.log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("proxyrun: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("proxyrun: start %s: %w", bin, err)
	}
	p := &Proc{Addr: addr, Dir: dir, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { // ends when the process exits; Stop makes sure it does
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		dialCtx, dialCancel := context.WithTimeout(ctx, 200*time.Millisecond)
		c, err := d.DialContext(dialCtx, "tcp", addr)
		dialCancel()
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("proxyrun: %s exited before listening on %s:\n%s", filepath.Base(bin), addr, p.Log())
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("proxyrun: %s did not listen on %s: %w:\n%s", filepath.Base(bin), addr, ctx.Err(), p.Log())
		case <-tick.C:
		}
	}
}

// NginxConfig says how to run nginx.
type NginxConfig struct {
	// Bin is the nginx binary (see Lookup); required.
	Bin string
	// Dir is an existing directory for the configuration, the pid file,
	// temporary files and the error log; required. The caller removes it
	// after Stop.
	Dir string
	// HTTP is the body of the http block: upstreams and servers. Write
	// {{LISTEN}} where the server's listen address goes.
	HTTP string
	// Workers is worker_processes (0: 1).
	Workers int
}

// Nginx checks (nginx -t) and starts nginx with cfg.HTTP inside a generated
// global part (no daemon, pid, temporary paths and logs in cfg.Dir, no
// access log) on a free loopback port, and waits until it listens.
func Nginx(ctx context.Context, cfg NginxConfig) (*Proc, error) {
	if cfg.Bin == "" || cfg.Dir == "" {
		return nil, errors.New("proxyrun: nginx needs Bin and Dir")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`daemon off;
worker_processes %[3]d;
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
`, cfg.Dir, strings.ReplaceAll(cfg.HTTP, "{{LISTEN}}", addr), cfg.Workers)
	path := filepath.Join(cfg.Dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("proxyrun: %w", err)
	}
	if out, err := exec.CommandContext(ctx, cfg.Bin, "-t", "-q", "-p", cfg.Dir, "-c", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("proxyrun: nginx -t refused the generated configuration: %w\n%s\n%s", err, out, conf)
	}
	return start(ctx, cfg.Dir, addr, nil, cfg.Bin, "-p", cfg.Dir, "-c", path)
}

// CaddyConfig says how to run Caddy.
type CaddyConfig struct {
	// Bin is the caddy binary (see Lookup); required.
	Bin string
	// Dir is an existing directory for the Caddyfile, Caddy's state and
	// its output; required. The caller removes it after Stop.
	Dir string
	// Sites are Caddyfile site blocks. Write {{LISTEN}} for the site
	// address, e.g. "http://{{LISTEN}} { … }".
	Sites string
}

// Caddy starts Caddy with cfg.Sites after generated global options (no
// admin endpoint, no automatic HTTPS, state in cfg.Dir) on a free loopback
// port, and waits until it listens.
func Caddy(ctx context.Context, cfg CaddyConfig) (*Proc, error) {
	if cfg.Bin == "" || cfg.Dir == "" {
		return nil, errors.New("proxyrun: caddy needs Bin and Dir")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/data
}

%[2]s
`, cfg.Dir, strings.ReplaceAll(cfg.Sites, "{{LISTEN}}", addr))
	path := filepath.Join(cfg.Dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("proxyrun: %w", err)
	}
	env := []string{"HOME=" + cfg.Dir, "XDG_DATA_HOME=" + cfg.Dir + "/data", "XDG_CONFIG_HOME=" + cfg.Dir + "/config"}
	return start(ctx, cfg.Dir, addr, env, cfg.Bin, "run", "--config", path, "--adapter", "caddyfile")
}

// NginxAuthRequest is the http block of the README's nginx auth_request
// configuration: every location behind tokengate's /auth/request at
// tokengate, the claim headers set from its answer (an empty value drops
// the client's copy), its 503 kept a 503, and upstream as the service.
// extra holds more location blocks for the same server (the load test's
// unauthenticated /open/). It is the one copy the real-proxy tests and the
// load test use, so neither can drift from the other.
func NginxAuthRequest(tokengate, upstream, extra string) string {
	return `
    upstream tokengate { server ` + tokengate + `; keepalive 64; }
    upstream app { server ` + upstream + `; keepalive 64; }
    server {
        listen {{LISTEN}};

        location = /_tokengate {
            internal;
            proxy_pass http://tokengate/auth/request;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        # nginx answers 500 when auth_request gets anything but 2xx, 401
        # or 403; tokengate's 503 (token cannot be checked now) is turned
        # back into a 503 here.
        location @tokengate_unavailable {
            default_type application/json;
            add_header Retry-After 5 always;
            return 503 '{"detail":"authorization unavailable"}';
        }
` + extra + `
        location / {
            auth_request /_tokengate;
            error_page 500 = @tokengate_unavailable;
            auth_request_set $auth_subject $upstream_http_x_auth_subject;
            auth_request_set $auth_client_id $upstream_http_x_auth_client_id;
            auth_request_set $auth_scopes $upstream_http_x_auth_scopes;
            proxy_set_header X-Auth-Subject $auth_subject;
            proxy_set_header X-Auth-Client-Id $auth_client_id;
            proxy_set_header X-Auth-Scopes $auth_scopes;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }`
}
