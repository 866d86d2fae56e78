package auth

import "errors"

// Reason says why a token was rejected. Every validator in this package
// (Local, Remote, Hybrid) draws its reasons from this one bounded set, so
// that the same fault has the same Reason, the same sentinel error and the
// same client-visible text whichever validator found it.
//
// String returns the metric label ("expired"), Description the text that
// is safe to send to the client as an RFC 6750 error_description ("token
// expired"). Reasons run from 0 to NumReasons-1, so a counter per reason
// can be an array indexed by Reason.
type Reason uint8

// The reasons for rejecting a token. New reasons are added before
// NumReasons; existing values never change meaning.
const (
	// ReasonInvalid is the zero value: the token is bad and no more
	// specific reason was given.
	ReasonInvalid Reason = iota
	// ReasonEmpty: the bearer token is empty.
	ReasonEmpty
	// ReasonTooLarge: the token is longer than the configured limit.
	ReasonTooLarge
	// ReasonInvalidCharacters: the token has bytes outside printable ASCII
	// (Remote refuses to send it).
	ReasonInvalidCharacters
	// ReasonMalformed: the token is not a compact JWS (wrong segment
	// count, bytes outside base64url, a header that does not decode).
	ReasonMalformed
	// ReasonEncrypted: the token is a JWE (five segments).
	ReasonEncrypted
	// ReasonAlgorithm: the header names an algorithm outside the
	// allow-list ("none" and HS* never pass).
	ReasonAlgorithm
	// ReasonEmbeddedKey: the header carries a key ("jwk").
	ReasonEmbeddedKey
	// ReasonKeyURL: the header names a key URL ("jku", "x5u").
	ReasonKeyURL
	// ReasonCrit: the header lists critical extensions ("crit").
	ReasonCrit
	// ReasonTokenType: the token is not an access token of an accepted
	// type (Local with RequireATJWT: "typ" is not "at+jwt"; Remote: the
	// token_type names a refresh token, an ID token or a DPoP-bound token;
	// either: a "cnf" binds the token to a key whose possession tokengate
	// does not check).
	ReasonTokenType
	// ReasonUnknownKey: the token names a key the issuer does not publish.
	ReasonUnknownKey
	// ReasonKeyAlgorithm: the token's algorithm does not match its key.
	ReasonKeyAlgorithm
	// ReasonNoKeyID: the token has no "kid" and the key set holds more
	// than one key (of any type).
	ReasonNoKeyID
	// ReasonSignature: the signature does not verify.
	ReasonSignature
	// ReasonClaims: the claim set is not a JSON object of the expected
	// member types (duplicate names included).
	ReasonClaims
	// ReasonIssuer: "iss" is not the configured issuer.
	ReasonIssuer
	// ReasonAudience: "aud" does not contain the configured audience.
	ReasonAudience
	// ReasonAudienceMissing: an introspection answer carries no "aud"
	// although RemoteConfig.RequireAudience demands one.
	ReasonAudienceMissing
	// ReasonExpiryMissing: a JWT has no "exp".
	ReasonExpiryMissing
	// ReasonExpired: "exp" has passed.
	ReasonExpired
	// ReasonNotYetValid: "nbf" is in the future.
	ReasonNotYetValid
	// ReasonIssuedInFuture: "iat" is in the future.
	ReasonIssuedInFuture
	// ReasonClientNotAllowed: the token's client is not in the allow-list.
	ReasonClientNotAllowed
	// ReasonClientConflict: "cid" and "client_id" name different clients.
	ReasonClientConflict
	// ReasonInactive: the authorization server says the token is not
	// active (revoked, expired, or unknown to it).
	ReasonInactive

	// NumReasons is the number of reasons: every Reason is below it.
	NumReasons
)

// String returns the reason's metric label in snake_case ("expired"), or
// "unknown" for a value at or above NumReasons.
func (r Reason) String() string {
	label, _ := r.names()
	return label
}

// Description returns the reason's short, fixed text, safe to send to the
// client (RFC 6750 error_description): it never contains token bytes or
// claim values. A value at or above NumReasons reads "invalid token".
func (r Reason) Description() string {
	_, desc := r.names()
	return desc
}

// names returns the label and the description of r. A switch, not a
// table, so that no package-level variable holds them.
func (r Reason) names() (label, description string) {
	switch r {
	case ReasonInvalid:
		return "invalid", "invalid token"
	case ReasonEmpty:
		return "empty", "empty bearer token"
	case ReasonTooLarge:
		return "too_large", "token too large"
	case ReasonInvalidCharacters:
		return "invalid_characters", "token contains invalid characters"
	case ReasonMalformed:
		return "malformed", "malformed token"
	case ReasonEncrypted:
		return "encrypted", "encrypted tokens are not accepted"
	case ReasonAlgorithm:
		return "algorithm", "signing algorithm not allowed"
	case ReasonEmbeddedKey:
		return "embedded_key", "embedded keys are not accepted"
	case ReasonKeyURL:
		return "key_url", "key URLs are not accepted"
	case ReasonCrit:
		return "crit", "critical header not supported"
	case ReasonTokenType:
		return "token_type", "token type not accepted"
	case ReasonUnknownKey:
		return "unknown_key", "unknown signing key"
	case ReasonKeyAlgorithm:
		return "key_algorithm", "algorithm does not match signing key"
	case ReasonNoKeyID:
		return "no_key_id", "token has no key id"
	case ReasonSignature:
		return "signature", "signature invalid"
	case ReasonClaims:
		return "claims_malformed", "malformed claims"
	case ReasonIssuer:
		return "issuer", "issuer mismatch"
	case ReasonAudience:
		return "audience", "audience mismatch"
	case ReasonAudienceMissing:
		return "audience_missing", "audience missing"
	case ReasonExpiryMissing:
		return "expiry_missing", "expiry missing"
	case ReasonExpired:
		return "expired", "token expired"
	case ReasonNotYetValid:
		return "not_yet_valid", "token not yet valid"
	case ReasonIssuedInFuture:
		return "issued_in_future", "token issued in the future"
	case ReasonClientNotAllowed:
		return "client_not_allowed", "client not allowed"
	case ReasonClientConflict:
		return "client_conflict", "conflicting client claims"
	case ReasonInactive:
		return "inactive", "token is not active"
	}
	return "unknown", "invalid token"
}

// Sentinel errors, one per Reason; test for them with errors.Is. Every
// *TokenError matches the sentinel of its Reason (and ErrInvalidToken),
// whichever validator returned it and however it was wrapped; each
// sentinel also matches ErrInvalidToken.
var (
	ErrEmptyToken        error = reasonError(ReasonEmpty)
	ErrTokenTooLarge     error = reasonError(ReasonTooLarge)
	ErrInvalidCharacters error = reasonError(ReasonInvalidCharacters)
	ErrMalformed         error = reasonError(ReasonMalformed)
	ErrEncrypted         error = reasonError(ReasonEncrypted)
	ErrAlgorithm         error = reasonError(ReasonAlgorithm)
	ErrEmbeddedKey       error = reasonError(ReasonEmbeddedKey)
	ErrKeyURL            error = reasonError(ReasonKeyURL)
	ErrCrit              error = reasonError(ReasonCrit)
	ErrTokenType         error = reasonError(ReasonTokenType)
	ErrUnknownKey        error = reasonError(ReasonUnknownKey)
	ErrKeyAlgorithm      error = reasonError(ReasonKeyAlgorithm)
	ErrNoKeyID           error = reasonError(ReasonNoKeyID)
	ErrSignature         error = reasonError(ReasonSignature)
	ErrClaims            error = reasonError(ReasonClaims)
	ErrIssuer            error = reasonError(ReasonIssuer)
	ErrAudience          error = reasonError(ReasonAudience)
	ErrAudienceMissing   error = reasonError(ReasonAudienceMissing)
	ErrExpiryMissing     error = reasonError(ReasonExpiryMissing)
	ErrExpired           error = reasonError(ReasonExpired)
	ErrNotYetValid       error = reasonError(ReasonNotYetValid)
	ErrIssuedInFuture    error = reasonError(ReasonIssuedInFuture)
	ErrClientNotAllowed  error = reasonError(ReasonClientNotAllowed)
	ErrClientConflict    error = reasonError(ReasonClientConflict)
	ErrInactive          error = reasonError(ReasonInactive)
)

// reasonError is the type of the per-reason sentinels. It is a value, not
// a pointer, so a sentinel cannot be changed through the variable's
// contents, and comparing against one does not allocate.
type reasonError Reason

func (e reasonError) Error() string { return "auth: invalid token: " + Reason(e).Description() }

// Is makes every sentinel match ErrInvalidToken.
func (e reasonError) Is(target error) bool { return target == ErrInvalidToken }

// ReasonOf returns the Reason of the first *TokenError (or reason
// sentinel) in err's chain, and false when there is none (err is nil, or
// is not about a bad token). It does not allocate, so request paths may
// call it to count rejections.
func ReasonOf(err error) (Reason, bool) {
	if te, ok := errors.AsType[*TokenError](err); ok {
		return te.Reason, true
	}
	if s, ok := errors.AsType[reasonError](err); ok {
		return Reason(s), true
	}
	return ReasonInvalid, false
}
