package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest policy file Parse and Load accept, in bytes.
const MaxFileSize = 1 << 20

// Error says what is wrong with a policy file, on one line: the file, the
// line (0 when the problem has none, such as an empty file) and the
// problem. Every error Parse returns is an *Error; Load also returns
// wrapped os errors when it cannot read the file.
type Error struct {
	File string // the name given to Parse, the path given to Load
	Line int    // 1-based; 0 when unknown
	Msg  string // one line, never a secret (values are not quoted from issuer entries)
}

// Error returns "policy: FILE:LINE: MSG" (without ":LINE" when Line is 0).
func (e *Error) Error() string {
	if e.Line > 0 {
		return "policy: " + e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return "policy: " + e.File + ": " + e.Msg
}

// Mode is how a trusted issuer's tokens are validated.
type Mode string

// The validation modes of an issuer entry.
const (
	ModeLocal  Mode = "local"  // JWT signature against the issuer's JWKS
	ModeRemote Mode = "remote" // RFC 7662 introspection
	ModeHybrid Mode = "hybrid" // local, then introspection for revocation
)

// Issuer is one entry of the file's issuers: list, for a gateway that trusts
// several authorization servers. The policy package only parses and checks
// it; the consumer builds validators from it. Secrets are never in the file:
// ClientIDEnv and ClientSecretEnv name variables, which tokengate reads
// from the environment or .env.
type Issuer struct {
	Line                  int      // line of the entry in the file
	Name                  string   // unique; letters, digits, '.', '_', '-'
	Issuer                string   // iss, an absolute http(s) URL; unique
	Audience              string   // expected aud; "" when not set
	JWKSURI               string   // "" to use discovery
	IntrospectionEndpoint string   // "" to use discovery
	ClientIDEnv           string   // environment variable holding the introspection client id
	ClientSecretEnv       string   // environment variable holding the introspection client secret
	Mode                  Mode     // ModeLocal when the file says nothing
	AllowedClientIDs      []string // nil: any client
}

// Load reads and parses the policy file at path (at most MaxFileSize
// bytes). A bad file yields an *Error naming path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: reading %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses a policy file's contents; name is used in error messages.
// Every error is an *Error. The file format is described in the package
// documentation.
func Parse(name string, data []byte) (*Policy, error) {
	p, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func parse(name string, data []byte) (*Policy, *Error) {
	ps := &parser{file: name}
	if len(data) > MaxFileSize {
		return nil, ps.fail(nil, "file is larger than %d bytes", MaxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ps.fail(nil, "file is empty")
		}
		return nil, ps.yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, ps.fail(&extra, "more than one YAML document")
	case !errors.Is(err, io.EOF):
		return nil, ps.yamlError(err)
	}
	if len(doc.Content) == 0 {
		return nil, ps.fail(nil, "file is empty")
	}
	if err := ps.top(doc.Content[0]); err != nil {
		return nil, err
	}
	ps.p.headerKeys = canonicalKeys(ps.p.headers)
	return ps.p, nil
}

// parser walks the YAML nodes of one file.
type parser struct {
	file    string
	p       *Policy
	pending []routeIssuers // route issuers, resolved once the issuers: list is known
}

type routeIssuers struct {
	route int
	items []*yaml.Node
}

func (ps *parser) fail(n *yaml.Node, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	msg := strings.NewReplacer("\r", " ", "\n", " ").Replace(fmt.Sprintf(format, args...))
	return &Error{File: ps.file, Line: line, Msg: msg}
}

// yamlError turns the YAML library's "yaml: line N: problem" into an *Error.
func (ps *parser) yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil && n > 0 {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	e := ps.fail(nil, "invalid YAML: %s", msg)
	e.Line = line
	return e
}

func (ps *parser) top(root *yaml.Node) *Error {
	ps.p = &Policy{name: ps.file, fallback: Rule{Index: -1, Access: AccessDeny}}
	var routes *yaml.Node
	headers := false
	err := ps.fields(root, "policy", func(key string, k, v *yaml.Node) *Error {
		switch key {
		case "default":
			s, err := ps.str(v, "default")
			if err != nil {
				return err
			}
			switch s {
			case "deny":
				ps.p.fallback.Access = AccessDeny
			case "authenticated":
				ps.p.fallback.Access = AccessAuthenticated
			case "public":
				ps.p.fallback.Access = AccessPublic
			default:
				return ps.fail(v, "default: %q is not deny, authenticated or public", s)
			}
		case "case_insensitive_paths":
			b, err := ps.bool(v, key)
			if err != nil {
				return err
			}
			ps.p.caseInsensitive = b
		case "routes":
			routes = v // parsed last, once the issuers are known
		case "headers":
			headers = true
			return ps.headers(v)
		case "issuers":
			return ps.issuers(v)
		default:
			return ps.unknown(k, "at the top level", "default, case_insensitive_paths, routes, headers, issuers")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if routes != nil {
		if err := ps.routes(routes); err != nil {
			return err
		}
	}
	if !headers {
		ps.p.headers = defaultHeaders()
	}
	return ps.resolveIssuers()
}

// fields calls fn for each key of the mapping n, refusing duplicate keys,
// non-string keys and aliases.
func (ps *parser) fields(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node) *Error) *Error {
	if err := ps.kind(n, yaml.MappingNode, what); err != nil {
		return err
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			return ps.fail(k, "%s: YAML merge keys (<<) are not supported", what)
		}
		key, err := ps.str(k, what+" key")
		if err != nil {
			return err
		}
		if seen[key] {
			return ps.fail(k, "duplicate key %q in %s", key, what)
		}
		seen[key] = true
		if v.Kind == yaml.AliasNode {
			return ps.fail(v, "%s: YAML aliases are not supported", key)
		}
		if err := fn(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (ps *parser) unknown(k *yaml.Node, where, known string) *Error {
	return ps.fail(k, "unknown key %q %s (known: %s)", k.Value, where, known)
}

func (ps *parser) kind(n *yaml.Node, want yaml.Kind, what string) *Error {
	if n.Kind == want {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return ps.fail(n, "%s: YAML aliases are not supported", what)
	}
	names := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}
	return ps.fail(n, "%s: want %s", what, names[want])
}

// str returns a scalar that YAML reads as a string or a number, as written.
func (ps *parser) str(n *yaml.Node, what string) (string, *Error) {
	if err := ps.kind(n, yaml.ScalarNode, what); err != nil {
		return "", err
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, nil
	}
	return "", ps.fail(n, "%s: want a string, not %s", what, strings.TrimPrefix(n.ShortTag(), "!!"))
}

func (ps *parser) bool(n *yaml.Node, what string) (bool, *Error) {
	if err := ps.kind(n, yaml.ScalarNode, what); err != nil {
		return false, err
	}
	if n.ShortTag() == "!!bool" {
		switch strings.ToLower(n.Value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, ps.fail(n, "%s: want true or false", what)
}

// list calls fn for each string item of the non-empty list n.
func (ps *parser) list(n *yaml.Node, what string, fn func(item *yaml.Node, s string) *Error) *Error {
	if err := ps.kind(n, yaml.SequenceNode, what); err != nil {
		return err
	}
	if len(n.Content) == 0 {
		return ps.fail(n, "%s: empty list (leave the key out instead)", what)
	}
	for _, item := range n.Content {
		s, err := ps.str(item, what+" entry")
		if err != nil {
			return err
		}
		if err := fn(item, s); err != nil {
			return err
		}
	}
	return nil
}

func (ps *parser) routes(n *yaml.Node) *Error {
	if err := ps.kind(n, yaml.SequenceNode, "routes"); err != nil {
		return err
	}
	ps.p.routes = make([]Rule, 0, len(n.Content))
	for i, item := range n.Content {
		r, err := ps.route(i, item)
		if err != nil {
			return err
		}
		ps.p.routes = append(ps.p.routes, r)
	}
	return nil
}

func (ps *parser) route(i int, n *yaml.Node) (Rule, *Error) {
	r := Rule{Index: i, Line: n.Line, Access: AccessAuthenticated}
	var public, deny, path, scopes, issuers *yaml.Node
	err := ps.fields(n, "route", func(key string, k, v *yaml.Node) *Error {
		switch key {
		case "host":
			s, err := ps.str(v, key)
			if err != nil {
				return err
			}
			if r.Host, r.hostSuffix, err = ps.host(v, s); err != nil {
				return err
			}
		case "path":
			s, err := ps.str(v, key)
			if err != nil {
				return err
			}
			if r.Path, r.segs, err = ps.pathPattern(v, s); err != nil {
				return err
			}
			path = v
		case "methods":
			return ps.list(v, key, func(item *yaml.Node, m string) *Error {
				if !isToken(m) {
					return ps.fail(item, "method %q is not an RFC 9110 token", m)
				}
				m = strings.ToUpper(m)
				if slices.Contains(r.Methods, m) {
					return ps.fail(item, "duplicate method %q", m)
				}
				r.Methods = append(r.Methods, m)
				return nil
			})
		case "scopes":
			scopes = k
			return ps.list(v, key, func(item *yaml.Node, s string) *Error {
				if !isScopeToken(s) {
					return ps.fail(item, "scope %q is not an RFC 6749 scope-token", s)
				}
				r.Scopes = append(r.Scopes, s)
				return nil
			})
		case "public", "deny":
			b, err := ps.bool(v, key)
			if err != nil || !b {
				return err
			}
			if key == "public" {
				public = k
			} else {
				deny = k
			}
		case "issuers":
			issuers = k
			if err := ps.kind(v, yaml.SequenceNode, key); err != nil {
				return err
			}
			if len(v.Content) == 0 {
				return ps.fail(v, "issuers: empty list (leave the key out instead)")
			}
			ps.pending = append(ps.pending, routeIssuers{route: i, items: v.Content})
		default:
			return ps.unknown(k, "in a route", "host, path, methods, scopes, public, deny, issuers")
		}
		return nil
	})
	if err != nil {
		return Rule{}, err
	}
	switch {
	case path == nil:
		return Rule{}, ps.fail(n, "route has no path")
	case public != nil && deny != nil:
		return Rule{}, ps.fail(deny, "public: true together with deny: true")
	case public != nil && scopes != nil:
		return Rule{}, ps.fail(public, "public: true together with scopes")
	case public != nil && issuers != nil:
		return Rule{}, ps.fail(public, "public: true together with issuers")
	case deny != nil && scopes != nil:
		return Rule{}, ps.fail(deny, "deny: true together with scopes")
	case deny != nil && issuers != nil:
		return Rule{}, ps.fail(deny, "deny: true together with issuers")
	case public != nil:
		r.Access = AccessPublic
	case deny != nil:
		r.Access = AccessDeny
	}
	return r, nil
}

// host checks a host pattern and returns it in lower case, with the suffix
// that a "*." pattern matches.
func (ps *parser) host(n *yaml.Node, s string) (host, suffix string, err *Error) {
	bad := func(why string) (string, string, *Error) {
		return "", "", ps.fail(n, "host %q: %s", s, why)
	}
	h := strings.ToLower(s)
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name, suffix = rest, h[1:]
	}
	switch {
	case name == "":
		return bad("empty")
	case strings.HasPrefix(name, "[") || strings.Count(name, ":") > 1:
		return bad("IPv6 literals are not supported (a DNS name or an IPv4 address)")
	case strings.Contains(name, ":"):
		return bad("no port (Match ignores the request's port)")
	case strings.Contains(name, "*"):
		return bad(`a wildcard is only allowed as the whole first label ("*.example.com")`)
	case len(name) > 253:
		return bad("longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("labels must be 1 to 63 characters and not start or end with '-'")
		}
		for i := range len(label) {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return bad("labels may hold only letters, digits and '-'")
			}
		}
	}
	return h, suffix, nil
}

// pathPattern checks a path pattern and compiles it. The pattern is stored
// in normal form, so that "/caf\u00e9" and "/caf%c3%a9" match alike.
func (ps *parser) pathPattern(n *yaml.Node, s string) (string, []segment, *Error) {
	bad := func(why string) (string, []segment, *Error) {
		return "", nil, ps.fail(n, "path %q: %s", s, why)
	}
	switch {
	case !strings.HasPrefix(s, "/"):
		return bad("must start with /")
	case strings.ContainsAny(s, "?#"):
		return bad("no query or fragment")
	case s == "/":
		return "/", nil, nil
	}
	raw := strings.Split(s[1:], "/")
	for i, seg := range raw {
		switch {
		case seg == "":
			return bad("empty segment (no // and no trailing /; a trailing slash is ignored when matching)")
		case seg == "." || seg == "..":
			return bad("dot segment")
		case seg == "**" && i != len(raw)-1:
			return bad("** must be the last segment")
		case seg != "*" && seg != "**" && strings.Contains(seg, "*"):
			return bad("* must be a whole segment")
		}
	}
	norm, err := Normalize(nil, []byte(s))
	if err != nil {
		var pe *PathError
		errors.As(err, &pe)
		return bad(pe.Reason)
	}
	// An encoded "." or ".." drops a segment, or, last, leaves a trailing
	// slash (the raw pattern has none): "/admin/%2e" would compile to
	// "admin" and an empty segment, which no normalised path has.
	parts := strings.Split(string(norm[1:]), "/")
	if len(parts) != len(raw) || norm[len(norm)-1] == '/' {
		return bad("encoded dot segment")
	}
	// A glob is spelled raw: an escaped '*' ("%2A") decodes to a literal.
	segs := make([]segment, len(parts))
	for i, part := range parts {
		switch raw[i] {
		case "*":
			segs[i].kind = segOne
		case "**":
			segs[i].kind = segRest
		default:
			segs[i].lit = part
		}
	}
	return string(norm), segs, nil
}

func (ps *parser) headers(n *yaml.Node) *Error {
	ps.p.headers = []Header{}
	seen := map[string]bool{}
	folded := map[string]string{} // '_' read as '-', lower case: the name as written
	return ps.fields(n, "headers", func(name string, k, v *yaml.Node) *Error {
		if !isToken(name) {
			return ps.fail(k, "header %q is not an RFC 9110 token", name)
		}
		lowered := strings.ToLower(name)
		if seen[lowered] {
			return ps.fail(k, "duplicate header %q (header names are case-insensitive)", name)
		}
		seen[lowered] = true
		// The gateway removes a client's X_User as X-User's look-alike,
		// and would remove one claim header while setting the other.
		f := strings.ReplaceAll(lowered, "_", "-")
		if other, ok := folded[f]; ok {
			return ps.fail(k, "header %q reads as %q to upstreams that take '_' for '-' (CGI, WSGI, Rack, PHP), and the gateway treats them as one", name, other)
		}
		folded[f] = name
		if reservedHeader(lowered) {
			return ps.fail(k, "header %q frames or routes the message and cannot carry a claim", name)
		}
		claimName, err := ps.str(v, name)
		if err != nil {
			return err
		}
		c, ok := claimByName(claimName)
		if !ok {
			return ps.fail(v, "header %q: unknown claim %q (known: %s)", name, claimName, claimNames)
		}
		ps.p.headers = append(ps.p.headers, Header{Name: name, Claim: c})
		return nil
	})
}

// reservedHeader reports hop-by-hop and framing headers (lower case).
func reservedHeader(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
		"upgrade", "content-length", "host":
		return true
	}
	return false
}

func (ps *parser) issuers(n *yaml.Node) *Error {
	if err := ps.kind(n, yaml.SequenceNode, "issuers"); err != nil {
		return err
	}
	if len(n.Content) == 0 {
		return ps.fail(n, "issuers: empty list (leave the key out instead)")
	}
	ps.p.issuers = make([]Issuer, 0, len(n.Content))
	for _, item := range n.Content {
		iss, err := ps.issuer(item)
		if err != nil {
			return err
		}
		for _, other := range ps.p.issuers {
			if other.Name == iss.Name {
				return ps.fail(item, "duplicate issuer name %q", iss.Name)
			}
			if other.Issuer == iss.Issuer {
				return ps.fail(item, "issuer %q: same issuer URL as %q", iss.Name, other.Name)
			}
		}
		ps.p.issuers = append(ps.p.issuers, iss)
	}
	return nil
}

func (ps *parser) issuer(n *yaml.Node) (Issuer, *Error) {
	iss := Issuer{Line: n.Line, Mode: ModeLocal}
	err := ps.fields(n, "issuer entry", func(key string, k, v *yaml.Node) *Error {
		var dst *string
		switch key {
		case "name":
			s, err := ps.str(v, key)
			if err != nil {
				return err
			}
			if !isName(s) {
				return ps.fail(v, "name %q: use letters, digits, '.', '_' and '-'", s)
			}
			iss.Name = s
			return nil
		case "issuer":
			dst = &iss.Issuer
		case "jwks_uri":
			dst = &iss.JWKSURI
		case "introspection_endpoint":
			dst = &iss.IntrospectionEndpoint
		case "audience":
			s, err := ps.str(v, key)
			if err != nil {
				return err
			}
			if s == "" || hasControl(s) {
				return ps.fail(v, "audience: empty or with control characters")
			}
			iss.Audience = s
			return nil
		case "client_id_env", "client_secret_env":
			s, err := ps.str(v, key)
			if err != nil {
				return err
			}
			if !isEnvName(s) {
				return ps.fail(v, "%s: want the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*)", key)
			}
			if key == "client_id_env" {
				iss.ClientIDEnv = s
			} else {
				iss.ClientSecretEnv = s
			}
			return nil
		case "mode":
			s, err := ps.str(v, key)
			if err != nil {
				return err
			}
			switch m := Mode(s); m {
			case ModeLocal, ModeRemote, ModeHybrid:
				iss.Mode = m
			default:
				return ps.fail(v, "mode %q is not local, remote or hybrid", s)
			}
			return nil
		case "allowed_client_ids":
			return ps.list(v, key, func(item *yaml.Node, s string) *Error {
				if s == "" || hasControl(s) {
					return ps.fail(item, "allowed_client_ids: empty or with control characters")
				}
				iss.AllowedClientIDs = append(iss.AllowedClientIDs, s)
				return nil
			})
		case "client_id", "client_secret":
			return ps.fail(k, "unknown key %q in an issuer entry: credentials are never written in the file; name an environment variable with %s_env", key, key)
		default:
			return ps.unknown(k, "in an issuer entry",
				"name, issuer, audience, jwks_uri, introspection_endpoint, client_id_env, client_secret_env, mode, allowed_client_ids")
		}
		s, err := ps.str(v, key)
		if err != nil {
			return err
		}
		if !isHTTPURL(s) {
			return ps.fail(v, "%s: want an absolute http or https URL without user info, query or fragment", key)
		}
		*dst = s
		return nil
	})
	switch {
	case err != nil:
		return Issuer{}, err
	case iss.Name == "":
		return Issuer{}, ps.fail(n, "issuer entry has no name")
	case iss.Issuer == "":
		return Issuer{}, ps.fail(n, "issuer %q has no issuer URL", iss.Name)
	case iss.ClientSecretEnv != "" && iss.ClientIDEnv == "":
		return Issuer{}, ps.fail(n, "issuer %q: client_secret_env without client_id_env", iss.Name)
	case iss.Mode != ModeLocal && (iss.ClientIDEnv == "" || iss.ClientSecretEnv == ""):
		return Issuer{}, ps.fail(n, "issuer %q: mode %s introspects, and needs client_id_env and client_secret_env", iss.Name, iss.Mode)
	}
	return iss, nil
}

// resolveIssuers turns the routes' issuers entries (names or issuer URLs)
// into issuer URLs. Without an issuers: list, entries must be issuer URLs.
func (ps *parser) resolveIssuers() *Error {
	for _, pend := range ps.pending {
		r := &ps.p.routes[pend.route]
		for _, item := range pend.items {
			s, err := ps.str(item, "issuers entry")
			if err != nil {
				return err
			}
			issURL := s
			if ps.p.issuers != nil {
				i := slices.IndexFunc(ps.p.issuers, func(iss Issuer) bool { return iss.Name == s || iss.Issuer == s })
				if i < 0 {
					return ps.fail(item, "route issuer %q is neither a name nor an issuer URL of the issuers list", s)
				}
				issURL = ps.p.issuers[i].Issuer
			} else if !isHTTPURL(s) {
				return ps.fail(item, "route issuer %q: without an issuers list, want an issuer URL", s)
			}
			if !slices.Contains(r.Issuers, issURL) {
				r.Issuers = append(r.Issuers, issURL)
			}
		}
	}
	return nil
}

// isToken reports an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isScopeToken reports an RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E.
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isEnvName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && !hasControl(s)
}
