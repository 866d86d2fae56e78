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
type idleConn struct {
	net.Conn
	idle time.Duration
	r, w deadline
}

// deadline is one direction's state.
type deadline struct {
	mu       sync.Mutex // guards explicit and applied
	explicit time.Time  // set by SetDeadline/SetReadDeadline/SetWriteDeadline; zero: none
	applied  time.Time  // the implicit deadline last applied; zero: none applied
}

// NewIdleConn returns c with an idle timeout on reads and writes; idle
// <= 0 returns c unchanged.
func NewIdleConn(c net.Conn, idle time.Duration) net.Conn {
	if idle <= 0 {
		return c
	}
	return &idleConn{Conn: c, idle: idle}
}

// push applies now+idle through set when d has no explicit deadline and
// the applied one is stale enough.
func (d *deadline) push(idle time.Duration, set func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
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

// Read reads with the idle timeout.
func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.r.push(c.idle, c.Conn.SetReadDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Write writes with the idle timeout.
func (c *idleConn) Write(p []byte) (int, error) {
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

// idleListener wraps accepted connections in NewIdleConn.
type idleListener struct {
	net.Listener
	idle time.Duration
}

// NewIdleListener returns ln whose accepted connections time out when the
// client stays silent, or stops reading, for idle; idle <= 0 returns ln
// unchanged. Gateway mode serves through it with the server's own read
// and write timeouts off, so that a long upload or download is bounded by
// silence rather than by its total duration.
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
	return &idleConn{Conn: c, idle: l.idle}, nil
}
