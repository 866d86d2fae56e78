package auth

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	josejson "github.com/go-jose/go-jose/v4/json"
)

// claimSet is the claim set of a verified access token as Local checks
// it: accessTokenClaims flattened, with the scopes already resolved.
type claimSet struct {
	issuer, subject, id string
	cid, clientID       string
	audience            []string
	scopes              []string // scp, else scope; see accessTokenClaims.scopes

	expiry, notBefore, issuedAt          int64 // seconds since the epoch
	hasExpiry, hasNotBefore, hasIssuedAt bool

	bound bool // "cnf" is present and not null: a sender-constrained token
}

// decodeClaims decodes a JWT claim set into c, with the result and the
// errors of josejson.Unmarshal into accessTokenClaims: case-sensitive
// member names, duplicate members rejected, every type checked, the whole
// payload valid JSON. It reads the common shape in one pass, without
// reflection: an object whose members it reads are plain strings (no
// escapes, valid UTF-8), arrays of them (maxArrayElems in all), and
// integer dates of up to 15 digits, with at most maxSkippedMembers other
// members, nested at most maxSkipDepth deep. Anything else (an escape, a null, a fractional or
// negative date, a duplicate, a syntax error, ...) it leaves to
// josejson.Unmarshal, so that unusual input gets exactly the answer it
// got before (FuzzDecodeClaims checks the two agree).
func decodeClaims(payload []byte, c *claimSet) error {
	if fastDecodeClaims(payload, c) {
		return nil
	}
	*c = claimSet{}
	var ac accessTokenClaims
	if err := josejson.Unmarshal(payload, &ac); err != nil {
		return fmt.Errorf("auth: claims: %w", err)
	}
	c.fromAccessTokenClaims(&ac)
	return nil
}

// fromAccessTokenClaims sets c from claims decoded by reflection.
func (c *claimSet) fromAccessTokenClaims(ac *accessTokenClaims) {
	*c = claimSet{
		issuer:   ac.Issuer,
		subject:  ac.Subject,
		id:       ac.ID,
		cid:      ac.Cid,
		clientID: ac.ClientID,
		audience: []string(ac.Audience),
		scopes:   ac.scopes(),
		bound:    ac.Cnf != nil && string(ac.Cnf) != "null",
	}
	if ac.Expiry != nil {
		c.expiry, c.hasExpiry = int64(*ac.Expiry), true
	}
	if ac.NotBefore != nil {
		c.notBefore, c.hasNotBefore = int64(*ac.NotBefore), true
	}
	if ac.IssuedAt != nil {
		c.issuedAt, c.hasIssuedAt = int64(*ac.IssuedAt), true
	}
}

// Limits of the one-pass claims decoder; input beyond them takes the
// reflection path.
const (
	maxSkippedMembers = 32 // members it does not read, tracked for duplicates
	maxSkipDepth      = 32 // nesting of the values it skips
	maxDateDigits     = 15 // below 2^53: the float64 go-jose parses is exact
)

// The members fastDecodeClaims reads, as bits of a seen-set.
const (
	claimIss = 1 << iota
	claimSub
	claimAud
	claimExp
	claimNbf
	claimIat
	claimJti
	claimScp
	claimScope
	claimCid
	claimClientID
	claimCnf
)

// claimBit returns the bit of a member name fastDecodeClaims reads, or 0.
func claimBit(name []byte) int {
	switch string(name) { // no allocation: the conversion is only compared
	case "iss":
		return claimIss
	case "sub":
		return claimSub
	case "aud":
		return claimAud
	case "exp":
		return claimExp
	case "nbf":
		return claimNbf
	case "iat":
		return claimIat
	case "jti":
		return claimJti
	case "scp":
		return claimScp
	case "scope":
		return claimScope
	case "cid":
		return claimCid
	case "client_id":
		return claimClientID
	case "cnf":
		return claimCnf
	}
	return 0
}

// claimReader is the state of one fastDecodeClaims pass: the input, the
// offset of the next unread byte, and where the strings it keeps are.
type claimReader struct {
	b []byte
	i int

	str   [numStringClaims]span // the string-valued claims it keeps
	elems [maxArrayElems]span   // the elements of "aud" and of an "scp" array
	n     int                   // elems in use
}

// span is the text of a plain string in the input: b[off:end].
type span struct{ off, end int }

// Indexes of claimReader.str.
const (
	strIss = iota
	strSub
	strJti
	strCid
	strClientID
	strScope
	strScp // "scp" as a space-separated string
	numStringClaims
)

// maxArrayElems is how many "aud", "scp" and "scope" array elements the
// one-pass reader keeps, together.
const maxArrayElems = 64

// fastDecodeClaims is decodeClaims's one-pass reader. It reports false,
// leaving c in any state, for anything outside the shape it reads. The
// strings it keeps share one allocation, and the "aud", "scp" and "scope" slices
// another.
func fastDecodeClaims(payload []byte, c *claimSet) bool {
	*c = claimSet{}
	r := claimReader{b: payload}
	var (
		seen             int
		skipped          [maxSkippedMembers][]byte
		nskip            int
		audFrom, audTo   int // r.elems of "aud"
		scpFrom, scpTo   int // r.elems of an "scp" array
		scpString        bool
		scopeFrom        int // r.elems of a "scope" array
		scopeTo          int
		scopeArray       bool
		ok               bool
		name             []byte
		stringClaimIndex = -1
	)
	r.space()
	if !r.consume('{') {
		return false
	}
	r.space()
	if r.consume('}') {
		return r.end()
	}
	for {
		if name, ok = r.plainString(); !ok {
			return false
		}
		r.space()
		if !r.consume(':') {
			return false
		}
		r.space()
		bit := claimBit(name)
		if bit != 0 {
			if seen&bit != 0 {
				return false
			}
			seen |= bit
		}
		stringClaimIndex = -1
		switch bit {
		case claimIss:
			stringClaimIndex = strIss
		case claimSub:
			stringClaimIndex = strSub
		case claimJti:
			stringClaimIndex = strJti
		case claimCid:
			stringClaimIndex = strCid
		case claimClientID:
			stringClaimIndex = strClientID
		case claimScope:
			if r.peek() == '"' {
				stringClaimIndex = strScope
			} else {
				scopeFrom = r.n
				ok = r.array()
				scopeTo, scopeArray = r.n, true
			}
		case claimAud:
			audFrom = r.n
			if r.peek() == '"' {
				ok = r.element()
			} else {
				ok = r.array()
			}
			audTo = r.n
		case claimScp:
			if r.peek() == '"' {
				stringClaimIndex, scpString = strScp, true
			} else {
				scpFrom = r.n
				ok = r.array()
				scpTo = r.n
			}
		case claimExp:
			c.expiry, ok = r.date()
			c.hasExpiry = true
		case claimNbf:
			c.notBefore, ok = r.date()
			c.hasNotBefore = true
		case claimIat:
			c.issuedAt, ok = r.date()
			c.hasIssuedAt = true
		case claimCnf:
			c.bound = r.peek() != 'n' // null is no binding; "n…" is null or an error
			ok = r.skipValue(0)
		default:
			for _, s := range skipped[:nskip] {
				if bytes.Equal(s, name) {
					return false
				}
			}
			if nskip == len(skipped) {
				return false
			}
			skipped[nskip] = name
			nskip++
			ok = r.skipValue(0)
		}
		if stringClaimIndex >= 0 {
			r.str[stringClaimIndex], ok = r.plainSpan()
		}
		if !ok {
			return false
		}
		r.space()
		if r.consume('}') {
			break
		}
		if !r.consume(',') {
			return false
		}
		r.space()
	}
	if !r.end() {
		return false
	}

	// Copy the strings kept into one allocation, in the order taken.
	total := 0
	for _, s := range r.str {
		total += s.end - s.off
	}
	for _, s := range r.elems[:r.n] {
		total += s.end - s.off
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, s := range r.str {
		sb.Write(payload[s.off:s.end])
	}
	for _, s := range r.elems[:r.n] {
		sb.Write(payload[s.off:s.end])
	}
	text, pos := sb.String(), 0
	take := func(s span) string {
		v := text[pos : pos+s.end-s.off]
		pos += len(v)
		return v
	}
	c.issuer = take(r.str[strIss])
	c.subject = take(r.str[strSub])
	c.id = take(r.str[strJti])
	c.cid = take(r.str[strCid])
	c.clientID = take(r.str[strClientID])
	scope := take(r.str[strScope])
	scpText := take(r.str[strScp])
	var elems []string
	if seen&(claimAud|claimScp) != 0 || scopeArray {
		elems = make([]string, r.n)
		for k := range elems {
			elems[k] = take(r.elems[k])
		}
	}
	if seen&claimAud != 0 {
		c.audience = elems[audFrom:audTo:audTo]
	}
	switch {
	case seen&claimScp != 0 && scpString:
		// As scpClaim.UnmarshalJSON: present, so never nil.
		if c.scopes = splitScope(scpText); c.scopes == nil {
			c.scopes = []string{}
		}
	case seen&claimScp != 0:
		c.scopes = elems[scpFrom:scpTo:scpTo]
	case scopeArray:
		c.scopes = elems[scopeFrom:scopeTo:scopeTo]
	case seen&claimScope != 0:
		c.scopes = splitScope(scope)
	}
	return true
}

// end reports whether only white space is left.
func (r *claimReader) end() bool {
	r.space()
	return r.i == len(r.b)
}

// space skips JSON white space.
func (r *claimReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end.
func (r *claimReader) peek() byte {
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// consume skips the next byte if it is c, and reports whether it was.
func (r *claimReader) consume(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// plainString reads a JSON string whose unquoted value is its raw bytes:
// no escape, no control character, valid UTF-8. It returns those bytes,
// which alias the input.
func (r *claimReader) plainString() ([]byte, bool) {
	if !r.consume('"') {
		return nil, false
	}
	start, ascii := r.i, true
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < ' ':
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		r.i++
	}
	return nil, false
}

// plainSpan reads a plain string (see plainString) and returns where its
// text is.
func (r *claimReader) plainSpan() (span, bool) {
	s, ok := r.plainString()
	return span{r.i - 1 - len(s), r.i - 1}, ok
}

// element reads a plain string into the next of r.elems.
func (r *claimReader) element() bool {
	if r.n == len(r.elems) {
		return false
	}
	s, ok := r.plainSpan()
	r.elems[r.n] = s
	r.n++
	return ok
}

// array reads an array of plain strings into r.elems.
func (r *claimReader) array() bool {
	return r.consume('[') && r.list(']', r.element)
}

// list reads the rest of an array or object whose opening bracket is
// consumed: elements read by elem, separated by commas, up to close.
func (r *claimReader) list(close byte, elem func() bool) bool {
	r.space()
	if r.consume(close) {
		return true
	}
	for {
		if !elem() {
			return false
		}
		r.space()
		if r.consume(close) {
			return true
		}
		if !r.consume(',') {
			return false
		}
		r.space()
	}
}

// date reads a NumericDate that is a plain integer of at most
// maxDateDigits digits, without sign, fraction or exponent.
func (r *claimReader) date() (int64, bool) {
	start := r.i
	var v int64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' && r.i-start < maxDateDigits+1 {
		v = v*10 + int64(r.b[r.i]-'0')
		r.i++
	}
	// A fraction or exponent that follows is no ',' or '}': the caller
	// then leaves the payload to go-jose, which parses a float.
	n := r.i - start
	if n == 0 || n > maxDateDigits || (n > 1 && r.b[start] == '0') {
		return 0, false
	}
	return v, true
}

// skipValue skips one well-formed JSON value at nesting depth.
func (r *claimReader) skipValue(depth int) bool {
	if depth >= maxSkipDepth {
		return false
	}
	switch c := r.peek(); {
	case c == '"':
		return r.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		return r.skipNumber()
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '[':
		r.i++
		return r.list(']', func() bool { return r.skipValue(depth + 1) })
	case c == '{':
		// Duplicates in nested objects are not go-jose's concern when it
		// skips a value, nor ours.
		r.i++
		return r.list('}', func() bool {
			if !r.skipString() {
				return false
			}
			r.space()
			if !r.consume(':') {
				return false
			}
			r.space()
			return r.skipValue(depth + 1)
		})
	}
	return false
}

// literal skips the literal lit.
func (r *claimReader) literal(lit string) bool {
	if !bytes.HasPrefix(r.b[r.i:], []byte(lit)) {
		return false
	}
	r.i += len(lit)
	return true
}

// skipString skips a JSON string with any valid escapes; bytes of 0x80
// and above are not checked, as go-jose's scanner does not check them.
func (r *claimReader) skipString() bool {
	if !r.consume('"') {
		return false
	}
	for r.i < len(r.b) {
		c := r.b[r.i]
		r.i++
		switch {
		case c == '"':
			return true
		case c < ' ':
			return false
		case c == '\\':
			if r.i >= len(r.b) {
				return false
			}
			e := r.b[r.i]
			r.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if r.i+4 > len(r.b) {
					return false
				}
				for _, h := range r.b[r.i : r.i+4] {
					if !isHex(h) {
						return false
					}
				}
				r.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber skips a JSON number (RFC 8259 §6).
func (r *claimReader) skipNumber() bool {
	r.consume('-')
	switch {
	case r.consume('0'):
	case r.digits() == 0:
		return false
	}
	if r.consume('.') && r.digits() == 0 {
		return false
	}
	if r.consume('e') || r.consume('E') {
		if !r.consume('+') {
			r.consume('-')
		}
		if r.digits() == 0 {
			return false
		}
	}
	return true
}

// digits skips decimal digits and returns how many there were.
func (r *claimReader) digits() int {
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	return r.i - start
}
