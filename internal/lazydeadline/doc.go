// Package lazydeadline wraps a net.Listener so that its connections keep
// a server's read, write and idle timeouts by themselves, from their own
// I/O pattern, and arm their deadlines lazily; the server then sets none.
//
// fasthttp moves up to three deadlines per request on a keep-alive
// connection, each from a clock read: the idle timeout before it waits for
// the next request, the read timeout once its first byte arrives, the
// write timeout before the response goes out. A connection from this
// package sees the same moments in its own calls: a Read that follows a
// Write is the wait for the next request (Timeouts.Idle), the first bytes
// it returns begin the request (Timeouts.Read, until the response), the
// first Write after reads begins the response (Timeouts.Write, until the
// next request); a new connection's reads are bounded from accept by
// Timeouts.Read (under Timeouts.Handshake, a TLS handshake's flights
// included, until Handshaken). "Now" is a coarse clock, an atomic that a goroutine of
// the Listener updates once per Timeouts.Resolution until Close, so no
// request reads the clock. A deadline is that reading + the resolution +
// the timeout: never early, at most one resolution late (if the
// goroutine falls behind, a deadline that fires is checked against the
// clock's next reading, and late by up to that stall instead).
//
// Arming is lazy. On a busy connection nearly every move only puts a
// deadline a little later; the connection records such a move and leaves
// the armed (earlier) deadline in place, and when that one fires, the Read
// or Write that saw it arms the recorded one and carries on. A deadline
// that moves earlier, or that is the first, is armed at once. An owner's
// own SetDeadline, SetReadDeadline or SetWriteDeadline works as on any
// net.Conn (lazily too) and is in force until the next phase change in its
// direction: whoever sets last wins. Read and Write may run concurrently;
// the phase is an atomic.
//
// What it guarantees: an I/O call fails with the wrapped connection's
// timeout error exactly when the deadline in force for its direction has
// passed; a call is never cut off by a deadline that was moved later, and
// never outlives the one in force. A fired deadline is recognised by
// os.ErrDeadlineExceeded or by an error whose Timeout method says so
// (fasthttputil's in-memory pipes). What it costs: per request an atomic
// load of the clock and a mutex per phase change, one re-arm when an
// outdated deadline fires (on a busy connection about once per timeout
// period), and one clock read per resolution per listener.
package lazydeadline
