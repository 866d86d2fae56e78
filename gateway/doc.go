// Package gateway forwards the requests that tokengate has allowed to the
// one upstream service it guards (gateway mode, UPSTREAM_URL): over a
// pooled fasthttp client, with the policy's claim headers set after every
// client-sent copy is removed (in any case, and spelled with '_' for
// '-'), hop-by-hop headers removed (RFC 9110 section 7.6.1 and whatever
// Connection names), X-Forwarded-For, -Proto and -Host set (and
// Forwarded, X-Real-IP and True-Client-IP removed unless a trusted proxy
// sent them), the path forwarded in the normal form the policy matched
// (policy.Normalize: dot segments resolved, slashes merged, unreserved
// escapes decoded) and the query byte for byte as received, and bodies
// streamed both ways so that memory stays bounded whatever their size. An
// upstream that refuses is 502, one that stays silent longer than the
// timeout is 504; a client whose body stops coming is 408 (silent) or 400
// (gone), never counted as the upstream's failure.
//
// It decides nothing and knows no JWT: the caller (handlers.Server.Decide)
// has already allowed the request and hands over its principal, whose
// claims package policy renders. Protocol upgrades (WebSocket) are refused
// with 501, but an offer of h2c alone, or any in an HTTP/1.0 request, is
// ignored (RFC 9110 section 7.8) and the request forwarded without it.
package gateway
