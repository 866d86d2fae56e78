package lazydeadline

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultResolution is how often a Listener's clock ticks when
// Timeouts.Resolution is zero.
const DefaultResolution = 100 * time.Millisecond

// Timeouts are the bounds a Listener's connections keep by themselves, with
// fasthttp.Server's meaning. A zero or negative duration is no bound, as in
// fasthttp.
type Timeouts struct {
	// Read bounds reading a request: on a new connection from accept
	// (the wait for the first byte and the whole first request), on a
	// keep-alive one from the request's first byte until the response
	// begins.
	Read time.Duration
	// Write bounds writing a response, from its first write until the
	// next request.
	Write time.Duration
	// Idle bounds a keep-alive connection's wait for the next request
	// once a response has gone out; zero means Read, as in fasthttp.
	Idle time.Duration

	// Resolution is how often the listener's clock reads Now: a deadline
	// is the last reading + Resolution + the timeout, so a timeout fires
	// up to one Resolution late, and never early: when the clock's
	// goroutine fell behind (a stalled process), a deadline that fires is
	// moved to the timeout after the clock's next reading, so it is late
	// by up to the stall. Zero or negative: DefaultResolution.
	Resolution time.Duration
	// Handshake says that the connections begin with a handshake (TLS
	// served over them), whose flights are part of the first read phase,
	// as with fasthttp's own ReadTimeout: until Handshaken is called on a
	// connection, its writes do not end that phase, so the handshake and
	// the first request are read under Read from accept (not Idle after
	// the server's flight), and the handshake is written under Write from
	// accept.
	Handshake bool
	// Now is the clock (nil: time.Now). It is read once per Resolution,
	// when an armed deadline fires, and after the listener is closed
	// (see Listener.Close).
	Now func() time.Time
}

// Listener wraps a net.Listener; the connections it accepts arm their
// deadlines lazily and keep Timeouts by themselves (see the package
// comment). Its clock's goroutine runs until Close.
type Listener struct {
	net.Listener
	read, write, idle time.Duration // after defaults; <= 0: no bound
	res               time.Duration // the clock's resolution
	clock             *clock        // nil when there are no timeouts to keep
	now               func() time.Time
	handshake         bool // Timeouts.Handshake
}

// NewListener wraps ln. It copies t; with no timeout in it, connections
// only arm the deadlines their owner sets lazily, and no clock runs.
func NewListener(ln net.Listener, t Timeouts) *Listener {
	l := newListener(ln, t)
	if l.clock != nil {
		go l.clock.run(l.res)
	}
	return l
}

// newListener is NewListener without the clock's goroutine: the clock
// holds one reading, which tests advance with clock.tick.
func newListener(ln net.Listener, t Timeouts) *Listener {
	l := &Listener{Listener: ln, read: t.Read, write: t.Write, idle: t.Idle, res: t.Resolution, now: t.Now, handshake: t.Handshake}
	if l.idle <= 0 {
		l.idle = l.read
	}
	if l.res <= 0 {
		l.res = DefaultResolution
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.read > 0 || l.write > 0 || l.idle > 0 {
		l.clock = newClock(l.now)
	}
	return l
}

// Accept waits for the next connection and wraps it; its reads are
// bounded from now by Timeouts.Read. A connection whose read deadline
// cannot be set is closed, and Accept waits for the next one.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, err := l.wrap(c)
		if err != nil {
			_ = c.Close()
			continue
		}
		return tc, nil
	}
}

// wrap wraps a connection accepted now.
func (l *Listener) wrap(c net.Conn) (*timedConn, error) {
	tc := &timedConn{lazyConn: lazyConn{Conn: c, now: l.now}, l: l}
	if l.handshake {
		tc.phase.Store(phaseHandshake)
		if err := tc.writePhase(); err != nil {
			return nil, err
		}
	}
	return tc, tc.readPhase(l.read)
}

// Handshaken ends the handshake of c (see Timeouts.Handshake): c is a
// connection of a Listener, or wraps one through NetConn methods (a
// *tls.Conn). Call it once the first request's first byte has arrived
// (fasthttp.Server.ConnState's StateActive); for any other connection,
// or one past its handshake, it does nothing. From then on c's first
// write begins the first response.
func Handshaken(c net.Conn) {
	for {
		switch cc := c.(type) {
		case *timedConn:
			if cc.phase.Load() == phaseHandshake {
				cc.phase.CompareAndSwap(phaseHandshake, phaseFirst)
			}
			return
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return
		}
	}
}

// Close stops the listener's clock, waits for its goroutine, and closes
// the wrapped listener. Connections still open keep their timeouts, which
// each phase change then computes from Now itself. Close may be called
// more than once: a second call closes the wrapped listener again and
// returns what that says.
func (l *Listener) Close() error {
	if l.clock != nil {
		l.clock.stop()
	}
	return l.Listener.Close()
}

// deadline is the deadline of a phase that begins now and lasts d: the
// clock's last reading + its resolution + d, which is not earlier than
// now + d as long as the clock's goroutine keeps up; none for d <= 0. It
// also returns that reading (nil once the clock is stopped: then the
// deadline is exact), from which a deadline that fires can tell whether
// the goroutine fell behind (see lazy.refresh).
func (l *Listener) deadline(d time.Duration) (time.Time, *reading) {
	if d <= 0 {
		return time.Time{}, nil
	}
	r, t := l.clock.load()
	return t.Add(l.res + d), r
}

// clock is a coarse clock: a goroutine stores now() every resolution, so
// that connections read an atomic instead of the clock.
type clock struct {
	now      func() time.Time
	cur      atomic.Pointer[reading] // the last reading; nil once stopped
	quit     chan struct{}           // closed by stop
	done     chan struct{}           // closed when run returns
	stopOnce sync.Once
}

func newClock(now func() time.Time) *clock {
	c := &clock{now: now, quit: make(chan struct{}), done: make(chan struct{})}
	c.tick()
	return c
}

// reading is one reading of the clock, linked to the next one once it is
// taken: a phase that began on this reading began before next's time.
type reading struct {
	t    time.Time
	next atomic.Pointer[reading]
}

// tick stores a reading of the clock.
func (c *clock) tick() {
	r := &reading{t: c.now()}
	if prev := c.cur.Load(); prev != nil {
		prev.next.CompareAndSwap(nil, r) // a test may have linked one
	}
	c.cur.Store(r)
}

// run ticks every res until stop.
func (c *clock) run(res time.Duration) {
	defer close(c.done)
	t := time.NewTicker(res)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.tick()
		case <-c.quit:
			c.cur.Store(nil)
			return
		}
	}
}

// stop ends run and waits for it; from then on load reads now itself.
func (c *clock) stop() {
	c.stopOnce.Do(func() { close(c.quit) })
	<-c.done
}

// load is the last reading, or (nil and) a fresh one once the clock is
// stopped.
func (c *clock) load() (*reading, time.Time) {
	if r := c.cur.Load(); r != nil {
		return r, r.t
	}
	return nil, c.now()
}

// A connection's phase, as its I/O pattern shows it.
const (
	phaseFirst     uint32 = iota // a new connection, before its first write
	phaseRequest                 // a read returned bytes after an idle wait
	phaseResponse                // a write since the last read phase began
	phaseIdle                    // a read began after a write; no bytes yet
	phaseHandshake               // a new connection in its handshake (Timeouts.Handshake)
)

// timedConn is a lazyConn that moves its own deadlines at phase changes:
// the read deadline to Idle before the first read after a write, to Read
// when that read returns bytes, the write deadline to Write at the first
// write after reads. An owner's Set*Deadline call wins until the next
// phase change in its direction.
type timedConn struct {
	lazyConn
	l     *Listener
	phase atomic.Uint32 // phaseFirst…phaseHandshake
}

// readPhase puts the read deadline of a phase lasting d in force: none
// for d <= 0. A listener without read or idle timeout leaves reads to the
// owner.
func (c *timedConn) readPhase(d time.Duration) error {
	if c.l.idle <= 0 {
		return nil
	}
	t, r := c.l.deadline(d)
	return c.rd.setPhase(t, r, d, c.Conn.SetReadDeadline)
}

// writePhase puts the write timeout in force. A listener without one
// leaves writes to the owner.
func (c *timedConn) writePhase() error {
	if c.l.write <= 0 {
		return nil
	}
	t, r := c.l.deadline(c.l.write)
	return c.wd.setPhase(t, r, c.l.write, c.Conn.SetWriteDeadline)
}

// Read reads; the first read after a write waits under the idle timeout,
// and once it returns bytes the request is read under the read timeout.
func (c *timedConn) Read(p []byte) (int, error) {
	if c.phase.Load() == phaseResponse && c.phase.CompareAndSwap(phaseResponse, phaseIdle) {
		if err := c.readPhase(c.l.idle); err != nil {
			return 0, err
		}
	}
	n, err := c.lazyConn.Read(p)
	if n > 0 && c.phase.Load() == phaseIdle && c.phase.CompareAndSwap(phaseIdle, phaseRequest) {
		if derr := c.readPhase(c.l.read); derr != nil && err == nil {
			err = derr
		}
	}
	return n, err
}

// Write writes; the first write after reads starts the write timeout
// (not during a handshake, which writes under Write from accept).
func (c *timedConn) Write(p []byte) (int, error) {
	if ph := c.phase.Load(); ph != phaseResponse && ph != phaseHandshake && c.phase.Swap(phaseResponse) != phaseResponse {
		if err := c.writePhase(); err != nil {
			return 0, err
		}
	}
	return c.lazyConn.Write(p)
}

// checkLag is refresh's second look at a phase's deadline that has passed
// at now. It was computed from a clock reading + one resolution, which is
// early if the clock's goroutine did not get to run within a resolution
// after that reading (a stalled or starved process). The phase began
// before the next reading was taken (or, with none yet, before now), so
// that reading + the phase's length is a deadline that is never early:
// checkLag puts it in force and reports whether it is still ahead. Each
// phase's deadline is checked once. d.mu is held.
func (d *lazy) checkLag(now time.Time) bool {
	r := d.from
	if r == nil {
		return false
	}
	d.from = nil
	began := now
	if next := r.next.Load(); next != nil {
		began = next.t
	}
	late := began.Add(d.dur)
	if !now.Before(late) || !late.After(d.want) {
		return false
	}
	d.want = late
	return true
}

// lazyConn is a net.Conn whose read and write deadlines are armed lazily
// (see the package comment). It is safe for concurrent use as net.Conn is:
// a deadline may be set while a Read or Write is blocked.
type lazyConn struct {
	net.Conn
	now func() time.Time // decides whether a fired deadline is the one in force
	rd  lazy             // the read deadline
	wd  lazy             // the write deadline
}

// lazy is one direction's deadline: the one in force and the one armed on
// the wrapped connection. The armed one is never later than the one in
// force, and never missing while one is in force.
type lazy struct {
	mu    sync.Mutex // guards the fields below, and arming the wrapped connection
	want  time.Time  // the deadline in force; zero: none
	armed time.Time  // the deadline armed on the wrapped connection; zero: none
	// from and dur are the clock reading and the length of the phase
	// whose deadline want is; from is nil for an owner's deadline, an
	// exact one, or one already checked against the clock's lag.
	from *reading
	dur  time.Duration
}

// set puts the owner's deadline t in force (see setLocked).
func (d *lazy) set(t time.Time, arm func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.from = nil
	return d.setLocked(t, arm)
}

// setPhase puts in force t, the deadline of a phase lasting dur computed
// from the clock reading r (see Listener.deadline).
func (d *lazy) setPhase(t time.Time, r *reading, dur time.Duration, arm func(time.Time) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.from, d.dur = r, dur
	return d.setLocked(t, arm)
}

// setLocked puts t in force and arms it unless the armed deadline fires
// no later than t would. d.mu is held.
func (d *lazy) setLocked(t time.Time, arm func(time.Time) error) error {
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
	if !d.want.IsZero() && !now.Before(d.want) && !d.checkLag(now) {
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
func (c *lazyConn) SetReadDeadline(t time.Time) error { return c.rd.set(t, c.Conn.SetReadDeadline) }

// SetWriteDeadline puts t in force for writes.
func (c *lazyConn) SetWriteDeadline(t time.Time) error {
	return c.wd.set(t, c.Conn.SetWriteDeadline)
}

// SetDeadline puts t in force for reads and writes.
func (c *lazyConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// Read reads from the wrapped connection. When an outdated armed deadline
// fires, it arms the one in force and reads again.
func (c *lazyConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 || !isTimeout(err) || !c.rd.refresh(c.now(), c.Conn.SetReadDeadline) {
			return n, err
		}
	}
}

// Write writes to the wrapped connection. When an outdated armed deadline
// fires, it arms the one in force and writes the rest.
func (c *lazyConn) Write(p []byte) (int, error) {
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
