package devissuer

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// maxRequestBody bounds request bodies (forms are small).
const maxRequestBody = 64 << 10

// Handler returns the issuer's request handler, for serving it on another
// listener (such as fasthttputil.NewInmemoryListener). It serves the same
// paths, keys, counters and faults as the loopback server. Requests served
// this way have their injected latency cut short only by Close, not Stop.
// The discovery documents still name the loopback issuer URL.
func (i *Issuer) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { i.handle(ctx, nil) }
}

// handle routes one request. gen is closed when its server generation
// stops (nil for Handler).
func (i *Issuer) handle(ctx *fasthttp.RequestCtx, gen <-chan struct{}) {
	i.inflight.Add(1)
	defer i.inflight.Add(-1)

	ep, ok := i.route(ctx.Path())
	if !ok {
		writeJSON(ctx, fasthttp.StatusNotFound, []byte(`{"errorCode":"E0000007","errorSummary":"Not found: Resource not found"}`))
		return
	}
	i.counts[ep].Add(1)
	if f := i.takeFault(ep); f != nil {
		if f.Latency > 0 && !i.wait(f.Latency, gen) {
			drop(ctx)
			return
		}
		if f.Drop {
			drop(ctx)
			i.logRequest(ctx, ep, "dropped by fault")
			return
		}
		applyFaultHeaders(ctx, f)
		if f.Status != 0 || f.Body != nil {
			writeFault(ctx, f)
			i.logRequest(ctx, ep, "answered by fault")
			return
		}
	}
	switch ep {
	case EndpointDiscovery:
		i.serveDiscovery(ctx)
	case EndpointKeys:
		i.serveKeys(ctx)
	case EndpointToken:
		i.serveToken(ctx)
	case EndpointIntrospect:
		i.serveIntrospect(ctx)
	case EndpointRevoke:
		i.serveRevoke(ctx)
	}
}

// route maps a request path to an endpoint.
func (i *Issuer) route(path []byte) (Endpoint, bool) {
	p := string(path)
	if rest, ok := strings.CutPrefix(p, i.prefix); ok {
		switch rest {
		case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
			return EndpointDiscovery, true
		case "/v1/keys":
			return EndpointKeys, true
		case "/v1/token":
			return EndpointToken, true
		case "/v1/introspect":
			return EndpointIntrospect, true
		case "/v1/revoke":
			return EndpointRevoke, true
		}
		return 0, false
	}
	// RFC 8414 section 3: the well-known suffix inserted before the path.
	if p == "/.well-known/oauth-authorization-server"+i.prefix {
		return EndpointDiscovery, true
	}
	return 0, false
}

// logRequest writes a debug line about a request; it never includes
// secrets or tokens.
func (i *Issuer) logRequest(ctx *fasthttp.RequestCtx, ep Endpoint, msg string, fields ...zap.Field) {
	if ce := i.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(append(fields,
			zap.Stringer("endpoint", ep),
			zap.Int("status", ctx.Response.StatusCode()),
			zap.Uint64("conn", ctx.ConnID()))...)
	}
}

// Discovery and keys.

func (i *Issuer) serveDiscovery(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	body := i.asMetadata
	if bytes.HasSuffix(ctx.Path(), []byte("/openid-configuration")) {
		body = i.oidcMetadata
	}
	ctx.Response.Header.Set("Cache-Control", i.cacheControl())
	writeJSON(ctx, fasthttp.StatusOK, body)
	i.logRequest(ctx, EndpointDiscovery, "discovery")
}

func (i *Issuer) serveKeys(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	ctx.Response.Header.Set("Cache-Control", i.cacheControl())
	writeJSON(ctx, fasthttp.StatusOK, i.keys.jwksBody())
	i.logRequest(ctx, EndpointKeys, "keys")
}

// cacheControl is the Cache-Control of discovery and keys, as Okta sends.
func (i *Issuer) cacheControl() string {
	if i.cfg.KeysMaxAge < 0 {
		return "no-cache"
	}
	return "max-age=" + strconv.FormatInt(int64(i.cfg.KeysMaxAge/time.Second), 10) + ", must-revalidate"
}

// metadata is the authorization server metadata (RFC 8414), in Okta's
// field order; the OpenID fields are set only for openid-configuration.
type metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported,omitempty"`
	ScopesSupported                           []string `json:"scopes_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	ClaimsSupported                           []string `json:"claims_supported"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported,omitempty"`
}

// encodeMetadata pre-encodes both discovery documents.
func (i *Issuer) encodeMetadata() error {
	authMethods := []string{authMethodBasic, authMethodPost}
	scopes := i.cfg.Scopes
	if len(scopes) == 0 {
		scopes = slices.Clone(i.cfg.DefaultScopes)
		for _, c := range i.cfg.Clients {
			scopes = append(scopes, c.Scopes...)
		}
		slices.Sort(scopes)
		scopes = slices.Compact(scopes)
	}
	md := metadata{
		Issuer:        i.issuer,
		TokenEndpoint: i.TokenURL(),
		JWKSURI:       i.JWKSURL(),
		// There is no authorization endpoint, so no response type; the
		// member is REQUIRED by RFC 8414 and OpenID Discovery, hence
		// present and empty.
		ResponseTypesSupported:                    []string{},
		GrantTypesSupported:                       []string{"client_credentials"},
		ScopesSupported:                           scopes,
		TokenEndpointAuthMethodsSupported:         authMethods,
		ClaimsSupported:                           []string{"ver", "jti", "iss", "aud", "iat", "exp", "cid", "scp", "sub"},
		IntrospectionEndpoint:                     i.IntrospectionURL(),
		IntrospectionEndpointAuthMethodsSupported: authMethods,
		RevocationEndpoint:                        i.RevocationURL(),
		RevocationEndpointAuthMethodsSupported:    authMethods,
	}
	as, err := json.Marshal(md)
	if err != nil {
		return fmt.Errorf("devissuer: encode metadata: %w", err)
	}
	md.SubjectTypesSupported = []string{"public"}
	md.IDTokenSigningAlgValuesSupported = []string{i.cfg.Algorithm}
	oidc, err := json.Marshal(md)
	if err != nil {
		return fmt.Errorf("devissuer: encode metadata: %w", err)
	}
	i.asMetadata, i.oidcMetadata = as, oidc
	return nil
}

// The token, introspection and revocation endpoints.

// oauthError is an RFC 6749 section 5.2 error answer.
type oauthError struct {
	status      int
	code        string
	description string
	challenge   bool // add WWW-Authenticate: Basic (401 after Basic was tried)
}

func (e *oauthError) write(ctx *fasthttp.RequestCtx) {
	if e.challenge {
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="devissuer"`)
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, e.description})
	noStore(ctx)
	writeJSON(ctx, e.status, body)
}

// refuse writes e and logs msg (with the error code) for endpoint ep.
func (i *Issuer) refuse(ctx *fasthttp.RequestCtx, ep Endpoint, msg string, e *oauthError) {
	e.write(ctx)
	i.logRequest(ctx, ep, msg, zap.String("error", e.code))
}

func badRequest(code, description string) *oauthError {
	return &oauthError{status: fasthttp.StatusBadRequest, code: code, description: description}
}

// readForm checks method and content type and parses the form body into
// args (query parameters are ignored: credentials never go in the URL).
func readForm(ctx *fasthttp.RequestCtx, args *fasthttp.Args) *oauthError {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		return &oauthError{status: fasthttp.StatusMethodNotAllowed, code: "invalid_request", description: "use POST"}
	}
	ct, _, _ := strings.Cut(string(ctx.Request.Header.ContentType()), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return badRequest("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	args.ParseBytes(ctx.PostBody())
	// RFC 6749 3.2: parameters must not repeat.
	for _, name := range [...]string{"grant_type", "scope", "audience", "client_id", "client_secret", "token", "token_type_hint"} {
		if n := len(args.PeekMulti(name)); n > 1 {
			return badRequest("invalid_request", "parameter "+name+" is repeated")
		}
	}
	return nil
}

// authenticateClient checks client_secret_basic (RFC 6749 2.3.1) or
// client_secret_post. Using both is refused. Of the candidates parseBasic
// offers, the first that names a client with that secret wins.
func (i *Issuer) authenticateClient(ctx *fasthttp.RequestCtx, args *fasthttp.Args) (*Client, *oauthError) {
	var creds []credentials
	basic := false
	if h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization); len(h) > 0 {
		creds, basic = parseBasic(h)
		if basic && len(creds) == 0 {
			return nil, &oauthError{status: fasthttp.StatusUnauthorized, code: "invalid_client",
				description: "malformed Basic credentials", challenge: true}
		}
	}
	if basic {
		if args.Has("client_secret") {
			return nil, badRequest("invalid_request", "more than one client authentication method")
		}
		if args.Has("client_id") && !slices.ContainsFunc(creds, func(c credentials) bool { return c.id == string(args.Peek("client_id")) }) {
			return nil, badRequest("invalid_request", "client_id does not match the Basic credentials")
		}
	} else {
		if !args.Has("client_id") {
			return nil, &oauthError{status: fasthttp.StatusUnauthorized, code: "invalid_client",
				description: "client authentication required (" + authMethodBasic + " or " + authMethodPost + ")", challenge: true}
		}
		creds = []credentials{{string(args.Peek("client_id")), string(args.Peek("client_secret"))}}
	}
	for _, cr := range creds {
		if c := i.checkSecret(cr); c != nil {
			return c, nil
		}
	}
	return nil, &oauthError{status: fasthttp.StatusUnauthorized, code: "invalid_client",
		description: "client authentication failed", challenge: basic}
}

// checkSecret returns the client cr authenticates, or nil. It compares in
// constant time, also for an unknown client, so timing tells nothing.
func (i *Issuer) checkSecret(cr credentials) *Client {
	c := i.clients[cr.id]
	want := dummySecret
	if c != nil {
		want = c.Secret
	}
	if subtle.ConstantTimeCompare([]byte(cr.secret), []byte(want)) != 1 || c == nil || cr.secret == "" {
		return nil
	}
	return c
}

const dummySecret = "devissuer: no such client"

// The client authentication methods the issuer accepts (RFC 7591 2 names):
// auth.AuthMethodClientSecretBasic and auth.AuthMethodClientSecretPost,
// which devissuer may not import; a test fails if they differ.
const (
	authMethodBasic = "client_secret_basic"
	authMethodPost  = "client_secret_post"
)

// credentials are a client_id and client_secret as presented.
type credentials struct{ id, secret string }

// parseBasic decodes an Authorization header. isBasic says whether the
// scheme is Basic. The first candidate is what auth.ParseBasicAuthorization
// makes of the header (RFC 6749 2.3.1: id and secret form-urlencoded, each
// taken verbatim where it is not valid encoding); the second, when it
// differs, is id and secret taken verbatim, for clients that skip the
// encoding (curl -u) yet send a '+' or '%'. No candidate means malformed
// credentials. An id is never empty. devissuer may not import auth:
// FuzzParseBasic fails when the two read a header differently.
func parseBasic(h []byte) (candidates []credentials, isBasic bool) {
	const scheme = "basic"
	h = bytes.TrimLeft(h, " \t")
	if len(h) < len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	rest := h[len(scheme):]
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return nil, false // "Basicx …" is another scheme
	}
	enc := string(bytes.Trim(rest, " \t"))
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Tolerate clients that drop the padding.
		if raw, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return nil, true
		}
	}
	rawID, rawSecret, found := strings.Cut(string(raw), ":")
	if !found || rawID == "" {
		return nil, true
	}
	decoded := credentials{formUnescape(rawID), formUnescape(rawSecret)}
	candidates = append(candidates, decoded)
	if verbatim := (credentials{rawID, rawSecret}); verbatim != decoded {
		candidates = append(candidates, verbatim)
	}
	return candidates, true
}

// formUnescape undoes application/x-www-form-urlencoded encoding, or
// returns s unchanged when it is not valid encoding.
func formUnescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// parseScope splits a scope parameter (RFC 6749 3.3) into distinct
// scope tokens, in order. ok is false for a malformed one.
func parseScope(s string) (scopes []string, ok bool) {
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		if !validScopeToken(tok) {
			return nil, false
		}
		if !slices.Contains(scopes, tok) {
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}

// validScopeToken reports whether s is 1*NQCHAR: %x21 / %x23-5B / %x5D-7E.
// It is auth.ValidScopeToken, which devissuer may not import; a test
// compares the two on every byte.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for n := 0; n < len(s); n++ {
		c := s[n]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// tokenResponse is the RFC 6749 5.1 answer, in Okta's field order.
type tokenResponse struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

func (i *Issuer) serveToken(ctx *fasthttp.RequestCtx) {
	args := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(args)
	if e := readForm(ctx, args); e != nil {
		i.refuse(ctx, EndpointToken, "token refused", e)
		return
	}
	c, tok, e := i.grant(ctx, args)
	if e != nil {
		i.refuse(ctx, EndpointToken, "token refused", e)
		return
	}
	noStore(ctx)
	writeJSON(ctx, fasthttp.StatusOK, tok)
	i.logRequest(ctx, EndpointToken, "token issued", zap.String("client_id", c.ID))
}

// grant runs the client-credentials grant and returns the encoded answer.
func (i *Issuer) grant(ctx *fasthttp.RequestCtx, args *fasthttp.Args) (*Client, []byte, *oauthError) {
	switch gt := string(args.Peek("grant_type")); gt {
	case "client_credentials":
	case "":
		return nil, nil, badRequest("invalid_request", "grant_type is required")
	default:
		return nil, nil, badRequest("unsupported_grant_type", "only client_credentials is supported")
	}
	c, e := i.authenticateClient(ctx, args)
	if e != nil {
		return nil, nil, e
	}
	if aud := args.Peek("audience"); len(aud) > 0 && string(aud) != i.cfg.Audience {
		return nil, nil, badRequest("invalid_request", "unknown audience")
	}
	scopes, ok := parseScope(string(args.Peek("scope")))
	if !ok {
		return nil, nil, badRequest("invalid_scope", "the requested scope is malformed")
	}
	if len(scopes) == 0 {
		scopes = c.DefaultScopes
	}
	if len(scopes) == 0 {
		return nil, nil, badRequest("invalid_scope", "no scope requested and the client has no default scope")
	}
	if allowed := allowedFor(c, i.cfg.Scopes); len(allowed) > 0 {
		for _, s := range scopes {
			if !slices.Contains(allowed, s) {
				return nil, nil, badRequest("invalid_scope", "the requested scope is invalid, unknown, or not allowed for this client")
			}
		}
	}
	tok, m, err := i.mint(&MintOptions{ClientID: c.ID, Scopes: scopes})
	if err != nil {
		i.log.Error("mint", zap.Error(err))
		return nil, nil, &oauthError{status: fasthttp.StatusInternalServerError, code: "server_error", description: "cannot sign the token"}
	}
	body, err := json.Marshal(tokenResponse{
		TokenType:   "Bearer",
		ExpiresIn:   int64(m.lifetime / time.Second),
		AccessToken: tok,
		Scope:       strings.Join(m.scopes, " "),
	})
	if err != nil {
		return nil, nil, &oauthError{status: fasthttp.StatusInternalServerError, code: "server_error", description: "cannot encode the answer"}
	}
	return c, body, nil
}

func (i *Issuer) serveIntrospect(ctx *fasthttp.RequestCtx) {
	args := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(args)
	c, token, e := i.tokenRequest(ctx, args)
	if e != nil {
		i.refuse(ctx, EndpointIntrospect, "introspection refused", e)
		return
	}
	body, active := i.introspect(token)
	noStore(ctx)
	writeJSON(ctx, fasthttp.StatusOK, body)
	i.logRequest(ctx, EndpointIntrospect, "introspection",
		zap.String("client_id", c.ID),
		zap.String("token", fingerprint(token)),
		zap.Bool("active", active))
}

func (i *Issuer) serveRevoke(ctx *fasthttp.RequestCtx) {
	args := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(args)
	c, token, e := i.tokenRequest(ctx, args)
	if e != nil {
		i.refuse(ctx, EndpointRevoke, "revocation refused", e)
		return
	}
	v, sum := i.lookup(token)
	if v != nil {
		// RFC 7009 2.1: a client revokes only its own tokens.
		if v.clientID != "" && v.clientID != c.ID {
			i.refuse(ctx, EndpointRevoke, "revocation refused", badRequest("unauthorized_client", "the token was issued to another client"))
			return
		}
		i.revoked.add(sum, v, unixNow(i.cfg.Now))
	}
	// RFC 7009 2.2: 200 also for tokens that are invalid already.
	noStore(ctx)
	ctx.SetStatusCode(fasthttp.StatusOK)
	i.logRequest(ctx, EndpointRevoke, "revocation",
		zap.String("client_id", c.ID),
		zap.String("token", fingerprint(token)),
		zap.Bool("known", v != nil))
}

// tokenRequest reads an introspection or revocation request: a form,
// client authentication, and a token parameter. The returned token aliases
// args.
func (i *Issuer) tokenRequest(ctx *fasthttp.RequestCtx, args *fasthttp.Args) (*Client, []byte, *oauthError) {
	if e := readForm(ctx, args); e != nil {
		return nil, nil, e
	}
	c, e := i.authenticateClient(ctx, args)
	if e != nil {
		return nil, nil, e
	}
	token := args.Peek("token")
	if len(token) == 0 {
		return nil, nil, badRequest("invalid_request", "token is required")
	}
	return c, token, nil
}

// Response helpers.

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

func noStore(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Pragma", "no-cache")
}

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, []byte(`{"errorCode":"E0000022","errorSummary":"The endpoint does not support the provided HTTP method"}`))
}

// unixNow returns the clock's time in Unix seconds.
func unixNow(now func() time.Time) float64 {
	return float64(now().UnixNano()) / 1e9
}
