package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
)

// The RFC 6749 vocabulary that more than one package speaks: the scope-token
// grammar and the HTTP Basic client credentials. handlers uses these
// functions; config and devissuer, which may not import auth (DESIGN.md,
// "The rooms"), keep copies that their tests compare with these, so that a
// change here fails their tests until the copies follow. The same holds for
// DefaultAlgorithms and the AuthMethod constants.

// ValidScopeToken reports whether s is one RFC 6749 section 3.3
// scope-token: 1*( %x21 / %x23-5B / %x5D-7E ), that is printable ASCII
// without space, double quote or backslash.
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Errors of ParseBasicAuthorization; test for them with errors.Is.
var (
	// ErrNotBasic means the Authorization header is empty or uses another
	// scheme: the client did not try HTTP Basic.
	ErrNotBasic = errors.New("auth: not HTTP Basic credentials")
	// ErrMalformedBasic means the header says Basic but its credentials do
	// not decode to "id:secret" with a non-empty id.
	ErrMalformedBasic = errors.New("auth: malformed HTTP Basic credentials")
)

// BasicAuthorization returns the Authorization header value that
// authenticates a client to an authorization server by HTTP Basic, with id
// and secret form-urlencoded first as RFC 6749 section 2.3.1 requires
// (a secret holding ':' or '%' then survives the trip).
// ParseBasicAuthorization decodes it back.
func BasicAuthorization(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// ParseBasicAuthorization decodes an HTTP Basic Authorization header value
// (RFC 7617) whose user-id and password are a client id and secret, each
// form-urlencoded first (RFC 6749 section 2.3.1).
//
// The scheme is matched in any case and may be preceded by spaces or tabs
// and followed by one or more; the base64 may be padded or not. Each of id
// and secret that is not valid form-urlencoding is taken as it is, since
// many clients (curl -u) do not encode. An empty header or another scheme
// ("Bearer …", "Basicx …") is ErrNotBasic; a Basic header that does not
// decode, has no ':' or names no client id is ErrMalformedBasic. The
// results never alias h.
func ParseBasicAuthorization(h []byte) (id, secret string, err error) {
	const scheme = "basic"
	h = bytes.TrimLeft(h, " \t")
	if len(h) < len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return "", "", ErrNotBasic
	}
	rest := h[len(scheme):]
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return "", "", ErrNotBasic // "Basicx …" is another scheme
	}
	enc := bytes.Trim(rest, " \t")
	if len(enc) == 0 {
		return "", "", ErrMalformedBasic
	}
	// Padded or not; RawStdEncoding needs the larger buffer.
	dec := make([]byte, base64.RawStdEncoding.DecodedLen(len(enc)))
	n, derr := base64.StdEncoding.Decode(dec, enc)
	if derr != nil {
		if n, derr = base64.RawStdEncoding.Decode(dec, enc); derr != nil {
			return "", "", ErrMalformedBasic
		}
	}
	rawID, rawSecret, found := strings.Cut(string(dec[:n]), ":")
	if !found {
		return "", "", ErrMalformedBasic
	}
	id, secret = formUnescape(rawID), formUnescape(rawSecret)
	if id == "" {
		return "", "", ErrMalformedBasic
	}
	return id, secret, nil
}

// formUnescape undoes application/x-www-form-urlencoded encoding, or
// returns s unchanged when it is not valid encoding.
func formUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}
