package policy

import (
	"errors"
	"strconv"
	"time"

	"github.com/tokengate/tokengate/auth"
)

// MaxClaimValue is the longest header value AppendClaim renders, in bytes;
// a longer value is refused (ErrClaimTooLong) rather than cut.
const MaxClaimValue = 4096

// Errors of AppendClaim; test for them with errors.Is. On any of them the
// caller leaves the header out; ErrClaimUnsafe and ErrClaimTooLong deserve a
// log line (naming the claim and header, never the value).
var (
	// ErrClaimAbsent means the principal has no value for the claim (empty
	// string, empty list, zero time, or no principal).
	ErrClaimAbsent = errors.New("policy: claim absent")
	// ErrClaimUnsafe means the value holds a control byte (0x00–0x1f or
	// 0x7f, so CR, LF, NUL and tab too), starts or ends with a space, or is
	// a list with an empty element or an element containing a space.
	ErrClaimUnsafe = errors.New("policy: claim value unsafe in a header")
	// ErrClaimTooLong means the value is longer than MaxClaimValue.
	ErrClaimTooLong = errors.New("policy: claim value too long for a header")
)

// Claim is a principal's claim that a header can carry.
type Claim uint8

// The claims a policy file may name. The names in parentheses are what the
// file says; two names may render the same auth.Principal field.
const (
	ClaimSubject   Claim = iota + 1 // sub
	ClaimClientID                   // client_id or cid
	ClaimScope                      // scope or scp: the granted scopes, space-separated
	ClaimIssuer                     // iss
	ClaimAudience                   // aud: the audiences, space-separated
	ClaimTokenID                    // jti
	ClaimExpiresAt                  // exp: Unix seconds, in decimal
	ClaimIssuedAt                   // iat: Unix seconds, in decimal
)

// claimNames lists the names a policy file may use, for messages.
const claimNames = "sub, client_id, cid, scope, scp, iss, aud, jti, exp, iat"

// claimByName returns the claim a policy file names.
func claimByName(name string) (Claim, bool) {
	switch name {
	case "sub":
		return ClaimSubject, true
	case "client_id", "cid":
		return ClaimClientID, true
	case "scope", "scp":
		return ClaimScope, true
	case "iss":
		return ClaimIssuer, true
	case "aud":
		return ClaimAudience, true
	case "jti":
		return ClaimTokenID, true
	case "exp":
		return ClaimExpiresAt, true
	case "iat":
		return ClaimIssuedAt, true
	}
	return 0, false
}

// String returns the claim's canonical name (client_id for cid, scope for
// scp).
func (c Claim) String() string {
	switch c {
	case ClaimSubject:
		return "sub"
	case ClaimClientID:
		return "client_id"
	case ClaimScope:
		return "scope"
	case ClaimIssuer:
		return "iss"
	case ClaimAudience:
		return "aud"
	case ClaimTokenID:
		return "jti"
	case ClaimExpiresAt:
		return "exp"
	case ClaimIssuedAt:
		return "iat"
	}
	return "unknown"
}

// Header is one claim header: on an allowed request, header Name carries
// the principal's Claim.
type Header struct {
	Name  string // as written in the file
	Claim Claim
}

func defaultHeaders() []Header {
	return []Header{
		{Name: "X-Auth-Subject", Claim: ClaimSubject},
		{Name: "X-Auth-Client-Id", Claim: ClaimClientID},
		{Name: "X-Auth-Scopes", Claim: ClaimScope},
	}
}

// AppendClaim appends the header value of claim c for principal p to dst
// and returns the extended slice. Strings are copied as they are; lists
// (scope, aud) are joined with single spaces; times are Unix seconds.
//
// A value is refused, with dst returned unchanged, when it is absent
// (ErrClaimAbsent), when it could be read differently by the upstream
// (ErrClaimUnsafe: a control byte could split or smuggle a header, a
// surrounding space is trimmed by the upstream so " admin" would read as
// "admin", and a space inside a list element would read as two elements),
// or when it is longer than MaxClaimValue (ErrClaimTooLong). Bytes from 0x80
// (UTF-8) pass. AppendClaim allocates only when dst lacks capacity.
func AppendClaim(dst []byte, c Claim, p *auth.Principal) ([]byte, error) {
	if p == nil {
		return dst, ErrClaimAbsent
	}
	switch c {
	case ClaimSubject:
		return appendString(dst, p.Subject)
	case ClaimClientID:
		return appendString(dst, p.ClientID)
	case ClaimIssuer:
		return appendString(dst, p.Issuer)
	case ClaimTokenID:
		return appendString(dst, p.TokenID)
	case ClaimScope:
		return appendList(dst, p.Scopes)
	case ClaimAudience:
		return appendList(dst, p.Audience)
	case ClaimExpiresAt:
		return appendTime(dst, p.ExpiresAt)
	case ClaimIssuedAt:
		return appendTime(dst, p.IssuedAt)
	}
	return dst, ErrClaimAbsent
}

func appendString(dst []byte, s string) ([]byte, error) {
	switch {
	case s == "":
		return dst, ErrClaimAbsent
	case len(s) > MaxClaimValue:
		return dst, ErrClaimTooLong
	case s[0] == ' ' || s[len(s)-1] == ' ' || hasControl(s):
		return dst, ErrClaimUnsafe
	}
	return append(dst, s...), nil
}

func appendList(dst []byte, list []string) ([]byte, error) {
	if len(list) == 0 {
		return dst, ErrClaimAbsent
	}
	n := len(list) - 1
	for _, s := range list {
		if s == "" || hasControl(s) || hasSpace(s) {
			return dst, ErrClaimUnsafe
		}
		n += len(s)
	}
	if n > MaxClaimValue {
		return dst, ErrClaimTooLong
	}
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, s...)
	}
	return dst, nil
}

func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return dst, ErrClaimAbsent
	}
	return strconv.AppendInt(dst, t.Unix(), 10), nil
}

func hasControl(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func hasSpace(s string) bool {
	for i := range len(s) {
		if s[i] == ' ' {
			return true
		}
	}
	return false
}
