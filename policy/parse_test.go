package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const fullPolicy = `# the brief's example, with issuers
default: authenticated
routes:
  - host: api.example.com
    path: /orders/**
    methods: [GET, head]
    scopes: [orders:read]
  - path: /orders/**
    methods: [POST, PUT, PATCH, DELETE]
    scopes: [orders:write]
    issuers: [okta, https://hydra.example.com/]
  - path: /status
    public: true
  - path: /internal/**
    deny: true
  - host: "*.Example.com"
    path: /caf%c3%a9/*
headers:
  X-Auth-Subject: sub
  X-Auth-Client-Id: cid
  X-Auth-Scopes: scp
  X-Auth-Expires: exp
issuers:
  - name: okta
    issuer: https://example.okta.com/oauth2/default
    audience: api://default
    mode: hybrid
    client_id_env: OKTA_CLIENT_ID
    client_secret_env: OKTA_CLIENT_SECRET
    allowed_client_ids: [0oa1, 0oa2]
  - name: hydra
    issuer: https://hydra.example.com/
    jwks_uri: https://hydra.example.com/.well-known/jwks.json
`

func TestParseFull(t *testing.T) {
	p := mustParse(t, fullPolicy)
	if p.Name() != "test.yaml" || p.Len() != 5 || p.CaseInsensitivePaths() {
		t.Errorf("Name %q, Len %d, CaseInsensitivePaths %v", p.Name(), p.Len(), p.CaseInsensitivePaths())
	}
	want := []struct {
		line          int
		host, path    string
		methods       []string
		access        Access
		scopes, issus []string
	}{
		{line: 4, host: "api.example.com", path: "/orders/**", methods: []string{"GET", "HEAD"}, access: AccessAuthenticated, scopes: []string{"orders:read"}},
		{line: 8, path: "/orders/**", methods: []string{"POST", "PUT", "PATCH", "DELETE"}, access: AccessAuthenticated,
			scopes: []string{"orders:write"}, issus: []string{"https://example.okta.com/oauth2/default", "https://hydra.example.com/"}},
		{line: 12, path: "/status", access: AccessPublic},
		{line: 14, path: "/internal/**", access: AccessDeny},
		{line: 16, host: "*.example.com", path: "/caf%C3%A9/*", access: AccessAuthenticated},
	}
	for i, w := range want {
		r := p.routes[i]
		if r.Index != i || r.Line != w.line || r.Host != w.host || r.Path != w.path || r.Access != w.access ||
			!slices.Equal(r.Methods, w.methods) || !slices.Equal(r.Scopes, w.scopes) || !slices.Equal(r.Issuers, w.issus) {
			t.Errorf("route %d = %+v, want %+v", i, r, w)
		}
	}
	if p.fallback.Access != AccessAuthenticated || p.fallback.Index != -1 {
		t.Errorf("default rule %+v", p.fallback)
	}
	wantHeaders := []Header{
		{"X-Auth-Subject", ClaimSubject}, {"X-Auth-Client-Id", ClaimClientID},
		{"X-Auth-Scopes", ClaimScope}, {"X-Auth-Expires", ClaimExpiresAt},
	}
	if !slices.Equal(p.Headers(), wantHeaders) {
		t.Errorf("Headers() = %v, want %v", p.Headers(), wantHeaders)
	}
	iss := p.Issuers()
	if len(iss) != 2 {
		t.Fatalf("%d issuers, want 2", len(iss))
	}
	okta := Issuer{Line: 24, Name: "okta", Issuer: "https://example.okta.com/oauth2/default", Audience: "api://default",
		Mode: ModeHybrid, ClientIDEnv: "OKTA_CLIENT_ID", ClientSecretEnv: "OKTA_CLIENT_SECRET", AllowedClientIDs: []string{"0oa1", "0oa2"}}
	if !issuerEqual(iss[0], okta) {
		t.Errorf("issuer 0 = %+v, want %+v", iss[0], okta)
	}
	hydra := Issuer{Line: 31, Name: "hydra", Issuer: "https://hydra.example.com/",
		JWKSURI: "https://hydra.example.com/.well-known/jwks.json", Mode: ModeLocal}
	if !issuerEqual(iss[1], hydra) {
		t.Errorf("issuer 1 = %+v, want %+v", iss[1], hydra)
	}
}

func issuerEqual(a, b Issuer) bool {
	return reflect.DeepEqual(a, b)
}

func TestParseDefaults(t *testing.T) {
	cases := []struct {
		name        string
		src         string
		access      Access
		headers     []Header
		caseInsens  bool
		routeIssuer []string
	}{
		{name: "nothing but a route", src: "routes:\n  - path: /a\n", access: AccessDeny, headers: defaultHeaders()},
		{name: "default public", src: "default: public\n", access: AccessPublic, headers: defaultHeaders()},
		{name: "no headers", src: "default: deny\nheaders: {}\n", access: AccessDeny, headers: []Header{}},
		{name: "case-insensitive", src: "case_insensitive_paths: true\n", access: AccessDeny, headers: defaultHeaders(), caseInsens: true},
		{name: "route issuer URL without a list", src: "routes:\n  - path: /a\n    issuers: [https://a.example/]\n",
			access: AccessDeny, headers: defaultHeaders(), routeIssuer: []string{"https://a.example/"}},
		{name: "routes empty", src: "routes: []\ndefault: authenticated\n", access: AccessAuthenticated, headers: defaultHeaders()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.src)
			if p.fallback.Access != tc.access {
				t.Errorf("default access %v, want %v", p.fallback.Access, tc.access)
			}
			if !slices.Equal(p.Headers(), tc.headers) || (p.Headers() == nil) != (tc.headers == nil) {
				t.Errorf("headers %#v, want %#v", p.Headers(), tc.headers)
			}
			if p.CaseInsensitivePaths() != tc.caseInsens {
				t.Errorf("case-insensitive %v", p.CaseInsensitivePaths())
			}
			if tc.routeIssuer != nil && !slices.Equal(p.routes[0].Issuers, tc.routeIssuer) {
				t.Errorf("route issuers %v, want %v", p.routes[0].Issuers, tc.routeIssuer)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const issuer = "issuers:\n  - name: a\n    issuer: https://a.example/\n"
	cases := []struct {
		name string
		src  string
		line int
		msg  string // the whole message after "policy: test.yaml:LINE: "
	}{
		// The file as a whole.
		{name: "empty", src: "", msg: "file is empty"},
		{name: "only comments", src: "# nothing\n", msg: "file is empty"},
		{name: "too large", src: "#" + strings.Repeat("x", MaxFileSize), msg: "file is larger than 1048576 bytes"},
		{name: "syntax", src: "default: deny\nroutes:\n  - path: /a\n   bad: [\n", line: 2, msg: "invalid YAML: did not find expected '-' indicator"},
		{name: "tab indentation", src: "routes:\n\t- path: /a\n", line: 2, msg: "invalid YAML: found character that cannot start any token"},
		{name: "two documents", src: "default: deny\n---\ndefault: public\n", line: 2, msg: "more than one YAML document"},
		{name: "top level list", src: "- a\n", line: 1, msg: "policy: want a mapping"},
		{name: "null document", src: "~\n", line: 1, msg: "policy: want a mapping"},
		{name: "unknown top key", src: "default: deny\nroute: []\n", line: 2,
			msg: `unknown key "route" at the top level (known: default, case_insensitive_paths, routes, headers, issuers)`},
		{name: "duplicate key", src: "default: deny\ndefault: public\n", line: 2, msg: `duplicate key "default" in policy`},
		{name: "alias", src: "x: &a /a\nroutes:\n  - path: *a\n", line: 1, msg: `unknown key "x" at the top level (known: default, case_insensitive_paths, routes, headers, issuers)`},
		{name: "alias value", src: "routes:\n  - &r {path: /a}\n  - *r\n", line: 3, msg: "route: YAML aliases are not supported"},
		{name: "merge key", src: "routes:\n  - <<: {path: /a}\n", line: 2, msg: "route: YAML merge keys (<<) are not supported"},
		{name: "null key", src: "~: deny\n", line: 1, msg: "policy key: want a string, not null"},

		// default and case_insensitive_paths.
		{name: "bad default", src: "default: allow\n", line: 1, msg: `default: "allow" is not deny, authenticated or public`},
		{name: "default not a string", src: "default: [deny]\n", line: 1, msg: "default: want a single value"},
		{name: "case not a bool", src: "case_insensitive_paths: yes\n", line: 1, msg: "case_insensitive_paths: want true or false"},

		// Routes.
		{name: "routes not a list", src: "routes: {path: /a}\n", line: 1, msg: "routes: want a list"},
		{name: "route not a mapping", src: "routes:\n  - /a\n", line: 2, msg: "route: want a mapping"},
		{name: "unknown route key", src: "routes:\n  - path: /a\n    scope: [x]\n", line: 3,
			msg: `unknown key "scope" in a route (known: host, path, methods, scopes, public, deny, issuers)`},
		{name: "route without path", src: "routes:\n  - public: true\n", line: 2, msg: "route has no path"},
		{name: "empty scopes", src: "routes:\n  - path: /a\n    scopes: []\n", line: 3, msg: "scopes: empty list (leave the key out instead)"},
		{name: "scopes not a list", src: "routes:\n  - path: /a\n    scopes: a\n", line: 3, msg: "scopes: want a list"},
		{name: "bad scope", src: "routes:\n  - path: /a\n    scopes: [\"a b\"]\n", line: 3, msg: `scope "a b" is not an RFC 6749 scope-token`},
		{name: "public with scopes", src: "routes:\n  - path: /a\n    scopes: [x]\n    public: true\n", line: 4, msg: "public: true together with scopes"},
		{name: "public with issuers", src: "routes:\n  - path: /a\n    public: true\n    issuers: [https://a.example/]\n", line: 3, msg: "public: true together with issuers"},
		{name: "public with deny", src: "routes:\n  - path: /a\n    public: true\n    deny: true\n", line: 4, msg: "public: true together with deny: true"},
		{name: "deny with scopes", src: "routes:\n  - path: /a\n    deny: true\n    scopes: [x]\n", line: 3, msg: "deny: true together with scopes"},
		{name: "deny with issuers", src: "routes:\n  - path: /a\n    deny: true\n    issuers: [https://a.example/]\n", line: 3, msg: "deny: true together with issuers"},
		{name: "public not a bool", src: "routes:\n  - path: /a\n    public: \"true\"\n", line: 3, msg: "public: want true or false"},
		{name: "bad method", src: "routes:\n  - path: /a\n    methods: [GET, \"GE T\"]\n", line: 3, msg: `method "GE T" is not an RFC 9110 token`},
		{name: "duplicate method", src: "routes:\n  - path: /a\n    methods: [GET, get]\n", line: 3, msg: `duplicate method "GET"`},
		{name: "empty methods", src: "routes:\n  - path: /a\n    methods: []\n", line: 3, msg: "methods: empty list (leave the key out instead)"},
		{name: "null method", src: "routes:\n  - path: /a\n    methods: [~]\n", line: 3, msg: "methods entry: want a string, not null"},

		// Path patterns.
		{name: "glob ** not last", src: "routes:\n  - path: /a/**/b\n", line: 2, msg: `path "/a/**/b": ** must be the last segment`},
		{name: "glob a**", src: "routes:\n  - path: /a**\n", line: 2, msg: `path "/a**": * must be a whole segment`},
		{name: "glob *.json", src: "routes:\n  - path: /a/*.json\n", line: 2, msg: `path "/a/*.json": * must be a whole segment`},
		{name: "empty segment", src: "routes:\n  - path: /a//b\n", line: 2,
			msg: `path "/a//b": empty segment (no // and no trailing /; a trailing slash is ignored when matching)`},
		{name: "trailing slash", src: "routes:\n  - path: /a/\n", line: 2,
			msg: `path "/a/": empty segment (no // and no trailing /; a trailing slash is ignored when matching)`},
		{name: "dot segment", src: "routes:\n  - path: /a/../b\n", line: 2, msg: `path "/a/../b": dot segment`},
		{name: "encoded dot segment", src: "routes:\n  - path: /a/%2e/b\n", line: 2, msg: `path "/a/%2e/b": encoded dot segment`},
		// Last, an encoded dot leaves as many segments, the last empty: a
		// rule that would match nothing, so a deny that never denies.
		{name: "encoded dot segment last", src: "routes:\n  - path: /admin/%2e\n    deny: true\n", line: 2, msg: `path "/admin/%2e": encoded dot segment`},
		{name: "encoded dot segment alone", src: "routes:\n  - path: /%2E\n", line: 2, msg: `path "/%2E": encoded dot segment`},
		{name: "relative path", src: "routes:\n  - path: a/b\n", line: 2, msg: `path "a/b": must start with /`},
		{name: "empty path", src: "routes:\n  - path: \"\"\n", line: 2, msg: `path "": must start with /`},
		{name: "query in path", src: "routes:\n  - path: /a?b\n", line: 2, msg: `path "/a?b": no query or fragment`},
		{name: "encoded slash in path", src: "routes:\n  - path: /a%2Fb\n", line: 2, msg: `path "/a%2Fb": encoded slash`},
		{name: "semicolon in path", src: "routes:\n  - path: /a;b\n", line: 2, msg: `path "/a;b": path parameter (;)`},
		{name: "path not a string", src: "routes:\n  - path: true\n", line: 2, msg: "path: want a string, not bool"},

		// Hosts.
		{name: "host double wildcard", src: "routes:\n  - path: /a\n    host: \"*.*.example.com\"\n", line: 3,
			msg: `host "*.*.example.com": a wildcard is only allowed as the whole first label ("*.example.com")`},
		{name: "host partial wildcard", src: "routes:\n  - path: /a\n    host: \"a*.example.com\"\n", line: 3,
			msg: `host "a*.example.com": a wildcard is only allowed as the whole first label ("*.example.com")`},
		{name: "host with port", src: "routes:\n  - path: /a\n    host: example.com:8080\n", line: 3,
			msg: `host "example.com:8080": no port (Match ignores the request's port)`},
		{name: "host empty label", src: "routes:\n  - path: /a\n    host: a..b\n", line: 3,
			msg: `host "a..b": labels must be 1 to 63 characters and not start or end with '-'`},
		{name: "host trailing dot", src: "routes:\n  - path: /a\n    host: a.b.\n", line: 3,
			msg: `host "a.b.": labels must be 1 to 63 characters and not start or end with '-'`},
		{name: "host hyphen", src: "routes:\n  - path: /a\n    host: -a.b\n", line: 3,
			msg: `host "-a.b": labels must be 1 to 63 characters and not start or end with '-'`},
		{name: "host underscore", src: "routes:\n  - path: /a\n    host: a_b.c\n", line: 3, msg: `host "a_b.c": labels may hold only letters, digits and '-'`},
		{name: "host IPv6 literal", src: "routes:\n  - path: /a\n    host: \"[::1]\"\n", line: 3,
			msg: `host "[::1]": IPv6 literals are not supported (a DNS name or an IPv4 address)`},
		{name: "host bare IPv6", src: "routes:\n  - path: /a\n    host: \"2001:db8::1\"\n", line: 3,
			msg: `host "2001:db8::1": IPv6 literals are not supported (a DNS name or an IPv4 address)`},
		{name: "host empty", src: "routes:\n  - path: /a\n    host: \"\"\n", line: 3, msg: `host "": empty`},
		{name: "host bare wildcard", src: "routes:\n  - path: /a\n    host: \"*.\"\n", line: 3, msg: `host "*.": empty`},

		// Headers.
		{name: "headers not a mapping", src: "headers: [X-A]\n", line: 1, msg: "headers: want a mapping"},
		{name: "headers null", src: "headers:\n", line: 1, msg: "headers: want a mapping"},
		{name: "duplicate header", src: "headers:\n  X-Auth-Subject: sub\n  x-auth-subject: cid\n", line: 3,
			msg: `duplicate header "x-auth-subject" (header names are case-insensitive)`},
		{name: "duplicate header with '_' for '-'", src: "headers:\n  X-User: sub\n  x_user: cid\n", line: 3,
			msg: `header "x_user" reads as "X-User" to upstreams that take '_' for '-' (CGI, WSGI, Rack, PHP), and the gateway treats them as one`},
		{name: "header not a token", src: "headers:\n  X Auth: sub\n", line: 2, msg: `header "X Auth" is not an RFC 9110 token`},
		{name: "header with colon", src: "headers:\n  \"X-A:\": sub\n", line: 2, msg: `header "X-A:" is not an RFC 9110 token`},
		{name: "header with CRLF", src: "headers:\n  \"X-A\\r\\nX-B\": sub\n", line: 2, msg: `header "X-A\r\nX-B" is not an RFC 9110 token`},
		{name: "unknown claim", src: "headers:\n  X-Email: email\n", line: 2,
			msg: `header "X-Email": unknown claim "email" (known: sub, client_id, cid, scope, scp, iss, aud, jti, exp, iat)`},
		{name: "reserved header", src: "headers:\n  Content-Length: sub\n", line: 2, msg: `header "Content-Length" frames or routes the message and cannot carry a claim`},
		{name: "claim not a string", src: "headers:\n  X-A: [sub]\n", line: 2, msg: "X-A: want a single value"},

		// Issuers.
		{name: "issuers empty", src: "issuers: []\n", line: 1, msg: "issuers: empty list (leave the key out instead)"},
		{name: "issuer not a mapping", src: "issuers: [a]\n", line: 1, msg: "issuer entry: want a mapping"},
		{name: "issuer unknown key", src: issuer + "    secret: x\n", line: 4,
			msg: `unknown key "secret" in an issuer entry (known: name, issuer, audience, jwks_uri, introspection_endpoint, client_id_env, client_secret_env, mode, allowed_client_ids)`},
		{name: "inline secret", src: issuer + "    client_secret: hunter2\n", line: 4,
			msg: `unknown key "client_secret" in an issuer entry: credentials are never written in the file; name an environment variable with client_secret_env`},
		{name: "inline client id", src: issuer + "    client_id: abc\n", line: 4,
			msg: `unknown key "client_id" in an issuer entry: credentials are never written in the file; name an environment variable with client_id_env`},
		{name: "issuer without name", src: "issuers:\n  - issuer: https://a.example/\n", line: 2, msg: "issuer entry has no name"},
		{name: "issuer without URL", src: "issuers:\n  - name: a\n", line: 2, msg: `issuer "a" has no issuer URL`},
		{name: "issuer bad name", src: "issuers:\n  - name: a b\n", line: 2, msg: `name "a b": use letters, digits, '.', '_' and '-'`},
		{name: "issuer URL not absolute", src: "issuers:\n  - name: a\n    issuer: a.example\n", line: 3,
			msg: "issuer: want an absolute http or https URL without user info, query or fragment"},
		{name: "issuer URL with user info", src: "issuers:\n  - name: a\n    issuer: https://u:hunter2@a.example/\n", line: 3,
			msg: "issuer: want an absolute http or https URL without user info, query or fragment"},
		{name: "jwks_uri with query", src: issuer + "    jwks_uri: https://a.example/k?x=1\n", line: 4,
			msg: "jwks_uri: want an absolute http or https URL without user info, query or fragment"},
		{name: "bad mode", src: issuer + "    mode: magic\n", line: 4, msg: `mode "magic" is not local, remote or hybrid`},
		{name: "remote without credentials", src: issuer + "    mode: remote\n", line: 2,
			msg: `issuer "a": mode remote introspects, and needs client_id_env and client_secret_env`},
		{name: "secret env without id env", src: issuer + "    client_secret_env: S\n", line: 2, msg: `issuer "a": client_secret_env without client_id_env`},
		{name: "bad env name", src: issuer + "    client_id_env: 1X\n", line: 4, msg: "client_id_env: want the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*)"},
		{name: "empty audience", src: issuer + "    audience: \"\"\n", line: 4, msg: "audience: empty or with control characters"},
		{name: "empty allowed client ids", src: issuer + "    allowed_client_ids: []\n", line: 4, msg: "allowed_client_ids: empty list (leave the key out instead)"},
		{name: "duplicate issuer name", src: issuer + "  - name: a\n    issuer: https://b.example/\n", line: 4, msg: `duplicate issuer name "a"`},
		{name: "duplicate issuer URL", src: issuer + "  - name: b\n    issuer: https://a.example/\n", line: 4, msg: `issuer "b": same issuer URL as "a"`},
		{name: "route issuer not listed", src: "routes:\n  - path: /a\n    issuers: [a, b]\n" + issuer, line: 3,
			msg: `route issuer "b" is neither a name nor an issuer URL of the issuers list`},
		{name: "route issuer not a URL without a list", src: "routes:\n  - path: /a\n    issuers: [okta]\n", line: 3,
			msg: `route issuer "okta": without an issuers list, want an issuer URL`},
		{name: "route issuers empty", src: "routes:\n  - path: /a\n    issuers: []\n", line: 3, msg: "issuers: empty list (leave the key out instead)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("test.yaml", []byte(tc.src))
			if p != nil {
				t.Errorf("policy %v with an error", p)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *Error", err, err)
			}
			if pe.File != "test.yaml" || pe.Line != tc.line || pe.Msg != tc.msg {
				t.Errorf("got  file %q line %d msg %q\nwant file %q line %d msg %q", pe.File, pe.Line, pe.Msg, "test.yaml", tc.line, tc.msg)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("message spans lines: %q", err.Error())
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("message quotes a secret: %q", err.Error())
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	cases := []struct {
		err  Error
		want string
	}{
		{Error{File: "p.yaml", Line: 3, Msg: "bad"}, "policy: p.yaml:3: bad"},
		{Error{File: "p.yaml", Msg: "file is empty"}, "policy: p.yaml: file is empty"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, good, "default: public\n")
	writeFile(t, bad, "default: public\nfoo: 1\n")
	writeFile(t, big, "#"+strings.Repeat("x", MaxFileSize+10))

	p, err := Load(good)
	if err != nil || p.Name() != good || p.fallback.Access != AccessPublic {
		t.Fatalf("Load(good) = %+v, %v", p, err)
	}
	cases := []struct {
		name, path string
		line       int
		notExist   bool
	}{
		{name: "bad", path: bad, line: 2},
		{name: "too big", path: big},
		{name: "missing", path: filepath.Join(dir, "missing.yaml"), notExist: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(tc.path)
			if p != nil || err == nil {
				t.Fatalf("Load = %v, %v; want an error", p, err)
			}
			if tc.notExist {
				if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "policy: ") {
					t.Errorf("error %v, want a policy-prefixed fs.ErrNotExist", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != tc.path || pe.Line != tc.line {
				t.Errorf("error %v, want a *Error for %s line %d", err, tc.path, tc.line)
			}
		})
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
