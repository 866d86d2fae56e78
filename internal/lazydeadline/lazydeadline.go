package lazydeadline

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Listener wraps a net.Listener; every connection it accepts is a *Conn.
type Listener struct {
	net.Listener
	now func() time.Time
}

// NewListener wraps ln. now is the clock that decides whether a fired
// deadline is the one in force (nil: time.Now); it must be the clock the
// deadlines are computed from.
func NewListener(ln net.Listener, now func() time.Time) *Listener {
	if now == nil {
		now = time.Now
	}
	return &Listener{Listener: ln, now: now}
}

// Accept waits for the next connection and wraps it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c, l.now), nil
}

// Conn is a net.Conn whose read and write deadlines are armed lazily (see
// the package comment). It is safe for concurrent use as net.Conn is: a
// deadline may be set while a Read or Write is blocked.
type Conn struct {
	net.Conn
	now func() time.Time
	rd  lazy // the read deadline
	wd  lazy // the write deadline
}

// NewConn wraps c; now is as for NewListener.
func NewConn(c net.Conn, now func() time.Time) *Conn {
	if now == nil {
		now = time.Now
	}
	return &Conn{Conn: c, now: now}
}

// lazy is one direction's deadline: the one in force and the one armed on
// the wrapped connection. The armed one is never later than the one in
// force, and never missing while one is in force.
type lazy struct {
	mu    sync.Mutex // guards want, armed, and arming the wrapped connection
	want  time.Time  // the deadline in force; zero: none
	armed time.Time  // the deadline armed on the wrapped connection; zero: none
}

// set puts t in force and arms it unless the armed deadline fires no
// later than t would.
func (d *lazy) set(t time.Time, arm func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.want = t
	if !d.armed.IsZero() && (t.IsZero() || !t.Before(d.armed)) {
		// The armed deadline comes first; when it fires, refresh arms t.
		return nil
	}
	if d.armed.Equal(t) {
		return nil // none armed, none wanted
	}
	if err := arm(t); err != nil {
		return err
	}
	d.armed = t
	return nil
}

// refresh is called when an I/O call failed because the armed deadline
// passed at now. It reports whether the deadline in force is still ahead,
// having armed it; false means the failure stands.
func (d *lazy) refresh(now time.Time, arm func(time.Time) error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.want.IsZero() && !now.Before(d.want) {
		return false
	}
	if d.want.Equal(d.armed) {
		// What fired is what is in force (a deadline set while the call
		// was failing): the failure stands.
		return false
	}
	if err := arm(d.want); err != nil {
		return false
	}
	d.armed = d.want
	return true
}

// SetReadDeadline puts t in force for reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.rd.set(t, c.Conn.SetReadDeadline) }

// SetWriteDeadline puts t in force for writes.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.wd.set(t, c.Conn.SetWriteDeadline) }

// SetDeadline puts t in force for reads and writes.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// Read reads from the wrapped connection. When an outdated armed deadline
// fires, it arms the one in force and reads again.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 || !isTimeout(err) || !c.rd.refresh(c.now(), c.Conn.SetReadDeadline) {
			return n, err
		}
	}
}

// Write writes to the wrapped connection. When an outdated armed deadline
// fires, it arms the one in force and writes the rest.
func (c *Conn) Write(p []byte) (int, error) {
	var done int
	for {
		n, err := c.Conn.Write(p[done:])
		done += n
		if !isTimeout(err) || !c.wd.refresh(c.now(), c.Conn.SetWriteDeadline) {
			return done, err
		}
	}
}

// timeouter is what a timeout error says about itself (net.Error's
// Timeout, without Temporary, which fasthttputil's pipes lack).
type timeouter interface{ Timeout() bool }

// isTimeout reports whether err may be a deadline that fired: one that
// wraps os.ErrDeadlineExceeded, as net.Conn promises, or one that says it
// timed out, as connections outside the standard library return
// (fasthttputil's in-memory pipes). A timeout for another reason costs a
// refresh that finds nothing to arm, or one retry.
func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var te timeouter
	return errors.As(err, &te) && te.Timeout()
}
