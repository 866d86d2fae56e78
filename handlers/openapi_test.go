package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/router"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
)

// docsRoutes are the routes that serve the documentation itself. They are
// registered but, like FastAPI's /docs and /openapi.json, left out of the
// OpenAPI document.
var docsRoutes = []string{
	"GET /openapi.json",
	"GET /docs",
	"GET /docs/{filepath:*}",
}

// get sends GET path to g with the Host header host (the client's default
// when empty) and extra headers (name, value, …).
func (g *gate) get(tb testing.TB, path, host string, header ...string) *fasthttp.Response {
	tb.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	tb.Cleanup(func() { fasthttp.ReleaseResponse(resp) })
	req.SetRequestURI("http://tokengate.test" + path)
	if host != "" {
		req.UseHostHeader = true
		req.Header.SetHost(host)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if err := g.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

// spec fetches /openapi.json from g and loads it with kin-openapi.
func (g *gate) spec(tb testing.TB) (*openapi3.T, []byte) {
	tb.Helper()
	resp := g.get(tb, "/openapi.json", "")
	if resp.StatusCode() != fasthttp.StatusOK {
		tb.Fatalf("/openapi.json: status %d", resp.StatusCode())
	}
	raw := append([]byte(nil), resp.Body()...)
	return loadSpec(tb, raw), raw
}

func loadSpec(tb testing.TB, raw []byte) *openapi3.T {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		tb.Fatalf("kin-openapi cannot load /openapi.json: %v", err)
	}
	return doc
}

func TestOpenAPIServed(t *testing.T) {
	g := newGate(t, handlers.Config{})
	resp := g.get(t, "/openapi.json", "")
	want{status: 200, header: map[string]string{
		"Content-Type":           ctJSON,
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-cache",
	}}.check(t, resp)
	if !json.Valid(resp.Body()) {
		t.Fatalf("body is not JSON: %.200s", resp.Body())
	}
	var top struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(resp.Body(), &top); err != nil || top.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q (%v), want 3.1.0", top.OpenAPI, err)
	}
}

// serversCase is one request for the document and the servers URL it must
// carry.
type serversCase struct {
	name   string
	g      *gate
	host   string
	header []string
	want   string
}

func (tc serversCase) run(t *testing.T) {
	t.Parallel()
	resp := tc.g.get(t, "/openapi.json", tc.host, tc.header...)
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(resp.Body(), &doc); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != tc.want {
		t.Errorf("servers = %+v, want one with url %q", doc.Servers, tc.want)
	}
}

// TestOpenAPIServersReflectHost checks that servers names the address the
// request reached, and that a Host header that is not a plain host[:port]
// is never reflected.
func TestOpenAPIServersReflectHost(t *testing.T) {
	g := newGate(t, handlers.Config{})
	cases := []serversCase{
		{name: "name", host: "api.example.com", want: "http://api.example.com"},
		{name: "loopback with port", host: "127.0.0.1:8000", want: "http://127.0.0.1:8000"},
		{name: "ipv6", host: "[::1]:8000", want: "http://[::1]:8000"},
		{name: "behind a TLS proxy", host: "api.example.com", header: []string{"X-Forwarded-Proto", "https"}, want: "https://api.example.com"},
		{name: "proxy list, first wins", host: "api.example.com", header: []string{"X-Forwarded-Proto", "HTTPS, http"}, want: "https://api.example.com"},
		{name: "other forwarded proto", host: "api.example.com", header: []string{"X-Forwarded-Proto", "gopher"}, want: "http://api.example.com"},
		{name: "quote in host", host: `evil"host`, want: "/"},
		{name: "comma in host", host: "a.example,b.example", want: "/"},
		{name: "userinfo in host", host: "user@evil.example", want: "/"},
		{name: "angle brackets", host: "<script>", want: "/"},
		{name: "overlong host", host: strings.Repeat("a", 256), want: "/"},
	}
	for _, tc := range cases {
		tc.g = g
		t.Run(tc.name, tc.run)
	}
}

// routeParam matches a fasthttp/router parameter with an optional regexp
// or marker ({id:[0-9]+}, {id?}); OpenAPI writes it {id}.
var routeParam = regexp.MustCompile(`\{([^{}:?]+)(?::[^{}]*)?\??\}`)

// registeredRoutes lists the router's routes as "METHOD /path", without
// the HEAD and OPTIONS answers the router makes up itself and without
// the documentation's own routes, which it checks are registered.
func registeredRoutes(tb testing.TB, r *router.Router) map[string]bool {
	tb.Helper()
	all := map[string]bool{}
	for method, paths := range r.List() {
		for _, p := range paths {
			all[method+" "+p] = true
		}
	}
	for _, d := range docsRoutes {
		if !all[d] {
			tb.Errorf("documentation route %s is not registered; update docsRoutes", d)
		}
		delete(all, d)
	}
	out := map[string]bool{}
	for route := range all {
		method, p, _ := strings.Cut(route, " ")
		if method == fasthttp.MethodHead || method == fasthttp.MethodOptions {
			continue
		}
		if method == router.MethodWild {
			// The decision endpoints take any method; the document
			// shows GET, the method the proxies' examples use.
			method = fasthttp.MethodGet
		}
		out[method+" "+routeParam.ReplaceAllString(p, "{$1}")] = true
	}
	return out
}

// documentedRoutes lists the document's operations as "METHOD /path".
func documentedRoutes(doc *openapi3.T) map[string]bool {
	out := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out[strings.ToUpper(method)+" "+p] = true
		}
	}
	return out
}

// routeDrift returns one line per route that is registered but not
// documented or documented but not registered.
func routeDrift(registered, documented map[string]bool) []string {
	var out []string
	for r := range registered {
		if !documented[r] {
			out = append(out, fmt.Sprintf("%s is registered but not in /openapi.json: document it in handlers/openapi.json.tmpl", r))
		}
	}
	for r := range documented {
		if !registered[r] {
			out = append(out, fmt.Sprintf("%s is in /openapi.json but not registered: remove it from handlers/openapi.json.tmpl or register it", r))
		}
	}
	slices.Sort(out)
	return out
}

// newServer builds a Server with nothing but the stub validator and cfg,
// serves it, and returns both: the routes are exactly those New registers.
func newServer(tb testing.TB, cfg handlers.Config) (*handlers.Server, *gate) {
	tb.Helper()
	if cfg.Validator == nil {
		cfg.Validator = newAuthStub()
	}
	s, err := handlers.New(cfg)
	if err != nil {
		tb.Fatalf("handlers.New: %v", err)
	}
	return s, &gate{srv: s, client: serveInMemory(tb, s.Handler())}
}

// TestOpenAPIMatchesRouter fails when a route is registered but not
// documented, or documented but not registered (method and path).
func TestOpenAPIMatchesRouter(t *testing.T) {
	s, g := newServer(t, handlers.Config{})
	doc, _ := g.spec(t)
	registered := registeredRoutes(t, s.Router())
	documented := documentedRoutes(doc)
	for _, line := range routeDrift(registered, documented) {
		t.Error(line)
	}
	// The routes the issue names, so that an empty router and an empty
	// document cannot agree by accident.
	for _, r := range []string{"GET /", "GET /items", "GET /items/{id}", "POST /token", "GET /healthz", "GET /readyz", "GET /metrics"} {
		if !registered[r] || !documented[r] {
			t.Errorf("%s: registered %v, documented %v", r, registered[r], documented[r])
		}
	}

	// The comparison itself notices drift in both directions.
	t.Run("detects an undocumented route", func(t *testing.T) {
		s, g := newServer(t, handlers.Config{})
		s.Router().DELETE("/items/{id:[0-9]+}", func(*fasthttp.RequestCtx) {})
		doc, _ := g.spec(t)
		got := routeDrift(registeredRoutes(t, s.Router()), documentedRoutes(doc))
		if len(got) != 1 || !strings.HasPrefix(got[0], "DELETE /items/{id} is registered but not in /openapi.json") {
			t.Errorf("drift = %q", got)
		}
	})
	t.Run("detects a route documented but not registered", func(t *testing.T) {
		doc, _ := g.spec(t)
		doc.AddOperation("/gone", http.MethodPut, &openapi3.Operation{})
		got := routeDrift(registered, documentedRoutes(doc))
		if len(got) != 1 || !strings.HasPrefix(got[0], "PUT /gone is in /openapi.json but not registered") {
			t.Errorf("drift = %q", got)
		}
	})
}

// validateCase is a configuration whose document must validate and carry
// what the issue asks for.
type validateCase struct {
	name  string
	cfg   handlers.Config
	scope string // the scope the document must name
}

func (tc validateCase) run(t *testing.T) {
	t.Parallel()
	_, g := newServer(t, tc.cfg)
	doc, raw := g.spec(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q: want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("kin-openapi rejects the document: %v\n%s", err, raw)
	}

	schemes := doc.Components.SecuritySchemes
	if o := schemes["oauth2"]; o == nil || o.Value.Type != "oauth2" || o.Value.Flows == nil || o.Value.Flows.ClientCredentials == nil {
		t.Errorf("security scheme oauth2 with a clientCredentials flow missing: %+v", o)
	} else {
		cc := o.Value.Flows.ClientCredentials
		if cc.TokenURL != "/token" {
			t.Errorf("tokenUrl = %q, want /token", cc.TokenURL)
		}
		if _, ok := cc.Scopes[tc.scope]; !ok || len(cc.Scopes) != 1 {
			t.Errorf("scopes = %v, want just %q", cc.Scopes, tc.scope)
		}
	}
	if b := schemes["bearer"]; b == nil || b.Value.Type != "http" || b.Value.Scheme != "bearer" || b.Value.BearerFormat != "JWT" {
		t.Errorf("security scheme bearer (http, bearer, JWT) missing: %+v", b)
	}
	for _, name := range []string{"Item", "TokenResponse", "OAuthError", "HTTPError", "ValidationError"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("schema %s missing", name)
		}
	}

	for _, p := range []string{"/items", "/items/{id}"} {
		op := doc.Paths.Value(p).Get
		want := openapi3.SecurityRequirements{{"oauth2": {tc.scope}}, {"bearer": {}}}
		if op.Security == nil || fmt.Sprint(*op.Security) != fmt.Sprint(want) {
			t.Errorf("GET %s security = %v, want %v", p, op.Security, want)
		}
		for status, header := range map[int]string{401: "WWW-Authenticate", 403: "WWW-Authenticate", 503: "Retry-After"} {
			r := op.Responses.Status(status)
			if r == nil || r.Value.Headers[header] == nil {
				t.Errorf("GET %s: response %d without the %s header", p, status, header)
			}
		}
		if op.Responses.Status(401).Value.Content.Get(ctJSON).Schema.Ref != "#/components/schemas/HTTPError" {
			t.Errorf("GET %s: 401 body is not HTTPError", p)
		}
	}
	if r := doc.Paths.Value("/items/{id}").Get.Responses.Status(422); r == nil ||
		r.Value.Content.Get(ctJSON).Schema.Ref != "#/components/schemas/ValidationError" {
		t.Errorf("GET /items/{id}: 422 is not ValidationError")
	}
	for _, op := range []*openapi3.Operation{doc.Paths.Value("/token").Post, doc.Paths.Value("/metrics").Get} {
		if op.Security == nil || len(*op.Security) != 0 {
			t.Errorf("%s must need no bearer token: security %v", op.OperationID, op.Security)
		}
	}
	if mt := doc.Paths.Value("/metrics").Get.Responses.Status(200).Value.Content.Get(handlers.MetricsContentType); mt == nil ||
		!mt.Schema.Value.Type.Permits(openapi3.TypeString) {
		t.Errorf("GET /metrics: 200 is not documented as text/plain")
	}
}

// TestOpenAPIValidates loads and validates the document with kin-openapi
// (OpenAPI 3.1, JSON Schema 2020-12, examples included) for the default
// configuration and for one with unusual, escaping-prone values.
func TestOpenAPIValidates(t *testing.T) {
	cases := []validateCase{
		{name: "defaults", scope: "items"},
		{name: "custom scope and realm", scope: "api:read/items", cfg: handlers.Config{
			RequiredScope: "api:read/items",
			Realm:         `my "realm" \ here`,
			DefaultScope:  `openid "quoted" <b>`,
			DevClientID:   "dev-client",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestOpenAPIValidatorRejectsBrokenDocuments makes sure the validation
// above can fail: the same document, broken in small ways, is rejected.
func TestOpenAPIValidatorRejectsBrokenDocuments(t *testing.T) {
	_, g := newServer(t, handlers.Config{})
	_, raw := g.spec(t)
	for _, tc := range []struct{ name, old, new string }{
		{"unknown security scheme type", `"type":"oauth2"`, `"type":"oauth3"`},
		{"dangling schema reference", `"#/components/schemas/Item"`, `"#/components/schemas/Nope"`},
		{"example that violates its schema", `"example":1`, `"example":"one"`},
		{"path parameter not declared", `"/items/{id}"`, `"/items/{item}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(raw, []byte(tc.old)) {
				t.Fatalf("document lacks %s", tc.old)
			}
			broken := bytes.Replace(raw, []byte(tc.old), []byte(tc.new), 1)
			doc, err := openapi3.NewLoader().LoadFromData(broken)
			if err == nil {
				err = doc.Validate(context.Background(), openapi3.EnableExamplesValidation())
			}
			if err == nil {
				t.Errorf("a document with %s validates", tc.name)
			}
		})
	}
}

// contractCase is a request whose real response must match the document:
// its status documented, its headers and body valid against their schemas.
type contractCase struct {
	name   string
	method string
	path   string // as sent
	route  string // as documented
	header []string
	form   url.Values
	status int
}

// TestResponsesMatchOpenAPI sends requests through the real handlers and
// validates each response against the document with kin-openapi.
func TestResponsesMatchOpenAPI(t *testing.T) {
	g := newGate(t, handlers.Config{Ready: func() error { return fmt.Errorf("keys not loaded") }})
	doc, _ := g.spec(t)
	cases := []contractCase{
		{name: "hello", path: "/", route: "/", status: 200},
		{name: "items", path: "/items", route: "/items", header: bearer(tokGood), status: 200},
		{name: "items without token", path: "/items", route: "/items", status: 401},
		{name: "items with a bad token", path: "/items", route: "/items", header: bearer(tokExpired), status: 401},
		{name: "items without scope", path: "/items", route: "/items", header: bearer(tokNoScope), status: 403},
		{name: "items unavailable", path: "/items", route: "/items", header: bearer(tokDown), status: 503},
		{name: "items internal error", path: "/items", route: "/items", header: bearer(tokWeird), status: 500},
		{name: "item", path: "/items/2", route: "/items/{id}", header: bearer(tokGood), status: 200},
		{name: "item not found", path: "/items/99", route: "/items/{id}", header: bearer(tokGood), status: 404},
		{name: "item id not an integer", path: "/items/abc", route: "/items/{id}", header: bearer(tokGood), status: 422},
		{name: "item without token", path: "/items/1", route: "/items/{id}", status: 401},
		{name: "healthz", path: "/healthz", route: "/healthz", status: 200},
		{name: "readyz not ready", path: "/readyz", route: "/readyz", status: 503},
		{name: "metrics", path: "/metrics", route: "/metrics", status: 200},
		{name: "token without credentials", method: "POST", path: "/token", route: "/token", status: 401},
		{name: "token with another grant", method: "POST", path: "/token", route: "/token", status: 400,
			form: url.Values{"grant_type": {"password"}, "client_id": {"c"}, "client_secret": {"s3cr3t-x"}}},
		{name: "token not configured", method: "POST", path: "/token", route: "/token", status: 501,
			form: url.Values{"client_id": {"c"}, "client_secret": {"s3cr3t-x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.method == "" {
				tc.method = http.MethodGet
			}
			resp := g.do(t, call{method: tc.method, path: tc.path, header: tc.header, form: tc.form.Encode()})
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode(), tc.status, resp.Body())
			}
			item := doc.Paths.Value(tc.route)
			if item == nil || item.GetOperation(tc.method) == nil {
				t.Fatalf("%s %s is not documented", tc.method, tc.route)
			}
			header := http.Header{}
			for k, v := range resp.Header.All() {
				header.Add(string(k), string(v))
			}
			req, err := http.NewRequest(tc.method, "http://tokengate.test"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{
					Request: req,
					Route: &routers.Route{
						Spec: doc, Path: tc.route, PathItem: item,
						Method: tc.method, Operation: item.GetOperation(tc.method),
					},
				},
				Status:  resp.StatusCode(),
				Header:  header,
				Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
			}
			in.SetBodyBytes(append([]byte(nil), resp.Body()...))
			if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
				t.Errorf("response does not match /openapi.json: %v\nheaders: %v\nbody: %s", err, header, resp.Body())
			}
		})
	}
}
