// Package auth decides whether an OAuth 2.0 bearer access token is good.
//
// It owns the Validator contract, the Principal a valid token yields, the
// typed errors that separate "the token is bad" (ErrInvalidToken, a 401)
// from "we could not check" (ErrUnavailable, a 503), the one vocabulary of
// rejection reasons (Reason, with a sentinel per reason) that every
// validator shares, bearer-header parsing,
// authorization-server discovery, the JWKS KeySet, the local (JWT signature)
// validator and the remote (RFC 7662 introspection) validator.
//
// auth knows nothing of HTTP servers, routes or caching: the handlers
// package speaks to it only through Validator and Principal, and the
// authcache package wraps any Validator. Token bytes are never logged; use
// Fingerprint where a token must be identified in a log line.
package auth
