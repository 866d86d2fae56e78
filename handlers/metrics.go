package handlers

import (
	"sync/atomic"
	"unsafe"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/promtext"
	"github.com/valyala/fasthttp"
)

// GET /metrics answers in the Prometheus text exposition format, version
// 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/),
// without authentication, like /healthz. The handlers write their own
// series (tokengate_requests_total, then tokengate_rejections_total), then
// Config.Metrics appends the rest.
// Every family is written through internal/promtext, in a fixed order.

// MetricsContentType is the Content-Type of GET /metrics.
const MetricsContentType = promtext.ContentType

// maxPooledMetricsBuf is the largest rendering buffer kept for the next
// scrape; a larger one (a hook gone wild) is left to the collector.
const maxPooledMetricsBuf = 1 << 20

// outcome is the result of the bearer-token check on a protected route.
type outcome uint8

// The outcomes, in exposition order. writeAuthError decides each failure's
// outcome where it decides its status.
const (
	outcomeAuthorized        outcome = iota // the token passed: the route's handler ran
	outcomeNoToken                          // 401, no bearer token
	outcomeInvalidToken                     // 401, error="invalid_token"
	outcomeInsufficientScope                // 403, error="insufficient_scope"
	outcomeUnavailable                      // 503, the token could not be checked now
	outcomeError                            // 500, the check failed unexpectedly
	outcomePublic                           // decision endpoints: 200, the matched rule is public
	outcomeDenied                           // decision endpoints: 403, the matched rule refuses the request or the token's issuer
	outcomeBadRequest                       // decision endpoints: 400, the original request could not be read
	outcomeUntrustedPeer                    // decision endpoints: 403, the peer is not in TrustedProxies
	outcomeInvalidRequest                   // 400, error="invalid_request": ambiguous credentials
	numOutcomes
)

// outcomeNames are the label values of tokengate_requests_total.
var outcomeNames = [numOutcomes]string{
	outcomeAuthorized:        "authorized",
	outcomeNoToken:           "no_token",
	outcomeInvalidToken:      "invalid_token",
	outcomeInsufficientScope: "insufficient_scope",
	outcomeUnavailable:       "unavailable",
	outcomeError:             "error",
	outcomePublic:            "public",
	outcomeDenied:            "denied",
	outcomeBadRequest:        "bad_request",
	outcomeUntrustedPeer:     "untrusted_peer",
	outcomeInvalidRequest:    "invalid_request",
}

// counterShardBits is log2 of the number of counter shards.
const counterShardBits = 6

// counterShard counts outcomes for the requests that hash to it. The
// padding keeps shards on separate cache lines (128 bytes: adjacent-line
// prefetch pairs 64-byte lines), so that cores counting requests on
// different connections do not fight over one line.
type counterShard struct {
	n [numOutcomes]atomic.Uint64
	_ [128 - numOutcomes*8]byte
}

// requestCounters counts the outcomes of protected requests without a
// lock and without one counter that every core writes: an increment goes
// to the shard of the request's RequestCtx, a read sums the shards.
type requestCounters struct {
	_      [128]byte // keeps the shards off the cache lines of the fields before
	shards [1 << counterShardBits]counterShard
}

// inc counts one request with outcome o. It allocates nothing.
func (c *requestCounters) inc(ctx *fasthttp.RequestCtx, o outcome) {
	c.shards[shardOf(ctx)].n[o].Add(1)
}

// load returns the total for outcome o.
func (c *requestCounters) load(o outcome) uint64 {
	var sum uint64
	for i := range c.shards {
		sum += c.shards[i].n[o].Load()
	}
	return sum
}

// shardOf picks a counter shard from the address of ctx. fasthttp serves
// each connection with a RequestCtx of its own, reused for every request
// on it, so requests served at the same time on different cores mostly
// land on different shards, and one connection keeps to one shard. The
// address is only hashed, never turned back into a pointer; Go's heap
// does not move objects, and if it did only the spread would suffer.
func shardOf(ctx *fasthttp.RequestCtx) uint64 {
	p := uint64(uintptr(unsafe.Pointer(ctx)))
	return (p * 0x9e3779b97f4a7c15) >> (64 - counterShardBits) // Fibonacci hashing
}

// rejectionShard counts the reasons of the invalid_token rejections of
// the requests that hash to it, padded like counterShard.
type rejectionShard struct {
	n [auth.NumReasons]atomic.Uint64
	_ [(128 - int(auth.NumReasons)*8%128) % 128]byte
}

// rejectionCounters counts 401 invalid_token rejections by auth.Reason,
// sharded like requestCounters (the same shardOf), so that a flood of bad
// tokens does not make every core write one cache line.
type rejectionCounters struct {
	_      [128]byte // keeps the shards off the cache lines of the fields before
	shards [1 << counterShardBits]rejectionShard
}

// inc counts one rejection for reason r; a value at or above
// auth.NumReasons counts as auth.ReasonInvalid, as its description reads.
// It allocates nothing.
func (c *rejectionCounters) inc(ctx *fasthttp.RequestCtx, r auth.Reason) {
	if r >= auth.NumReasons {
		r = auth.ReasonInvalid
	}
	c.shards[shardOf(ctx)].n[r].Add(1)
}

// load returns the total for reason r.
func (c *rejectionCounters) load(r auth.Reason) uint64 {
	var sum uint64
	for i := range c.shards {
		sum += c.shards[i].n[r].Load()
	}
	return sum
}

// appendMetrics appends the tokengate_rejections_total family, one series
// per auth.Reason in Reason order, zeros included, labelled with the
// reason's String.
func (c *rejectionCounters) appendMetrics(dst []byte) []byte {
	const name = "tokengate_rejections_total"
	dst = promtext.AppendHeader(dst, name, promtext.Counter,
		"Requests to protected routes refused with 401 invalid_token, by the reason the token was rejected.")
	for r := range auth.NumReasons {
		dst = promtext.AppendUintSample(dst, name, c.load(r), "reason", r.String())
	}
	return dst
}

// serveMetrics answers GET /metrics, rendering into a pooled buffer.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) {
	bp := s.metricsBufs.Get().(*[]byte)
	b := s.appendMetrics((*bp)[:0])
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType(MetricsContentType)
	ctx.Response.Header.Set(headerCacheControl, "no-store")
	ctx.Response.SetBody(b) // copies: the buffer goes back to the pool
	if cap(b) <= maxPooledMetricsBuf {
		*bp = b
		s.metricsBufs.Put(bp)
	}
}

// appendMetrics appends the handlers' series, then Config.Metrics's.
func (s *Server) appendMetrics(dst []byte) []byte {
	dst = s.requests.appendMetrics(dst)
	dst = s.rejections.appendMetrics(dst)
	if s.cfg.Metrics != nil {
		dst = s.cfg.Metrics(dst)
	}
	return dst
}

// appendMetrics appends the tokengate_requests_total family, one series
// per outcome, zeros included.
func (c *requestCounters) appendMetrics(dst []byte) []byte {
	const name = "tokengate_requests_total"
	dst = promtext.AppendHeader(dst, name, promtext.Counter,
		"Requests to protected routes and decision endpoints, by the outcome of the check (authorized: the route's handler ran or the decision allowed a token).")
	for o := range numOutcomes {
		dst = promtext.AppendUintSample(dst, name, c.load(o), "outcome", outcomeNames[o])
	}
	return dst
}
