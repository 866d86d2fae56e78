package lazydeadline

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

// none stands for "no deadline" in a timedStep's rd and wd.
const none time.Duration = -1

// timedStep is one operation on a timed connection over a fakeConn, whose
// deadlines fire on a fake clock, and a listener whose coarse clock reads
// that fake clock only when told to.
type timedStep struct {
	op      string        // "read", "wait" (a read that gets nothing), "write", "advance" (the fake clock by d), "stall" (the same, while the listener's clock goroutine gets no chance to run), "tick" (the listener's clock reads it), "read-deadline", "write-deadline" (the owner's, d after the fake clock), "handshaken" (Handshaken on a TLS-like wrapper of the connection)
	d       time.Duration // for "advance" and "…-deadline"
	timeout bool          // "read", "wait", "write": want a timeout
	rd, wd  time.Duration // the deadline in force after the step, after the start; 0: not checked; none: no deadline
}

type timedCase struct {
	name  string
	t     Timeouts // Now is the fake clock
	steps []timedStep
	arms  int // arms on the wrapped connection at the end; 0: not checked
}

func (tc timedCase) run(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	f := &fakeConn{now: &now}
	tc.t.Now = func() time.Time { return now }
	l := newListener(nil, tc.t)
	c, err := l.wrap(f)
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int, s timedStep, dir string, want time.Duration, d *lazy) {
		t.Helper()
		if want == 0 {
			return
		}
		var w time.Time
		if want != none {
			w = start.Add(want)
		}
		d.mu.Lock()
		got := d.want
		d.mu.Unlock()
		if !got.Equal(w) {
			t.Fatalf("step %d %s: %s deadline in force %v, want %v", i, s.op, dir, got.Sub(start), want)
		}
	}
	buf := make([]byte, 4)
	for i, s := range tc.steps {
		err = nil
		switch s.op {
		case "read", "wait", "write":
			var n int
			if s.op == "write" {
				n, err = c.Write([]byte("data"))
			} else {
				f.silent = s.op == "wait"
				n, err = c.Read(buf)
				f.silent = false
			}
			if got := isTimeout(err); got != s.timeout {
				t.Fatalf("step %d %s at %v: err %v, want timeout %v", i, s.op, now.Sub(start), err, s.timeout)
			}
			if !s.timeout && s.op != "wait" && n == 0 {
				t.Fatalf("step %d %s: no bytes", i, s.op)
			}
			err = nil
		case "advance":
			// The clock's goroutine keeps up: it would have read the
			// clock one resolution after its last reading that the
			// listener still holds (tick: that reading is current).
			if l.clock != nil {
				if r := l.clock.cur.Load(); r != nil {
					r.next.CompareAndSwap(nil, &reading{t: r.t.Add(l.res)})
				}
			}
			now = now.Add(s.d)
		case "stall":
			now = now.Add(s.d) // the clock's goroutine does not run
		case "tick":
			l.clock.tick()
		case "read-deadline":
			err = c.SetReadDeadline(now.Add(s.d))
		case "write-deadline":
			err = c.SetWriteDeadline(now.Add(s.d))
		case "handshaken":
			Handshaken(tlsOver{c})
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
		check(i, s, "read", s.rd, &c.rd)
		check(i, s, "write", s.wd, &c.wd)
	}
	if tc.arms != 0 && f.arms != tc.arms {
		t.Errorf("%d arms on the wrapped connection, want %d", f.arms, tc.arms)
	}
}

// TestTimedPhases: a timed connection moves its deadlines at the phase
// changes fasthttp would (a new connection, the wait for the next request,
// its first byte, the response), each a timeout after the coarse clock's
// reading plus one resolution; they fire exactly then, never earlier; the
// owner's own deadlines win until the next phase change in their
// direction; a zero timeout means fasthttp's zero.
func TestTimedPhases(t *testing.T) {
	const (
		res   = 100 * time.Millisecond
		read  = 10 * time.Second
		write = 5 * time.Second
		idle  = 60 * time.Second
	)
	all := Timeouts{Read: read, Write: write, Idle: idle, Resolution: res}
	var thousand []timedStep
	for range 1000 {
		thousand = append(thousand,
			timedStep{op: "advance", d: time.Millisecond}, timedStep{op: "tick"},
			timedStep{op: "wait"}, timedStep{op: "read"}, timedStep{op: "write"})
	}
	thousand = append(thousand, timedStep{op: "read", rd: time.Second + res + read})

	handshake := all
	handshake.Handshake = true
	cases := []timedCase{
		{name: "a handshake's flights start no idle wait: its reads end Read after accept, its writes Write after", t: handshake, steps: []timedStep{
			{op: "read", rd: res + read, wd: res + write},
			{op: "advance", d: 3 * time.Second}, {op: "tick"},
			{op: "write", rd: res + read, wd: res + write},
			{op: "wait", rd: res + read, wd: res + write},
			{op: "read", rd: res + read},
			{op: "write", wd: res + write},
			{op: "advance", d: read - 3*time.Second},
			{op: "read"},
			{op: "advance", d: res},
			{op: "read", timeout: true},
		}},
		{name: "once handshaken, the first write begins the response and the next read waits Idle", t: handshake, steps: []timedStep{
			{op: "read"}, {op: "write"}, {op: "read"},
			{op: "advance", d: 3 * time.Second}, {op: "tick"},
			{op: "handshaken", rd: res + read, wd: res + write},
			{op: "read", rd: res + read},
			{op: "write", wd: 3*time.Second + res + write},
			{op: "wait", rd: 3*time.Second + res + idle},
			{op: "handshaken", rd: 3*time.Second + res + idle},
			{op: "read", rd: 3*time.Second + res + read},
		}},
		// The clock's goroutine does not run for longer than a timeout
		// (a stalled process): the deadline computed from its stale
		// reading would be early. The phase began before the clock's next
		// reading (or, with none yet, before the deadline fired), so
		// that reading + the timeout is in force instead, once.
		{name: "a stalled clock makes no deadline early: none read since", t: all, steps: []timedStep{
			{op: "read", rd: res + read},
			{op: "stall", d: res + read},
			{op: "read", rd: res + 2*read},
			{op: "tick"},
			{op: "advance", d: read - time.Millisecond},
			{op: "read"},
			{op: "advance", d: time.Millisecond},
			{op: "read", timeout: true},
		}},
		{name: "a stalled clock makes no deadline early: read once since", t: all, steps: []timedStep{
			{op: "read"}, {op: "write"},
			{op: "wait", rd: res + idle},
			{op: "stall", d: 3 * time.Second}, {op: "tick"},
			{op: "advance", d: res + idle - 3*time.Second},
			{op: "wait", rd: 3*time.Second + idle},
			{op: "advance", d: 3*time.Second - res - time.Millisecond},
			{op: "wait"},
			{op: "advance", d: time.Millisecond},
			{op: "wait", timeout: true},
		}},
		{name: "a new connection's reads end Read after accept, bytes or not", t: all, steps: []timedStep{
			{op: "read", rd: res + read, wd: none},
			{op: "advance", d: 3 * time.Second}, {op: "tick"},
			{op: "read", rd: res + read},
			{op: "wait", rd: res + read},
			{op: "advance", d: read - 3*time.Second},
			{op: "read"},
			{op: "advance", d: res},
			{op: "read", timeout: true},
		}},
		{name: "a response starts Write, the next read waits Idle, its first bytes start Read", t: all, steps: []timedStep{
			{op: "read"},
			{op: "advance", d: time.Second}, {op: "tick"},
			{op: "write", wd: time.Second + res + write},
			{op: "advance", d: time.Second},
			{op: "write", wd: time.Second + res + write},
			{op: "tick"},
			{op: "wait", rd: 2*time.Second + res + idle},
			{op: "advance", d: 30 * time.Second},
			{op: "wait", rd: 2*time.Second + res + idle},
			{op: "tick"},
			{op: "read", rd: 32*time.Second + res + read},
			{op: "advance", d: time.Second}, {op: "tick"},
			{op: "read", rd: 32*time.Second + res + read},
			{op: "write", wd: 33*time.Second + res + write},
		}},
		{name: "an idle connection outlives Read and is cut Idle after the response", t: all, steps: []timedStep{
			{op: "read"},
			{op: "write"},
			{op: "wait", rd: res + idle},
			{op: "advance", d: read + res},
			{op: "wait"},
			{op: "advance", d: idle - read - time.Nanosecond},
			{op: "wait"},
			{op: "advance", d: time.Nanosecond},
			{op: "wait", timeout: true},
		}},
		{name: "a trickled request is cut Read after its first byte", t: all, steps: []timedStep{
			{op: "read"},
			{op: "write"},
			{op: "advance", d: time.Second}, {op: "tick"},
			{op: "wait"},
			{op: "read", rd: time.Second + res + read},
			{op: "advance", d: 2 * time.Second}, {op: "tick"}, {op: "read"},
			{op: "advance", d: 2 * time.Second}, {op: "tick"}, {op: "read"},
			{op: "advance", d: 2 * time.Second}, {op: "tick"}, {op: "read"},
			{op: "advance", d: 2 * time.Second}, {op: "tick"}, {op: "read"},
			{op: "advance", d: 2 * time.Second}, {op: "tick"}, {op: "read", rd: time.Second + res + read},
			{op: "advance", d: res},
			{op: "read", timeout: true},
		}},
		{name: "a response the peer does not read is cut Write after its first write", t: all, steps: []timedStep{
			{op: "read"},
			{op: "write", wd: res + write},
			{op: "advance", d: write}, {op: "tick"},
			{op: "write", wd: res + write},
			{op: "advance", d: res},
			{op: "write", timeout: true},
		}},
		{name: "a write deadline that passed while idle does not cut the next response", t: all, steps: []timedStep{
			{op: "read"},
			{op: "write", wd: res + write},
			{op: "wait"},
			{op: "advance", d: 2 * write}, {op: "tick"},
			{op: "read"},
			{op: "write", wd: 2*write + res + write},
		}},
		{name: "the owner's read deadline wins until the next phase change", t: all, steps: []timedStep{
			{op: "read"},
			{op: "read-deadline", d: 30 * time.Second, rd: 30 * time.Second},
			{op: "read", rd: 30 * time.Second},
			{op: "write"},
			{op: "wait", rd: res + idle},
			{op: "read-deadline", d: time.Second, rd: time.Second},
			{op: "wait", rd: time.Second},
			{op: "read", rd: res + read},
			{op: "read-deadline", d: time.Second, rd: time.Second},
			{op: "advance", d: time.Second},
			{op: "read", timeout: true},
		}},
		{name: "the owner's write deadline wins until the next response", t: all, steps: []timedStep{
			{op: "read"},
			{op: "write", wd: res + write},
			{op: "write-deadline", d: 30 * time.Second, wd: 30 * time.Second},
			{op: "write", wd: 30 * time.Second},
			{op: "wait"},
			{op: "read"},
			{op: "write", wd: res + write},
			{op: "write-deadline", d: time.Second, wd: time.Second},
			{op: "advance", d: time.Second},
			{op: "write", timeout: true},
		}},
		{name: "a thousand keep-alive requests arm each direction once", t: all, steps: thousand, arms: 2},
		{name: "Idle zero means Read", t: Timeouts{Read: read, Write: write, Resolution: res}, steps: []timedStep{
			{op: "read"},
			{op: "write"},
			{op: "wait", rd: res + read},
		}},
		{name: "no Write leaves writes to the owner", t: Timeouts{Read: read, Resolution: res}, steps: []timedStep{
			{op: "read", wd: none},
			{op: "write", wd: none},
			{op: "write-deadline", d: time.Second, wd: time.Second},
			{op: "wait"},
			{op: "read"},
			{op: "write", wd: time.Second},
		}},
		{name: "no Read but Idle: a request's first bytes clear the idle deadline", t: Timeouts{Idle: idle, Resolution: res}, steps: []timedStep{
			{op: "read", rd: none},
			{op: "write"},
			{op: "wait", rd: res + idle},
			{op: "read", rd: none},
			{op: "write", wd: none},
		}},
		{name: "no timeouts: only the owner's deadlines, no clock", t: Timeouts{}, steps: []timedStep{
			{op: "read-deadline", d: time.Second, rd: time.Second},
			{op: "read"},
			{op: "write", wd: none},
			{op: "wait", rd: time.Second},
			{op: "read", rd: time.Second},
			{op: "advance", d: time.Second},
			{op: "read", timeout: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// clockGoroutines counts the goroutines running a listener's clock,
// started or not yet.
func clockGoroutines() int {
	return testutil.Goroutines("github.com/tokengate/tokengate/internal/lazydeadline.NewListener")
}

// TestClock: the listener's goroutine reads Now once per resolution into
// what the connections use; Close stops it and waits for it, after which
// deadlines come from Now itself; a second Close returns.
func TestClock(t *testing.T) {
	const res = time.Millisecond
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var fake atomic.Int64 // nanoseconds after start
	ticked := make(chan struct{}, 1)
	now := func() time.Time {
		select {
		case ticked <- struct{}{}:
		default:
		}
		return start.Add(time.Duration(fake.Load()))
	}
	before := clockGoroutines()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, Timeouts{Read: time.Second, Resolution: res, Now: now})
	if got := clockGoroutines(); got != before+1 {
		t.Fatalf("%d clock goroutines while the listener is open, want %d", got, before+1)
	}

	fake.Store(int64(time.Hour))
	want := start.Add(time.Hour + res + time.Second)
	deadline := time.After(10 * time.Second)
	phaseDeadline := func() time.Time { d, _ := l.deadline(time.Second); return d }
	for !phaseDeadline().Equal(want) {
		select {
		case <-ticked:
		case <-deadline:
			t.Fatalf("the clock did not read the new time: deadline %v, want %v", phaseDeadline(), want)
		}
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.clock.done:
	default:
		t.Fatal("Close returned before the clock's goroutine ended")
	}
	testutil.WaitFor(t, "the clock's goroutine to exit", func() bool { return clockGoroutines() == before })
	fake.Store(int64(2 * time.Hour))
	if got, want := phaseDeadline(), start.Add(2*time.Hour+res+time.Second); !got.Equal(want) {
		t.Errorf("after Close: deadline %v, want %v (from Now itself)", got, want)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second Close did not return")
	}
}

// TestConcurrentReadWrite: one timed connection read, written and given
// deadlines from three goroutines at once, with the clock ticking, moves
// every byte (run it under -race).
func TestConcurrentReadWrite(t *testing.T) {
	const total = 4 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, Timeouts{Read: time.Minute, Write: time.Minute, Idle: time.Minute, Resolution: time.Millisecond})
	defer l.Close()
	client, server := testutil.DialAccepted(t, l)

	chunk := bytes.Repeat([]byte("x"), 1000)
	send := func(c net.Conn) error {
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := c.Write(chunk[:min(len(chunk), total-sent)]); err != nil {
				return err
			}
		}
		return nil
	}
	receive := func(c net.Conn) error {
		_, err := io.CopyN(io.Discard, c, total)
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for _, f := range []func() error{
		func() error { return send(server) },
		func() error { return receive(server) },
		func() error { return send(client) },
		func() error { return receive(client) },
	} {
		wg.Go(func() { errs <- f() })
	}
	var setter sync.WaitGroup
	setter.Go(func() {
		for {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			d := time.Now().Add(time.Minute)
			if err := server.SetReadDeadline(d); err != nil {
				errs <- err
				return
			}
			if err := server.SetWriteDeadline(d); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	setter.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// tlsOver is a connection over another, as a *tls.Conn is.
type tlsOver struct{ net.Conn }

func (c tlsOver) NetConn() net.Conn { return c.Conn }
