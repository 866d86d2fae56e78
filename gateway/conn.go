package gateway

import (
	"net"
	"sync"
	"time"
)

// idleConn is a net.Conn whose reads and writes each fail once the peer
// has stayed silent (or stopped reading) for idle: before every Read or
// Write without a deadline of its owner's, the deadline is pushed to
// now+idle. A deadline set explicitly (by fasthttp's keep-alive idle wait,
// say) wins until it is cleared. The deadline is moved only when it
// would move by more than idle/8, so that a busy stream does not reset a
// timer on every read: the effective bound lies between 7/8 and all of
// idle.
//
// A request header is not a stream: trickled a byte at a time it would
// hold the connection for idle per byte. So reads begin in a header phase
// whose deadline is fixed, not pushed: idle after accept for the first
// request, idle after the first read made without an explicit deadline
// once a response has been written (a keep-alive request's first byte,
// after fasthttp's idle wait) for the next ones. HeaderReceived ends it.
// fasthttp reads up to 8 KiB of a body of known length before it calls
// the handler, so that much of a body falls in the header phase too.
type idleConn struct {
	net.Conn
	idle   time.Duration
	served bool // accepted by NewIdleListener: a client's, with header phases
	r      readDeadline
	w      deadline
}

// deadline is one direction's state.
type deadline struct {
	mu       sync.Mutex // guards explicit and applied (and readDeadline's fields)
	explicit time.Time  // set by SetDeadline/SetReadDeadline/SetWriteDeadline; zero: none
	applied  time.Time  // the implicit deadline last applied; zero: none applied
}

// readDeadline is the read direction's state, with its header phase.
type readDeadline struct {
	deadline
	header    bool      // a request header is being received
	headerEnd time.Time // the header phase's deadline; zero: it begins at the next read
}

// NewIdleConn returns c, a connection the gateway dialled (to the
// upstream), with an idle timeout on reads and writes and no header
// phase: a response of any length streams for as long as it keeps
// moving. idle <= 0 returns c unchanged.
func NewIdleConn(c net.Conn, idle time.Duration) net.Conn {
	if idle <= 0 {
		return c
	}
	return newIdleConn(c, idle, false)
}

// newIdleConn wraps c; served (a client's connection, accepted) starts it
// in a header phase that ends idle from now.
func newIdleConn(c net.Conn, idle time.Duration, served bool) *idleConn {
	ic := &idleConn{Conn: c, idle: idle, served: served}
	if served {
		ic.r.header, ic.r.headerEnd = true, time.Now().Add(idle)
	}
	return ic
}

// HeaderReceived ends the header phase of c, a connection of
// NewIdleListener's or one wrapping such a connection
// through NetConn methods (a *tls.Conn): its reads go back to the idle
// timeout, so that a request body streams for as long as it keeps
// moving. The gateway-mode handler calls it first thing; the header phase
// begins again with the next request. Any other connection is left alone.
func HeaderReceived(c net.Conn) {
	for {
		switch cc := c.(type) {
		case *idleConn:
			cc.r.headerDone()
			return
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return
		}
	}
}

// push applies now+idle through set when d has no explicit deadline and
// the applied one is stale enough.
func (d *deadline) push(idle time.Duration, set func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pushLocked(idle, set)
}

func (d *deadline) pushLocked(idle time.Duration, set func(time.Time) error) error {
	if !d.explicit.IsZero() {
		return nil
	}
	next := time.Now().Add(idle)
	if !d.applied.IsZero() && next.Sub(d.applied) < idle/8 {
		return nil
	}
	d.applied = next
	return set(next)
}

// setExplicit records and applies an owner's deadline; zero hands the
// direction back to the idle timeout at its next use.
func (d *deadline) setExplicit(t time.Time, set func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.explicit, d.applied = t, time.Time{}
	return set(t)
}

// before applies the read deadline: an explicit one wins; in the header
// phase its fixed deadline (beginning it, if it has not begun); else the
// idle timeout.
func (d *readDeadline) before(idle time.Duration, set func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.header || !d.explicit.IsZero() {
		return d.pushLocked(idle, set)
	}
	if d.headerEnd.IsZero() {
		d.headerEnd = time.Now().Add(idle)
	}
	if d.applied.Equal(d.headerEnd) {
		return nil
	}
	d.applied = d.headerEnd
	return set(d.headerEnd)
}

// setExplicit is deadline.setExplicit; in the header phase it also moves
// the phase's beginning to the next read: fasthttp sets and clears a read
// deadline around its wait for a keep-alive request's first byte, and
// the header's time counts from that byte.
func (d *readDeadline) setExplicit(t time.Time, set func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.explicit, d.applied = t, time.Time{}
	if d.header {
		d.headerEnd = time.Time{}
	}
	return set(t)
}

// responded notes a write: after a response, the next read is the next
// request's.
func (d *readDeadline) responded() {
	d.mu.Lock()
	if !d.header {
		d.header, d.headerEnd = true, time.Time{}
	}
	d.mu.Unlock()
}

// headerDone ends the header phase; the next read applies the idle
// timeout.
func (d *readDeadline) headerDone() {
	d.mu.Lock()
	if d.header {
		d.header, d.headerEnd, d.applied = false, time.Time{}, time.Time{}
	}
	d.mu.Unlock()
}

// Read reads with the header or the idle timeout.
func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.r.before(c.idle, c.Conn.SetReadDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Write writes with the idle timeout.
func (c *idleConn) Write(p []byte) (int, error) {
	if c.served {
		c.r.responded()
	}
	if err := c.w.push(c.idle, c.Conn.SetWriteDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// SetDeadline sets both explicit deadlines.
func (c *idleConn) SetDeadline(t time.Time) error {
	return errorsJoin(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// SetReadDeadline sets the explicit read deadline.
func (c *idleConn) SetReadDeadline(t time.Time) error {
	return c.r.setExplicit(t, c.Conn.SetReadDeadline)
}

// SetWriteDeadline sets the explicit write deadline.
func (c *idleConn) SetWriteDeadline(t time.Time) error {
	return c.w.setExplicit(t, c.Conn.SetWriteDeadline)
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// idleListener wraps accepted connections in idleConns with header phases.
type idleListener struct {
	net.Listener
	idle time.Duration
}

// NewIdleListener returns ln whose accepted connections time out when the
// client stays silent, or stops reading, for idle; idle <= 0 returns ln
// unchanged. Gateway mode serves through it with the server's own read
// and write timeouts off, so that a long upload or download is bounded by
// silence rather than by its total duration, while a request header must
// arrive within idle of its first byte (of accept, for a connection's
// first request): see HeaderReceived.
func NewIdleListener(ln net.Listener, idle time.Duration) net.Listener {
	if idle <= 0 {
		return ln
	}
	return &idleListener{Listener: ln, idle: idle}
}

// Accept accepts the next connection, with the idle timeout.
func (l *idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newIdleConn(c, l.idle, true), nil
}
