package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// POST /token is a client-credentials proxy to the authorization server's
// token endpoint (RFC 6749 section 4.4).
//
// Client authentication: the client's credentials are forwarded with the
// method the client used. HTTP Basic in (client_secret_basic) is re-sent
// as HTTP Basic, re-encoded per RFC 6749 section 2.3.1 from the decoded
// id and secret; form fields in (client_secret_post) are re-sent as form
// fields. Authorization servers such as ORY Hydra accept only the method
// a client is registered with, so switching methods in the proxy would
// break clients that work against the server directly.
//
// Load: at most Config.TokenMaxConcurrent relays are in flight; one more
// is 503 with Retry-After at once. Config.TokenClient should be the
// relay's own, so that /token traffic cannot take the connections that
// validation needs.
//
// Timeouts: Config.TokenTimeout bounds the whole call, endpoint lookup
// included. A connection that cannot be established (refused, DNS, dial or
// TLS-handshake timeout) is 502: the server was not reached. A server that
// accepted the request but did not answer in time is 504.

const grantClientCredentials = "client_credentials"

var (
	bodyUnsupportedGrant = []byte(`{"error":"unsupported_grant_type"}`)
	bodyMultipleAuth     = []byte(`{"error":"invalid_request","error_description":"use one client authentication method, not both"}`)

	errNoCredentials  = errors.New("handlers: no client credentials")
	errMalformedBasic = errors.New("handlers: malformed Basic credentials")
	errMultipleAuth   = errors.New("handlers: more than one client authentication method")
	// errOtherClientID: HTTP Basic and a client_id form field naming
	// another client. Relaying Basic alone would drop what the client
	// said about itself.
	errOtherClientID = fmt.Errorf("%w: client_id differs from the HTTP Basic client", errMultipleAuth)
)

// clientCreds are a client's id and secret, copied out of the request.
type clientCreds struct {
	id, secret string
	basic      bool // sent as HTTP Basic (else as form fields)
}

// token answers POST /token.
func (s *Server) token(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(headerCacheControl, "no-store")
	ctx.Response.Header.Set(headerPragma, "no-cache")

	form := ctx.PostArgs()
	authz := ctx.Request.Header.PeekAll(fasthttp.HeaderAuthorization)
	if len(authz) > 1 {
		writeTokenError(ctx, fasthttp.StatusBadRequest, "invalid_request", "more than one Authorization header")
		return
	}
	if name := repeatedParam(form); name != "" {
		writeTokenError(ctx, fasthttp.StatusBadRequest, "invalid_request", name+" sent more than once")
		return
	}
	creds, err := clientCredentials(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization), form)
	switch {
	case errors.Is(err, errOtherClientID):
		writeTokenError(ctx, fasthttp.StatusBadRequest, "invalid_request", "client_id differs from the HTTP Basic client")
		return
	case errors.Is(err, errMultipleAuth):
		writeJSON(ctx, fasthttp.StatusBadRequest, bodyMultipleAuth)
		return
	case errors.Is(err, errMalformedBasic):
		ctx.Response.Header.SetBytesV(headerWWWAuthenticate, s.basicChallenge)
		writeDetail(ctx, fasthttp.StatusUnauthorized, "malformed Basic credentials")
		return
	case err != nil:
		ctx.Response.Header.SetBytesV(headerWWWAuthenticate, s.basicChallenge)
		writeDetail(ctx, fasthttp.StatusUnauthorized,
			"client authentication required: HTTP Basic or client_id and client_secret form fields")
		return
	}
	if g := form.Peek("grant_type"); len(g) > 0 && string(g) != grantClientCredentials {
		writeJSON(ctx, fasthttp.StatusBadRequest, bodyUnsupportedGrant)
		return
	}
	scope := string(form.Peek("scope"))
	if scope == "" {
		scope = s.cfg.DefaultScope
	} else if !validScope(scope) {
		writeTokenError(ctx, fasthttp.StatusBadRequest, "invalid_scope",
			"scope must be scope tokens separated by single spaces (RFC 6749 section 3.3)")
		return
	}
	audience := string(form.Peek("audience"))
	// RFC 8707 resource indicators (may repeat): servers such as node
	// oidc-provider choose the token's audience by them, not by audience.
	var resources []string
	for _, r := range form.PeekMulti("resource") {
		resources = append(resources, string(r))
	}

	if s.cfg.TokenEndpoint == nil {
		writeDetail(ctx, fasthttp.StatusNotImplemented, "token endpoint not configured")
		return
	}
	select {
	case s.tokenSlots <- struct{}{}:
		defer func() { <-s.tokenSlots }()
	default:
		setRetryAfter(ctx, time.Second)
		writeDetail(ctx, fasthttp.StatusServiceUnavailable, "too many concurrent token requests")
		return
	}
	start := time.Now()
	deadline := start.Add(s.cfg.TokenTimeout)
	endpoint, err := s.tokenEndpoint(deadline)
	if err != nil {
		s.log.Warn("handlers: token endpoint unknown",
			zap.Uint64("request_id", ctx.ID()), zap.String("client_id", creds.id), zap.Error(err))
		writeUnavailable(ctx, "token endpoint unavailable: ", "discovery failed", err)
		return
	}

	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	// ContentType then reads the server's, not fasthttp's default; the
	// pooled response must not keep the setting.
	resp.Header.SetNoDefaultContentType(true)
	defer resp.Header.SetNoDefaultContentType(false)
	buildTokenRequest(req, endpoint, creds, scope, audience, resources)

	if err := s.client.DoDeadline(req, resp, deadline); err != nil {
		status, detail := upstreamFailure(err)
		s.log.Warn("handlers: token endpoint call failed",
			zap.Uint64("request_id", ctx.ID()),
			zap.String("client_id", creds.id),
			zap.String("endpoint", auth.RedactURL(endpoint)),
			zap.Int("status", status),
			zap.Duration("elapsed", time.Since(start)),
			zap.String("error", upstreamErrorText(err)))
		if status == fasthttp.StatusServiceUnavailable {
			setRetryAfter(ctx, time.Second)
		}
		writeDetail(ctx, status, detail)
		return
	}

	// Relay status, body and the headers a client acts on; copy, since
	// resp goes back to its pool when we return.
	ctx.SetStatusCode(resp.StatusCode())
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		ctx.Response.Header.SetContentTypeBytes(ct)
	} else {
		// None sent, none relayed (fasthttp resets this per request).
		ctx.Response.Header.SetNoDefaultContentType(true)
	}
	for _, k := range [...]string{headerWWWAuthenticate, headerRetryAfter} {
		if v := resp.Header.Peek(k); len(v) > 0 {
			ctx.Response.Header.SetBytesV(k, v)
		}
	}
	ctx.SetBody(resp.Body())
	if ce := s.log.Check(zap.DebugLevel, "handlers: token request relayed"); ce != nil {
		ce.Write(zap.Uint64("request_id", ctx.ID()),
			zap.String("client_id", creds.id),
			zap.Bool("basic", creds.basic),
			zap.String("scope", scope),
			zap.Int("status", resp.StatusCode()),
			zap.Duration("elapsed", time.Since(start)))
	}
}

// singleParams are the /token form parameters that may appear at most once
// (RFC 6749 section 3.1); resource alone may repeat (RFC 8707).
var singleParams = [...]string{"grant_type", "scope", "audience", "client_id", "client_secret"}

// repeatedParam returns the name of the first of singleParams that form
// holds more than once, or "". Relaying one copy would send the
// authorization server a request the client did not make.
func repeatedParam(form *fasthttp.Args) string {
	for _, name := range singleParams {
		n := 0
		for k := range form.All() {
			if string(k) == name {
				n++
			}
		}
		if n > 1 {
			return name
		}
	}
	return ""
}

// validScope reports whether scope is an RFC 6749 section 3.3 scope:
// scope tokens separated by single spaces.
func validScope(scope string) bool {
	for {
		token, rest, more := strings.Cut(scope, " ")
		if !auth.ValidScopeToken(token) {
			return false
		}
		if !more {
			return true
		}
		scope = rest
	}
}

// writeTokenError answers with an RFC 6749 section 5.2 error body: code
// and description, both fixed texts of ours.
func writeTokenError(ctx *fasthttp.RequestCtx, status int, code, description string) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	b := append([]byte(`{"error":`), appendJSONString(nil, code)...)
	b = append(b, `,"error_description":`...)
	b = appendJSONString(b, description)
	ctx.Response.SetBodyRaw(append(b, '}'))
}

// tokenEndpoint asks Config.TokenEndpoint for the upstream URL within the
// /token call's deadline.
func (s *Server) tokenEndpoint(deadline time.Time) (string, error) {
	ctx, cancel := context.WithDeadline(s.baseCtx, deadline)
	defer cancel()
	return s.cfg.TokenEndpoint(ctx)
}

// buildTokenRequest fills req with the client-credentials grant for
// endpoint, authenticating the way the client did.
func buildTokenRequest(req *fasthttp.Request, endpoint string, c clientCreds, scope, audience string, resources []string) {
	req.SetRequestURI(endpoint)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.Header.Set(fasthttp.HeaderAccept, "application/json")

	form := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(form)
	form.Set("grant_type", grantClientCredentials)
	form.Set("scope", scope)
	if audience != "" {
		form.Set("audience", audience)
	}
	for _, r := range resources {
		form.Add("resource", r)
	}
	if c.basic {
		req.Header.Set(fasthttp.HeaderAuthorization, auth.BasicAuthorization(c.id, c.secret))
	} else {
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
	}
	req.SetBody(form.QueryString())
}

// upstreamFailure maps a failed upstream call to the status and detail
// the client gets: 502 when the server could not be reached or answered
// unusably, 504 when it was reached but did not answer in time, 503 when
// our own connection pool is exhausted.
func upstreamFailure(err error) (int, string) {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusServiceUnavailable, "too many concurrent token requests"
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrTLSHandshakeTimeout):
		return fasthttp.StatusBadGateway, "token endpoint unreachable: connect timed out"
	case errors.Is(err, fasthttp.ErrTimeout), isNetTimeout(err):
		return fasthttp.StatusGatewayTimeout, "token endpoint timed out"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusBadGateway, "token endpoint response too large"
	default:
		return fasthttp.StatusBadGateway, "token endpoint unreachable"
	}
}

// upstreamErrorText is err's message for the log, cut at its first quote:
// fasthttp's errors about an unparsable response quote the bytes it read,
// and a token endpoint's bytes hold the access token it issued.
func upstreamErrorText(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		return msg[:i] + "(response bytes withheld)"
	}
	return msg
}

func isNetTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// clientCredentials finds the client's credentials in an Authorization
// header (HTTP Basic) or in the client_id / client_secret form fields.
// Using both is an error (RFC 6749 section 2.3), and so is a client_id
// field beside HTTP Basic that names another client (section 3.2.1 lets a
// client name itself there); an Authorization header with another scheme
// counts as absent.
func clientCredentials(authz []byte, form *fasthttp.Args) (clientCreds, error) {
	id, secret, err := auth.ParseBasicAuthorization(authz)
	switch {
	case err == nil:
		if form.Has("client_secret") {
			return clientCreds{}, errMultipleAuth
		}
		if form.Has("client_id") && string(form.Peek("client_id")) != id {
			return clientCreds{}, errOtherClientID
		}
		return clientCreds{id: id, secret: secret, basic: true}, nil
	case !errors.Is(err, auth.ErrNotBasic):
		return clientCreds{}, errMalformedBasic
	}
	fid, fsecret := form.Peek("client_id"), form.Peek("client_secret")
	if len(fid) == 0 || len(fsecret) == 0 {
		return clientCreds{}, errNoCredentials
	}
	return clientCreds{id: string(fid), secret: string(fsecret)}, nil
}
