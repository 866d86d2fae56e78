// Package devissuer is a small OAuth 2.0 authorization server shaped like
// an Okta custom authorization server, for development, tests and load
// tests. `tokengate --dev` runs it in-process so that nobody needs an
// account anywhere.
//
// It serves, under the issuer http://127.0.0.1:PORT/oauth2/default (or
// https:// with Config.TLS):
//
//   - {issuer}/.well-known/oauth-authorization-server (RFC 8414; also at
//     /.well-known/oauth-authorization-server/oauth2/default) and
//     {issuer}/.well-known/openid-configuration;
//   - {issuer}/v1/keys, the JWKS (public keys only, with Cache-Control);
//   - {issuer}/v1/token, the client-credentials grant (RFC 6749 4.4) with
//     client_secret_basic or client_secret_post;
//   - {issuer}/v1/introspect (RFC 7662) and {issuer}/v1/revoke (RFC 7009),
//     both requiring client authentication.
//
// Access tokens are JWS compact JWTs with Okta's claims (ver, jti, iss,
// aud, iat, exp, cid, scp, sub), signed with RS256 (2048-bit key) by
// default, or ES256, EdDSA and the other algorithms listed at
// Config.Algorithm.
//
// For tests it adds what a real server cannot offer: Mint signs tokens with
// arbitrary claims and headers (including deliberately broken ones), keys
// rotate and disappear on demand (RotateKey, RemoveKey), every endpoint
// counts its requests (Counts) and can be made slow, failing or silent
// (SetFault), and the listener can be stopped and restarted on the same
// port (Stop, Restart).
//
// devissuer listens on loopback addresses only and never logs secrets or
// tokens: a token appears in a log line, where at all, as the first 8 hex
// characters of its SHA-256. It is not an authorization server for
// production: there is no persistence, no user login and no rate limiting.
// No production package of tokengate but cmd/server imports it, and it
// imports no other tokengate package.
package devissuer
