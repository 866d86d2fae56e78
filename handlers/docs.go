package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"github.com/fasthttp/router"
	swaggerfiles "github.com/swaggo/files/v2"
	"github.com/valyala/fasthttp"
)

// The interactive documentation: Swagger UI, embedded in the binary by
// github.com/swaggo/files/v2, configured by a script of our own for this
// server's /openapi.json and for the OAuth 2.0 client-credentials flow
// through this server's /token. Nothing is fetched from another origin,
// so it works offline, and a content security policy says so to the
// browser: scripts and stylesheets only from this origin (no inline script
// or style element; Swagger UI sets styles through the DOM, which the
// policy allows), images from this origin or data: URLs (the stylesheet's
// icons), fetch/XHR only to this origin. The browser test
// (cmd/server/browser_e2e_test.go) fails on any violation, so a Swagger UI
// upgrade that needs more shows up there.

// The documentation's own routes. They are not part of the API, so the
// OpenAPI document leaves them out; the drift test lists them too.
const (
	routeOpenAPI   = "/openapi.json"
	routeDocs      = "/docs"
	routeDocsFiles = "/docs/{filepath:*}"
)

const (
	// docsCSP is the content security policy of the docs pages.
	docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

	// redirectPage is Swagger UI's page for the OAuth 2.0 redirect (used by
	// the authorization-code and implicit flows). Its one inline script is
	// allowed by its hash, computed at start-up.
	redirectPage = "oauth2-redirect.html"
	// initScript is our Swagger UI configuration.
	initScript = "swagger-init.js"
)

// docsFromDist are the files of the Swagger UI distribution the page uses.
var docsFromDist = [...]string{
	"swagger-ui.css",
	"swagger-ui-bundle.js",
	"index.css",
	"favicon-16x16.png",
	"favicon-32x32.png",
	redirectPage,
}

// docsIndex is the page at /docs. Unlike the distribution's index.html it
// loads no standalone preset (no top bar that fetches arbitrary URLs) and
// no inline script.
const docsIndex = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokengate API docs</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="stylesheet" href="/docs/index.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/` + initScript + `"></script>
</body>
</html>
`

// docsInitScript configures Swagger UI; %s is the initOAuth argument.
// persistAuthorization is off: a token lives only as long as the page.
const docsInitScript = `// tokengate: Swagger UI configuration, generated at start-up.
"use strict";
window.addEventListener("load", function () {
  var ui = SwaggerUIBundle({
    url: "` + routeOpenAPI + `",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    displayRequestDuration: true,
    validatorUrl: null,
    oauth2RedirectUrl: window.location.origin + "/docs/` + redirectPage + `",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
  ui.initOAuth(%s);
  window.ui = ui;
});
`

// oauthInit is Swagger UI's initOAuth configuration. It never holds a
// client secret: the user types it into the Authorize dialog.
type oauthInit struct {
	ClientID string `json:"clientId,omitempty"`
	Scopes   string `json:"scopes"`
	AppName  string `json:"appName"`
}

// docsAsset is one file under /docs, in memory, with its headers decided
// once.
type docsAsset struct {
	body        []byte
	contentType string
	etag        string // strong validator of body, quoted
	etagGzip    string // of the gzipped body: another representation, another tag (RFC 9110 section 8.8.3)
	csp         string

	gzipOnce sync.Once
	gzipped  []byte // body gzipped, or nil when that does not pay; set by gzipOnce
}

// docsSite serves the documentation files.
type docsSite struct {
	files map[string]*docsAsset // by name under /docs/
	index *docsAsset
}

// mountDocs registers /openapi.json, /docs and the files under /docs/.
// Everything it serves is built here, once: the OpenAPI document and the
// Swagger UI configuration depend only on s.cfg. It panics if the embedded
// template or Swagger UI files are broken, which is a build defect the
// tests catch, never a runtime condition.
func (s *Server) mountDocs(r *router.Router) {
	doc, err := s.renderOpenAPI()
	if err != nil {
		panic(err)
	}
	site, err := newDocsSite(swaggerfiles.FS, oauthInit{
		ClientID: s.cfg.DevClientID,
		Scopes:   s.cfg.RequiredScope,
		AppName:  "tokengate",
	})
	if err != nil {
		panic(err)
	}
	getAndHead(r, routeOpenAPI, doc.serve)
	getAndHead(r, routeDocs, site.serveIndex)
	getAndHead(r, routeDocsFiles, site.serveFile)
}

// newDocsSite loads the Swagger UI files from dist and builds the index
// page and the configuration script.
func newDocsSite(dist fs.FS, init oauthInit) (*docsSite, error) {
	site := &docsSite{files: make(map[string]*docsAsset, len(docsFromDist)+2)}
	for _, name := range docsFromDist {
		body, err := fs.ReadFile(dist, name)
		if err != nil {
			return nil, fmt.Errorf("handlers: Swagger UI file: %w", err)
		}
		csp := docsCSP
		if name == redirectPage {
			if csp, err = redirectPageCSP(body); err != nil {
				return nil, err
			}
		}
		site.files[name] = newDocsAsset(name, body, csp)
	}
	initJSON, err := json.Marshal(init)
	if err != nil {
		return nil, fmt.Errorf("handlers: encoding the Swagger UI OAuth settings: %w", err)
	}
	site.files[initScript] = newDocsAsset(initScript, fmt.Appendf(nil, docsInitScript, initJSON), docsCSP)
	site.index = newDocsAsset("index.html", []byte(docsIndex), docsCSP)
	site.files["index.html"] = site.index
	return site, nil
}

// redirectPageCSP returns the policy for Swagger UI's OAuth 2.0 redirect
// page: nothing but its own inline script, allowed by hash.
func redirectPageCSP(page []byte) (string, error) {
	_, rest, ok := bytes.Cut(page, []byte("<script>"))
	script, _, ok2 := bytes.Cut(rest, []byte("</script>"))
	if !ok || !ok2 || bytes.Contains(rest, []byte("<script")) {
		return "", fmt.Errorf("handlers: %s must hold exactly one inline script", redirectPage)
	}
	sum := sha256.Sum256(script)
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'", nil
}

func newDocsAsset(name string, body []byte, csp string) *docsAsset {
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:12])
	return &docsAsset{
		body:        body,
		contentType: docsContentType(name),
		etag:        `"` + tag + `"`,
		etagGzip:    `"` + tag + `-gzip"`,
		csp:         csp,
	}
}

// docsContentType is the media type for a docs file, by extension.
func docsContentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".png":
		return "image/png"
	default:
		return "application/octet-stream"
	}
}

// serveIndex answers GET /docs.
func (d *docsSite) serveIndex(ctx *fasthttp.RequestCtx) { d.index.serve(ctx) }

// serveFile answers GET /docs/{filepath}: a known file, /docs for the
// bare directory, 404 for anything else (nothing is looked up on disk).
func (d *docsSite) serveFile(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("filepath").(string)
	if name == "" {
		// Relative, as trailingSlashRedirect's: ctx.Redirect would build
		// an absolute Location from the Host header.
		ctx.Response.Header.Set(fasthttp.HeaderLocation, routeDocs)
		ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
		return
	}
	a, ok := d.files[name]
	if !ok {
		writeJSON(ctx, fasthttp.StatusNotFound, bodyNotFound)
		return
	}
	a.serve(ctx)
}

// serve writes the asset with its security and caching headers. Browsers
// revalidate every time (no-cache) and get 304 while the binary is the
// same; bodies over a few KiB are gzipped, once, on first demand, and the
// gzipped body has an ETag of its own.
func (a *docsAsset) serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", a.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(headerCacheControl, "no-cache")
	h.Set("Vary", "Accept-Encoding")
	var gz []byte
	if ctx.Request.Header.HasAcceptEncoding("gzip") {
		gz = a.gzip()
	}
	etag := a.etag
	if gz != nil {
		etag = a.etagGzip
	}
	h.Set(fasthttp.HeaderETag, etag)
	if etagMatches(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), etag) {
		// Not ctx.NotModified, which resets the headers: a 304 keeps the
		// 200's ETag, Cache-Control and Vary (RFC 9110 section 15.4.5).
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	h.SetContentType(a.contentType)
	ctx.SetStatusCode(fasthttp.StatusOK)
	if gz != nil {
		h.SetContentEncoding("gzip")
		ctx.Response.SetBodyRaw(gz)
		return
	}
	ctx.Response.SetBodyRaw(a.body)
}

// gzip returns the gzipped body, compressing it on the first call, or nil
// when the body is too small or does not shrink.
func (a *docsAsset) gzip() []byte {
	a.gzipOnce.Do(func() {
		const minSize = 1 << 10
		if len(a.body) < minSize {
			return
		}
		gz := fasthttp.AppendGzipBytesLevel(nil, a.body, fasthttp.CompressDefaultCompression)
		if len(gz) < len(a.body)*9/10 {
			a.gzipped = gz
		}
	})
	return a.gzipped
}

// etagMatches reports whether an If-None-Match value names etag (weak
// comparison, RFC 9110 section 13.1.2).
func etagMatches(ifNoneMatch []byte, etag string) bool {
	for len(ifNoneMatch) > 0 {
		var tag []byte
		tag, ifNoneMatch, _ = bytes.Cut(ifNoneMatch, []byte{','})
		tag = bytes.TrimSpace(tag)
		tag = bytes.TrimPrefix(tag, []byte("W/"))
		if string(tag) == etag || string(tag) == "*" {
			return true
		}
	}
	return false
}
