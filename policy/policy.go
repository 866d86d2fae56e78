package policy

import (
	"net/textproto"
	"slices"

	"github.com/tokengate/tokengate/auth"
)

// Policy is a parsed policy file: routes in file order, the rule that
// applies when none matches, the claim headers and the trusted issuers.
//
// A Policy is immutable once Parse, Load or Default returns it and is safe
// for concurrent use; the slices its methods and fields expose are shared
// and must be treated as read-only.
type Policy struct {
	name            string
	routes          []Rule
	fallback        Rule
	headers         []Header
	headerKeys      [][]byte // headers' names in canonical form, index for index
	issuers         []Issuer
	caseInsensitive bool
}

// Access is what a rule asks of a request. The zero value is AccessDeny, so
// that a Rule nobody filled in refuses.
type Access uint8

const (
	// AccessDeny refuses every request, with or without a token (403).
	AccessDeny Access = iota
	// AccessAuthenticated needs a valid token, from one of the rule's
	// issuers when it lists any, granted all of the rule's scopes.
	AccessAuthenticated
	// AccessPublic lets every request through; no token is read.
	AccessPublic
)

// String returns the policy file's word for a: deny, authenticated or
// public.
func (a Access) String() string {
	switch a {
	case AccessDeny:
		return "deny"
	case AccessAuthenticated:
		return "authenticated"
	case AccessPublic:
		return "public"
	}
	return "unknown"
}

// Rule is one route of a policy, or the policy's default (Index -1), as
// Match returns it. Its fields are read-only.
type Rule struct {
	Index   int      // position among the routes, from 0; -1 for the default rule
	Line    int      // line of the route in the file; 0 for the default rule
	Host    string   // host pattern in lower case: "api.example.com" or "*.example.com"; "" for any host
	Path    string   // path pattern in normal form ("/orders/**"); "" (any path) for the default rule
	Methods []string // upper-case methods; nil for any method
	Access  Access   // what the rule asks of a request
	Scopes  []string // all required (AccessAuthenticated only)
	Issuers []string // issuer URLs (iss) a token must come from; nil for any configured issuer

	segs       []segment
	hostSuffix string // for "*.example.com": ".example.com"
}

// segment is one compiled segment of a path pattern.
type segment struct {
	lit  string // the literal segment, when kind is segLiteral
	kind segKind
}

type segKind uint8

const (
	segLiteral segKind = iota
	segOne             // "*": exactly one segment
	segRest            // "**": zero or more segments, always last
)

// Outcome is a rule's verdict on a request. The zero value is Denied.
type Outcome uint8

const (
	// Denied: the rule refuses the request whatever its token (403).
	Denied Outcome = iota
	// Allowed: let the request through (200, with claim headers when there
	// is a principal).
	Allowed
	// NeedsToken: the rule needs a valid token and the request brought none
	// (401).
	NeedsToken
	// MissingScope: the token lacks a scope the rule requires; Decide also
	// returns the first missing scope (403 insufficient_scope).
	MissingScope
	// WrongIssuer: the token is valid but from an issuer the rule does not
	// list (403).
	WrongIssuer
)

// String returns a short description of o, for logs.
func (o Outcome) String() string {
	switch o {
	case Denied:
		return "denied"
	case Allowed:
		return "allowed"
	case NeedsToken:
		return "needs token"
	case MissingScope:
		return "missing scope"
	case WrongIssuer:
		return "wrong issuer"
	}
	return "unknown"
}

// Decide applies the rule to the principal of a request's valid token, or
// to nil when the request brought no token. (An invalid token is the
// caller's 401 and never reaches Decide; an AccessPublic rule needs no token
// to be validated at all.) For MissingScope the second result names the
// first required scope the principal lacks. Decide does not allocate.
func (r *Rule) Decide(p *auth.Principal) (Outcome, string) {
	switch r.Access {
	case AccessPublic:
		return Allowed, ""
	case AccessAuthenticated:
		if p == nil {
			return NeedsToken, ""
		}
		if len(r.Issuers) > 0 && !slices.Contains(r.Issuers, p.Issuer) {
			return WrongIssuer, ""
		}
		for _, s := range r.Scopes {
			if !p.HasScope(s) {
				return MissingScope, s
			}
		}
		return Allowed, ""
	}
	return Denied, ""
}

// Default returns the policy used when there is no policy file: every path
// needs a valid token granted requiredScope (any valid token when
// requiredScope is empty), and the claim headers are X-Auth-Subject: sub,
// X-Auth-Client-Id: client_id and X-Auth-Scopes: scope.
func Default(requiredScope string) *Policy {
	p := &Policy{
		name:     "(default policy)",
		fallback: Rule{Index: -1, Access: AccessAuthenticated},
		headers:  defaultHeaders(),
	}
	p.headerKeys = canonicalKeys(p.headers)
	if requiredScope != "" {
		p.fallback.Scopes = []string{requiredScope}
	}
	return p
}

// Name returns the file name given to Parse or Load.
func (p *Policy) Name() string { return p.name }

// Len returns the number of routes, not counting the default rule.
func (p *Policy) Len() int { return len(p.routes) }

// Headers returns the claim headers to set on an allowed request, in file
// order. The slice is shared: do not modify it.
func (p *Policy) Headers() []Header { return p.headers }

// HeaderKeys returns the names of Headers, index for index, in canonical
// form (textproto.CanonicalMIMEHeaderKey: "x-AUTH-subject" becomes
// "X-Auth-Subject"), for header writers that take a name already in that
// form and so need not canonicalise it on every request (fasthttp's
// ResponseHeader.SetCanonical). The slices are shared: do not modify them.
func (p *Policy) HeaderKeys() [][]byte { return p.headerKeys }

// canonicalKeys returns the canonical names of hs.
func canonicalKeys(hs []Header) [][]byte {
	keys := make([][]byte, len(hs))
	for i, h := range hs {
		keys[i] = []byte(textproto.CanonicalMIMEHeaderKey(h.Name))
	}
	return keys
}

// Issuers returns the trusted issuers of the file's issuers: list, in file
// order; nil when the file has none. The slice is shared: do not modify it.
func (p *Policy) Issuers() []Issuer { return p.issuers }

// CaseInsensitivePaths reports whether Match folds ASCII case in paths.
func (p *Policy) CaseInsensitivePaths() bool { return p.caseInsensitive }

// Match returns the first route, in file order, that matches the request,
// or the default rule when none does; never nil. It does not allocate.
//
// host is the Host header (or :authority) as received: a port is stripped,
// as is one trailing dot, and it is compared case-insensitively. A route's
// "*.example.com" matches exactly one more label ("a.example.com", not
// "a.b.example.com" nor "example.com"), as in TLS certificates. An empty
// host matches only routes without a host.
//
// method is compared case-insensitively; a route listing GET also matches
// HEAD, which servers answer with their GET handlers.
//
// path must be the result of Normalize: Match does not normalise, and on a
// raw path its answer means nothing. One trailing slash is ignored
// ("/admin/" matches the pattern "/admin"). In patterns, "*" is exactly one
// segment and "**", always last, is zero or more segments ("/admin/**"
// matches "/admin", "/admin/" and "/admin/a/b"). With
// case_insensitive_paths, ASCII letters are compared case-insensitively.
func (p *Policy) Match(host, method, path []byte) *Rule {
	host = trimHost(host)
	if len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	for i := range p.routes {
		r := &p.routes[i]
		if r.matchPath(path, p.caseInsensitive) && r.matchMethod(method) && r.matchHost(host) {
			return r
		}
	}
	return &p.fallback
}

// trimHost strips a port and one trailing dot.
func trimHost(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		for i, c := range h {
			if c == ']' {
				return h[:i+1]
			}
		}
		return h
	}
	for i, c := range h {
		if c == ':' {
			h = h[:i]
			break
		}
	}
	if len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}

func (r *Rule) matchHost(h []byte) bool {
	if r.Host == "" {
		return true
	}
	if r.hostSuffix == "" {
		return equalFold(h, r.Host)
	}
	n := len(h) - len(r.hostSuffix)
	if n <= 0 || !equalFold(h[n:], r.hostSuffix) {
		return false
	}
	for _, c := range h[:n] {
		if c == '.' {
			return false
		}
	}
	return true
}

func (r *Rule) matchMethod(m []byte) bool {
	if r.Methods == nil {
		return true
	}
	for _, allowed := range r.Methods {
		if equalFold(m, allowed) || allowed == "GET" && equalFold(m, "HEAD") {
			return true
		}
	}
	return false
}

// matchPath matches a normalised path without a trailing slash (other than
// the root's) against the rule's compiled pattern.
func (r *Rule) matchPath(path []byte, fold bool) bool {
	for _, s := range r.segs {
		if s.kind == segRest {
			return true
		}
		if len(path) == 0 || path[0] != '/' {
			return false
		}
		end := 1
		for end < len(path) && path[end] != '/' {
			end++
		}
		seg := path[1:end]
		path = path[end:]
		switch {
		case s.kind == segOne:
			if len(seg) == 0 {
				return false
			}
		case fold:
			if !equalFold(seg, s.lit) {
				return false
			}
		case string(seg) != s.lit:
			return false
		}
	}
	if len(r.segs) == 0 { // the pattern "/"
		return len(path) == 1
	}
	return len(path) == 0
}

// equalFold reports whether b and s are equal under ASCII case folding.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(s) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
