//go:build image

package imagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testpki"
)

const (
	itemsJSON = `[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`
	// shutdownTimeout is the containers' SHUTDOWN_TIMEOUT; stopTimeout,
	// the engine's wait before SIGKILL, is well above it and the drain.
	shutdownTimeout = 5 * time.Second
	stopTimeout     = 30
	mountDir        = "/etc/tokengate"
)

// engine runs the container engine named by ENGINE.
type engine struct {
	bin   string
	flags []string
	image string
}

func newEngine(t *testing.T) *engine {
	t.Helper()
	e := &engine{bin: os.Getenv("ENGINE"), flags: strings.Fields(os.Getenv("ENGINE_FLAGS")), image: os.Getenv("IMAGE")}
	if e.bin == "" {
		t.Fatal("ENGINE is not set: run `make image-test`, which finds podman or docker")
	}
	if e.image == "" {
		e.image = "tokengate:latest"
	}
	return e
}

// run runs one engine command and returns its trimmed standard output.
func (e *engine) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, e.bin, append(append([]string(nil), e.flags...), args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", e.bin, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// logs is what the container wrote, stdout and stderr (tokengate logs to
// stderr).
func (e *engine) logs(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.bin, append(append([]string(nil), e.flags...), "logs", name)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(%s logs %s: %v)\n%s", e.bin, name, err, out)
	}
	return string(out)
}

func (e *engine) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// container is one detached tokengate container on the host's network.
type container struct {
	e    *engine
	name string
	base string // http(s)://127.0.0.1:PORT
	http *http.Client
}

// start runs the image detached with engine options opts (-e, -v) and
// tokengate arguments args, listening on port, and removes it at cleanup.
func (e *engine) start(t *testing.T, scheme string, port int, client *http.Client, opts []string, args ...string) *container {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	c := &container{e: e, name: "tokengate-test-" + hex.EncodeToString(suffix[:]), base: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), http: client}
	runArgs := append([]string{"run", "-d", "--name", c.name, "--network", "host",
		"-e", "SHUTDOWN_TIMEOUT=" + shutdownTimeout.String()}, opts...)
	runArgs = append(append(runArgs, e.image), args...)
	e.must(t, runArgs...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container %s log:\n%s", c.name, e.logs(t, c.name))
		}
		_, _ = e.run(t, "rm", "-f", c.name)
	})
	c.waitHealthy(t)
	return c
}

// waitHealthy polls /healthz until the server answers (start-up of a
// process in another namespace offers no event to wait on).
func (c *container) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if r, err := c.http.Get(c.base + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			state, _ := c.e.run(t, "inspect", "--format", "{{.State.Status}} exit={{.State.ExitCode}}", c.name)
			t.Fatalf("%s did not answer /healthz within 60s (%s)", c.base, state)
		}
		<-tick.C
	}
}

// waitFor polls cond (the server offers no notification) until it holds
// or 30s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// stop sends SIGTERM through the engine's stop and checks the exit code
// and the log.
func (c *container) stop(t *testing.T) {
	t.Helper()
	c.http.CloseIdleConnections()
	began := time.Now()
	c.e.must(t, "stop", "-t", strconv.Itoa(stopTimeout), c.name)
	took := time.Since(began)
	code := c.e.must(t, "inspect", "--format", "{{.State.ExitCode}}", c.name)
	t.Logf("stop took %v, exit code %s", took.Round(time.Millisecond), code)
	if code != "0" {
		t.Errorf("exit code %s after SIGTERM, want 0 (137 would mean SIGKILL after %ds)", code, stopTimeout)
	}
	logs := c.e.logs(t, c.name)
	if !strings.Contains(logs, "tokengate: stopped") {
		t.Errorf("the log does not end with a clean stop:\n%s", logs)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request; authorization and form are optional.
func (c *container) do(t *testing.T, method, path, authorization string, form url.Values) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(id, secret)
	return req.Header.Get("Authorization")
}

// token gets an access token through tokengate's /token.
func (c *container) token(t *testing.T, form url.Values) string {
	t.Helper()
	a := c.do(t, http.MethodPost, "/token", basic("dev-client", "dev-secret"), form)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if a.status != 200 || json.Unmarshal([]byte(a.body), &tok) != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("POST /token = %d %s", a.status, a.body)
	}
	return tok.AccessToken
}

// walkthrough is the README's curl walkthrough, step by step, against c.
func walkthrough(t *testing.T, c *container) {
	t.Helper()
	tok := c.token(t, nil)
	other := c.token(t, url.Values{"scope": {"reports"}})
	steps := []struct {
		name, method, path, authorization string
		form                              url.Values
		status                            int
		body                              string // exact, or "" to skip
		contains                          string
		header, headerValue               string
	}{
		{name: "hello", method: "GET", path: "/", status: 200, body: `{"Hello":"World"}`},
		{name: "items without a token", method: "GET", path: "/items", status: 401, body: `{"detail":"Not authenticated"}`, header: "Www-Authenticate", headerValue: `Bearer realm="tokengate"`},
		{name: "items", method: "GET", path: "/items", authorization: "Bearer " + tok, status: 200, body: itemsJSON},
		{name: "item 2", method: "GET", path: "/items/2", authorization: "Bearer " + tok, status: 200, body: `{"id":2,"name":"blue square"}`},
		{name: "item 99", method: "GET", path: "/items/99", authorization: "Bearer " + tok, status: 404, body: `{"detail":"Item not found"}`},
		{name: "token with form credentials", method: "POST", path: "/token", form: url.Values{"client_id": {"dev-client"}, "client_secret": {"dev-secret"}, "scope": {"items"}}, status: 200, contains: `"scope":"items"`},
		{name: "wrong secret", method: "POST", path: "/token", authorization: basic("dev-client", "wrong-secret"), form: url.Values{}, status: 401, body: `{"error":"invalid_client","error_description":"client authentication failed"}`},
		{name: "token without the scope", method: "GET", path: "/items", authorization: "Bearer " + other, status: 403, body: `{"detail":"insufficient scope: items required"}`, header: "Www-Authenticate", headerValue: `Bearer realm="tokengate", error="insufficient_scope", scope="items"`},
		{name: "not a token", method: "GET", path: "/items", authorization: "Bearer not-a-token", status: 401, body: `{"detail":"malformed token"}`},
		{name: "healthz", method: "GET", path: "/healthz", status: 200, body: `{"status":"ok"}`},
		{name: "readyz", method: "GET", path: "/readyz", status: 200, body: `{"status":"ready"}`},
	}
	for _, s := range steps {
		a := c.do(t, s.method, s.path, s.authorization, s.form)
		switch {
		case a.status != s.status:
			t.Errorf("%s: %s %s = %d %s, want %d", s.name, s.method, s.path, a.status, a.body, s.status)
		case s.body != "" && a.body != s.body:
			t.Errorf("%s: body %s, want %s", s.name, a.body, s.body)
		case s.contains != "" && !strings.Contains(a.body, s.contains):
			t.Errorf("%s: body %s lacks %s", s.name, a.body, s.contains)
		case s.header != "" && a.header.Get(s.header) != s.headerValue:
			t.Errorf("%s: %s %q, want %q", s.name, s.header, a.header.Get(s.header), s.headerValue)
		}
	}
}

// freePort finds a port on 127.0.0.1 that is free now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mountable makes a directory the container's user (65532) can read.
func mountable(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func plainClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
}

func TestImage(t *testing.T) {
	e := newEngine(t)

	t.Run("size", func(t *testing.T) {
		maxMB := 40
		if v := os.Getenv("IMAGE_MAX_MB"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("IMAGE_MAX_MB %q: %v", v, err)
			}
			maxMB = n
		}
		size, err := strconv.ParseInt(e.must(t, "image", "inspect", "--format", "{{.Size}}", e.image), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("image %s: %.1f MB (bound %d MB)", e.image, float64(size)/1e6, maxMB)
		if size > int64(maxMB)*1_000_000 {
			t.Errorf("image is %d bytes, over the %d MB bound", size, maxMB)
		}
		user := e.must(t, "image", "inspect", "--format", "{{.Config.User}}", e.image)
		if user != "65532:65532" {
			t.Errorf("image user %q, want 65532:65532", user)
		}
	})

	t.Run("version", func(t *testing.T) {
		out := e.must(t, "run", "--rm", e.image, "--version")
		t.Logf("--version:\n%s", out)
		if !strings.HasPrefix(out, "tokengate ") || strings.Contains(out, "(devel)") || strings.Contains(out, "commit unknown") {
			t.Errorf("--version does not show stamped build information:\n%s", out)
		}
	})

	t.Run("dev walkthrough and SIGTERM", func(t *testing.T) {
		port := freePort(t)
		c := e.start(t, "http", port, plainClient(), nil,
			"--dev", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		walkthrough(t, c)
		c.stop(t)
	})

	// One test CA signs the host issuer's certificate and tokengate's own.
	ca := testpki.NewCA(t, "tokengate image test CA")
	iss, err := devissuer.Start(devissuer.Config{
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1").TLS(t)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()

	t.Run("TLS listener, https issuer trusted through SSL_CERT_FILE, SIGHUP", func(t *testing.T) {
		dir := mountable(t)
		testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
		first, second := ca.Issue(t, "127.0.0.1"), ca.Issue(t, "127.0.0.1")
		first.Write(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		port := freePort(t)
		client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
		c := e.start(t, "https", port, client, []string{
			"-v", dir + ":" + mountDir + ":ro",
			"-e", "SSL_CERT_FILE=" + mountDir + "/ca.pem",
			"-e", "OKTA_ISSUER=" + iss.Issuer(),
			"-e", "TLS_CERT_FILE=" + mountDir + "/tls.crt",
			"-e", "TLS_KEY_FILE=" + mountDir + "/tls.key",
			"-e", fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port),
			"-e", "SHUTDOWN_DRAIN_DELAY=1s",
		})
		waitFor(t, "/readyz 200 (keys from the https issuer)", func() bool {
			return c.do(t, "GET", "/readyz", "", nil).status == 200
		})
		walkthrough(t, c)

		serial := func() *big.Int {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", strings.TrimPrefix(c.base, "https://"), &tls.Config{RootCAs: ca.Pool()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].SerialNumber
		}
		if serial().Cmp(first.Cert.SerialNumber) != 0 {
			t.Fatal("not serving the mounted certificate")
		}
		second.Write(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		e.must(t, "kill", "--signal", "HUP", c.name)
		waitFor(t, "the certificate re-read on SIGHUP", func() bool { return serial().Cmp(second.Cert.SerialNumber) == 0 })
		if a := c.do(t, "GET", "/readyz", "", nil); a.status != 200 {
			t.Errorf("after SIGHUP: /readyz = %d %s", a.status, a.body)
		}
		c.stop(t)
	})

	t.Run("https issuer without the CA", func(t *testing.T) {
		port := freePort(t)
		c := e.start(t, "http", port, plainClient(), []string{
			"-e", "OKTA_ISSUER=" + iss.Issuer(),
			"-e", fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port),
		})
		// /readyz tells unauthenticated callers only the reason class; the
		// TLS detail is in the log.
		var last answer
		waitFor(t, "/readyz to report the failed first key fetch", func() bool {
			last = c.do(t, "GET", "/readyz", "", nil)
			return last.status == 503 && strings.Contains(last.body, "authorization server unavailable")
		})
		t.Logf("/readyz: %d %s", last.status, last.body)
		if strings.Contains(last.body, "x509") || strings.Contains(last.body, "127.0.0.1") {
			t.Errorf("/readyz 503 leaks the error chain: %s", last.body)
		}
		if logs := e.logs(t, c.name); !strings.Contains(logs, "certificate signed by unknown authority") {
			t.Errorf("the log does not name the TLS failure:\n%s", logs)
		}
		c.stop(t)
	})
}
