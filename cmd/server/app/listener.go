package app

import (
	"net"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/internal/lazydeadline"
)

// serveListener is what the fasthttp server accepts connections from
// outside gateway mode: ln, whose connections keep the read, write and idle
// timeouts t themselves, while the fasthttp.Server has none.
//
// Why: the timeouts must stay. Without a read timeout a client may trickle
// a request forever (Slowloris), without an idle timeout idle keep-alive
// connections stay open for good; TCP keep-alive only detects peers that
// are gone, not slow ones, and MaxIdleWorkerDuration is about fasthttp's
// goroutines, not connections. But fasthttp keeps them by reading the
// clock three times per keep-alive request (the idle deadline before it
// waits for the next request, the read deadline at its first byte, the
// write deadline before the response), about 53 ns each here, and moving a
// deadline each time: 2–4 % of tokengate's CPU per cached request under
// wrk (1.026x bare fasthttp's CPU per request on GET / with them, 0.986x
// without).
//
// What it guarantees: the same three bounds, from the connection's own I/O
// pattern (package lazydeadline): a new connection's reads end Read after
// accept; a read after a response waits Idle for the next request, whose
// first byte starts Read until the response; a response's writes end
// Write after its first. A timed-out read fails with
// os.ErrDeadlineExceeded, so a request cut mid-way still gets its 408
// (handlers' RequestError). Each timeout fires at most the listener's clock
// resolution (100 ms) late, never early. Under TLS the handshake is part
// of the first read phase (Timeouts.Handshake: its flights start no idle
// wait; handshaken ends it at the first request's first byte), so a
// client that stalls mid-handshake, or completes it and sends nothing, is
// cut Read after accept. Difference from fasthttp's own: the wait after a
// "100 Continue" counts as idle (Idle, then Read from the body's first
// byte), not as part of the request.
//
// What it costs: per request an atomic load of a coarse clock and a mutex
// per phase change, no clock read; deadlines are armed lazily, about once
// per timeout period on a busy connection; one goroutine per listener
// reads the clock every 100 ms until the listener is closed (Shutdown
// closes it, App.stop).
func serveListener(ln net.Listener, t lazydeadline.Timeouts) *lazydeadline.Listener {
	return lazydeadline.NewListener(ln, t)
}

// handshaken is the fasthttp.Server's ConnState under TLS: a request's
// first byte has arrived, so the connection's handshake is over.
func handshaken(c net.Conn, st fasthttp.ConnState) {
	if st == fasthttp.StateActive {
		lazydeadline.Handshaken(c)
	}
}

// serveTimeouts is the timeouts the served connections keep: the hook's
// (Options.timeouts, tests) when it sets any, else readTimeout,
// writeTimeout and idleTimeout.
func serveTimeouts(hook lazydeadline.Timeouts) lazydeadline.Timeouts {
	if hook.Read > 0 || hook.Write > 0 || hook.Idle > 0 {
		return hook
	}
	return lazydeadline.Timeouts{Read: readTimeout, Write: writeTimeout, Idle: idleTimeout}
}
