//go:build interop

package app

// The interop suite (DESIGN.md, testing layer 3): tokengate against node
// oidc-provider, a standards-following authorization server that nobody
// here wrote, run from interop/oidc-provider (`make interop` installs it
// and runs this file). Clients, resources and the switch
// --openid-discovery-only are described in interop/oidc-provider/server.mjs.
//
// oidc-provider differs from Okta and from devissuer where it matters:
// RFC 9068 claims (client_id and a scope string, no cid or scp) with
// typ at+jwt; RFC 8707 resource indicators (resource=, not audience=);
// and it refuses to introspect or revoke its own JWT access tokens
// (400 unsupported_token_type): only its opaque tokens can be introspected
// and revoked. The cases below state what tokengate does about each.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap/zaptest"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil"
)

const (
	interopDir          = "../../../interop/oidc-provider"
	interopStartTimeout = 30 * time.Second // node to READY
	interopStopTimeout  = 5 * time.Second  // SIGTERM to exit, then SIGKILL
	interopCallTimeout  = 10 * time.Second

	interopAudience      = "api://default" // tokengate's resource, oidc-provider's default
	interopOtherAudience = "api://other"

	// Paths of oidc-provider's endpoints that the counts below name.
	interopRFC8414     = "GET /.well-known/oauth-authorization-server "
	interopOIDCConfig  = "GET /.well-known/openid-configuration "
	interopJWKS        = "GET /jwks "
	interopIntrospects = "POST /token/introspection "
)

// interopClient is one of server.mjs's clients.
type interopClient struct{ id, secret string }

func interopJWTClient() interopClient    { return interopClient{"interop-client", "interop-secret"} }
func interopOtherClient() interopClient  { return interopClient{"interop-other", "other-secret"} }
func interopOpaqueClient() interopClient { return interopClient{"interop-opaque", "opaque-secret"} }

// interopUnboundClient's tokens, requested without a resource, are opaque
// and bound to no API: their introspection carries no aud.
func interopUnboundClient() interopClient { return interopClient{"interop-unbound", "unbound-secret"} }

func (c interopClient) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.secret))
}

// oidcProvider is a running interop/oidc-provider/server.mjs.
type oidcProvider struct {
	issuer string
	http   *fasthttp.Client
}

// startOIDCProvider runs server.mjs on a free loopback port with flags,
// waits for READY and stops it at cleanup, showing its output if the test
// failed. Without node or the npm packages the test is skipped, unless CI
// is set: then it fails.
func startOIDCProvider(tb testing.TB, flags ...string) *oidcProvider {
	tb.Helper()
	node := interopRequirements(tb)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, append([]string{"server.mjs", "0"}, flags...)...)
	cmd.Dir = interopDir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = interopStopTimeout
	out := &interopOutput{ready: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("starting oidc-provider: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = cmd.Wait() // ProcessState says how it ended
	}()
	tb.Cleanup(func() {
		select {
		case <-exited: // it stopped by itself, and the test says so
		default:
			cancel()
			<-exited
			if !cmd.ProcessState.Success() {
				tb.Errorf("oidc-provider did not exit cleanly on SIGTERM: %v", cmd.ProcessState)
			}
		}
		cancel()
		if tb.Failed() {
			tb.Logf("oidc-provider output:\n%s", out)
		}
	})

	timer := time.NewTimer(interopStartTimeout)
	defer timer.Stop()
	var issuer string
	select {
	case issuer = <-out.ready:
	case <-exited:
		tb.Fatalf("oidc-provider exited before READY (%v)", cmd.ProcessState)
	case <-timer.C:
		tb.Fatalf("oidc-provider: no READY line within %v", interopStartTimeout)
	}
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") {
		tb.Fatalf("oidc-provider issuer %q is not on loopback", issuer)
	}
	p := &oidcProvider{issuer: issuer, http: &fasthttp.Client{
		ReadTimeout:         interopCallTimeout,
		WriteTimeout:        interopCallTimeout,
		MaxResponseBodySize: 1 << 20,
	}}
	tb.Cleanup(p.http.CloseIdleConnections)
	return p
}

// interopRequirements returns node's path once node and the pinned
// oidc-provider are installed.
func interopRequirements(tb testing.TB) string {
	tb.Helper()
	missing := func(what string) {
		tb.Helper()
		const hint = "run `make interop` (npm ci in interop/oidc-provider); Node.js 20.18 or later must be on PATH"
		if os.Getenv("CI") == "" {
			tb.Skipf("interop: %s; %s", what, hint)
		}
		tb.Fatalf("interop: CI is set and %s; %s", what, hint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	// oidc-provider 9 calls URL.parse: Node.js 22, or 20.18 and later.
	out, err := exec.Command(node, "-p", "process.version + ' ' + typeof URL.parse").Output()
	if err != nil {
		tb.Fatalf("interop: %s -p: %v", node, err)
	}
	if version, kind, _ := strings.Cut(strings.TrimSpace(string(out)), " "); kind != "function" {
		missing("node " + version + " is too old (no URL.parse)")
	}
	var pinned, installed struct {
		Version      string            `json:"version"`
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON := func(path string, v any) bool {
		b, err := os.ReadFile(filepath.Join(interopDir, path))
		if err != nil {
			return false
		}
		if err := json.Unmarshal(b, v); err != nil {
			tb.Fatalf("interop: %s: %v", path, err)
		}
		return true
	}
	if !readJSON("package.json", &pinned) {
		tb.Fatalf("interop: no %s/package.json", interopDir)
	}
	if !readJSON("node_modules/oidc-provider/package.json", &installed) {
		missing("the npm packages are not installed")
	}
	if want := pinned.Dependencies["oidc-provider"]; installed.Version != want {
		tb.Fatalf("interop: oidc-provider %s is installed, package.json pins %q; run `make interop`", installed.Version, want)
	}
	return node
}

// interopOutput keeps server.mjs's stdout and stderr for the failure log
// and hands over the issuer from its READY line. exec writes stdout and
// stderr from two goroutines.
type interopOutput struct {
	mu    sync.Mutex // guards buf, line, sent
	buf   bytes.Buffer
	line  []byte // current, unfinished stdout line
	sent  bool
	ready chan string // the issuer, once
}

func (o *interopOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.sent {
		return len(p), nil
	}
	o.line = append(o.line, p...)
	for {
		i := bytes.IndexByte(o.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(o.line[:i])
		o.line = o.line[i+1:]
		if issuer, ok := strings.CutPrefix(line, "READY "); ok {
			o.sent = true
			o.ready <- issuer
			return len(p), nil
		}
	}
}

func (o *interopOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// post sends a form to one of oidc-provider's endpoints as client c.
func (p *oidcProvider) post(tb testing.TB, path string, c interopClient, form url.Values) (int, []byte) {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.issuer + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.Header.Set(fasthttp.HeaderAuthorization, c.basic())
	req.SetBodyString(form.Encode())
	if err := p.http.DoTimeout(req, resp, interopCallTimeout); err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...)
}

// token gets a client-credentials token for c straight from oidc-provider:
// resource and scope are sent when not empty.
func (p *oidcProvider) token(tb testing.TB, c interopClient, resource, scope string) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	status, body := p.post(tb, "/token", c, form)
	if status != fasthttp.StatusOK {
		tb.Fatalf("oidc-provider POST /token as %s: %d %s", c.id, status, body)
	}
	return interopAccessToken(tb, body)
}

// revoke revokes token at oidc-provider's RFC 7009 endpoint as client c.
func (p *oidcProvider) revoke(tb testing.TB, c interopClient, token string) (int, []byte) {
	tb.Helper()
	return p.post(tb, "/token/revocation", c, url.Values{"token": {token}, "token_type_hint": {"access_token"}})
}

// counts reads how many requests oidc-provider has answered, by
// "METHOD path status".
func (p *oidcProvider) counts(tb testing.TB) map[string]int {
	tb.Helper()
	status, body, err := p.http.GetTimeout(nil, p.issuer+"/interop/counts", interopCallTimeout)
	if err != nil || status != fasthttp.StatusOK {
		tb.Fatalf("GET /interop/counts: %d %v", status, err)
	}
	m := map[string]int{}
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatalf("GET /interop/counts: %v: %s", err, body)
	}
	return m
}

// calls sums the counts of keys that start with prefix.
func interopCalls(counts map[string]int, prefix string) int {
	n := 0
	for k, v := range counts {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func interopAccessToken(tb testing.TB, body []byte) string {
	tb.Helper()
	var r struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		tb.Fatalf("token response without access_token (%v): %s", err, body)
	}
	if !strings.EqualFold(r.TokenType, "Bearer") {
		tb.Errorf("token_type %q, want Bearer", r.TokenType)
	}
	return r.AccessToken
}

// interopTokengate starts tokengate trusting p, in mode, with tokengate's
// introspection client and env on top, and waits until it is ready.
func interopTokengate(tb testing.TB, p *oidcProvider, mode config.Mode, env map[string]string) (*App, *fasthttp.HostClient) {
	tb.Helper()
	vars := map[string]string{
		"OKTA_ISSUER":        p.issuer,
		"OKTA_AUDIENCE":      interopAudience,
		"OKTA_CLIENT_ID":     "tokengate",
		"OKTA_CLIENT_SECRET": "tokengate-secret",
		"VALIDATION_MODE":    string(mode),
		"LISTEN_ADDR":        "127.0.0.1:0",
	}
	maps.Copy(vars, env)
	cfg, err := config.Load(nil, func(k string) string { return vars[k] }, "")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), interopStartTimeout)
	defer cancel()
	a, err := Start(ctx, cfg, Options{Logger: zaptest.NewLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	if err := a.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	c := &fasthttp.HostClient{Addr: a.Addr(), ReadTimeout: interopCallTimeout, WriteTimeout: interopCallTimeout}
	tb.Cleanup(c.CloseIdleConnections)
	return a, c
}

// interopResponse is tokengate's answer.
type interopResponse struct {
	status        int
	body, wwwAuth string
}

func (r interopResponse) String() string {
	return fmt.Sprintf("%d %s (WWW-Authenticate: %s)", r.status, r.body, r.wwwAuth)
}

// items sends GET /items with token to tokengate.
func interopItems(tb testing.TB, c *fasthttp.HostClient, token string) interopResponse {
	tb.Helper()
	return interopDo(tb, c, fasthttp.MethodGet, "/items", "Bearer "+token, nil)
}

// interopTokenViaTokengate asks tokengate's POST /token for a token as client c,
// with form's extra fields; it returns the relayed response.
func interopTokenViaTokengate(tb testing.TB, c *fasthttp.HostClient, client interopClient, form url.Values) interopResponse {
	tb.Helper()
	f := url.Values{"grant_type": {"client_credentials"}}
	maps.Copy(f, form)
	return interopDo(tb, c, fasthttp.MethodPost, "/token", client.basic(), f)
}

func interopDo(tb testing.TB, c *fasthttp.HostClient, method, path, authorization string, form url.Values) interopResponse {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tokengate" + path)
	req.Header.SetMethod(method)
	req.Header.Set(fasthttp.HeaderAuthorization, authorization)
	if form != nil {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(form.Encode())
	}
	if err := c.DoTimeout(req, resp, interopCallTimeout); err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return interopResponse{
		status:  resp.StatusCode(),
		body:    string(resp.Body()),
		wwwAuth: string(resp.Header.Peek(fasthttp.HeaderWWWAuthenticate)),
	}
}

// interopJWTParts decodes a JWS's header and claims.
func interopJWTParts(tb testing.TB, token string) (header, claims map[string]any) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			tb.Fatal(err)
		}
	}
	return header, claims
}

// interopTamperClaims widens a JWT's scope claim and keeps its signature.
func interopTamperClaims(tb testing.TB, token string) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	changed := bytes.Replace(claims, []byte(`"scope":"items"`), []byte(`"scope":"items admin"`), 1)
	if bytes.Equal(changed, claims) {
		tb.Fatalf("no scope claim to tamper with: %s", claims)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(changed)
	return strings.Join(parts, ".")
}

// interopTamperSignature flips one bit of a JWT's signature.
func interopTamperSignature(tb testing.TB, token string) string {
	tb.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) == 0 {
		tb.Fatalf("signature: %v", err)
	}
	sig[len(sig)/2] ^= 1
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// interopTamperOpaque changes one character of an opaque token.
func interopTamperOpaque(token string) string {
	last := byte('A')
	if token[len(token)-1] == last {
		last = 'B'
	}
	return token[:len(token)-1] + string(last)
}

// interopFixture is one tokengate in front of one oidc-provider.
type interopFixture struct {
	p *oidcProvider
	c *fasthttp.HostClient
}

// interopCase is one GET /items with a token from oidc-provider and what
// tokengate must answer.
type interopCase struct {
	name        string
	token       func(testing.TB, *interopFixture) string
	status      int
	detail      string // in the body
	challenge   string // in WWW-Authenticate
	introspects int    // introspection calls the request makes
}

func (tc interopCase) run(t *testing.T, f *interopFixture) {
	tok := tc.token(t, f)
	before := interopCalls(f.p.counts(t), interopIntrospects)
	r := interopItems(t, f.c, tok)
	if r.status != tc.status || !strings.Contains(r.body, tc.detail) || !strings.Contains(r.wwwAuth, tc.challenge) {
		t.Errorf("GET /items = %s; want %d, body with %q, challenge with %q", r, tc.status, tc.detail, tc.challenge)
	}
	if n := interopCalls(f.p.counts(t), interopIntrospects) - before; n != tc.introspects {
		t.Errorf("%d introspection calls, want %d", n, tc.introspects)
	}
}

// interopMode is tokengate in one validation mode against oidc-provider.
type interopMode struct {
	name    config.Mode
	variant string // names a second run of one mode in the subtest name
	env     map[string]string
	// client gets the token of the happy path through tokengate's /token;
	// GET /items with it, twice, answers happy (with happyDetail in the
	// body) after happyIntrospects introspection calls.
	client           interopClient
	happy            int
	happyDetail      string
	happyIntrospects int
	cases            []interopCase
	// then runs last, on the same tokengate (revocation).
	then func(t *testing.T, f *interopFixture)
}

func (m interopMode) run(t *testing.T, p *oidcProvider) {
	before := p.counts(t)
	_, c := interopTokengate(t, p, m.name, m.env)
	f := &interopFixture{p: p, c: c}

	t.Run("token via tokengate", func(t *testing.T) {
		r := interopTokenViaTokengate(t, c, m.client, nil)
		if r.status != fasthttp.StatusOK {
			t.Fatalf("POST /token = %s", r)
		}
		tok := interopAccessToken(t, []byte(r.body))
		n0 := interopCalls(p.counts(t), interopIntrospects)
		for range 2 {
			if r := interopItems(t, c, tok); r.status != m.happy || !strings.Contains(r.body, m.happyDetail) {
				t.Errorf("GET /items = %s; want %d with %q", r, m.happy, m.happyDetail)
			}
		}
		if n := interopCalls(p.counts(t), interopIntrospects) - n0; n != m.happyIntrospects {
			t.Errorf("%d introspection calls, want %d", n, m.happyIntrospects)
		}
	})
	for _, tc := range m.cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, f) })
	}
	if m.then != nil {
		m.then(t, f)
	}

	// Discovery: oidc-provider publishes RFC 8414 metadata at the
	// path-appended URL tokengate tries first, so it never needs the
	// OpenID Connect document (TestInteropDiscoveryFallback makes it).
	after := p.counts(t)
	for _, w := range []struct {
		key  string
		want int
	}{
		{interopRFC8414 + "200", 1},
		{interopOIDCConfig, 0},
	} {
		if n := interopCalls(after, w.key) - interopCalls(before, w.key); n != w.want {
			t.Errorf("%q: %d requests, want %d", w.key, n, w.want)
		}
	}
	if jwks := interopCalls(after, interopJWKS+"200") - interopCalls(before, interopJWKS+"200"); (jwks > 0) != (m.name != config.ModeRemote) {
		t.Errorf("%d JWKS fetches in %s mode", jwks, m.name)
	}
}

// Token sources for the cases.
func interopTokenFor(c interopClient, resource, scope string) func(testing.TB, *interopFixture) string {
	return func(tb testing.TB, f *interopFixture) string { return f.p.token(tb, c, resource, scope) }
}

func interopTampered(tamper func(testing.TB, string) string, c interopClient) func(testing.TB, *interopFixture) string {
	return func(tb testing.TB, f *interopFixture) string {
		return tamper(tb, f.p.token(tb, c, "", "items"))
	}
}

const (
	interopInvalidToken      = `error="invalid_token"`
	interopInsufficientScope = `error="insufficient_scope"`
	// The decision's 403 for a valid token from an issuer the route does
	// not list.
	interopIssuerRefused = "tokens from this issuer are not accepted on this route"
	// What tokengate answers when oidc-provider refuses to introspect one
	// of its own JWTs: 400 {"error":"unsupported_token_type",...}.
	interopJWTNotIntrospectable = "introspection endpoint returned 400 unsupported_token_type"
)

// TestInterop runs the flows of each validation mode against oidc-provider.
func TestInterop(t *testing.T) {
	p := startOIDCProvider(t)
	modes := []interopMode{
		{
			// RFC 9068 tokens checked locally, with typ at+jwt required and
			// the client allow-list read from client_id.
			name: config.ModeLocal,
			env: map[string]string{
				"REQUIRE_AT_JWT":     "true",
				"ALLOWED_CLIENT_IDS": "interop-client",
			},
			client: interopJWTClient(), happy: 200, happyDetail: "red ball",
			cases: []interopCase{
				{name: "other resource", token: interopTokenFor(interopJWTClient(), interopOtherAudience, "items"), status: 401, challenge: interopInvalidToken},
				{name: "claims tampered", token: interopTampered(interopTamperClaims, interopJWTClient()), status: 401, challenge: interopInvalidToken},
				{name: "signature tampered", token: interopTampered(interopTamperSignature, interopJWTClient()), status: 401, challenge: interopInvalidToken},
				{name: "no items scope", token: interopTokenFor(interopJWTClient(), "", ""), status: 403, challenge: interopInsufficientScope},
				{name: "client not allowed", token: interopTokenFor(interopOtherClient(), "", "items"), status: 401, challenge: interopInvalidToken},
				{name: "opaque token", token: interopTokenFor(interopOpaqueClient(), "", "items"), status: 401, challenge: interopInvalidToken},
			},
			then: interopLocalClaims,
		},
		{
			// Introspection on every request. oidc-provider introspects only
			// its opaque tokens.
			name: config.ModeRemote,
			env: map[string]string{
				"INTROSPECTION_CACHE_TTL": "0",
				"ALLOWED_CLIENT_IDS":      "interop-opaque,interop-unbound",
			},
			client: interopOpaqueClient(), happy: 200, happyDetail: "red ball", happyIntrospects: 2,
			cases: []interopCase{
				{name: "other resource", token: interopTokenFor(interopOpaqueClient(), interopOtherAudience, "items"), status: 401, challenge: interopInvalidToken, introspects: 1},
				{name: "tampered", token: func(tb testing.TB, f *interopFixture) string {
					return interopTamperOpaque(f.p.token(tb, interopOpaqueClient(), "", "items"))
				}, status: 401, challenge: interopInvalidToken, introspects: 1},
				{name: "no items scope", token: interopTokenFor(interopOpaqueClient(), "", ""), status: 403, challenge: interopInsufficientScope, introspects: 1},
				// Incompatible: oidc-provider answers its own JWTs with 400
				// unsupported_token_type, which tokengate reads as "could not
				// check" (503), on every request.
				{name: "JWT not introspectable", token: interopTokenFor(interopJWTClient(), "", "items"), status: 503, detail: interopJWTNotIntrospectable, introspects: 1},
				// RFC 7662 makes aud optional: by default a token bound to
				// no API passes (see "require audience" below).
				{name: "no resource, no aud", token: interopTokenFor(interopUnboundClient(), "", "items"), status: 200, detail: "red ball", introspects: 1},
			},
			then: interopRemoteRevocation,
		},
		{
			// INTROSPECTION_REQUIRE_AUDIENCE=true: an active token whose
			// introspection carries no aud is refused.
			name: config.ModeRemote, variant: "require audience",
			env: map[string]string{
				"INTROSPECTION_CACHE_TTL":        "0",
				"INTROSPECTION_REQUIRE_AUDIENCE": "true",
				"ALLOWED_CLIENT_IDS":             "interop-opaque,interop-unbound",
			},
			client: interopOpaqueClient(), happy: 200, happyDetail: "red ball", happyIntrospects: 2,
			cases: []interopCase{
				{name: "no resource, no aud", token: interopTokenFor(interopUnboundClient(), "", "items"), status: 401, detail: "audience missing", challenge: interopInvalidToken, introspects: 1},
				{name: "other resource", token: interopTokenFor(interopOpaqueClient(), interopOtherAudience, "items"), status: 401, detail: "audience mismatch", challenge: interopInvalidToken, introspects: 1},
			},
		},
		{
			// Local checks first: bad tokens never reach oidc-provider. A
			// good JWT does, and oidc-provider refuses to introspect it:
			// hybrid mode cannot accept oidc-provider's JWTs.
			name: config.ModeHybrid,
			env: map[string]string{
				"REQUIRE_AT_JWT":     "true",
				"ALLOWED_CLIENT_IDS": "interop-client",
			},
			client: interopJWTClient(), happy: 503, happyDetail: interopJWTNotIntrospectable, happyIntrospects: 2,
			cases: []interopCase{
				{name: "other resource", token: interopTokenFor(interopJWTClient(), interopOtherAudience, "items"), status: 401, challenge: interopInvalidToken},
				{name: "claims tampered", token: interopTampered(interopTamperClaims, interopJWTClient()), status: 401, challenge: interopInvalidToken},
				{name: "signature tampered", token: interopTampered(interopTamperSignature, interopJWTClient()), status: 401, challenge: interopInvalidToken},
				{name: "client not allowed", token: interopTokenFor(interopOtherClient(), "", "items"), status: 401, challenge: interopInvalidToken},
				{name: "opaque token", token: interopTokenFor(interopOpaqueClient(), "", "items"), status: 401, challenge: interopInvalidToken},
			},
		},
	}
	for _, m := range modes {
		name := string(m.name)
		if m.variant != "" {
			name += " " + m.variant
		}
		t.Run(name, func(t *testing.T) { m.run(t, p) })
	}
}

// interopLocalClaims pins what the local validator relies on in
// oidc-provider's tokens, and what it cannot have.
func interopLocalClaims(t *testing.T, f *interopFixture) {
	t.Run("RFC 9068 claims", func(t *testing.T) {
		r := interopTokenViaTokengate(t, f.c, interopJWTClient(), nil)
		if r.status != fasthttp.StatusOK {
			t.Fatalf("POST /token = %s", r)
		}
		header, claims := interopJWTParts(t, interopAccessToken(t, []byte(r.body)))
		if header["typ"] != "at+jwt" || header["alg"] != "RS256" || header["kid"] == nil {
			t.Errorf("header %v; want typ at+jwt, alg RS256, a kid", header)
		}
		want := map[string]any{"iss": f.p.issuer, "aud": interopAudience, "client_id": "interop-client", "scope": "items"}
		for k, v := range want {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v", k, claims[k], v)
			}
		}
		for _, k := range []string{"cid", "scp"} {
			if _, ok := claims[k]; ok {
				t.Errorf("claim %s present: %v", k, claims)
			}
		}
	})
	// tokengate's /token relays RFC 8707 resource, by which oidc-provider
	// picks the token's audience: asking for another resource through
	// tokengate gets a token for it, which this tokengate then refuses.
	t.Run("token via tokengate carries resource", func(t *testing.T) {
		r := interopTokenViaTokengate(t, f.c, interopJWTClient(), url.Values{
			"resource": {interopOtherAudience},
		})
		if r.status != fasthttp.StatusOK {
			t.Fatalf("POST /token = %s", r)
		}
		tok := interopAccessToken(t, []byte(r.body))
		if _, claims := interopJWTParts(t, tok); claims["aud"] != interopOtherAudience {
			t.Errorf("aud = %v, want %s: /token did not relay resource", claims["aud"], interopOtherAudience)
		}
		if r := interopItems(t, f.c, tok); r.status != fasthttp.StatusUnauthorized || !strings.Contains(r.wwwAuth, interopInvalidToken) {
			t.Errorf("GET /items with a token for another resource = %s; want 401 invalid_token", r)
		}
	})
	// oidc-provider cannot revoke its JWTs: local and hybrid mode have no
	// revocation to observe.
	t.Run("JWT revocation refused", func(t *testing.T) {
		tok := f.p.token(t, interopJWTClient(), "", "items")
		status, body := f.p.revoke(t, interopJWTClient(), tok)
		if status != fasthttp.StatusBadRequest || !bytes.Contains(body, []byte("unsupported_token_type")) {
			t.Errorf("revoking a JWT: %d %s; want 400 unsupported_token_type", status, body)
		}
		if r := interopItems(t, f.c, tok); r.status != fasthttp.StatusOK {
			t.Errorf("GET /items = %s", r)
		}
	})
}

// interopRemoteRevocation: with INTROSPECTION_CACHE_TTL=0 a token revoked at
// oidc-provider is refused on the very next request.
func interopRemoteRevocation(t *testing.T, f *interopFixture) {
	t.Run("revoked", func(t *testing.T) {
		r := interopTokenViaTokengate(t, f.c, interopOpaqueClient(), nil)
		if r.status != fasthttp.StatusOK {
			t.Fatalf("POST /token = %s", r)
		}
		tok := interopAccessToken(t, []byte(r.body))
		if r := interopItems(t, f.c, tok); r.status != fasthttp.StatusOK {
			t.Fatalf("GET /items before revocation = %s", r)
		}
		if status, body := f.p.revoke(t, interopOpaqueClient(), tok); status != fasthttp.StatusOK {
			t.Fatalf("revocation: %d %s", status, body)
		}
		if r := interopItems(t, f.c, tok); r.status != fasthttp.StatusUnauthorized || !strings.Contains(r.wwwAuth, interopInvalidToken) {
			t.Errorf("GET /items after revocation = %s; want 401 invalid_token", r)
		}
	})
}

// TestInteropDiscoveryFallback: against a server that publishes only
// OpenID Connect discovery, tokengate finds the JWKS, token and
// introspection endpoints in /.well-known/openid-configuration.
func TestInteropDiscoveryFallback(t *testing.T) {
	p := startOIDCProvider(t, "--openid-discovery-only")
	for _, tc := range []struct {
		mode   config.Mode
		client interopClient
		env    map[string]string
	}{
		{config.ModeLocal, interopJWTClient(), nil},
		{config.ModeRemote, interopOpaqueClient(), map[string]string{"INTROSPECTION_CACHE_TTL": "0"}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			before := p.counts(t)
			_, c := interopTokengate(t, p, tc.mode, tc.env)
			r := interopTokenViaTokengate(t, c, tc.client, nil)
			if r.status != fasthttp.StatusOK {
				t.Fatalf("POST /token = %s", r)
			}
			if r := interopItems(t, c, interopAccessToken(t, []byte(r.body))); r.status != fasthttp.StatusOK {
				t.Errorf("GET /items = %s", r)
			}
			after := p.counts(t)
			for _, key := range []string{interopRFC8414 + "404", interopOIDCConfig + "200"} {
				if n := interopCalls(after, key) - interopCalls(before, key); n != 1 {
					t.Errorf("%q: %d requests, want 1", key, n)
				}
			}
		})
	}
}

// TestInteropSeveralIssuers is issue 11's several-issuers case with a
// third-party issuer among them: tokengate trusts two development issuers
// (each with its own keys) and oidc-provider (mode local, its JWKS named in
// the policy file), and the decision endpoint answers for routes that
// restrict some paths to some issuers. Each issuer's token passes where
// its issuer is listed; a valid token from an issuer a route does not list
// is 403; a token whose iss is unknown is 401 with no request to any
// authorization server; one issuer down leaves the other two serving.
func TestInteropSeveralIssuers(t *testing.T) {
	p := startOIDCProvider(t)
	a, b, stranger := startDevIssuer(t, "api://a"), startDevIssuer(t, "api://b"), startDevIssuer(t, "api://a")
	before := p.counts(t)

	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	pol := fmt.Sprintf(`
default: deny
routes:
  - path: /a-only/**
    issuers: [a]
  - path: /dev-only/**
    issuers: [a, b]
  - path: /oidc-only/**
    issuers: [%[3]s]
  - path: /**
    scopes: [items]
issuers:
  - name: a
    issuer: %[1]s
    audience: api://a
  - name: b
    issuer: %[2]s
    audience: api://b
  - name: oidc
    issuer: %[3]s
    audience: %[4]s
    mode: local
    jwks_uri: %[3]s/jwks
    allowed_client_ids: [%[5]s]
`, a.Issuer(), b.Issuer(), p.issuer, interopAudience, interopJWTClient().id)
	if err := os.WriteFile(policyPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--listen=127.0.0.1:0", "--policy-file=" + policyPath}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), interopStartTimeout)
	defer cancel()
	app, err := Start(ctx, cfg, Options{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	if err := app.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// WaitReady returns once one issuer is ready (one issuer down leaves
	// the others serving); the checks below need all three key sets.
	testutil.WaitFor(t, "every issuer's keys", func() bool {
		ex := scrape(t, app)
		for _, name := range []string{"a", "b", "oidc"} {
			if v, ok := ex.value("tokengate_jwks_keys", "issuer", name); !ok || v < 1 {
				return false
			}
		}
		return true
	})
	c := &fasthttp.HostClient{Addr: app.Addr(), ReadTimeout: interopCallTimeout, WriteTimeout: interopCallTimeout}
	t.Cleanup(c.CloseIdleConnections)

	// oidc-provider's keys came from the jwks_uri of the policy file, with
	// no discovery.
	started := p.counts(t)
	if n := interopCalls(started, interopJWKS+"200") - interopCalls(before, interopJWKS+"200"); n < 1 {
		t.Errorf("%d JWKS fetches from oidc-provider, want at least 1", n)
	}
	for _, key := range []string{interopRFC8414, interopOIDCConfig} {
		if n := interopCalls(started, key) - interopCalls(before, key); n != 0 {
			t.Errorf("%q: %d requests, want 0 (jwks_uri is set)", key, n)
		}
	}

	mint := func(iss *devissuer.Issuer) string {
		t.Helper()
		tok, err := iss.Mint(devissuer.MintOptions{Scopes: []string{"items"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokA, tokB := mint(a), mint(b)
	tokOIDC := p.token(t, interopJWTClient(), "", "items")

	for _, tc := range []struct {
		name, path, token string
		status            int
		detail            string // in the body
		challenge         string // in WWW-Authenticate
	}{
		{"a's token, any issuer", "/orders/1", tokA, 200, "", ""},
		{"b's token, any issuer", "/orders/1", tokB, 200, "", ""},
		{"oidc-provider's token, any issuer", "/orders/1", tokOIDC, 200, "", ""},
		{"route listing a: a passes", "/a-only/x", tokA, 200, "", ""},
		{"route listing a: b's valid token is 403", "/a-only/x", tokB, 403, interopIssuerRefused, ""},
		{"route listing a: oidc-provider's valid token is 403", "/a-only/x", tokOIDC, 403, interopIssuerRefused, ""},
		{"route listing a and b: b passes", "/dev-only/x", tokB, 200, "", ""},
		{"route listing a and b: oidc-provider's valid token is 403", "/dev-only/x", tokOIDC, 403, interopIssuerRefused, ""},
		{"route listing oidc-provider by URL: it passes", "/oidc-only/x", tokOIDC, 200, "", ""},
		{"route listing oidc-provider by URL: a's valid token is 403", "/oidc-only/x", tokA, 403, interopIssuerRefused, ""},
		{"route listing oidc-provider by URL: b's valid token is 403", "/oidc-only/x", tokB, 403, interopIssuerRefused, ""},
		// The allow-list of oidc-provider's entry is its own: another of
		// its clients is refused, on any route.
		{"oidc-provider's client not allowed", "/orders/1", p.token(t, interopOtherClient(), "", "items"), 401, "", interopInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := interopDecide(t, c, tc.path, tc.token)
			if r.status != tc.status || !strings.Contains(r.body, tc.detail) || !strings.Contains(r.wwwAuth, tc.challenge) {
				t.Errorf("decision for %s = %s; want %d, body with %q, challenge with %q", tc.path, r, tc.status, tc.detail, tc.challenge)
			}
		})
	}

	t.Run("unknown iss: 401 with no request to any issuer", func(t *testing.T) {
		devBefore := [3]uint64{a.Counts().Total(), b.Counts().Total(), stranger.Counts().Total()}
		oidcBefore := p.counts(t)
		// Same audience as a, but another issuer URL and other keys.
		r := interopDecide(t, c, "/orders/1", mint(stranger))
		if r.status != fasthttp.StatusUnauthorized || !strings.Contains(r.wwwAuth, interopInvalidToken) {
			t.Errorf("decision = %s; want 401 invalid_token", r)
		}
		if devAfter := [3]uint64{a.Counts().Total(), b.Counts().Total(), stranger.Counts().Total()}; devAfter != devBefore {
			t.Errorf("development issuers' requests (a, b, stranger) before %v, after %v", devBefore, devAfter)
		}
		if oidcAfter := p.counts(t); !maps.Equal(oidcAfter, oidcBefore) {
			t.Errorf("oidc-provider's requests before %v, after %v", oidcBefore, oidcAfter)
		}
	})

	// a's tokens may still pass with the keys tokengate holds (local mode
	// needs no network): only the other two are asserted.
	t.Run("issuer a down: b and oidc-provider keep serving", func(t *testing.T) {
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Restart() })
		for _, tc := range []struct{ name, path, token string }{
			{"b, any issuer", "/orders/1", mint(b)},
			{"b, route listing a and b", "/dev-only/x", mint(b)},
			{"oidc-provider, any issuer", "/orders/1", p.token(t, interopJWTClient(), "", "items")},
			{"oidc-provider, route listing it", "/oidc-only/x", p.token(t, interopJWTClient(), "", "items")},
		} {
			if r := interopDecide(t, c, tc.path, tc.token); r.status != fasthttp.StatusOK {
				t.Errorf("%s: a fresh token: decision = %s; want 200", tc.name, r)
			}
		}
	})
}

// interopDecide asks tokengate's decision endpoint /auth/forward whether a
// GET of path with token may pass, as a proxy on loopback would.
func interopDecide(tb testing.TB, c *fasthttp.HostClient, path, token string) interopResponse {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tokengate/auth/forward")
	req.Header.Set("X-Forwarded-Method", fasthttp.MethodGet)
	req.Header.Set("X-Forwarded-Host", "api.example.test")
	req.Header.Set("X-Forwarded-Uri", path)
	req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+token)
	if err := c.DoTimeout(req, resp, interopCallTimeout); err != nil {
		tb.Fatalf("GET /auth/forward for %s: %v", path, err)
	}
	return interopResponse{
		status:  resp.StatusCode(),
		body:    string(resp.Body()),
		wwwAuth: string(resp.Header.Peek(fasthttp.HeaderWWWAuthenticate)),
	}
}
