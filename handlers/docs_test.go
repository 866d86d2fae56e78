package handlers_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	swaggerfiles "github.com/swaggo/files/v2"
	"github.com/tokengate/tokengate/handlers"
)

// docsSecurityHeaders are on every page and file under /docs.
var docsSecurityHeaders = map[string]string{
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
}

// newDocsGate is newGate with a client that accepts Swagger UI's bundle
// (about 1.4 MB).
func newDocsGate(tb testing.TB, cfg handlers.Config) *gate {
	tb.Helper()
	g := newGate(tb, cfg)
	g.client.MaxResponseBodySize = 8 << 20 // before the first request
	return g
}

// cspDirectives parses a Content-Security-Policy into directive → sources.
func cspDirectives(tb testing.TB, policy string) map[string][]string {
	tb.Helper()
	if policy == "" {
		tb.Fatal("no Content-Security-Policy")
	}
	out := map[string][]string{}
	for _, d := range strings.Split(policy, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		if _, dup := out[f[0]]; dup {
			tb.Errorf("CSP repeats %s", f[0])
		}
		out[f[0]] = f[1:]
	}
	return out
}

// TestDocsPage checks /docs: Swagger UI's page, from this origin only, with
// a policy that forbids inline scripts and every other origin.
func TestDocsPage(t *testing.T) {
	g := newDocsGate(t, handlers.Config{})
	resp := g.get(t, "/docs", "")
	want{status: 200, header: docsSecurityHeaders}.check(t, resp)
	if ct := string(resp.Header.ContentType()); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	body := string(resp.Body())
	for _, s := range []string{`<div id="swagger-ui">`, `src="/docs/swagger-ui-bundle.js"`, `src="/docs/swagger-init.js"`, `href="/docs/swagger-ui.css"`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	if m := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).FindString(body); m != "" {
		t.Errorf("page has an inline script: %q", m)
	}
	if strings.Contains(body, "//") && regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).MatchString(body) {
		t.Errorf("page loads something from another origin")
	}

	csp := cspDirectives(t, string(resp.Header.Peek("Content-Security-Policy")))
	wantCSP := map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"img-src":         "'self' data:",
		"connect-src":     "'self'",
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
	}
	for d, v := range wantCSP {
		if got := strings.Join(csp[d], " "); got != v {
			t.Errorf("CSP %s = %q, want %q", d, got, v)
		}
	}
}

// docsFileCase is one file under /docs/ and what must be served for it.
type docsFileCase struct {
	name        string
	g           *gate
	path        string
	status      int
	contentType string
	dist        string // the Swagger UI file it must equal, if any
}

func (tc docsFileCase) run(t *testing.T) {
	t.Parallel()
	resp := tc.g.get(t, tc.path, "")
	if resp.StatusCode() != tc.status {
		t.Fatalf("status %d, want %d", resp.StatusCode(), tc.status)
	}
	if tc.status != 200 {
		return
	}
	want{status: 200, header: docsSecurityHeaders}.check(t, resp)
	if ct := string(resp.Header.ContentType()); ct != tc.contentType {
		t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
	}
	if len(resp.Body()) == 0 {
		t.Error("empty body")
	}
	if tc.dist != "" {
		orig, err := fs.ReadFile(swaggerfiles.FS, tc.dist)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.Body(), orig) {
			t.Errorf("body differs from Swagger UI's %s", tc.dist)
		}
	}
}

// TestDocsFiles checks every file the page needs, with its media type,
// and that nothing else is served.
func TestDocsFiles(t *testing.T) {
	g := newDocsGate(t, handlers.Config{})
	const js, css, html = "text/javascript; charset=utf-8", "text/css; charset=utf-8", "text/html; charset=utf-8"
	cases := []docsFileCase{
		{name: "bundle", path: "/docs/swagger-ui-bundle.js", status: 200, contentType: js, dist: "swagger-ui-bundle.js"},
		{name: "stylesheet", path: "/docs/swagger-ui.css", status: 200, contentType: css, dist: "swagger-ui.css"},
		{name: "page stylesheet", path: "/docs/index.css", status: 200, contentType: css, dist: "index.css"},
		{name: "favicon 16", path: "/docs/favicon-16x16.png", status: 200, contentType: "image/png", dist: "favicon-16x16.png"},
		{name: "favicon 32", path: "/docs/favicon-32x32.png", status: 200, contentType: "image/png", dist: "favicon-32x32.png"},
		{name: "oauth2 redirect", path: "/docs/oauth2-redirect.html", status: 200, contentType: html, dist: "oauth2-redirect.html"},
		{name: "init script", path: "/docs/swagger-init.js", status: 200, contentType: js},
		{name: "index by name", path: "/docs/index.html", status: 200, contentType: html},
		{name: "trailing slash", path: "/docs/", status: 301},
		{name: "unknown file", path: "/docs/nope.js", status: 404},
		{name: "dist file not used", path: "/docs/swagger-ui-standalone-preset.js", status: 404},
		{name: "dist petstore index is not served", path: "/docs/swagger-initializer.js", status: 404},
		{name: "source map", path: "/docs/swagger-ui-bundle.js.map", status: 404},
		{name: "traversal", path: "/docs/..%2fgo.mod", status: 404},
	}
	for _, tc := range cases {
		tc.g = g
		t.Run(tc.name, tc.run)
	}
	t.Run("trailing slash goes to /docs", func(t *testing.T) {
		resp := g.get(t, "/docs/", "")
		if loc := string(resp.Header.Peek("Location")); !strings.HasSuffix(loc, "/docs") {
			t.Errorf("Location %q", loc)
		}
	})
}

// TestDocsOAuth2RedirectPolicy checks that Swagger UI's redirect page runs
// its one inline script, allowed by hash, and nothing else.
func TestDocsOAuth2RedirectPolicy(t *testing.T) {
	g := newDocsGate(t, handlers.Config{})
	resp := g.get(t, "/docs/oauth2-redirect.html", "")
	page := resp.Body()
	m := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindSubmatch(page)
	if m == nil {
		t.Fatal("redirect page has no inline script")
	}
	sum := sha256.Sum256(m[1])
	csp := cspDirectives(t, string(resp.Header.Peek("Content-Security-Policy")))
	want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if got := strings.Join(csp["script-src"], " "); got != want {
		t.Errorf("script-src = %q, want %q", got, want)
	}
	if got := strings.Join(csp["default-src"], " "); got != "'none'" {
		t.Errorf("default-src = %q", got)
	}
}

// initCase is a configuration and what the Swagger UI configuration
// script must and must not say for it.
type initCase struct {
	name    string
	cfg     handlers.Config
	has     []string
	hasNot  []string
	secrets []string // never in any docs page or in the document
}

func (tc initCase) run(t *testing.T) {
	t.Parallel()
	g := newDocsGate(t, tc.cfg)
	script := string(g.get(t, "/docs/swagger-init.js", "").Body())
	for _, s := range tc.has {
		if !strings.Contains(script, s) {
			t.Errorf("init script lacks %s:\n%s", s, script)
		}
	}
	for _, s := range tc.hasNot {
		if strings.Contains(script, s) {
			t.Errorf("init script has %s:\n%s", s, script)
		}
	}
	for _, path := range []string{"/docs", "/docs/swagger-init.js", "/openapi.json"} {
		body := string(g.get(t, path, "").Body())
		for _, secret := range tc.secrets {
			if strings.Contains(body, secret) {
				t.Errorf("%s contains the secret %q", path, secret)
			}
		}
	}
}

// TestDocsInitScript checks the Swagger UI configuration: the spec URL,
// the redirect page, the scope, the dev client id when (and only when)
// one is set, never a client secret, and values escaped for JavaScript.
func TestDocsInitScript(t *testing.T) {
	common := []string{
		`url: "/openapi.json"`,
		`"/docs/oauth2-redirect.html"`,
		`persistAuthorization: false`,
		`ui.initOAuth(`,
	}
	cases := []initCase{
		{
			name:   "no dev client",
			has:    append([]string{`"scopes":"items"`}, common...),
			hasNot: []string{"clientId", "clientSecret"},
		},
		{
			name:    "dev client pre-filled, secret not",
			cfg:     handlers.Config{DevClientID: "dev-client"},
			has:     append([]string{`"clientId":"dev-client"`, `"scopes":"items"`}, common...),
			hasNot:  []string{"clientSecret", "dev-secret"},
			secrets: []string{"dev-secret"},
		},
		{
			name:   "values escaped",
			cfg:    handlers.Config{DevClientID: `a"b</script><x>`, RequiredScope: "api:read"},
			has:    []string{`"clientId":"a\"b\u003c/script\u003e\u003cx\u003e"`, `"scopes":"api:read"`},
			hasNot: []string{`</script>`, `<x>`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestDocsCaching checks revalidation (ETag, 304) and gzip.
func TestDocsCaching(t *testing.T) {
	g := newDocsGate(t, handlers.Config{})
	first := g.get(t, "/docs/swagger-ui-bundle.js", "")
	etag := string(first.Header.Peek("ETag"))
	if etag == "" || string(first.Header.Peek("Cache-Control")) != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, first.Header.Peek("Cache-Control"))
	}
	if again := g.get(t, "/docs/swagger-ui-bundle.js", "", "If-None-Match", etag); again.StatusCode() != 304 || len(again.Body()) != 0 {
		t.Errorf("If-None-Match: status %d with %d bytes, want 304 and none", again.StatusCode(), len(again.Body()))
	}
	if other := g.get(t, "/docs/swagger-ui-bundle.js", "", "If-None-Match", `"stale"`); other.StatusCode() != 200 {
		t.Errorf("stale If-None-Match: status %d", other.StatusCode())
	}

	gz := g.get(t, "/docs/swagger-ui-bundle.js", "", "Accept-Encoding", "gzip, deflate, br")
	if enc := string(gz.Header.Peek("Content-Encoding")); enc != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", enc)
	}
	if len(gz.Body()) >= len(first.Body())/2 {
		t.Errorf("gzipped %d bytes of %d", len(gz.Body()), len(first.Body()))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body()))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, first.Body()) {
		t.Errorf("gzipped body does not decompress to the file (%v)", err)
	}
	if png := g.get(t, "/docs/favicon-32x32.png", "", "Accept-Encoding", "gzip"); len(png.Header.Peek("Content-Encoding")) != 0 {
		t.Errorf("a PNG was gzipped")
	}
}

// TestDocsNotModifiedKeepsHeaders: a 304 carries the ETag, Cache-Control
// and Vary that its 200 would (RFC 9110 section 15.4.5), so that a cache
// refreshing its copy keeps revalidating it, and the page's security
// headers; and no body.
func TestDocsNotModifiedKeepsHeaders(t *testing.T) {
	g := newDocsGate(t, handlers.Config{})
	for _, path := range []string{"/docs", "/docs/swagger-ui-bundle.js", "/docs/oauth2-redirect.html"} {
		t.Run(path, func(t *testing.T) {
			ok := g.get(t, path, "")
			etag := string(ok.Header.Peek("ETag"))
			resp := g.get(t, path, "", "If-None-Match", etag)
			if resp.StatusCode() != 304 || len(resp.Body()) != 0 {
				t.Fatalf("status %d with %d bytes, want 304 and none", resp.StatusCode(), len(resp.Body()))
			}
			for _, h := range []string{"ETag", "Cache-Control", "Vary", "Content-Security-Policy", "X-Content-Type-Options"} {
				if got, want := string(resp.Header.Peek(h)), string(ok.Header.Peek(h)); got != want || want == "" {
					t.Errorf("304 %s %q, 200 %q", h, got, want)
				}
			}
		})
	}
}

// TestDocsETagPerCoding: the gzipped and the plain body of a docs file are
// two representations, so their strong ETags differ (RFC 9110 section
// 8.8.3); with one ETag for both, a cache holding both variants could
// answer a client that cannot gunzip with the gzipped bytes after a 304.
// Each revalidates against its own tag only.
func TestDocsETagPerCoding(t *testing.T) {
	g := newDocsGate(t, handlers.Config{})
	const path = "/docs/swagger-ui-bundle.js"
	plain := string(g.get(t, path, "").Header.Peek("ETag"))
	gz := g.get(t, path, "", "Accept-Encoding", "gzip")
	if string(gz.Header.Peek("Content-Encoding")) != "gzip" {
		t.Fatalf("not gzipped")
	}
	gzTag := string(gz.Header.Peek("ETag"))
	if plain == "" || gzTag == "" || plain == gzTag {
		t.Fatalf("ETag plain %q, gzip %q: want two different tags", plain, gzTag)
	}
	for _, tc := range []struct {
		name, ifNoneMatch, acceptEncoding string
		status                            int
		etag                              string
	}{
		{"plain revalidates plain", plain, "", 304, plain},
		{"gzip revalidates gzip", gzTag, "gzip", 304, gzTag},
		{"weak gzip tag revalidates gzip", "W/" + gzTag, "gzip", 304, gzTag},
		{"gzip tag for a plain request", gzTag, "", 200, plain},
		{"plain tag for a gzip request", plain, "gzip", 200, gzTag},
		{"either in a list", `"x", ` + gzTag, "gzip", 304, gzTag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := []string{"If-None-Match", tc.ifNoneMatch}
			if tc.acceptEncoding != "" {
				h = append(h, "Accept-Encoding", tc.acceptEncoding)
			}
			resp := g.get(t, path, "", h...)
			if resp.StatusCode() != tc.status || string(resp.Header.Peek("ETag")) != tc.etag {
				t.Errorf("status %d ETag %q, want %d %q", resp.StatusCode(), resp.Header.Peek("ETag"), tc.status, tc.etag)
			}
		})
	}
}
