package app

import (
	"net"

	"github.com/tokengate/tokengate/internal/lazydeadline"
)

// serveListener is what the fasthttp server accepts connections from: ln,
// with deadlines armed lazily.
//
// Why: fasthttp's server.go bounds a keep-alive connection by moving its
// deadlines on every request — IdleTimeout before it waits for the next
// request, ReadTimeout once that request's first byte is in, WriteTimeout
// before the response goes out. Each move is a runtime timer update under
// the poller's lock, about a microsecond of CPU per request on a cached
// GET /items, where a bare fasthttp server spends about fifteen. The other
// knobs do not replace them: without ReadTimeout a client may trickle a
// request forever (Slowloris), without IdleTimeout (which falls back to
// ReadTimeout) idle connections stay open for good, and TCP keep-alive only
// detects peers that are gone, not slow ones. MaxIdleWorkerDuration is about
// fasthttp's goroutines, not connections, and ReduceMemoryUsage trades CPU
// for memory the other way. Setting deadlines once per connection would
// bound a connection's whole life instead of each request.
//
// So the timeouts stay exactly as configured, and the connections make
// them cheap: a deadline that only moves later (nearly every move on a
// busy connection) is recorded and armed only if the earlier one fires
// first, which then costs one re-arm. A call still fails exactly when the
// deadline in force passes (package lazydeadline).
func serveListener(ln net.Listener) net.Listener {
	return lazydeadline.NewListener(ln, nil)
}
