package policy

import (
	"testing"

	"github.com/tokengate/tokengate/auth"
)

// matchPolicy exercises hosts, methods and globs; each route's index is its
// name in the table below.
const matchPolicy = `
default: deny
routes:
  - host: api.example.com          # 0
    path: /orders/**
    methods: [GET]
    scopes: [orders:read]
  - path: /orders/**               # 1
    methods: [POST, DELETE]
    scopes: [orders:write]
  - host: "*.tenant.example"       # 2
    path: /t/*
  - path: /files/*/meta            # 3
  - path: /exact                   # 4
  - path: /                        # 5
    public: true
  - path: /exact/**                # 6: after /exact, so /exact itself matches 4
    deny: true
  - path: /Caf%c3%a9               # 7
`

func TestMatch(t *testing.T) {
	p := mustParse(t, matchPolicy)
	ci := mustParse(t, "case_insensitive_paths: true\n"+matchPolicy)
	cases := []struct {
		name               string
		host, method, path string
		ci                 bool
		want               int // route index; -1 for the default rule
	}{
		{name: "host, method and glob", host: "api.example.com", method: "GET", path: "/orders/1", want: 0},
		{name: "glob ** matches the base", host: "api.example.com", method: "GET", path: "/orders", want: 0},
		{name: "glob ** matches the base with a slash", host: "api.example.com", method: "GET", path: "/orders/", want: 0},
		{name: "glob ** matches deep", host: "api.example.com", method: "GET", path: "/orders/1/items/2", want: 0},
		{name: "glob ** needs a segment boundary", host: "api.example.com", method: "GET", path: "/ordersx", want: -1},
		{name: "GET implies HEAD", host: "api.example.com", method: "HEAD", path: "/orders/1", want: 0},
		{name: "method case-insensitive", host: "api.example.com", method: "get", path: "/orders/1", want: 0},
		{name: "host case-insensitive with port", host: "API.Example.COM:8443", method: "GET", path: "/orders/1", want: 0},
		{name: "host with trailing dot", host: "api.example.com.", method: "GET", path: "/orders/1", want: 0},
		{name: "host with trailing dot and port", host: "api.example.com.:443", method: "GET", path: "/orders/1", want: 0},
		{name: "other host falls through", host: "www.example.com", method: "GET", path: "/orders/1", want: -1},
		{name: "host suffix is not the host", host: "xapi.example.com", method: "GET", path: "/orders/1", want: -1},
		{name: "empty host matches no host rule", host: "", method: "GET", path: "/orders/1", want: -1},
		{name: "IPv6 host", host: "[::1]:8080", method: "POST", path: "/orders/1", want: 1},
		{name: "second rule by method", host: "api.example.com", method: "POST", path: "/orders/1", want: 1},
		{name: "method not listed", host: "api.example.com", method: "PUT", path: "/orders/1", want: -1},
		{name: "HEAD not implied by POST", method: "HEAD", path: "/orders/1", want: -1},
		{name: "unusual method", method: "PROPFIND", path: "/exact", want: 4},
		{name: "wildcard host one label", host: "a.tenant.example", method: "GET", path: "/t/x", want: 2},
		{name: "wildcard host upper case", host: "A.TENANT.EXAMPLE:80", method: "GET", path: "/t/x", want: 2},
		{name: "wildcard host two labels", host: "a.b.tenant.example", method: "GET", path: "/t/x", want: -1},
		{name: "wildcard host not the apex", host: "tenant.example", method: "GET", path: "/t/x", want: -1},
		{name: "wildcard host empty label", host: ".tenant.example", method: "GET", path: "/t/x", want: -1},
		{name: "glob * one segment", host: "a.tenant.example", method: "GET", path: "/t/x/y", want: -1},
		{name: "glob * not zero segments", host: "a.tenant.example", method: "GET", path: "/t", want: -1},
		{name: "glob * not an empty segment", host: "a.tenant.example", method: "GET", path: "/t/", want: -1},
		{name: "glob * in the middle", method: "GET", path: "/files/a.txt/meta", want: 3},
		{name: "glob * in the middle, too deep", method: "GET", path: "/files/a/b/meta", want: -1},
		{name: "exact", method: "GET", path: "/exact", want: 4},
		{name: "exact ignores a trailing slash", method: "GET", path: "/exact/", want: 4},
		{name: "exact is not a prefix", method: "GET", path: "/exact/x", want: 6},
		{name: "exact is case-sensitive", method: "GET", path: "/EXACT", want: -1},
		{name: "exact, case-insensitive", method: "GET", path: "/EXACT", ci: true, want: 4},
		{name: "root", method: "GET", path: "/", want: 5},
		{name: "root is exact", method: "GET", path: "/nothing", want: -1},
		{name: "escape in the pattern", method: "GET", path: "/Caf%C3%A9", want: 7},
		{name: "escape, case-insensitive", method: "GET", path: "/cAF%C3%A9", ci: true, want: 7},
		{name: "escape, case-sensitive", method: "GET", path: "/cAF%C3%A9", want: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol := p
			if tc.ci {
				pol = ci
			}
			r := pol.Match([]byte(tc.host), []byte(tc.method), []byte(tc.path))
			if r == nil {
				t.Fatal("Match returned nil")
			}
			if r.Index != tc.want {
				t.Errorf("Match(%q, %q, %q) = route %d (line %d), want %d", tc.host, tc.method, tc.path, r.Index, r.Line, tc.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	const okta, hydra = "https://okta.example/", "https://hydra.example/"
	rules := map[string]*Rule{
		"public":        {Access: AccessPublic},
		"deny":          {Access: AccessDeny},
		"zero":          {},
		"authenticated": {Access: AccessAuthenticated},
		"scopes":        {Access: AccessAuthenticated, Scopes: []string{"a", "b"}},
		"issuer":        {Access: AccessAuthenticated, Issuers: []string{okta}, Scopes: []string{"a"}},
	}
	ab := &auth.Principal{Issuer: okta, Scopes: []string{"b", "a"}}
	onlyA := &auth.Principal{Issuer: hydra, Scopes: []string{"a"}}
	none := &auth.Principal{Issuer: okta}
	cases := []struct {
		rule      string
		p         *auth.Principal
		want      Outcome
		wantScope string
	}{
		{rule: "public", want: Allowed},
		{rule: "public", p: none, want: Allowed},
		{rule: "deny", want: Denied},
		{rule: "deny", p: ab, want: Denied},
		{rule: "zero", p: ab, want: Denied},
		{rule: "authenticated", want: NeedsToken},
		{rule: "authenticated", p: none, want: Allowed},
		{rule: "scopes", want: NeedsToken},
		{rule: "scopes", p: ab, want: Allowed},
		{rule: "scopes", p: onlyA, want: MissingScope, wantScope: "b"},
		{rule: "scopes", p: none, want: MissingScope, wantScope: "a"},
		{rule: "issuer", p: ab, want: Allowed},
		{rule: "issuer", p: onlyA, want: WrongIssuer},
		{rule: "issuer", p: none, want: MissingScope, wantScope: "a"},
	}
	for _, tc := range cases {
		name := tc.rule + "/" + tc.want.String()
		t.Run(name, func(t *testing.T) {
			got, scope := rules[tc.rule].Decide(tc.p)
			if got != tc.want || scope != tc.wantScope {
				t.Errorf("Decide = %v, %q; want %v, %q", got, scope, tc.want, tc.wantScope)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	cases := []struct {
		scope string
		p     *auth.Principal
		want  Outcome
	}{
		{scope: "items:read", want: NeedsToken},
		{scope: "items:read", p: &auth.Principal{Scopes: []string{"other"}}, want: MissingScope},
		{scope: "items:read", p: &auth.Principal{Scopes: []string{"items:read"}}, want: Allowed},
		{scope: "", p: &auth.Principal{}, want: Allowed},
		{scope: "", want: NeedsToken},
	}
	for _, tc := range cases {
		t.Run(tc.scope+"/"+tc.want.String(), func(t *testing.T) {
			p := Default(tc.scope)
			if p.Len() != 0 || len(p.Issuers()) != 0 {
				t.Errorf("Len %d, issuers %v", p.Len(), p.Issuers())
			}
			r := p.Match([]byte("any.host"), []byte("DELETE"), []byte("/any/path"))
			if r.Index != -1 || r.Access != AccessAuthenticated {
				t.Errorf("rule %+v, want the authenticated default", r)
			}
			if got, _ := r.Decide(tc.p); got != tc.want {
				t.Errorf("Decide = %v, want %v", got, tc.want)
			}
			want := []Header{{"X-Auth-Subject", ClaimSubject}, {"X-Auth-Client-Id", ClaimClientID}, {"X-Auth-Scopes", ClaimScope}}
			if got := p.Headers(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Errorf("Headers() = %v, want %v", got, want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	cases := []struct{ got, want string }{
		{AccessDeny.String(), "deny"}, {AccessAuthenticated.String(), "authenticated"}, {AccessPublic.String(), "public"},
		{Access(9).String(), "unknown"},
		{Denied.String(), "denied"}, {Allowed.String(), "allowed"}, {NeedsToken.String(), "needs token"},
		{MissingScope.String(), "missing scope"}, {WrongIssuer.String(), "wrong issuer"}, {Outcome(9).String(), "unknown"},
		{ClaimSubject.String(), "sub"}, {ClaimClientID.String(), "client_id"}, {ClaimScope.String(), "scope"},
		{ClaimIssuer.String(), "iss"}, {ClaimAudience.String(), "aud"}, {ClaimTokenID.String(), "jti"},
		{ClaimExpiresAt.String(), "exp"}, {ClaimIssuedAt.String(), "iat"}, {Claim(0).String(), "unknown"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
}

// TestMatchEncodedDelims: a literal holding a sub-delim, ':' or '@' matches
// the escaped spelling too, since nginx, Caddy and most upstreams decode it
// before routing (Google-style custom methods, "/users/@me"); and a
// pattern's escaped '*' is a literal, never the wildcard.
func TestMatchEncodedDelims(t *testing.T) {
	p := mustParse(t, `
default: authenticated
routes:
  - path: /v1/jobs:run       # 0
    deny: true
  - path: /users/@me         # 1
    deny: true
  - path: /v1/ops%3Acancel   # 2
    deny: true
  - path: /files/%2A         # 3
    public: true
`)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/v1/jobs:run", 0},
		{"/v1/jobs%3Arun", 0},
		{"/v1/jobs%3arun", 0},
		{"/users/%40me", 1},
		{"/v1/ops:cancel", 2},
		{"/v1/ops%3acancel", 2},
		{"/files/*", 3},
		{"/files/%2a", 3},
		{"/files/x", -1},
	} {
		norm, err := Normalize(nil, []byte(tc.path))
		if err != nil {
			t.Fatalf("Normalize(%q): %v", tc.path, err)
		}
		if got := p.Match(nil, []byte("GET"), norm).Index; got != tc.want {
			t.Errorf("%s: rule %d, want %d", tc.path, got, tc.want)
		}
	}
}
