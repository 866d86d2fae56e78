package handlers

import (
	"context"
	"errors"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// principalKey is the user-value key under which the middleware stores the
// request's *auth.Principal. A zero-size key converts to an interface
// without allocating.
type principalKey struct{}

// Principal returns the principal the auth middleware stored for this
// request, or nil outside a protected route. It is only valid while the
// handler runs; the Principal itself is shared and read-only.
func Principal(ctx *fasthttp.RequestCtx) *auth.Principal {
	p, _ := ctx.UserValue(principalKey{}).(*auth.Principal)
	return p
}

var (
	// errInsufficientScope marks a valid token that lacks the route's scope.
	errInsufficientScope = errors.New("handlers: insufficient scope")
	// errNilPrincipal marks a Validator that broke its contract.
	errNilPrincipal = errors.New("handlers: validator returned neither principal nor error")
)

// scopeGuard is the auth middleware for one required scope, with the
// responses that depend only on the scope encoded once.
type scopeGuard struct {
	s         *Server
	scope     string // "" means any valid token
	challenge []byte // Bearer realm="…", error="insufficient_scope", scope="…"
	body      []byte // {"detail":"insufficient scope: … required"}
}

func (s *Server) newScopeGuard(scope string) *scopeGuard {
	g := &scopeGuard{s: s, scope: scope}
	g.challenge = s.appendScopeChallenge(nil, scope)
	g.body = append([]byte(`{"detail":`), appendJSONString(nil, "insufficient scope: "+scope+" required")...)
	g.body = append(g.body, '}')
	return g
}

// appendScopeChallenge appends the WWW-Authenticate value for a valid
// token that lacks scope (RFC 6750 section 3.1, insufficient_scope).
func (s *Server) appendScopeChallenge(dst []byte, scope string) []byte {
	dst = append(dst, s.bearerChallenge...)
	dst = append(dst, `, error="insufficient_scope", scope=`...)
	return appendQuoted(dst, scope, len(scope))
}

// wrap returns next behind the bearer-token check. On a validator cache
// hit the check allocates nothing: the header is read in place, the
// validator's ctx comes from a pool and names the client only when asked
// (a miss), the principal is stored under a constant key.
func (g *scopeGuard) wrap(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	s := g.s
	return func(ctx *fasthttp.RequestCtx) {
		token, err := bearerToken(ctx)
		if err != nil {
			s.writeAuthError(ctx, err, nil, g, "")
			return
		}
		p, err := s.validate(ctx, token)
		switch {
		case err != nil:
		case p == nil:
			err = errNilPrincipal
		case g.scope != "" && !p.HasScope(g.scope):
			err = errInsufficientScope
		}
		if err != nil {
			s.writeAuthError(ctx, err, token, g, "")
			return
		}
		s.requests.inc(ctx, outcomeAuthorized)
		ctx.SetUserValue(principalKey{}, p)
		next(ctx)
	}
}

// writeAuthError is the one place that maps an authentication failure to
// a response (RFC 6750 section 3):
//
//   - no bearer token: 401 with a bare challenge;
//   - ambiguous credentials (errInvalidRequest, from bearerToken): 400,
//     error="invalid_request" with the fixed reason as error_description;
//   - a token that could not be checked now (auth.ErrUnavailable, or the
//     server's context ending): 503 with Retry-After, never 401;
//   - a bad token (auth.ErrInvalidToken): 401, error="invalid_token" with
//     the client-safe description of its auth.Reason as error_description;
//   - a valid token without the route's scope: 403, error="insufficient_scope";
//   - anything else: 500, logged with the request id.
//
// Each case also counts its outcome for GET /metrics, and a bad token its
// reason (tokengate_rejections_total). token, when known, is used only for
// its fingerprint in debug logs. The insufficient-scope answer is g's
// pre-encoded one when g is set (a route's fixed scope), and otherwise is
// built for scope (a decision endpoint's matched rule).
func (s *Server) writeAuthError(ctx *fasthttp.RequestCtx, err error, token []byte, g *scopeGuard, scope string) {
	h := &ctx.Response.Header
	switch {
	case errors.Is(err, auth.ErrNoToken):
		s.requests.inc(ctx, outcomeNoToken)
		h.SetBytesV(headerWWWAuthenticate, s.bearerChallenge)
		writeJSON(ctx, fasthttp.StatusUnauthorized, bodyNotAuthenticated)
		s.debugAuth(ctx, "handlers: no bearer token", nil, fasthttp.StatusUnauthorized, "")

	case errors.Is(err, errInvalidRequest):
		s.requests.inc(ctx, outcomeInvalidRequest)
		detail := "invalid request"
		if ie, ok := errors.AsType[*invalidRequestError](err); ok {
			detail = ie.detail
		}
		var buf [256]byte
		h.SetBytesV(headerWWWAuthenticate, s.appendErrorChallenge(buf[:0], "invalid_request", detail))
		writeDetail(ctx, fasthttp.StatusBadRequest, detail)
		s.debugAuth(ctx, "handlers: ambiguous credentials", nil, fasthttp.StatusBadRequest, detail)

	case errors.Is(err, auth.ErrUnavailable),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		s.requests.inc(ctx, outcomeUnavailable)
		fallback := "authorization server unavailable"
		if errors.Is(err, context.Canceled) {
			fallback = "server shutting down"
		} else if errors.Is(err, context.DeadlineExceeded) {
			fallback = "validation timed out"
		}
		writeUnavailable(ctx, "token cannot be validated now: ", fallback, err)
		if ce := s.log.Check(zap.DebugLevel, "handlers: token cannot be validated now"); ce != nil {
			ce.Write(zap.Uint64("request_id", ctx.ID()), zap.String("token", auth.Fingerprint(token)), zap.Error(err))
		}

	case errors.Is(err, auth.ErrInvalidToken):
		s.requests.inc(ctx, outcomeInvalidToken)
		r, _ := auth.ReasonOf(err) // auth.ReasonInvalid ("invalid token") when err carries none
		s.rejections.inc(ctx, r)
		reason := r.Description()
		var buf [256]byte
		h.SetBytesV(headerWWWAuthenticate, s.appendInvalidChallenge(buf[:0], reason))
		writeDetail(ctx, fasthttp.StatusUnauthorized, reason)
		s.debugAuth(ctx, "handlers: invalid token", token, fasthttp.StatusUnauthorized, reason)

	case errors.Is(err, errInsufficientScope):
		s.requests.inc(ctx, outcomeInsufficientScope)
		if g != nil {
			h.SetBytesV(headerWWWAuthenticate, g.challenge)
			writeJSON(ctx, fasthttp.StatusForbidden, g.body)
			scope = g.scope
		} else {
			var buf [256]byte
			h.SetBytesV(headerWWWAuthenticate, s.appendScopeChallenge(buf[:0], scope))
			b := append(buf[:0], `{"detail":"insufficient scope: `...)
			b = append(appendJSONChars(b, scope), ` required"}`...)
			ctx.SetStatusCode(fasthttp.StatusForbidden)
			ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
			ctx.Response.SetBody(b)
		}
		s.debugAuth(ctx, "handlers: insufficient scope", token, fasthttp.StatusForbidden, scope)

	default:
		s.requests.inc(ctx, outcomeError)
		s.log.Error("handlers: token validation failed unexpectedly",
			zap.Uint64("request_id", ctx.ID()),
			zap.String("token", auth.Fingerprint(token)),
			zap.Error(err))
		writeInternalError(ctx)
	}
}

// appendInvalidChallenge appends the WWW-Authenticate value for a bad
// token: the realm, error="invalid_token" and reason as error_description
// (RFC 6750 section 3: no quote or backslash in it, cut to
// maxDescriptionLen). The OpenAPI examples are built by it too.
func (s *Server) appendInvalidChallenge(dst []byte, reason string) []byte {
	return s.appendErrorChallenge(dst, "invalid_token", reason)
}

// appendErrorChallenge appends a WWW-Authenticate value with the realm,
// the RFC 6750 error code (a fixed token of ours) and description as
// error_description.
func (s *Server) appendErrorChallenge(dst []byte, code, description string) []byte {
	dst = append(dst, s.bearerChallenge...)
	dst = append(dst, `, error="`...)
	dst = append(dst, code...)
	dst = append(dst, `", error_description=`...)
	return appendDescription(dst, description, maxDescriptionLen)
}

// debugAuth logs a rejected request at debug level, building no fields
// when the level is off. The token appears only as its fingerprint.
func (s *Server) debugAuth(ctx *fasthttp.RequestCtx, msg string, token []byte, status int, reason string) {
	ce := s.log.Check(zap.DebugLevel, msg)
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.Uint64("request_id", ctx.ID()),
		zap.ByteString("path", ctx.Path()),
		zap.Int("status", status),
	}
	if token != nil {
		fields = append(fields, zap.String("token", auth.Fingerprint(token)))
	}
	if reason != "" {
		fields = append(fields, zap.String("reason", reason))
	}
	ce.Write(fields...)
}
