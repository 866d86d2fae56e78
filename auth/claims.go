package auth

import (
	"errors"
	"strings"

	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// accessTokenClaims is the claim set of a JWT access token that tokengate
// reads: the registered claims plus Okta's (cid, scp), RFC 9068's
// (client_id, scope) and RFC 7800's cnf. It is decoded once, through go-jose's JSON package
// (case-sensitive names, duplicate names rejected).
type accessTokenClaims struct {
	jwt.Claims
	Scp      scpClaim   `json:"scp,omitempty"`
	Scope    scopeClaim `json:"scope,omitempty"`
	Cid      string     `json:"cid,omitempty"`
	ClientID string     `json:"client_id,omitempty"`
	// Cnf is the RFC 7800 confirmation claim of a sender-constrained
	// token (RFC 9449 DPoP "jkt", RFC 8705 mutual TLS "x5t#S256"): any
	// value but null binds the token to a key whose possession tokengate
	// cannot check.
	Cnf josejson.RawMessage `json:"cnf,omitempty"`
}

// scopes returns the granted scopes: scp when present, else scope.
func (c *accessTokenClaims) scopes() []string {
	if c.Scp != nil {
		return []string(c.Scp)
	}
	return []string(c.Scope)
}

// splitScope splits an RFC 6749 section 3.3 scope string. The delimiter
// is the space character alone: other white space (a tab, U+00A0, ...) is
// part of a scope-token, so that "read\u00a0items" never grants "items".
func splitScope(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' })
}

// scopeClaim is RFC 9068's "scope": a space-separated string (RFC 6749
// section 3.3), or, as some servers write it (PingFederate), a JSON array
// of strings, read as introspection answers are read (Remote). null
// leaves the claim absent, and so does an empty string.
type scopeClaim []string

// UnmarshalJSON accepts a space-separated string or an array of strings.
func (s *scopeClaim) UnmarshalJSON(b []byte) error {
	v, err := decodeScopes(b, "scope")
	*s = v
	return err
}

// scpClaim is Okta's "scp": a JSON array of strings, or one
// space-separated string.
type scpClaim []string

// UnmarshalJSON accepts an array of strings or a space-separated string.
// null leaves the claim absent; any other value, "" included, makes it
// present (so that it wins over scope).
func (s *scpClaim) UnmarshalJSON(b []byte) error {
	v, err := decodeScopes(b, "scp")
	if v == nil && err == nil && string(b) != "null" {
		v = []string{}
	}
	*s = v
	return err
}

// decodeScopes decodes the JSON value b of the scope claim named name: a
// string split on spaces (nil when it holds none), an array of strings
// (never nil), or null (nil).
func decodeScopes(b []byte, name string) ([]string, error) {
	if string(b) == "null" {
		return nil, nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := josejson.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		return splitScope(v), nil
	}
	var v []string
	if err := josejson.Unmarshal(b, &v); err != nil {
		return nil, errors.New(name + " is neither a string nor an array of strings")
	}
	if v == nil {
		v = []string{}
	}
	return v, nil
}
