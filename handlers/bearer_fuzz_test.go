package handlers

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

// FuzzBearerToken feeds whole untrusted requests, as fasthttp parses them
// off the wire, to bearerToken: it must never panic; a token it returns is
// what auth.ParseBearer makes of the request's only Authorization header,
// with no access_token parameter beside it; and an ambiguity it reports is
// really there.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{
		"GET /items HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\n\r\n",
		"GET /items HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\nAuthorization: Bearer def\r\n\r\n",
		"GET /items HTTP/1.1\r\nHost: a\r\nauthorization: bearer abc\r\nAUTHORIZATION: Basic YTpi\r\n\r\n",
		"GET /items?access_token=abc HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\n\r\n",
		"GET /items?access%5Ftoken=abc HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\n\r\n",
		"GET /items?access_token=abc HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /items HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n\r\naccess_token=abc",
		"POST /items HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\nContent-Type: APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8\r\nContent-Length: 14\r\n\r\naccess_token&x",
		"GET /items HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer   \r\n\r\n",
		"GET /items HTTP/1.1\r\nHost: a\r\nAuthorization:\r\nAuthorization: Bearer x\r\n\r\n",
		"GET /items HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer\tx y\r\n\r\n",
		"GET /items HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Authorization\r\nAuthorization: Bearer a\r\n\r\n0\r\nAuthorization: Bearer b\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ctx fasthttp.RequestCtx
		if err := ctx.Request.ReadLimitBody(bufio.NewReader(bytes.NewReader(raw)), 1<<16); err != nil {
			return
		}
		headers := len(ctx.Request.Header.PeekAll(fasthttp.HeaderAuthorization))
		param := ctx.QueryArgs().Has(paramAccessToken) || ctx.PostArgs().Has(paramAccessToken)
		first := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)

		token, err := bearerToken(&ctx)
		switch {
		case err == nil:
			want, werr := auth.ParseBearer(first)
			if werr != nil || !bytes.Equal(token, want) {
				t.Fatalf("token %q, but the one header %q parses as %q, %v", token, first, want, werr)
			}
			if headers != 1 || param {
				t.Fatalf("token %q accepted with %d Authorization headers, access_token parameter %v", token, headers, param)
			}
		case errors.Is(err, errInvalidRequest):
			if headers < 2 && !param {
				t.Fatalf("%v with %d Authorization headers and no access_token parameter", err, headers)
			}
			if _, ok := errors.AsType[*invalidRequestError](err); !ok {
				t.Fatalf("%v matches errInvalidRequest but is no *invalidRequestError", err)
			}
		case errors.Is(err, auth.ErrNoToken), errors.Is(err, auth.ErrInvalidToken):
			if headers > 1 {
				t.Fatalf("%v with %d Authorization headers, want invalid_request", err, headers)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
