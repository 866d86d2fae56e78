package handlers

import (
	"bytes"
	"errors"
	"net/netip"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/policy"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// The decision endpoints (forward auth). A proxy in front of another
// service asks one of them, on every request, whether the request may
// pass: 200 allows (with the policy's claim headers for the upstream),
// 401 carries the RFC 6750 challenge, 403 refuses a valid token the
// route's rule does not accept, 503 says the token cannot be checked now.
// Each dialect reads the original request from where its proxy puts it:
//
//	/auth/forward   Traefik ForwardAuth, Caddy forward_auth: X-Forwarded-Method, -Host, -Uri
//	/auth/request   nginx auth_request, ingress-nginx auth-url: X-Original-URI or X-Original-URL,
//	                X-Original-Method, X-Forwarded-Host (else the URL's host, else Host)
//	/auth/envoy/…   Envoy ext_authz (HTTP service, path_prefix /auth/envoy): the request itself
//
// They believe those headers, so only peers in Config.TrustedProxies may
// ask. The path is normalised once (policy.Normalize) and the rule matched
// on the result; a path the policy refuses to read is 400, never a
// decision about some other path.
const (
	PathForward = "/auth/forward"
	PathRequest = "/auth/request"
	PathEnvoy   = "/auth/envoy"
)

// dialect is the proxy convention of a decision endpoint.
type dialect uint8

const (
	dialectForward dialect = iota
	dialectRequest
	dialectEnvoy
)

// Request headers the dialects read, spelled as fasthttp stores the names
// of received headers (each word capitalised).
const (
	headerXForwardedMethod = "X-Forwarded-Method"
	headerXForwardedHost   = "X-Forwarded-Host"
	headerXForwardedURI    = "X-Forwarded-Uri"
	headerXOriginalURI     = "X-Original-Uri"
	headerXOriginalURL     = "X-Original-Url"
	headerXOriginalMethod  = "X-Original-Method"
)

// peekHeader returns the value of the request header named canonical
// (one of the constants above), nil when it is absent, and dup when it
// came more than once: a proxy sets each of these headers once, so a
// second copy is a client's that a proxy appended to instead of replacing,
// and which copy describes the original request cannot be told.
func peekHeader(h *fasthttp.RequestHeader, canonical string, dup *badOriginal) ([]byte, *badOriginal) {
	switch vs := h.PeekAll(canonical); len(vs) {
	case 0:
		return nil, nil
	case 1:
		return vs[0], nil
	}
	return nil, dup
}

// badOriginal says which header made the original request unusable; it
// becomes the 400's detail.
type badOriginal struct {
	detail string
}

// Pre-built refusals of the original request, one per header and problem.
var (
	errNoForwardedURI     = &badOriginal{"missing X-Forwarded-Uri header"}
	errBadForwardedURI    = &badOriginal{"malformed X-Forwarded-Uri header: must be a path starting with /"}
	errNoForwardedMethod  = &badOriginal{"missing X-Forwarded-Method header"}
	errBadForwardedMethod = &badOriginal{"malformed X-Forwarded-Method header"}
	errBadForwardedHost   = &badOriginal{"malformed X-Forwarded-Host header"}
	errNoOriginalURI      = &badOriginal{"missing X-Original-URI or X-Original-URL header"}
	errBadOriginalURI     = &badOriginal{"malformed X-Original-URI header: must be a path starting with /"}
	errBadOriginalURL     = &badOriginal{"malformed X-Original-URL header: must be an absolute http or https URL"}
	errNoOriginalMethod   = &badOriginal{"missing X-Original-Method header"}
	errBadOriginalMethod  = &badOriginal{"malformed X-Original-Method header"}
	errBadHost            = &badOriginal{"malformed Host header"}
	errBadEnvoyPath       = &badOriginal{"request path must start with " + PathEnvoy + "/"}
	errBothOriginals      = &badOriginal{"X-Original-URI and X-Original-URL disagree; send one"}
	errHostsDisagree      = &badOriginal{"X-Forwarded-Host and X-Original-URL disagree on the host"}
	errDupForwardedURI    = &badOriginal{"X-Forwarded-Uri header sent more than once"}
	errDupForwardedMethod = &badOriginal{"X-Forwarded-Method header sent more than once"}
	errDupForwardedHost   = &badOriginal{"X-Forwarded-Host header sent more than once"}
	errDupOriginalURI     = &badOriginal{"X-Original-URI header sent more than once"}
	errDupOriginalURL     = &badOriginal{"X-Original-URL header sent more than once"}
	errDupOriginalMethod  = &badOriginal{"X-Original-Method header sent more than once"}
	errFragForwardedURI   = &badOriginal{"malformed X-Forwarded-Uri header: fragment (#) in the path"}
	errFragOriginalURI    = &badOriginal{"malformed X-Original-URI header: fragment (#) in the path"}
	errFragOriginalURL    = &badOriginal{"malformed X-Original-URL header: fragment (#) in the path"}
	errFragEnvoyPath      = &badOriginal{"malformed request path: fragment (#) in the path"}
	errCtlForwardedURI    = &badOriginal{"malformed X-Forwarded-Uri header: control character"}
	errCtlOriginalURI     = &badOriginal{"malformed X-Original-URI header: control character"}
	errCtlOriginalURL     = &badOriginal{"malformed X-Original-URL header: control character"}
	errCtlEnvoyPath       = &badOriginal{"malformed request path: control character"}
)

// original is the request a proxy asks about, as slices of the decision
// request's own headers (valid only while the handler runs).
type original struct {
	method []byte
	host   []byte
	target []byte // the raw request target: path, optionally ?query
	// from names where target came from, for the 400 of a path the
	// policy will not read: " in X-Forwarded-Uri header", ..., or ""
	// (the request's own path).
	from string
}

// Where a target came from, as decideFrom's 400 names it.
const (
	fromForwardedURI = " in X-Forwarded-Uri header"
	fromOriginalURI  = " in X-Original-URI header"
	fromOriginalURL  = " in X-Original-URL header"
)

// decideForward, decideRequest and decideEnvoy are the route handlers.
func (s *Server) decideForward(ctx *fasthttp.RequestCtx) { s.decide(ctx, dialectForward) }
func (s *Server) decideRequest(ctx *fasthttp.RequestCtx) { s.decide(ctx, dialectRequest) }
func (s *Server) decideEnvoy(ctx *fasthttp.RequestCtx)   { s.decide(ctx, dialectEnvoy) }

// decideDispatched is decide called from Handler ahead of the router,
// recovering the panics that the router would otherwise recover.
func (s *Server) decideDispatched(ctx *fasthttp.RequestCtx, d dialect) {
	defer func() {
		if v := recover(); v != nil {
			s.recoverPanic(ctx, v)
		}
	}()
	s.decide(ctx, d)
}

// decide answers a decision request. On a cache hit it allocates nothing:
// headers are read in place, the path is normalised into a stack buffer,
// the policy match and the claim rendering do not allocate.
func (s *Server) decide(ctx *fasthttp.RequestCtx, d dialect) {
	if !s.trustedPeer(ctx) {
		s.requests.inc(ctx, outcomeUntrustedPeer)
		s.log.Warn("handlers: decision request from a peer outside TRUSTED_PROXIES",
			zap.Uint64("request_id", ctx.ID()),
			zap.Stringer("peer", ctx.RemoteAddr()),
			zap.ByteString("path", ctx.Path()))
		writeJSON(ctx, fasthttp.StatusForbidden, bodyUntrustedPeer)
		return
	}
	o, bad := readOriginal(ctx, d)
	if bad != nil {
		s.badDecisionRequest(ctx, bad.detail)
		return
	}
	if v := s.decideFrom(ctx, o.method, o.host, o.target, o.from); v.Allowed {
		s.writeClaimHeaders(ctx, v.Policy, v.Principal, v.Token, d == dialectEnvoy)
		ctx.SetStatusCode(fasthttp.StatusOK)
	}
}

// headerEnvoyRemove is the response header in which Envoy's ext_authz
// HTTP service takes the request headers to remove before the request
// goes upstream: a comma-separated list of names, applied after the
// allowed upstream headers are set.
const headerEnvoyRemove = "X-Envoy-Auth-Headers-To-Remove"

// Verdict is what Decide made of a request.
type Verdict struct {
	// Allowed: the request may pass. When false, Decide has already
	// written the refusal (400, 401, 403 or 503) to the response.
	Allowed bool
	// Principal is the valid token's principal on an allowed request
	// that needed a token; nil on a public route. Shared and read-only.
	Principal *auth.Principal
	// Token is the bearer token of Principal, a slice of the request's
	// Authorization header (valid only while the handler runs), for
	// auth.Fingerprint in logs.
	Token []byte
	// Policy is the policy the decision was made under, whose claim
	// headers go with it (a reload may have swapped the current one).
	Policy *policy.Policy
}

// Decide is the decision of the decision endpoints and of gateway mode,
// made once here for both: the request target (path, optionally ?query,
// as received) is normalised (policy.Normalize), matched with host and
// method against the current policy, the bearer token of ctx's
// Authorization header is validated when the rule needs one, and the rule
// decides. A refused request is answered on ctx (400 for a target the
// policy will not read, 401 with the RFC 6750 challenge, 403, 503) and
// counted; an allowed one is counted and left to the caller, who sets the
// claim headers where they belong. On a cache hit Decide allocates nothing.
func (s *Server) Decide(ctx *fasthttp.RequestCtx, method, host, target []byte) Verdict {
	return s.decideFrom(ctx, method, host, target, "")
}

// decideFrom is Decide for a target that came in a header: from (one of
// the from* constants, or "" for the request's own target) goes into the
// 400 of a path the policy will not read, so that it names the header.
func (s *Server) decideFrom(ctx *fasthttp.RequestCtx, method, host, target []byte, from string) Verdict {
	if len(target) == 0 || target[0] != '/' {
		s.badDecisionRequest(ctx, "bad request path"+from+": must start with /")
		return Verdict{}
	}
	var pathBuf [512]byte
	path, err := policy.Normalize(pathBuf[:0], target)
	if err != nil {
		detail := "bad request path" + from
		if pe, ok := errors.AsType[*policy.PathError](err); ok {
			detail += ": " + pe.Reason
		}
		s.badDecisionRequest(ctx, detail)
		return Verdict{}
	}

	pol := s.policy.Load()
	rule := pol.Match(host, method, path)
	switch rule.Access {
	case policy.AccessPublic:
		s.requests.inc(ctx, outcomePublic)
		return Verdict{Allowed: true, Policy: pol}
	case policy.AccessDeny:
		s.refuse(ctx, rule, "forbidden: this route is closed")
		return Verdict{}
	}

	// The same credential reading and validation as the protected routes:
	// ambiguous credentials are 400, and a miss names its client (the
	// proxy's X-Forwarded-For when the proxy is trusted) for the
	// per-client introspection bound.
	token, err := bearerToken(ctx)
	if err == nil && queryHasAccessToken(target) {
		// bearerToken looked at ctx's own query, which for /auth/forward
		// and /auth/request is not the one the upstream will read.
		err = errSeveralMethods
	}
	if err != nil {
		s.writeAuthError(ctx, err, nil, nil, "")
		return Verdict{}
	}
	p, err := s.validate(ctx, token)
	if err == nil && p == nil {
		err = errNilPrincipal
	}
	if err != nil {
		s.writeAuthError(ctx, err, token, nil, "")
		return Verdict{}
	}
	switch outcome, scope := rule.Decide(p); outcome {
	case policy.Allowed:
		s.requests.inc(ctx, outcomeAuthorized)
		return Verdict{Allowed: true, Principal: p, Token: token, Policy: pol}
	case policy.MissingScope:
		s.writeAuthError(ctx, errInsufficientScope, token, nil, scope)
	case policy.WrongIssuer:
		s.refuse(ctx, rule, "forbidden: tokens from this issuer are not accepted on this route")
	default:
		s.refuse(ctx, rule, "forbidden")
	}
	return Verdict{}
}

// refuse answers 403 for a request the matched rule does not let through.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, rule *policy.Rule, detail string) {
	s.requests.inc(ctx, outcomeDenied)
	writeDetail(ctx, fasthttp.StatusForbidden, detail)
	if ce := s.log.Check(zap.DebugLevel, "handlers: decision refused by policy"); ce != nil {
		ce.Write(zap.Uint64("request_id", ctx.ID()), zap.Int("rule", rule.Index), zap.Int("line", rule.Line))
	}
}

// badDecisionRequest answers 400 for an original request that cannot be
// read; detail names the header.
func (s *Server) badDecisionRequest(ctx *fasthttp.RequestCtx, detail string) {
	s.requests.inc(ctx, outcomeBadRequest)
	writeDetail(ctx, fasthttp.StatusBadRequest, detail)
	if ce := s.log.Check(zap.DebugLevel, "handlers: unusable decision request"); ce != nil {
		ce.Write(zap.Uint64("request_id", ctx.ID()), zap.String("detail", detail))
	}
}

// writeClaimHeaders sets pol's claim headers from p (nil on a public
// route: none), under their canonical names (pol.HeaderKeys: SetBytesV
// would canonicalise each name again). A claim the principal lacks is
// left out; a value the policy refuses to put in a header (control bytes,
// too long) is left out and logged.
//
// For Envoy (envoy) the headers left out are also named in
// X-Envoy-Auth-Headers-To-Remove. Envoy's allowed_upstream_headers only
// sets the headers a 200 carries, so without that a client's own
// X-Auth-Subject would reach the upstream whenever tokengate sets none
// (a public route, a token without the claim); nginx, Traefik and Caddy,
// configured as the README shows, drop or overwrite the client's copies
// themselves.
func (s *Server) writeClaimHeaders(ctx *fasthttp.RequestCtx, pol *policy.Policy, p *auth.Principal, token []byte, envoy bool) {
	var buf [1024]byte
	var rmBuf [256]byte
	rm := rmBuf[:0]
	keys := pol.HeaderKeys()
	for i, h := range pol.Headers() {
		err := policy.ErrClaimAbsent
		if p != nil {
			var v []byte
			if v, err = policy.AppendClaim(buf[:0], h.Claim, p); err == nil {
				ctx.Response.Header.SetCanonical(keys[i], v)
				continue
			}
		}
		if !errors.Is(err, policy.ErrClaimAbsent) {
			s.log.Warn("handlers: claim header left out",
				zap.Uint64("request_id", ctx.ID()),
				zap.String("header", h.Name),
				zap.String("token", auth.Fingerprint(token)),
				zap.Error(err))
		}
		if envoy {
			if len(rm) > 0 {
				rm = append(rm, ", "...)
			}
			rm = appendLower(rm, keys[i])
		}
	}
	if len(rm) > 0 {
		ctx.Response.Header.SetBytesV(headerEnvoyRemove, rm)
	}
}

// appendLower appends name to dst in ASCII lower case, the form in which
// Envoy keeps header names.
func appendLower(dst, name []byte) []byte {
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// trustedPeer reports whether the TCP peer is in Config.TrustedProxies.
func (s *Server) trustedPeer(ctx *fasthttp.RequestCtx) bool {
	addr, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// readOriginal reads the original request of a decision request in
// dialect d.
func readOriginal(ctx *fasthttp.RequestCtx, d dialect) (original, *badOriginal) {
	h := &ctx.Request.Header
	var o original
	var bad *badOriginal
	switch d {
	case dialectForward:
		if o.target, bad = peekHeader(h, headerXForwardedURI, errDupForwardedURI); bad != nil {
			return o, bad
		}
		if len(o.target) == 0 {
			return o, errNoForwardedURI
		}
		if o.target[0] != '/' {
			return o, errBadForwardedURI
		}
		if bad = checkTarget(o.target, errFragForwardedURI, errCtlForwardedURI); bad != nil {
			return o, bad
		}
		o.from = fromForwardedURI
		if o.method, bad = peekHeader(h, headerXForwardedMethod, errDupForwardedMethod); bad != nil {
			return o, bad
		}
		if len(o.method) == 0 {
			return o, errNoForwardedMethod
		}
		if !validMethod(o.method) {
			return o, errBadForwardedMethod
		}
		if o.host, bad = peekHeader(h, headerXForwardedHost, errDupForwardedHost); bad != nil {
			return o, bad
		}
		if len(o.host) > 0 {
			if !validHost(o.host) {
				return o, errBadForwardedHost
			}
		} else if o.host = h.Host(); !validHost(o.host) {
			return o, errBadHost
		}

	case dialectRequest:
		var uri, url []byte
		if uri, bad = peekHeader(h, headerXOriginalURI, errDupOriginalURI); bad != nil {
			return o, bad
		}
		if url, bad = peekHeader(h, headerXOriginalURL, errDupOriginalURL); bad != nil {
			return o, bad
		}
		var urlHost []byte
		if len(url) > 0 {
			var ok bool
			if urlHost, o.target, ok = splitAbsoluteURL(url); !ok || !validHost(urlHost) {
				return o, errBadOriginalURL
			}
		}
		switch {
		case len(uri) > 0 && len(url) > 0:
			if !bytes.Equal(uri, o.target) {
				return o, errBothOriginals
			}
		case len(uri) > 0:
			if uri[0] != '/' {
				return o, errBadOriginalURI
			}
			o.target = uri
		case len(url) == 0:
			return o, errNoOriginalURI
		}
		o.from = fromOriginalURL
		if len(uri) > 0 {
			o.from = fromOriginalURI
		}
		if len(uri) > 0 {
			bad = checkTarget(o.target, errFragOriginalURI, errCtlOriginalURI)
		} else {
			bad = checkTarget(o.target, errFragOriginalURL, errCtlOriginalURL)
		}
		if bad != nil {
			return o, bad
		}
		// nginx's auth_request subrequest is always a GET
		// (ngx_http_subrequest names it so unless it clones the request,
		// which auth_request does not), so the request's own method says
		// nothing of the original's: without X-Original-Method a POST
		// would be decided by the GET rules.
		if o.method, bad = peekHeader(h, headerXOriginalMethod, errDupOriginalMethod); bad != nil {
			return o, bad
		}
		if len(o.method) == 0 {
			return o, errNoOriginalMethod
		}
		if !validMethod(o.method) {
			return o, errBadOriginalMethod
		}
		if o.host, bad = peekHeader(h, headerXForwardedHost, errDupForwardedHost); bad != nil {
			return o, bad
		}
		switch {
		case len(o.host) > 0:
			if !validHost(o.host) {
				return o, errBadForwardedHost
			}
			// ingress-nginx sets no X-Forwarded-Host and passes the
			// client's on: one naming another host than the URL is
			// the client's word against the proxy's.
			if len(urlHost) > 0 && !sameHost(o.host, urlHost) {
				return o, errHostsDisagree
			}
		case len(urlHost) > 0:
			o.host = urlHost
		default:
			if o.host = h.Host(); !validHost(o.host) {
				return o, errBadHost
			}
		}

	case dialectEnvoy:
		raw := h.RequestURI()
		if !bytes.HasPrefix(raw, []byte(PathEnvoy+"/")) {
			return o, errBadEnvoyPath
		}
		o.target = raw[len(PathEnvoy):]
		if bad = checkTarget(o.target, errFragEnvoyPath, errCtlEnvoyPath); bad != nil {
			return o, bad
		}
		o.method = h.Method()
		if o.host = h.Host(); !validHost(o.host) {
			return o, errBadHost
		}
	}
	return o, nil
}

// checkTarget refuses a target (as received) with a fragment in its path
// (frag; see hasFragment) or a control character anywhere (ctl): no
// server reads a request line with one (Go's refuses it, nginx and
// fasthttp too), so such a header cannot describe a request an upstream
// will serve, and the query, which policy.Normalize does not read, is
// checked here.
func checkTarget(target []byte, frag, ctl *badOriginal) *badOriginal {
	if hasFragment(target) {
		return frag
	}
	for _, c := range target {
		if c < 0x20 || c == 0x7f {
			return ctl
		}
	}
	return nil
}

// hasFragment reports whether the path of target (a request target as
// received) holds a '#', that is, a '#' comes before any '?'. A fragment
// is no part of a request target (RFC 9112 section 3.2), and the proxy
// passes the target on unchanged: nginx, Node and Python cut the path at
// the '#', while Go's server keeps it as a path byte, so that
// "/public#/../admin" is /admin to http.FileServer or Caddy's file_server.
// No single reading is safe in front of every upstream, so such a target
// is refused, as policy.Normalize refuses ';'. A '#' inside the query
// changes no path and is left to the upstream.
func hasFragment(target []byte) bool {
	i := bytes.IndexAny(target, "?#")
	return i >= 0 && target[i] == '#'
}

// queryHasAccessToken reports whether the query of target (a request
// target as received) has an access_token parameter (RFC 6750 section
// 2.3), its name percent-decoded. Parameters are split at '&' and at ';',
// and a '#' does not end the query: servers that read either differently
// would find the parameter where this did not look. It does not allocate.
func queryHasAccessToken(target []byte) bool {
	q := bytes.IndexByte(target, '?')
	if q < 0 {
		return false
	}
	query := target[q+1:]
	for len(query) > 0 {
		pair := query
		if end := bytes.IndexAny(query, "&;"); end >= 0 {
			pair, query = query[:end], query[end+1:]
		} else {
			query = nil
		}
		if eq := bytes.IndexByte(pair, '='); eq >= 0 {
			pair = pair[:eq]
		}
		if decodesTo(pair, paramAccessToken) {
			return true
		}
	}
	return false
}

// decodesTo reports whether the percent-encoded name decodes to s.
func decodesTo(name []byte, s string) bool {
	i := 0
	for k := 0; k < len(name); k, i = k+1, i+1 {
		if i == len(s) {
			return false
		}
		c := name[k]
		if c == '%' && k+2 < len(name) {
			hi, lo := unhex(name[k+1]), unhex(name[k+2])
			if hi >= 0 && lo >= 0 {
				c = byte(hi<<4 | lo)
				k += 2
			}
		}
		if c != s[i] {
			return false
		}
	}
	return i == len(s)
}

// unhex returns the value of the hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// sameHost reports whether two valid hosts name the same host as
// policy.Match reads one: ASCII case, a port and one trailing dot aside.
func sameHost(a, b []byte) bool {
	return bytes.EqualFold(hostName(a), hostName(b))
}

// hostName strips a port and one trailing dot from a valid host.
func hostName(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if end := bytes.IndexByte(h, ']'); end >= 0 {
			return h[:end+1]
		}
		return h
	}
	if colon := bytes.IndexByte(h, ':'); colon >= 0 {
		h = h[:colon]
	}
	return bytes.TrimSuffix(h, []byte("."))
}

// splitAbsoluteURL splits an absolute http(s) URL (ingress-nginx's
// X-Original-URL, "$scheme://$http_host$request_uri") into its authority
// and its request target ("/" when the URL has no path). The authority
// runs to the first '/', not to a '?' or '#' as in URL syntax: $http_host
// is the client's Host as nginx accepted it, which may hold either, and
// "http://x#/admin" must not read as a request for "/" (validHost then
// refuses such a host).
func splitAbsoluteURL(u []byte) (host, target []byte, ok bool) {
	var rest []byte
	switch {
	case len(u) > 8 && asciiHasPrefixFold(u, "https://"):
		rest = u[8:]
	case len(u) > 7 && asciiHasPrefixFold(u, "http://"):
		rest = u[7:]
	default:
		return nil, nil, false
	}
	end := bytes.IndexByte(rest, '/')
	if end < 0 {
		return rest, []byte("/"), true
	}
	return rest[:end], rest[end:], true
}

func asciiHasPrefixFold(b []byte, lowerPrefix string) bool {
	if len(b) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerPrefix[i] {
			return false
		}
	}
	return true
}

// validMethod reports whether m is an RFC 9110 method token.
func validMethod(m []byte) bool {
	if len(m) == 0 || len(m) > 32 {
		return false
	}
	for _, c := range m {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// isTchar reports whether c is an RFC 9110 tchar.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
