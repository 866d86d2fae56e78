package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopByHop are the fields RFC 9110 section 7.6.1 (and the legacy
// Keep-Alive, Proxy-Connection) says a proxy must not forward; those the
// Connection field names are removed as well.
var hopByHop = [...]string{
	fasthttp.HeaderConnection,
	"Proxy-Connection",
	"Keep-Alive",
	fasthttp.HeaderProxyAuthenticate,
	fasthttp.HeaderProxyAuthorization,
	fasthttp.HeaderTE,
	fasthttp.HeaderTrailer,
	fasthttp.HeaderTransferEncoding,
	fasthttp.HeaderUpgrade,
}

// connectionTokens calls del for each field name listed in the Connection
// values (comma-separated, any number of fields).
func connectionTokens(values [][]byte, del func(name []byte)) {
	for _, v := range values {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			if tok = bytes.TrimSpace(tok); len(tok) > 0 {
				del(tok)
			}
		}
	}
}

// removeHopByHopRequest removes the hop-by-hop fields of a request header.
// Content-Length and the framing are fasthttp's to set from the body.
func removeHopByHopRequest(h *fasthttp.RequestHeader) {
	connectionTokens(h.PeekAll(fasthttp.HeaderConnection), h.DelBytes)
	for _, k := range hopByHop {
		h.Del(k)
	}
}

// removeHopByHop removes the hop-by-hop fields of a response header.
func removeHopByHop(h *fasthttp.ResponseHeader) {
	connectionTokens(h.PeekAll(fasthttp.HeaderConnection), h.DelBytes)
	for _, k := range hopByHop {
		h.Del(k)
	}
}
