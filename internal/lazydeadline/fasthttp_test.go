package lazydeadline

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokengate/tokengate/internal/testutil"
)

// Bounds of the fasthttp tests. A timeout is never early by design (the
// fake-clock tests in timed_test.go prove it to the nanosecond); here,
// over real connections on a shared machine, a bound is checked to within
// half of it below, and to twenty times it above, so that a loaded
// machine cannot fail the test while a bound that does not hold still
// does: the other bounds are an hour.
const (
	tick  = 100 * time.Millisecond // the bound under test
	never = time.Hour              // a bound that must not be the one to act
	slack = 20                     // the upper bound is slack times the bound
)

// fasthttpCase serves fasthttp, with timeouts fs, through a Listener with
// timeouts lt, and runs a client against it.
type fasthttpCase struct {
	name string
	fs   Timeouts // fasthttp.Server's ReadTimeout, WriteTimeout, IdleTimeout
	lt   Timeouts
	run  func(t *testing.T, h *harness)
}

// TestFasthttpTimeouts serves fasthttp through a Listener and checks that
// the timeouts bound what they bound, whether the connections keep them
// (fasthttp's own at zero) or fasthttp sets them as explicit deadlines on
// connections that keep none, or whose own are an hour. It runs over
// loopback TCP and over fasthttputil's in-memory listener, whose timeouts
// are errors of its own, and checks that fasthttp's Shutdown stopped the
// listener's clock.
func TestFasthttpTimeouts(t *testing.T) {
	const res = 10 * time.Millisecond
	own := Timeouts{Read: tick, Write: tick, Idle: 3 * tick}
	cases := []fasthttpCase{
		{name: "a busy keep-alive connection lives through many read and idle periods",
			lt: Timeouts{Read: tick / 2, Write: tick / 2, Idle: 5 * tick, Resolution: res}, run: busy},
		{name: "a new connection that sends nothing is closed after Read",
			lt: Timeouts{Read: tick, Write: never, Idle: never, Resolution: res}, run: silent},
		{name: "a trickled request is cut Read after its first byte",
			lt: Timeouts{Read: tick, Write: never, Idle: never, Resolution: res}, run: trickle},
		{name: "an idle keep-alive connection is closed after Idle, not Read",
			lt: Timeouts{Read: tick, Write: never, Idle: 3 * tick, Resolution: res}, run: idle},
		{name: "a response the client does not read is cut after Write",
			lt: Timeouts{Read: never, Write: tick, Idle: never, Resolution: res}, run: unread},
		{name: "at the default resolution: a trickled request is cut",
			lt: Timeouts{Read: tick, Write: never, Idle: never}, run: trickle},

		{name: "fasthttp's own timeouts, connections keeping none: busy", fs: own, run: busy},
		{name: "fasthttp's own timeouts, connections keeping none: silent", fs: own, run: silent},
		{name: "fasthttp's own timeouts, connections keeping none: trickle", fs: own, run: trickle},
		{name: "fasthttp's own timeouts, connections keeping none: idle", fs: own, run: idle},
		// fasthttp sets its read deadline after the connection's own
		// phase change in both cases: the explicit deadline wins.
		{name: "fasthttp's read deadline on connections keeping an hour: silent", fs: own,
			lt: Timeouts{Read: never, Write: never, Idle: never, Resolution: res}, run: silent},
		{name: "fasthttp's read deadline on connections keeping an hour: trickle", fs: own,
			lt: Timeouts{Read: never, Write: never, Idle: never, Resolution: res}, run: trickle},
	}
	for _, network := range []string{"tcp", "inmemory"} {
		t.Run(network, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.serve(t, network) })
			}
		})
	}
}

// harness is a running server and how to reach it.
type harness struct {
	dialLn func() (net.Conn, error)
	closed chan time.Time // when the server closed a connection
}

func (tc fasthttpCase) serve(t *testing.T, network string) {
	var (
		ln net.Listener
		h  = &harness{closed: make(chan time.Time, 16)}
	)
	if network == "tcp" {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, h.dialLn = tl, func() (net.Conn, error) { return net.Dial("tcp", tl.Addr().String()) }
	} else {
		ml := fasthttputil.NewInmemoryListener()
		ln, h.dialLn = ml, ml.Dial
	}
	clocks := clockGoroutines()
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/large" {
				// Streamed in small writes, so that the in-memory pipe's
				// buffers fill as a socket's do.
				ctx.SetBodyStream(io.LimitReader(zeros{}, 64<<20), 64<<20)
				return
			}
			ctx.SetBodyString("ok")
		},
		Logger:       quiet{},
		ReadTimeout:  tc.fs.Read,
		WriteTimeout: tc.fs.Write,
		IdleTimeout:  tc.fs.Idle,
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateClosed {
				select {
				case h.closed <- time.Now():
				default:
				}
			}
		},
	}
	l := NewListener(ln, tc.lt)
	served := make(chan struct{})
	go func() { defer close(served); _ = s.Serve(l) }()
	// Registered first, so run last: after the subtests' connections
	// are closed.
	t.Cleanup(func() {
		_ = s.Shutdown()
		_ = l.Close() // in case Serve had not registered it yet
		<-served
		// Close has waited for the clock's goroutine to end its work;
		// the runtime lists it until it has exited.
		testutil.WaitFor(t, "the clock's goroutine to exit after Shutdown", func() bool { return clockGoroutines() == clocks })
	})
	tc.run(t, h)
}

// quiet is a fasthttp.Logger that drops what fasthttp says about the
// connections these tests cut.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func (h *harness) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := h.dialLn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// get sends a request for / on c and reads its response.
func get(c net.Conn, r *bufio.Reader) error {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return err
}

// closedWithin waits until the server closes c (a read ends in EOF or a
// reset, after whatever answer fasthttp gives first) and returns when;
// it fails the test after slack times bound.
func closedWithin(t *testing.T, c net.Conn, r *bufio.Reader, bound time.Duration) time.Time {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	select {
	case err := <-done:
		if isTimeout(err) {
			t.Fatalf("read: %v", err)
		}
		return time.Now()
	case <-time.After(slack * bound):
		_ = c.Close()
		t.Fatalf("connection still open after %v", slack*bound)
		return time.Time{}
	}
}

// notEarly fails the test if what was bounded by bound ended within half
// of it.
func notEarly(t *testing.T, what string, took, bound time.Duration) {
	t.Helper()
	if took < bound/2 {
		t.Errorf("%s after %v, want about %v", what, took, bound)
	}
}

// busy sends requests back to back, and with pauses of twice the read
// timeout, for many read timeouts (the idle timeout is longer).
func busy(t *testing.T, h *harness) {
	c, r := h.dial(t)
	start := time.Now()
	n := 0
	for time.Since(start) < 10*tick {
		if err := get(c, r); err != nil {
			t.Fatalf("request %d after %v: %v", n, time.Since(start), err)
		}
		n++
		if n%100 == 0 {
			<-time.After(tick) // a pause of twice Read (the connections' own case), under Idle
		}
	}
}

// silent connects and sends nothing.
func silent(t *testing.T, h *harness) {
	start := time.Now()
	c, r := h.dial(t)
	notEarly(t, "closed", closedWithin(t, c, r, tick).Sub(start), tick)
}

// trickle sends one request, then, on the same connection, the start of a
// header that never ends, a byte every tenth of the read timeout.
func trickle(t *testing.T, h *harness) {
	c, r := h.dial(t)
	if err := get(c, r); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(tick / 10)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	end := closedWithin(t, c, r, tick)
	close(stop)
	<-stopped
	notEarly(t, "cut", end.Sub(start), tick)
}

// idle sends one request and waits: the connection is open after one and
// a half read timeouts, and closed within slack idle timeouts.
func idle(t *testing.T, h *harness) {
	c, r := h.dial(t)
	if err := get(c, r); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(3 * tick / 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Peek(1); !isTimeout(err) {
		t.Fatalf("peek after the response: %v, want the client's own timeout (the connection open)", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, c, r, 3*tick)
}

// unread asks for a 64 MiB response and reads none of it.
func unread(t *testing.T, h *harness) {
	c, _ := h.dial(t)
	start := time.Now()
	if _, err := io.WriteString(c, "GET /large HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case end := <-h.closed:
		notEarly(t, "cut", end.Sub(start), tick)
	case <-time.After(slack * tick):
		t.Fatalf("connection still open after %v", slack*tick)
	}
}
