package handlers

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

// Header names and values used on every path, kept as constants or
// pre-encoded bytes so that writing them allocates nothing.
const (
	headerWWWAuthenticate = "WWW-Authenticate"
	headerRetryAfter      = "Retry-After"
	headerCacheControl    = "Cache-Control"
	headerPragma          = "Pragma"
	headerRequestID       = "X-Request-Id"

	// maxDescriptionLen bounds the RFC 6750 error_description we send.
	maxDescriptionLen = 128

	// defaultRetryAfter is what a 503 advertises when the cause gives no
	// better figure.
	defaultRetryAfter = 5 * time.Second
)

var (
	contentTypeJSON = []byte("application/json")

	bodyHello            = []byte(`{"Hello":"World"}`)
	bodyHealthy          = []byte(`{"status":"ok"}`)
	bodyReady            = []byte(`{"status":"ready"}`)
	bodyNotFound         = []byte(`{"detail":"Not Found"}`)
	bodyMethodNotAllowed = []byte(`{"detail":"Method Not Allowed"}`)
	bodyInternalError    = []byte(`{"detail":"Internal Server Error"}`)
	bodyNotAuthenticated = []byte(`{"detail":"Not authenticated"}`)
	bodyItemNotFound     = []byte(`{"detail":"Item not found"}`)
	bodyUntrustedPeer    = []byte(`{"detail":"forbidden: this endpoint answers trusted proxies only"}`)
)

// writeJSON answers with a pre-encoded JSON body. body is not copied: it
// must never change afterwards (package-level bodies and those built once
// in New qualify).
func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(body)
}

// writeDetail answers with {"detail":"<detail>"}, escaping detail.
func writeDetail(ctx *fasthttp.RequestCtx, status int, detail string) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	var buf [256]byte
	b := append(buf[:0], `{"detail":`...)
	b = appendJSONString(b, detail)
	b = append(b, '}')
	ctx.Response.SetBody(b)
}

// writeUnavailable answers 503 for err, something that could not be done
// now: the detail is prefix and the reason, and Retry-After its delay, both
// from the *auth.UnavailableError in err when it carries one, else fallback
// and defaultRetryAfter.
func writeUnavailable(ctx *fasthttp.RequestCtx, prefix, fallback string, err error) {
	reason, retry := fallback, time.Duration(0)
	if ue, ok := errors.AsType[*auth.UnavailableError](err); ok {
		if ue.Reason != "" {
			reason = ue.Reason
		}
		retry = ue.RetryAfter
	}
	setRetryAfter(ctx, retry)
	writeDetail(ctx, fasthttp.StatusServiceUnavailable, prefix+reason)
}

// setRetryAfter sets Retry-After to d rounded up to whole seconds, or to
// defaultRetryAfter when d is not positive.
func setRetryAfter(ctx *fasthttp.RequestCtx, d time.Duration) {
	if d <= 0 {
		d = defaultRetryAfter
	}
	secs := int64((d + time.Second - 1) / time.Second)
	var buf [20]byte
	ctx.Response.Header.SetBytesV(headerRetryAfter, strconv.AppendInt(buf[:0], secs, 10))
}

// appendJSONString appends s as a JSON string literal. Like encoding/json
// it escapes <, > and & and U+2028/U+2029, and replaces every byte of
// invalid UTF-8 with U+FFFD, so the result is always valid JSON.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	return append(appendJSONChars(dst, s), '"')
}

// appendJSONChars appends s escaped as the inside of a JSON string
// literal, as appendJSONString does, without the quotes.
func appendJSONChars(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028':
			dst = append(dst, `\u2028`...)
		case r == '\u2029':
			dst = append(dst, `\u2029`...)
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// appendQuoted appends s as an RFC 9110 quoted-string for an
// authentication parameter, keeping at most max bytes of s. Quotes and
// backslashes are escaped; bytes RFC 6750 does not allow in its
// parameters (controls, DEL, anything non-ASCII) become '?'.
func appendQuoted(dst []byte, s string, max int) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s) && i < max; i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c >= 0x7f:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendDescription appends s as the quoted value of an RFC 6750
// error_description, keeping at most max bytes of s. Section 3 allows only
// %x20-21 / %x23-5B / %x5D-7E there (no quote or backslash, so nothing can
// be escaped); every other byte becomes '?'.
func appendDescription(dst []byte, s string, max int) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s) && i < max; i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f || c == '"' || c == '\\':
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
