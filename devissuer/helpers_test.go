package devissuer

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap/zaptest"
)

// t0 is the fixed start of every injected clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// start starts an issuer with a test logger and closes it at cleanup.
func start(tb testing.TB, cfg Config) *Issuer {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(tb)
	}
	iss, err := Start(cfg)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := iss.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return iss
}

// newClient returns a bounded fasthttp client that does not retry, so that
// counts are exact.
func newClient() *fasthttp.Client {
	return &fasthttp.Client{
		ReadTimeout:               5 * time.Second,
		WriteTimeout:              5 * time.Second,
		MaxResponseBodySize:       1 << 20,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
}

// reply is a response copied out of fasthttp.
type reply struct {
	status int
	header map[string]string // canonical names
	body   []byte
}

func (r reply) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// request describes one call.
type request struct {
	method string
	url    string
	header map[string]string
	form   url.Values // sent as application/x-www-form-urlencoded
	body   string     // raw body when form is nil
}

// do performs r and returns the reply or the transport error.
func do(c *fasthttp.Client, r request) (reply, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(r.url)
	if r.method == "" {
		r.method = fasthttp.MethodGet
	}
	req.Header.SetMethod(r.method)
	if r.form != nil {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(r.form.Encode())
	} else if r.body != "" {
		req.SetBodyString(r.body)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		return reply{}, err
	}
	out := reply{status: resp.StatusCode(), header: map[string]string{}, body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		out.header[string(k)] = string(v)
	}
	return out, nil
}

// mustDo is do that fails the test on a transport error.
func mustDo(tb testing.TB, c *fasthttp.Client, r request) reply {
	tb.Helper()
	rep, err := do(c, r)
	if err != nil {
		tb.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	return rep
}

// basic is an RFC 6749 2.3.1 Authorization header value.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// getToken gets a token from /v1/token with client_secret_basic.
func getToken(tb testing.TB, c *fasthttp.Client, iss *Issuer, id, secret, scope string) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	rep := mustDo(tb, c, request{method: "POST", url: iss.TokenURL(), form: form,
		header: map[string]string{"Authorization": basic(id, secret)}})
	if rep.status != 200 {
		tb.Fatalf("token: status %d: %s", rep.status, rep.body)
	}
	tok, _ := rep.json(tb)["access_token"].(string)
	if tok == "" {
		tb.Fatalf("token: no access_token in %s", rep.body)
	}
	return tok
}

// introspect asks /v1/introspect about token as the default client.
func introspect(tb testing.TB, c *fasthttp.Client, iss *Issuer, token string) map[string]any {
	tb.Helper()
	rep := mustDo(tb, c, request{method: "POST", url: iss.IntrospectionURL(),
		form:   url.Values{"token": {token}},
		header: map[string]string{"Authorization": basic(DefaultClientID, DefaultClientSecret)}})
	if rep.status != 200 {
		tb.Fatalf("introspect: status %d: %s", rep.status, rep.body)
	}
	return rep.json(tb)
}

// fetchJWKS gets /v1/keys.
func fetchJWKS(tb testing.TB, c *fasthttp.Client, iss *Issuer) (jose.JSONWebKeySet, reply) {
	tb.Helper()
	rep := mustDo(tb, c, request{url: iss.JWKSURL()})
	if rep.status != 200 {
		tb.Fatalf("keys: status %d", rep.status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rep.body, &set); err != nil {
		tb.Fatalf("keys: %v", err)
	}
	return set, rep
}

// verifyWithJWKS verifies token against the issuer's published JWKS with
// go-jose and returns its header and claims.
func verifyWithJWKS(tb testing.TB, c *fasthttp.Client, iss *Issuer, token string) (jose.Header, map[string]any) {
	tb.Helper()
	set, _ := fetchJWKS(tb, c, iss)
	jws, err := jose.ParseSignedCompact(token, verifyAlgorithms)
	if err != nil {
		tb.Fatalf("parse token: %v", err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		tb.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatalf("claims: %v", err)
	}
	return h, claims
}

// rawHeader decodes a token's JOSE header without verifying anything.
func rawHeader(tb testing.TB, token string) map[string]any {
	tb.Helper()
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatalf("header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		tb.Fatalf("header: %v", err)
	}
	return h
}

// rawClaims decodes a token's claims without verifying anything.
func rawClaims(tb testing.TB, token string) map[string]any {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatalf("claims: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("claims: %v", err)
	}
	return m
}

// serveInMemory serves h on an in-memory listener until cleanup, and waits
// for the server to stop.
func serveInMemory(tb testing.TB, h fasthttp.RequestHandler) *fasthttputil.InmemoryListener {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return ln
}
