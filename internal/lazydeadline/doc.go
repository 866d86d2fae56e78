// Package lazydeadline wraps a net.Listener so that its connections arm
// deadlines lazily, for servers that move them on every request.
//
// fasthttp sets up to three deadlines per request on a keep-alive
// connection: the idle timeout before it waits for the next request, the
// read timeout once its first byte arrives, the write timeout before the
// response goes out. Each is a runtime timer update under the poller's
// lock, and on a busy connection nearly every one of them only moves a
// deadline a few microseconds later. A connection from this package
// records such a move and leaves the armed (earlier) deadline in place;
// when that earlier deadline fires, the Read or Write that saw it arms the
// recorded one and carries on. A deadline that moves earlier, or that is
// the first, is armed at once.
//
// What it guarantees: an I/O call fails with the wrapped connection's
// timeout error exactly when the last deadline set for its direction has
// passed; a call is never cut off by a deadline that was moved later, and
// never outlives the one in force. A fired deadline is recognised by
// os.ErrDeadlineExceeded or by an error whose Timeout method says so
// (fasthttputil's in-memory pipes). What it costs: a
// mutex per deadline set, and one re-arm when an outdated deadline fires,
// which on a busy connection happens about once per timeout period.
package lazydeadline
