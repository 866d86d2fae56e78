package handlers

import (
	"errors"
	"strings"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

// errInvalidRequest marks a request whose credentials are ambiguous (RFC
// 6750 section 3.1, invalid_request): writeAuthError answers it 400. Every
// error that matches it is an *invalidRequestError, whose detail is safe
// to show the client.
var errInvalidRequest = errors.New("handlers: invalid request")

// invalidRequestError is one kind of ambiguous credentials, with the fixed
// text the client is shown.
type invalidRequestError struct{ detail string }

func (e *invalidRequestError) Error() string { return "handlers: invalid request: " + e.detail }

// Is makes errors.Is(err, errInvalidRequest) true.
func (e *invalidRequestError) Is(target error) bool { return target == errInvalidRequest }

var (
	// errSeveralAuthorization: two or more Authorization headers. Which
	// one a proxy in front, the upstream or tokengate would read differs,
	// so none is read.
	errSeveralAuthorization = &invalidRequestError{detail: "more than one Authorization header"}
	// errSeveralMethods: a bearer token in the Authorization header and an
	// access_token query or form parameter. RFC 6750 section 2 allows one
	// method per request; tokengate reads only the header, but a service
	// behind it might read the other.
	errSeveralMethods = &invalidRequestError{detail: "access token sent by more than one method"}
	// errFormTooLarge: a bearer token in the header and a streamed form
	// body (gateway mode) too long, or of unknown length, to be read for an
	// access_token parameter without buffering it whole.
	errFormTooLarge = &invalidRequestError{detail: "form body too large to check for an access_token parameter"}
)

// paramAccessToken is the RFC 6750 section 2.2 and 2.3 parameter name.
const paramAccessToken = "access_token"

// bearerToken returns the bearer token of the request's one Authorization
// header, without copying: it aliases the request and is valid until the
// handler returns. Its errors are those of auth.ParseBearer (ErrNoToken, or
// a *TokenError for "Bearer" with nothing after it), or, for ambiguous
// credentials, one that matches errInvalidRequest: more than one
// Authorization header, or a bearer token in the header and an
// access_token parameter in the query or a form body as well. A request
// with only an access_token parameter carries no token tokengate reads:
// ErrNoToken, as before.
//
// Every protected route, the middleware's and the decision endpoints',
// reads the token through it. It does not allocate once the request's
// header buffers have grown (fasthttp reuses them between requests).
func bearerToken(ctx *fasthttp.RequestCtx) ([]byte, error) {
	values := ctx.Request.Header.PeekAll(fasthttp.HeaderAuthorization)
	switch len(values) {
	case 0:
		return nil, auth.ErrNoToken
	case 1:
	default:
		return nil, errSeveralAuthorization
	}
	token, err := auth.ParseBearer(values[0])
	if err != nil {
		return nil, err
	}
	if ctx.QueryArgs().Has(paramAccessToken) {
		return nil, errSeveralMethods
	}
	// PostArgs reads a form body whole; a streamed one (gateway mode) is
	// read only when its announced length is within maxFormCheck.
	if ctx.RequestBodyStream() != nil && isForm(ctx.Request.Header.ContentType()) {
		if n := ctx.Request.Header.ContentLength(); n < 0 || n > maxFormCheck {
			return nil, errFormTooLarge
		}
	}
	if ctx.PostArgs().Has(paramAccessToken) {
		return nil, errSeveralMethods
	}
	return token, nil
}

// maxFormCheck bounds the streamed form body (gateway mode) that
// bearerToken reads to look for an access_token parameter: the server's
// MaxRequestBodySize outside gateway mode.
const maxFormCheck = 64 << 10

// isForm reports a Content-Type that fasthttp's PostArgs parses.
func isForm(contentType []byte) bool {
	const form = "application/x-www-form-urlencoded"
	return len(contentType) >= len(form) && strings.EqualFold(string(contentType[:len(form)]), form)
}
