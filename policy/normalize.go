package policy

import "errors"

// ErrBadPath means a request path was refused by Normalize: the caller
// answers 400. Every such error is a *PathError.
var ErrBadPath = errors.New("policy: bad request path")

// PathError says why Normalize refused a path. Reason is a fixed phrase,
// safe to show the client; it never quotes the path.
type PathError struct {
	Reason string // e.g. "encoded slash"
}

// Error returns "policy: bad request path: " and the reason.
func (e *PathError) Error() string { return "policy: bad request path: " + e.Reason }

// Is makes errors.Is(err, ErrBadPath) true for every *PathError.
func (e *PathError) Is(target error) bool { return target == ErrBadPath }

var (
	errNotOrigin        = &PathError{Reason: "path does not start with /"}
	errEncodedSlash     = &PathError{Reason: "encoded slash"}
	errEncodedBackslash = &PathError{Reason: "encoded backslash"}
	errBackslash        = &PathError{Reason: "backslash"}
	errParams           = &PathError{Reason: "path parameter (;)"}
	errControl          = &PathError{Reason: "control character"}
	errBadEscape        = &PathError{Reason: "invalid percent-encoding"}
)

// Normalize appends to dst the normal form of a request target's path and
// returns the extended slice. It allocates only when dst lacks capacity; the
// result is at most three times as long as rawPath. On error it returns dst
// unchanged and a *PathError (errors.Is(err, ErrBadPath)).
//
// rawPath is the path as it arrived on the wire, before any decoding (with
// fasthttp: RequestURI or URI().PathOriginal, never URI().Path, which is
// already decoded). In order, Normalize:
//
//   - cuts the query and fragment at the first '?' or '#';
//   - refuses a path that does not start with '/' (absolute-form,
//     asterisk-form, empty);
//   - refuses control bytes (0x00–0x1f, 0x7f), raw or percent-encoded;
//   - refuses '\', raw or encoded (%5C), and an encoded slash (%2F):
//     upstreams disagree on whether they separate segments;
//   - refuses ';', raw or encoded (%3B): Tomcat and Jetty strip path
//     parameters ("/admin;x" is "/admin", "/..;/" is "/../") while nginx and
//     Envoy keep them as part of the segment, so no single reading is safe
//     in front of every upstream;
//   - refuses a '%' not followed by two hex digits (so "%u002e" too);
//   - decodes percent-encoded unreserved characters (ALPHA, DIGIT, "-", ".",
//     "_", "~"), so "%61dmin" is "admin" and "%2e%2e" is "..";
//   - decodes the other characters a segment may hold raw: the sub-delims
//     but ';' ("!$&'()*+,="), ':' and '@', so "jobs%3Arun" is "jobs:run":
//     nginx, Caddy and most upstreams decode them before routing, and a
//     segment with them decoded has the same boundaries;
//   - keeps every other escape encoded, with upper-case hex: "%c3%a9"
//     becomes "%C3%A9", overlong or look-alike sequences ("%C0%AF",
//     "%EF%BC%8F") stay literal, and "%252e" stays "%252e" because "%25"
//     is not decoded (decoding happens once; an upstream that decodes twice
//     cannot be guarded by any policy that decodes once);
//   - percent-encodes raw bytes that may not appear in a path (space, '"',
//     '<', '>', '[', ']', '^', '`', '{', '|', '}', and bytes from 0x80), so
//     raw UTF-8 and its escaped form normalise alike;
//   - merges repeated slashes ("//admin" is "/admin");
//   - resolves "." and ".." segments (RFC 3986 section 5.2.4), never above
//     the root ("/../admin" is "/admin"); a path ending in a slash, "." or
//     ".." keeps a trailing slash ("/admin/." is "/admin/").
//
// Case is left alone: Match folds it when the policy says
// case_insensitive_paths. The result starts with '/', has no empty, "." or
// ".." segment except that it may end with '/', and is its own normal form.
// Normalize does not decode '+' (it is not a space in a path).
func Normalize(dst, rawPath []byte) ([]byte, error) {
	for i, c := range rawPath {
		if c == '?' || c == '#' {
			rawPath = rawPath[:i]
			break
		}
	}
	if len(rawPath) == 0 || rawPath[0] != '/' {
		return dst, errNotOrigin
	}
	orig, base := dst, len(dst)
	trailing := false
	for i := 1; ; {
		j := i
		for j < len(rawPath) && rawPath[j] != '/' {
			j++
		}
		start := len(dst)
		dst = append(dst, '/')
		var err error
		if dst, err = appendSegment(dst, rawPath[i:j]); err != nil {
			return orig, err
		}
		switch seg := dst[start+1:]; {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
			dst = dst[:start]
			trailing = true
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			dst = dst[:start]
			for k := len(dst) - 1; k >= base; k-- {
				if dst[k] == '/' {
					dst = dst[:k]
					break
				}
			}
			trailing = true
		default:
			trailing = false
		}
		if j == len(rawPath) {
			break
		}
		i = j + 1
	}
	if trailing || len(dst) == base {
		dst = append(dst, '/')
	}
	return dst, nil
}

// appendSegment appends one path segment (no '/' in seg) in normal form.
func appendSegment(dst, seg []byte) ([]byte, error) {
	for k := 0; k < len(seg); k++ {
		c := seg[k]
		if c == '%' {
			if k+2 >= len(seg) {
				return dst, errBadEscape
			}
			hi, ok1 := unhex(seg[k+1])
			lo, ok2 := unhex(seg[k+2])
			if !ok1 || !ok2 {
				return dst, errBadEscape
			}
			k += 2
			switch v := hi<<4 | lo; {
			case isUnreserved(v):
				dst = append(dst, v)
			case v == '/':
				return dst, errEncodedSlash
			case v == '\\':
				return dst, errEncodedBackslash
			case v == ';':
				return dst, errParams
			case v < 0x20 || v == 0x7f:
				return dst, errControl
			case isSubDelim(v) || v == ':' || v == '@':
				dst = append(dst, v)
			default:
				dst = appendEscape(dst, v)
			}
			continue
		}
		switch {
		case c < 0x20 || c == 0x7f:
			return dst, errControl
		case c == '\\':
			return dst, errBackslash
		case c == ';':
			return dst, errParams
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@':
			dst = append(dst, c)
		default:
			dst = appendEscape(dst, c)
		}
	}
	return dst, nil
}

func appendEscape(dst []byte, c byte) []byte {
	const upperHex = "0123456789ABCDEF"
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isUnreserved reports RFC 3986 unreserved characters.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isSubDelim reports RFC 3986 sub-delims other than ';', which Normalize
// refuses.
func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=':
		return true
	}
	return false
}
