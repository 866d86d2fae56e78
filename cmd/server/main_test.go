package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil"
)

const itemsJSON = `[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock is the wall clock plus an offset that tests advance; it stays
// consistent with the development issuer's real-time iat and exp.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// testServer is a tokengate started by runWith on a free loopback port.
type testServer struct {
	*app.App
	base   string // http://127.0.0.1:PORT
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int // receives run's exit code
	client *http.Client
	hup    chan os.Signal // run's reload channel: what SIGHUP sends
}

// startServer runs tokengate with args (plus --listen 127.0.0.1:0) and
// env, waits until it accepts connections, and stops it at cleanup,
// checking that it exits 0.
func startServer(tb testing.TB, args []string, env map[string]string, now func() time.Time) *testServer {
	tb.Helper()
	return startServerWith(tb, options{args: args, getenv: func(k string) string { return env[k] }, now: now})
}

// startServerWith is startServer with o's args, getenv, now and
// dotenvPath; the rest of o is startServer's.
func startServerWith(tb testing.TB, o options) *testServer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		cancel: cancel,
		done:   make(chan int, 1),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}},
		hup:    make(chan os.Signal), // unbuffered: a send returns once run has taken it
	}
	started := make(chan *app.App, 1)
	go func() {
		s.done <- runWith(ctx, options{
			args:       append([]string{"--listen", "127.0.0.1:0", "--log-level", "debug"}, o.args...),
			getenv:     o.getenv,
			stdout:     s.stdout,
			stderr:     s.stderr,
			dotenvPath: o.dotenvPath,
			now:        o.now,
			started:    func(a *app.App) { started <- a },
			reload:     s.hup,
		})
	}()
	select {
	case a := <-started:
		s.App = a
	case code := <-s.done:
		cancel()
		tb.Fatalf("tokengate exited with %d before serving; stderr:\n%s", code, s.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		tb.Fatalf("tokengate did not start; stderr:\n%s", s.stderr)
	}
	s.base = s.URL()
	tb.Cleanup(func() {
		s.client.CloseIdleConnections()
		if code := s.stop(tb); code != 0 {
			tb.Errorf("exit code %d, want 0", code)
		}
		if tb.Failed() {
			tb.Logf("tokengate log:\n%s", s.stderr)
		}
	})
	return s
}

// stop cancels run's context and returns its exit code (once).
func (s *testServer) stop(tb testing.TB) int {
	tb.Helper()
	s.cancel()
	select {
	case code, ok := <-s.done:
		if !ok {
			return 0 // stopped earlier
		}
		close(s.done)
		return code
	case <-time.After(30 * time.Second):
		tb.Fatal("tokengate did not stop within 30s")
		return -1
	}
}

// keysReady fetches the JWKS now, so that tests do not race the
// background refresher.
func (s *testServer) keysReady(tb testing.TB) {
	tb.Helper()
	if s.KeySet() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.KeySet().Refresh(ctx); err != nil {
		tb.Fatalf("keys: %v", err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (s *testServer) do(tb testing.TB, req *http.Request) response {
	tb.Helper()
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// get sends GET path with token as bearer (none when empty).
func (s *testServer) get(tb testing.TB, path, token string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(tb, req)
}

// postToken sends POST /token with HTTP Basic credentials (when id is not
// empty) and the form fields.
func (s *testServer) postToken(tb testing.TB, id, secret string, form url.Values) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return s.do(tb, req)
}

// token gets an access token through /token.
func (s *testServer) token(tb testing.TB, id, secret string, form url.Values) string {
	tb.Helper()
	r := s.postToken(tb, id, secret, form)
	if r.status != http.StatusOK {
		tb.Fatalf("/token: %d %s", r.status, r.body)
	}
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.AccessToken == "" {
		tb.Fatalf("/token body %q: %v", r.body, err)
	}
	return body.AccessToken
}

// startIssuer starts a development issuer that the test controls (faults,
// revocation, stop) and closes it at cleanup.
func startIssuer(tb testing.TB) *devissuer.Issuer {
	tb.Helper()
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = iss.Close() })
	return iss
}

// issuerArgs points tokengate at iss, with the dev client as tokengate's
// own introspection credentials.
func issuerArgs(iss *devissuer.Issuer, extra ...string) []string {
	return append([]string{
		"--okta-issuer", iss.Issuer(),
		"--okta-client-id", devissuer.DefaultClientID,
		"--okta-client-secret", devissuer.DefaultClientSecret,
	}, extra...)
}

// wantStatus fails unless r has the status.
func wantStatus(tb testing.TB, what string, r response, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
}

// configCase is one invocation that must exit before serving.
type configCase struct {
	name   string
	args   []string
	env    map[string]string
	dotenv string
	code   int
	want   []string // substrings of the one stderr line
}

func (tc configCase) run(t *testing.T) {
	var stdout, stderr bytes.Buffer
	path := ""
	if tc.dotenv != "" {
		path = filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(path, []byte(tc.dotenv), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code := runWith(context.Background(), options{
		args:       tc.args,
		getenv:     func(k string) string { return tc.env[k] },
		stdout:     &stdout,
		stderr:     &stderr,
		dotenvPath: path,
	})
	if code != tc.code {
		t.Fatalf("exit code %d, want %d; stderr %q", code, tc.code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout not empty: %q", stdout.String())
	}
	line := stderr.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Errorf("stderr is not exactly one line: %q", line)
	}
	if !strings.HasPrefix(line, "tokengate: config: ") {
		t.Errorf("stderr %q does not start with tokengate: config:", line)
	}
	for _, w := range tc.want {
		if !strings.Contains(line, w) {
			t.Errorf("stderr %q does not contain %q", line, w)
		}
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	noIssuers := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(noIssuers, []byte("default: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	remoteIssuer := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(remoteIssuer, []byte("issuers:\n  - name: partner\n    issuer: https://partner.example.com\n    mode: remote\n    client_id_env: PARTNER_ID\n    client_secret_env: PARTNER_SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []configCase{
		{name: "no issuer suggests dev", code: 2, want: []string{"OKTA_ISSUER", "--dev"}},
		{name: "insecure issuer", env: map[string]string{"OKTA_ISSUER": "http://example.okta.com/oauth2/default"}, code: 2, want: []string{"OKTA_ISSUER", "https"}},
		{name: "bad duration", args: []string{"--dev"}, env: map[string]string{"CLOCK_LEEWAY": "sixty"}, code: 2, want: []string{"CLOCK_LEEWAY", `"sixty"`, "duration"}},
		// The cache sizes its counters from the bound at start: a bound of
		// exabytes must be a configuration error, not a makeslice panic.
		{name: "cache of exabytes", args: []string{"--dev", "--listen", "127.0.0.1:0"}, env: map[string]string{"CACHE_MAX_COST": "4294967296GiB"}, code: 2, want: []string{"CACHE_MAX_COST", "at most 64GiB"}},
		{name: "bad mode", args: []string{"--dev", "--validation-mode", "psychic"}, code: 2, want: []string{"VALIDATION_MODE", "local, remote or hybrid"}},
		{name: "remote without credentials", env: map[string]string{"OKTA_ISSUER": "https://example.okta.com/oauth2/default", "VALIDATION_MODE": "remote"}, code: 2, want: []string{"OKTA_CLIENT_ID"}},
		{name: "dev on all interfaces", args: []string{"--dev", "--listen", "0.0.0.0:8000"}, code: 2, want: []string{"LISTEN_ADDR", "loopback"}},
		{name: "admin listener off loopback", args: []string{"--dev", "--admin-addr", "0.0.0.0:6060"}, code: 2, want: []string{"ADMIN_ADDR", "loopback", "ADMIN_ALLOW_NON_LOOPBACK"}},
		{name: "unknown flag", args: []string{"--verbose"}, code: 2, want: []string{"flag provided but not defined"}},
		// Only the policy file says that OKTA_ISSUER is needed after all,
		// or which variables hold an issuer's credentials.
		{name: "policy file without issuers, no issuer", args: []string{"--listen", "127.0.0.1:0", "--policy-file", noIssuers}, code: 2, want: []string{"OKTA_ISSUER"}},
		{name: "introspecting issuer without its secret", args: []string{"--listen", "127.0.0.1:0", "--policy-file", remoteIssuer}, env: map[string]string{"PARTNER_ID": "id"}, code: 2, want: []string{"PARTNER_SECRET", "partner", "line 2"}},
		// Only the policy file says that no issuer introspects.
		{name: "redis with a policy file but no introspection", args: []string{"--listen", "127.0.0.1:0", "--policy-file", noIssuers}, env: map[string]string{
			"OKTA_ISSUER": "https://example.okta.com/oauth2/default", "REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_SIGNING_KEY": strings.Repeat("k", 32)}, code: 2, want: []string{"REDIS_URL", "VALIDATION_MODE=local"}},
		{name: "malformed dotenv", dotenv: "OKTA_ISSUER=https://example.okta.com/oauth2/default\nBAD LINE\n", code: 2, want: []string{".env", "line 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestHelpExits0(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runWith(context.Background(), options{args: []string{"-h"}, stdout: &stdout, stderr: &stderr}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, w := range []string{"OKTA_ISSUER", "--dev", "VALIDATION_MODE"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("usage lacks %s", w)
		}
	}
}

func TestListenFailureExits1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stderr syncBuffer
	code := runWith(context.Background(), options{
		args:   []string{"--dev", "--listen", ln.Addr().String()},
		getenv: func(string) string { return "" },
		stderr: &stderr,
	})
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "listen on") {
		t.Errorf("log does not say why: %s", stderr.String())
	}
}

// TestDevEndToEnd drives `tokengate --dev` through every row of the
// endpoint table, as a user following the README would.
func TestDevEndToEnd(t *testing.T) {
	s := startServer(t, []string{"--dev"}, nil, nil)
	s.keysReady(t)

	banner := s.stdout.String()
	wantCurl := "curl -s -X POST " + s.base + "/token -u dev-client:dev-secret"
	if !strings.Contains(banner, wantCurl) {
		t.Errorf("banner lacks %q:\n%s", wantCurl, banner)
	}
	if !strings.Contains(banner, "curl -s "+s.base+"/items -H \"Authorization: Bearer $(") {
		t.Errorf("banner lacks the /items curl line:\n%s", banner)
	}

	basic := s.token(t, "dev-client", "dev-secret", nil)
	form := s.token(t, "", "", url.Values{"client_id": {"dev-client"}, "client_secret": {"dev-secret"}, "grant_type": {"client_credentials"}})
	noItems := s.token(t, "dev-client", "dev-secret", url.Values{"scope": {"reports"}})

	type row struct {
		name, method, path, token string
		status                    int
		body                      string // exact, when set
		contains                  []string
		header                    map[string]string // substrings of headers
	}
	rows := []row{
		{name: "hello", path: "/", status: 200, body: `{"Hello":"World"}`},
		{name: "items with basic token", path: "/items", token: basic, status: 200, body: itemsJSON},
		{name: "items with form token", path: "/items", token: form, status: 200, body: itemsJSON},
		{name: "item 1", path: "/items/1", token: basic, status: 200, body: `{"id":1,"name":"red ball"}`},
		{name: "item 3", path: "/items/3", token: basic, status: 200, body: `{"id":3,"name":"purple ellipse"}`},
		{name: "item 99", path: "/items/99", token: basic, status: 404, body: `{"detail":"Item not found"}`},
		{name: "item abc", path: "/items/abc", token: basic, status: 422, contains: []string{`"detail"`}},
		{name: "healthz", path: "/healthz", status: 200},
		{name: "readyz", path: "/readyz", status: 200},
		{name: "items without token", path: "/items", status: 401, header: map[string]string{"WWW-Authenticate": `Bearer realm="tokengate"`}},
		{name: "items with garbage token", path: "/items", token: "not.a.jwt", status: 401, header: map[string]string{"WWW-Authenticate": `error="invalid_token"`}},
		{name: "items without the scope", path: "/items", token: noItems, status: 403, header: map[string]string{"WWW-Authenticate": `error="insufficient_scope"`}, contains: []string{`"detail"`}},
		{name: "item without the scope", path: "/items/1", token: noItems, status: 403, header: map[string]string{"WWW-Authenticate": `scope="items"`}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := s.get(t, r.path, r.token)
			wantStatus(t, r.path, got, r.status)
			if r.body != "" && got.body != r.body {
				t.Errorf("body %s, want %s", got.body, r.body)
			}
			for _, c := range r.contains {
				if !strings.Contains(got.body, c) {
					t.Errorf("body %s lacks %s", got.body, c)
				}
			}
			for h, v := range r.header {
				if !strings.Contains(got.header.Get(h), v) {
					t.Errorf("%s: %q lacks %q", h, got.header.Get(h), v)
				}
			}
			if ct := got.header.Get("Content-Type"); r.body != "" && !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	t.Run("token response is not cached", func(t *testing.T) {
		r := s.postToken(t, "dev-client", "dev-secret", nil)
		wantStatus(t, "/token", r, 200)
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
	})
	t.Run("wrong secret relays the issuer's 401", func(t *testing.T) {
		r := s.postToken(t, "dev-client", "wrong-secret", nil)
		wantStatus(t, "/token", r, 401)
		if !strings.Contains(r.body, "invalid_client") {
			t.Errorf("body %s: want the issuer's invalid_client", r.body)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		r := s.postToken(t, "", "", nil)
		wantStatus(t, "/token", r, 401)
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("other grant types refused", func(t *testing.T) {
		r := s.postToken(t, "dev-client", "dev-secret", url.Values{"grant_type": {"password"}})
		wantStatus(t, "/token", r, 400)
		if r.body != `{"error":"unsupported_grant_type"}` {
			t.Errorf("body %s", r.body)
		}
	})
	t.Run("secrets and tokens stay out of the log", func(t *testing.T) {
		log := s.stderr.String()
		for _, secret := range []string{basic, form, noItems, "wrong-secret"} {
			if strings.Contains(log, secret) {
				t.Errorf("log contains a token or secret")
			}
		}
	})
}

// TestModesEndToEnd runs /token then /items in each validation mode.
func TestModesEndToEnd(t *testing.T) {
	for _, mode := range []string{"local", "remote", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, []string{"--dev", "--validation-mode", mode}, nil, nil)
			s.keysReady(t)
			tok := s.token(t, "dev-client", "dev-secret", nil)
			for range 3 {
				r := s.get(t, "/items", tok)
				wantStatus(t, "/items", r, 200)
				if r.body != itemsJSON {
					t.Errorf("body %s", r.body)
				}
				s.Cache().Wait() // ristretto applies writes asynchronously
			}
			wantStatus(t, "/readyz", s.get(t, "/readyz", ""), 200)
			introspections := s.Dev().Counts().Introspect
			if mode == "local" && introspections != 0 {
				t.Errorf("local mode introspected %d times", introspections)
			}
			if mode != "local" && introspections != 1 {
				t.Errorf("%s mode: %d introspections for one token used 3 times, want 1", mode, introspections)
			}
			s.Cache().Wait()
			if st := s.Cache().Stats(); st.Hits < 2 {
				t.Errorf("cache hits %d, want at least 2", st.Hits)
			}
		})
	}
}

// TestIssuerDownAtStart: not ready and 503 (never 401) until the keys can
// be fetched; ready and 200 once the issuer is back.
func TestIssuerDownAtStart(t *testing.T) {
	iss := startIssuer(t)
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := iss.Stop(); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	s := startServer(t, issuerArgs(iss), nil, clock.Now)

	r := s.get(t, "/readyz", "")
	wantStatus(t, "/readyz", r, 503)
	// Anyone may ask /readyz: it names the class of reason, never the
	// issuer's address (the log has that).
	if r.body != `{"detail":"not ready: authorization server unavailable"}` && r.body != `{"detail":"not ready: keys not loaded yet"}` {
		t.Errorf("/readyz body %s, want a fixed not-ready reason", r.body)
	}
	r = s.get(t, "/items", tok)
	wantStatus(t, "/items", r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantStatus(t, "/token", s.postToken(t, "dev-client", "dev-secret", nil), 503)

	// The issuer comes back; past discovery's retry interval the keys load.
	if err := iss.Restart(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	s.keysReady(t)
	wantStatus(t, "/readyz after restart", s.get(t, "/readyz", ""), 200)
	wantStatus(t, "/items after restart", s.get(t, "/items", tok), 200)
}

// TestIssuerDownAfterStart: the last good keys keep validating.
func TestIssuerDownAfterStart(t *testing.T) {
	iss := startIssuer(t)
	s := startServer(t, issuerArgs(iss), nil, nil)
	s.keysReady(t)
	used := s.token(t, "dev-client", "dev-secret", nil)
	unused, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "/items", s.get(t, "/items", used), 200)

	if err := iss.Stop(); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "/items, cached token", s.get(t, "/items", used), 200)
	r := s.get(t, "/items", unused)
	wantStatus(t, "/items, new token verified with kept keys", r, 200)
	if r.body != itemsJSON {
		t.Errorf("body %s", r.body)
	}
	wantStatus(t, "/readyz", s.get(t, "/readyz", ""), 200)
	wantStatus(t, "/token with the issuer down", s.postToken(t, "dev-client", "dev-secret", nil), 502)
}

// TestRevocation checks how soon each mode sees a revoked token.
func TestRevocation(t *testing.T) {
	t.Run("remote without cache rejects at once", func(t *testing.T) {
		iss := startIssuer(t)
		s := startServer(t, issuerArgs(iss, "--validation-mode", "remote", "--introspection-cache-ttl", "0"), nil, nil)
		tok := s.token(t, "dev-client", "dev-secret", nil)
		wantStatus(t, "/items", s.get(t, "/items", tok), 200)
		wantStatus(t, "/items", s.get(t, "/items", tok), 200)
		iss.Revoke(tok)
		r := s.get(t, "/items", tok)
		wantStatus(t, "/items after revoke", r, 401)
		if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
		if n := iss.Counts().Introspect; n != 3 {
			t.Errorf("%d introspections, want one per request (3)", n)
		}
	})

	t.Run("remote with cache TTL rejects within it", func(t *testing.T) {
		iss := startIssuer(t)
		clock := &fakeClock{}
		s := startServer(t, issuerArgs(iss, "--validation-mode", "remote", "--introspection-cache-ttl", "30s"), nil, clock.Now)
		tok := s.token(t, "dev-client", "dev-secret", nil)
		wantStatus(t, "/items", s.get(t, "/items", tok), 200)
		s.Cache().Wait()
		iss.Revoke(tok)
		clock.Advance(29 * time.Second)
		wantStatus(t, "/items within the TTL (cached)", s.get(t, "/items", tok), 200)
		clock.Advance(2 * time.Second)
		wantStatus(t, "/items past the TTL", s.get(t, "/items", tok), 401)
		if n := iss.Counts().Introspect; n != 2 {
			t.Errorf("%d introspections, want 2", n)
		}
	})

	t.Run("hybrid rejects within REVALIDATE_AFTER plus a round trip", func(t *testing.T) {
		iss := startIssuer(t)
		clock := &fakeClock{}
		s := startServer(t, issuerArgs(iss, "--validation-mode", "hybrid", "--revalidate-after", "30s"), nil, clock.Now)
		s.keysReady(t)
		tok := s.token(t, "dev-client", "dev-secret", nil)
		wantStatus(t, "/items", s.get(t, "/items", tok), 200)
		s.Cache().Wait()
		if n := iss.Counts().Introspect; n != 1 {
			t.Fatalf("%d introspections after first use, want 1", n)
		}
		iss.Revoke(tok)
		wantStatus(t, "/items before REVALIDATE_AFTER", s.get(t, "/items", tok), 200)

		// Past REVALIDATE_AFTER, a slow issuer: the request is still served
		// from the cache at once (a hit that did not wait for the re-check,
		// which would have found the token revoked) while one background
		// introspection runs.
		iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: 2 * time.Second})
		clock.Advance(31 * time.Second)
		before := s.Cache().Stats()
		wantStatus(t, "/items past REVALIDATE_AFTER", s.get(t, "/items", tok), 200)
		after := s.Cache().Stats()
		if after.Hits != before.Hits+1 || after.StaleWaits != before.StaleWaits || after.Revoked != 0 {
			t.Errorf("the request past REVALIDATE_AFTER waited on the issuer: stats before %+v, after %+v", before, after)
		}
		s.Cache().Wait() // the background re-check, one round trip
		if n := iss.Counts().Introspect; n != 2 {
			t.Errorf("%d introspections, want 2", n)
		}
		iss.ClearFaults()
		wantStatus(t, "/items after the re-check", s.get(t, "/items", tok), 401)
	})

	t.Run("remote: concurrent requests with one new token introspect once", func(t *testing.T) {
		iss := startIssuer(t)
		s := startServer(t, issuerArgs(iss, "--validation-mode", "remote"), nil, nil)
		tok := s.token(t, "dev-client", "dev-secret", nil)
		// The introspection is held long enough for all 100 requests to
		// join it even on a loaded machine; the test checks below that they
		// did join (the cache's miss count) before it answered.
		iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: 3 * time.Second})
		misses := s.Cache().Stats().Misses
		var wg sync.WaitGroup
		statuses := make([]int, 100)
		for n := range statuses {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, s.base+"/items", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := s.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[n] = resp.StatusCode
			})
		}
		testutil.WaitFor(t, "100 requests to join one validation", func() bool {
			return s.Cache().Stats().Misses-misses >= 100 || iss.Counts().Introspect > 1
		})
		joined := iss.Counts().Introspect <= 1
		wg.Wait()
		if !joined {
			t.Error("a second introspection started before all requests had joined the first")
		}
		for n, st := range statuses {
			if st != 200 {
				t.Errorf("request %d: status %d", n, st)
			}
		}
		if c := iss.Counts().Introspect; c != 1 {
			t.Errorf("%d introspections for 100 concurrent requests, want 1", c)
		}
	})
}

// TestGracefulShutdown: an in-flight request finishes, run returns 0, and
// the port no longer accepts connections.
func TestGracefulShutdown(t *testing.T) {
	iss := startIssuer(t)
	s := startServer(t, issuerArgs(iss), nil, nil)
	iss.SetFault(devissuer.EndpointToken, devissuer.Fault{Latency: 500 * time.Millisecond})

	result := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/token", strings.NewReader(""))
		req.SetBasicAuth("dev-client", "dev-secret")
		resp, err := s.client.Do(req)
		if err != nil {
			result <- response{status: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- response{status: resp.StatusCode, body: string(b)}
	}()
	testutil.WaitFor(t, "the /token call to reach the issuer", func() bool { return iss.Counts().Token == 1 })

	if code := s.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	r := <-result
	wantStatus(t, "in-flight /token", r, 200)
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("port still accepts connections after stop")
	}
}

// TestShutdownIsBounded: a request stuck longer than SHUTDOWN_TIMEOUT,
// in the /token relay or in an introspection (whose fasthttp call cannot be
// cancelled, and which the cache's teardown would otherwise wait for), does
// not hold the process: run returns 0 soon after the timeout, long before
// the stuck call's own bound, and the log says what was cut off.
func TestShutdownIsBounded(t *testing.T) {
	cases := []struct {
		name     string
		endpoint devissuer.Endpoint
		args     []string
		send     func(s *testServer, iss *devissuer.Issuer) (*http.Request, error)
		reached  func(devissuer.Counts) bool
		logs     []string
	}{
		{
			name:     "token relay",
			endpoint: devissuer.EndpointToken,
			send: func(s *testServer, _ *devissuer.Issuer) (*http.Request, error) {
				req, err := http.NewRequest(http.MethodPost, s.base+"/token", strings.NewReader(""))
				if err == nil {
					req.SetBasicAuth("dev-client", "dev-secret")
				}
				return req, err
			},
			reached: func(c devissuer.Counts) bool { return c.Token == 1 },
			logs:    []string{"did not finish in time"},
		},
		{
			name:     "introspection",
			endpoint: devissuer.EndpointIntrospect,
			args:     []string{"--validation-mode", "remote", "--introspection-timeout", "1m"},
			send: func(s *testServer, iss *devissuer.Issuer) (*http.Request, error) {
				tok, err := iss.Mint(devissuer.MintOptions{})
				if err != nil {
					return nil, err
				}
				req, err := http.NewRequest(http.MethodGet, s.base+"/items", nil)
				if err == nil {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				return req, err
			},
			reached: func(c devissuer.Counts) bool { return c.Introspect == 1 },
			logs:    []string{"did not finish in time", "validations still in flight at the shutdown deadline"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iss := startIssuer(t)
			s := startServer(t, issuerArgs(iss, append([]string{"--shutdown-timeout", "200ms"}, tc.args...)...), nil, nil)
			// Longer than anything here waits: only the issuer's Close at
			// cleanup ends it.
			iss.SetFault(tc.endpoint, devissuer.Fault{Latency: time.Hour})
			req, err := tc.send(s, iss)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				if resp, err := s.client.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			testutil.WaitFor(t, "the call to reach the issuer", func() bool { return tc.reached(iss.Counts()) })
			start := time.Now()
			if code := s.stop(t); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			// A sanity bound, far below the stuck call's own (1h, and 1m
			// for the introspection client): only the shutdown ended it.
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("stop took %v with SHUTDOWN_TIMEOUT=200ms", took)
			}
			for _, w := range tc.logs {
				if !strings.Contains(s.stderr.String(), w) {
					t.Errorf("log does not say %q", w)
				}
			}
		})
	}
}

// TestStopBeforeStart: a signal that arrives before tokengate serves is a
// clean stop (exit 0), with nothing left running. (A stop right after a
// start is app's TestCloseRightAfterStart.)
func TestStopBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, options{args: []string{"--dev", "--listen", "127.0.0.1:0"}, getenv: func(string) string { return "" }, stdout: &stdout, stderr: &stderr})
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return")
	}
	if log := stderr.String(); !strings.Contains(log, "stopped before serving") || strings.Contains(log, "tokengate: serving") {
		t.Errorf("log does not say it stopped before serving:\n%s", log)
	}
	if stdout.String() != "" {
		t.Errorf("banner printed although nothing served:\n%s", stdout.String())
	}
}

// TestPolicyFile: a bad policy file stops the start with exit 2 and one
// line naming the file and line; SIGHUP re-reads the file, and a bad new
// file keeps the policy in force.
func TestPolicyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("bad file exits 2 with one line", func(t *testing.T) {
		write("default: deny\nroutes:\n  - path: /a/**/b\n")
		var stdout, stderr bytes.Buffer
		code := runWith(context.Background(), options{
			args:   []string{"--dev", "--listen", "127.0.0.1:0", "--policy-file", path},
			getenv: func(string) string { return "" },
			stdout: &stdout, stderr: &stderr,
		})
		line := stderr.String()
		if code != exitConfig || strings.Count(line, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q", code, line)
		}
		for _, w := range []string{"tokengate: policy: ", path + ":3:", "**"} {
			if !strings.Contains(line, w) {
				t.Errorf("stderr %q does not contain %q", line, w)
			}
		}
	})

	t.Run("SIGHUP reloads, a bad file keeps the old policy", func(t *testing.T) {
		write("default: public\n")
		s := startServer(t, []string{"--dev", "--policy-file", path}, nil, nil)
		decide := func() int {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, s.base+"/auth/forward", nil)
			req.Header.Set("X-Forwarded-Method", "GET")
			req.Header.Set("X-Forwarded-Uri", "/anything")
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := decide(); got != 200 {
			t.Fatalf("public default: %d", got)
		}
		// Each reload ends with one log line, a success or a failure; wait
		// for it, so that the next write cannot be read by this reload.
		reloads := 0
		reload := func() {
			t.Helper()
			reloads++
			s.hup <- syscall.SIGHUP
			deadline := time.Now().Add(10 * time.Second)
			for {
				log := s.stderr.String()
				if strings.Count(log, "policy reloaded")+strings.Count(log, "policy reload failed") >= reloads {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("reload %d not logged within 10s:\n%s", reloads, log)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		write("default: deny\n")
		reload()
		if got := decide(); got != 403 {
			t.Fatalf("after reloading a deny policy: %d", got)
		}
		write("default: maybe\n")
		reload()
		write("default: public\n") // not reloaded: no signal
		if got := decide(); got != 403 {
			t.Errorf("after a bad file: %d, want the old policy's 403", got)
		}
		if !strings.Contains(s.stderr.String(), "policy reload failed") {
			t.Errorf("the failed reload was not logged:\n%s", s.stderr)
		}
	})
}
