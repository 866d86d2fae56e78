package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// introspectFields holds the raw members of an introspection response
// that Remote reads; nil means absent.
type introspectFields struct {
	active, exp, iat, iss, aud, scope, scp, clientID, cid, sub, jti, tokenType json.RawMessage
}

// slot returns where member name goes, or nil for members Remote ignores.
// Names match exactly (encoding/json alone would fold case).
func (f *introspectFields) slot(name string) *json.RawMessage {
	switch name {
	case "active":
		return &f.active
	case "exp":
		return &f.exp
	case "iat":
		return &f.iat
	case "iss":
		return &f.iss
	case "aud":
		return &f.aud
	case "scope":
		return &f.scope
	case "scp":
		return &f.scp
	case "client_id":
		return &f.clientID
	case "cid":
		return &f.cid
	case "sub":
		return &f.sub
	case "jti":
		return &f.jti
	case "token_type":
		return &f.tokenType
	}
	return nil
}

// introspectDecode reads body in one pass: exactly one JSON object,
// nothing after it, no member Remote reads given twice.
func introspectDecode(body []byte) (introspectFields, error) {
	var f introspectFields
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return f, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return f, errors.New("introspection response is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f, err
		}
		name, ok := tok.(string)
		if !ok {
			return f, errors.New("introspection response has a non-string member name")
		}
		dst := f.slot(name)
		if dst == nil {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return f, err
			}
			continue
		}
		if *dst != nil {
			return f, fmt.Errorf("introspection response has member %q twice", name)
		}
		if err := dec.Decode(dst); err != nil {
			return f, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return f, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return f, errors.New("introspection response has data after the JSON object")
	}
	return f, nil
}

// introspectVerdict turns a 200 body into a Principal, a *TokenError
// (inactive or unacceptable) or an *UnavailableError (malformed, from
// introspectFailure).
func (r *Remote) introspectVerdict(body []byte, now time.Time) (*Principal, error) {
	f, err := introspectDecode(body)
	if err != nil {
		return nil, introspectFailure("introspection response is not valid JSON", RemoteDefaultRetryAfter,
			&IntrospectionError{Kind: RemoteBadResponse, StatusCode: fasthttp.StatusOK, Err: err})
	}
	if !bytes.Equal(bytes.TrimSpace(f.active), []byte("true")) {
		return nil, Invalid(ReasonInactive)
	}
	p, reason, err := r.introspectPrincipal(&f, now)
	switch {
	case err != nil:
		return nil, introspectFailure("malformed introspection response", RemoteDefaultRetryAfter,
			&IntrospectionError{Kind: RemoteBadResponse, StatusCode: fasthttp.StatusOK, Err: err})
	case p == nil:
		return nil, Invalid(reason)
	}
	return p, nil
}

// introspectPrincipal checks the members of an active token's response.
// It returns a Principal; or no Principal and the reason the token is
// rejected; or an error when a member has the wrong type.
func (r *Remote) introspectPrincipal(f *introspectFields, now time.Time) (*Principal, Reason, error) {
	p := &Principal{Issuer: r.issuer}

	if introspectPresent(f.exp) {
		t, err := introspectNumericDate(f.exp)
		if err != nil {
			return nil, ReasonInvalid, fmt.Errorf("exp: %w", err)
		}
		if !t.After(now) {
			return nil, ReasonExpired, nil
		}
		p.ExpiresAt = t
	}
	if introspectPresent(f.iat) {
		t, err := introspectNumericDate(f.iat)
		if err != nil {
			return nil, ReasonInvalid, fmt.Errorf("iat: %w", err)
		}
		p.IssuedAt = t
	}
	if introspectPresent(f.iss) {
		iss, err := introspectString(f.iss)
		if err != nil {
			return nil, ReasonInvalid, fmt.Errorf("iss: %w", err)
		}
		if iss != r.issuer {
			return nil, ReasonIssuer, nil
		}
	}
	if introspectPresent(f.aud) {
		aud, err := introspectStrings(f.aud, false)
		if err != nil {
			return nil, ReasonInvalid, fmt.Errorf("aud: %w", err)
		}
		if r.requireAudience && (len(aud) == 0 || len(aud) == 1 && aud[0] == "") {
			return nil, ReasonAudienceMissing, nil
		}
		if !slices.Contains(aud, r.audience) {
			return nil, ReasonAudience, nil
		}
		p.Audience = aud
	} else if r.requireAudience {
		return nil, ReasonAudienceMissing, nil
	}
	if introspectPresent(f.tokenType) {
		tt, err := introspectString(f.tokenType)
		if err != nil {
			return nil, ReasonInvalid, fmt.Errorf("token_type: %w", err)
		}
		switch strings.ToLower(tt) {
		case "refresh_token", "id_token", "dpop",
			"urn:ietf:params:oauth:token-type:refresh_token",
			"urn:ietf:params:oauth:token-type:id_token":
			return nil, ReasonTokenType, nil
		}
	}

	var err error
	switch {
	case introspectPresent(f.scope):
		p.Scopes, err = introspectStrings(f.scope, true)
	case introspectPresent(f.scp):
		p.Scopes, err = introspectStrings(f.scp, true)
	}
	if err != nil {
		return nil, ReasonInvalid, fmt.Errorf("scope: %w", err)
	}

	for _, m := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"client_id", f.clientID, &p.ClientID},
		{"cid", f.cid, nil},
		{"sub", f.sub, &p.Subject},
		{"jti", f.jti, &p.TokenID},
	} {
		if !introspectPresent(m.raw) {
			continue
		}
		s, err := introspectString(m.raw)
		if err != nil {
			return nil, ReasonInvalid, fmt.Errorf("%s: %w", m.name, err)
		}
		switch {
		case m.dst != nil:
			*m.dst = s
		case p.ClientID == "": // cid only when client_id is absent
			p.ClientID = s
		}
	}
	if len(r.allowedClients) > 0 && !slices.Contains(r.allowedClients, p.ClientID) {
		return nil, ReasonClientNotAllowed, nil
	}
	return p, ReasonInvalid, nil
}

// introspectPresent reports whether a member is there and not null.
func introspectPresent(raw json.RawMessage) bool {
	return raw != nil && !bytes.Equal(raw, []byte("null"))
}

// introspectString decodes a JSON string (and nothing else).
func introspectString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// introspectStrings decodes a string or an array of strings. With split,
// a string is a space-separated list (RFC 6749 scope); otherwise it is one
// value (aud).
func introspectStrings(raw json.RawMessage, split bool) ([]string, error) {
	if len(raw) > 0 && raw[0] == '[' {
		var ss []string
		if err := json.Unmarshal(raw, &ss); err != nil {
			return nil, errors.New("not a string or an array of strings")
		}
		return ss, nil
	}
	s, err := introspectString(raw)
	if err != nil {
		return nil, errors.New("not a string or an array of strings")
	}
	if split {
		return splitScope(s), nil
	}
	return []string{s}, nil
}

// introspectNumericDate decodes a JSON number of seconds since the epoch
// (RFC 7519 NumericDate, fractions allowed). Strings are refused.
func introspectNumericDate(raw json.RawMessage) (time.Time, error) {
	s := string(raw)
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return time.Time{}, errors.New("not a number")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > introspectMaxSeconds || n < -introspectMaxSeconds {
			return time.Time{}, errors.New("out of range")
		}
		return time.Unix(n, 0), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v > introspectMaxSeconds || v < -introspectMaxSeconds {
		return time.Time{}, errors.New("not a number in range")
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// introspectMaxSeconds bounds NumericDates (year 9999 is 253402300799):
// far enough for any token, small enough that no conversion overflows.
const introspectMaxSeconds = 1 << 40
