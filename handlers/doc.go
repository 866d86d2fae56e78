// Package handlers is tokengate's HTTP face: the fasthttp handlers, the
// router, the bearer-token middleware with its RFC 6750 error responses,
// the /token client-credentials proxy, the health and readiness probes, and
// GET /metrics (the Prometheus text format, written by hand: its own
// request counters, then whatever Config.Metrics appends).
//
// It decides nothing about tokens itself: the middleware hands the raw
// bearer token to an auth.Validator (usually a cache in front of a local,
// remote or hybrid validator) and maps the result to a status code in one
// place (Server.writeAuthError). It never sees JWT internals, and tokens
// and client secrets never reach its logs (auth.Fingerprint identifies a
// token where one must be named). A request that carries a token already
// in the validator's cache is served without allocating; served from a
// Listener, a connection that repeats its last token skips the cache's
// hash and lookup too (authcache.Memo).
package handlers
