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

// names are the field names the gateway removes or sets, in fasthttp's
// canonical form ("TE" is stored as "Te"), built once by New.
//
// Why: the gateway edits headers whose names fasthttp has already
// normalised (the server's parser, the client's), so it switches
// normalising off for its edits and hands over canonical names, rather
// than having every Del, Peek and Set normalise its key again, about
// twenty times per forwarded request. A name matches exactly when it
// would have matched with normalising on.
type names struct {
	hopByHop                  [len(hopByHop)][]byte
	connection, expect, authz []byte
	xff, proto, host          []byte
	// peer are the other fields that name the client or how it came:
	// Forwarded (RFC 7239), X-Real-IP, True-Client-IP. Kept from a trusted
	// peer, removed from any other.
	peer [3][]byte
}

func newNames() names {
	canon := func(s string) []byte { return fasthttp.AppendNormalizedHeaderKey(nil, s) }
	n := names{
		connection: canon(fasthttp.HeaderConnection),
		expect:     canon(fasthttp.HeaderExpect),
		authz:      canon(fasthttp.HeaderAuthorization),
		xff:        canon("X-Forwarded-For"),
		proto:      canon("X-Forwarded-Proto"),
		host:       canon("X-Forwarded-Host"),
		peer:       [3][]byte{canon("Forwarded"), canon("X-Real-IP"), canon("True-Client-IP")},
	}
	for i, k := range hopByHop {
		n.hopByHop[i] = canon(k)
	}
	return n
}

// nextToken splits the first comma-separated element off a Connection
// value, without the white space around it; tok is empty for an empty
// element.
func nextToken(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		tok, rest = v[:i], v[i+1:]
	} else {
		tok = v
	}
	return bytes.TrimSpace(tok), rest
}

// removeHopByHopRequest removes the hop-by-hop fields of a request header
// whose normalising is off (see names), and those its Connection values
// name, but Host: the policy matched it and the upstream must read the
// same one (without it fasthttp would send the upstream's own address).
// Content-Length and the framing are fasthttp's to set from the body.
func (n *names) removeHopByHopRequest(h *fasthttp.RequestHeader) {
	var buf [64]byte
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		for len(v) > 0 {
			var tok []byte
			if tok, v = nextToken(v); len(tok) > 0 {
				if key := fasthttp.AppendNormalizedHeaderKeyBytes(buf[:0], tok); string(key) != fasthttp.HeaderHost {
					h.DelBytes(key)
				}
			}
		}
	}
	for _, k := range n.hopByHop {
		h.DelBytes(k)
	}
}

// removeHopByHopResponse is removeHopByHopRequest for a response header.
func (n *names) removeHopByHopResponse(h *fasthttp.ResponseHeader) {
	var buf [64]byte
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		for len(v) > 0 {
			var tok []byte
			if tok, v = nextToken(v); len(tok) > 0 {
				h.DelBytes(fasthttp.AppendNormalizedHeaderKeyBytes(buf[:0], tok))
			}
		}
	}
	for _, k := range n.hopByHop {
		h.DelBytes(k)
	}
}

// removeLookalikes removes every client-sent field (h's fields as
// received; h's normalising is off) whose name is not name but reads as
// name to an upstream that folds case and reads '_' as '-': CGI, WSGI,
// Rack and PHP turn X-Auth-Subject and X_Auth_Subject alike into
// HTTP_X_AUTH_SUBJECT, so a client's X_Auth_Subject would pass for the
// field the gateway sets. It reads the received fields (RequestHeader.All
// would parse and rewrite the Cookie fields) and deletes each one under
// the name fasthttp stored it by.
func removeLookalikes(h *fasthttp.RequestHeader, name []byte) {
	var buf [128]byte
	for k := range h.AllInOrder() {
		if len(k) != len(name) || !sameField(k, name) {
			continue
		}
		if key := fasthttp.AppendNormalizedHeaderKeyBytes(buf[:0], k); !bytes.Equal(key, name) {
			h.DelBytes(key)
		}
	}
}

// sameField reports whether a and b, of equal length, are the same name
// with case folded and '_' read as '-'.
func sameField(a, b []byte) bool {
	for i := range a {
		if foldField(a[i]) != foldField(b[i]) {
			return false
		}
	}
	return true
}

func foldField(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}
