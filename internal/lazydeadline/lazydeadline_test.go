package lazydeadline

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// fakeConn is a connection whose deadlines fire on a fake clock: an I/O
// call fails with os.ErrDeadlineExceeded when the armed deadline is not
// after the clock, as the runtime's poller would. It counts how often each
// deadline is armed.
type fakeConn struct {
	net.Conn // nil: only the methods below are used
	now      *time.Time
	rd, wd   time.Time
	arms     int
	timeout  error // what a fired deadline returns: os.ErrDeadlineExceeded unless set
	silent   bool  // Read returns nothing (0, nil), as a peer that sends nothing would
}

// foreignTimeout is a timeout error that neither wraps
// os.ErrDeadlineExceeded nor is a net.Error, like the one fasthttputil's
// pipes return.
type foreignTimeout struct{}

func (foreignTimeout) Error() string { return "pipe: timeout" }
func (foreignTimeout) Timeout() bool { return true }

func (f *fakeConn) fired() error {
	if f.timeout != nil {
		return f.timeout
	}
	return os.ErrDeadlineExceeded
}

func (f *fakeConn) expired(d time.Time) bool { return !d.IsZero() && !f.now.Before(d) }

func (f *fakeConn) Read(p []byte) (int, error) {
	if f.expired(f.rd) {
		return 0, f.fired()
	}
	if f.silent {
		return 0, nil
	}
	return copy(p, "x"), nil
}

func (f *fakeConn) Write(p []byte) (int, error) {
	if f.expired(f.wd) {
		return 0, f.fired()
	}
	return len(p), nil
}

func (f *fakeConn) SetReadDeadline(t time.Time) error  { f.rd = t; f.arms++; return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { f.wd = t; f.arms++; return nil }

// step is one operation on the connection under test.
type step struct {
	op       string        // "read-deadline", "write-deadline", "deadline", "advance", "read", "write"
	d        time.Duration // deadline relative to the clock (for "…deadline"; 0 with zero=true clears), or the advance
	zero     bool          // "…deadline": the zero time, no deadline
	timeout  bool          // "read"/"write": want os.ErrDeadlineExceeded
	wantArms int           // arms on the wrapped connection so far, checked after the step; -1: not checked
}

type deadlineCase struct {
	name    string
	steps   []step
	foreign bool // the connection's timeouts are foreignTimeout
}

func (tc deadlineCase) run(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &fakeConn{now: &now}
	if tc.foreign {
		f.timeout = foreignTimeout{}
	}
	c := &lazyConn{Conn: f, now: func() time.Time { return now }}
	at := func(s step) time.Time {
		if s.zero {
			return time.Time{}
		}
		return now.Add(s.d)
	}
	for i, s := range tc.steps {
		var err error
		switch s.op {
		case "read-deadline":
			err = c.SetReadDeadline(at(s))
		case "write-deadline":
			err = c.SetWriteDeadline(at(s))
		case "deadline":
			err = c.SetDeadline(at(s))
		case "advance":
			now = now.Add(s.d)
		case "read", "write":
			var n int
			if s.op == "read" {
				n, err = c.Read(make([]byte, 4))
			} else {
				n, err = c.Write([]byte("data"))
			}
			if got := isTimeout(err); got != s.timeout {
				t.Fatalf("step %d %s: err %v, want timeout %v", i, s.op, err, s.timeout)
			}
			if !s.timeout && n == 0 {
				t.Fatalf("step %d %s: no bytes", i, s.op)
			}
			err = nil
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
		if s.wantArms >= 0 && f.arms != s.wantArms {
			t.Fatalf("step %d %s: %d arms on the wrapped connection, want %d", i, s.op, f.arms, s.wantArms)
		}
	}
}

func TestDeadlines(t *testing.T) {
	const (
		read  = 10 * time.Second
		idle  = 60 * time.Second
		write = 10 * time.Second
		tick  = time.Millisecond
	)
	// fasthttp's per-request sequence on a keep-alive connection.
	request := []step{
		{op: "read-deadline", d: idle, wantArms: -1},
		{op: "advance", d: tick, wantArms: -1},
		{op: "read-deadline", d: read, wantArms: -1},
		{op: "read", wantArms: -1},
		{op: "write-deadline", d: write, wantArms: -1},
		{op: "write", wantArms: -1},
		{op: "advance", d: tick, wantArms: -1},
	}
	var thousand []step
	thousand = append(thousand, step{op: "read-deadline", d: read, wantArms: 1}, step{op: "write-deadline", d: write, wantArms: 2})
	for range 1000 {
		thousand = append(thousand, request...)
	}
	thousand = append(thousand, step{op: "read", wantArms: 2})

	cases := []deadlineCase{
		{name: "a thousand keep-alive requests arm each deadline once", steps: thousand},
		{name: "first deadline is armed", steps: []step{
			{op: "read-deadline", d: read, wantArms: 1},
			{op: "advance", d: read, wantArms: 1},
			{op: "read", timeout: true, wantArms: 1},
		}},
		{name: "a later deadline is recorded, not armed", steps: []step{
			{op: "read-deadline", d: read, wantArms: 1},
			{op: "read-deadline", d: idle, wantArms: 1},
			{op: "read", wantArms: 1},
		}},
		{name: "an earlier deadline is armed at once", steps: []step{
			{op: "read-deadline", d: idle, wantArms: 1},
			{op: "read-deadline", d: read, wantArms: 2},
			{op: "advance", d: read, wantArms: 2},
			{op: "read", timeout: true, wantArms: 2},
		}},
		{name: "an outdated deadline that fires is replaced, and the call goes on", steps: []step{
			{op: "read-deadline", d: read, wantArms: 1},
			{op: "read-deadline", d: idle, wantArms: 1},
			{op: "advance", d: 2 * read, wantArms: 1},
			{op: "read", wantArms: 2},
			{op: "advance", d: idle - read, wantArms: 2},
			{op: "read", timeout: true, wantArms: 2},
		}},
		{name: "the deadline in force fails the call exactly when it passes", steps: []step{
			{op: "read-deadline", d: read, wantArms: 1},
			{op: "read-deadline", d: idle, wantArms: 1},
			{op: "advance", d: idle - tick, wantArms: 1},
			{op: "read", wantArms: 2},
			{op: "advance", d: tick, wantArms: 2},
			{op: "read", timeout: true, wantArms: 2},
		}},
		{name: "clearing is lazy too", steps: []step{
			{op: "read-deadline", d: read, wantArms: 1},
			{op: "read-deadline", zero: true, wantArms: 1},
			{op: "advance", d: 10 * idle, wantArms: 1},
			{op: "read", wantArms: 2},
			{op: "read", wantArms: 2},
		}},
		{name: "no deadline, none armed", steps: []step{
			{op: "read-deadline", zero: true, wantArms: 0},
			{op: "advance", d: idle, wantArms: 0},
			{op: "read", wantArms: 0},
		}},
		{name: "a deadline in the past interrupts", steps: []step{
			{op: "read-deadline", d: idle, wantArms: 1},
			{op: "read-deadline", d: -tick, wantArms: 2},
			{op: "read", timeout: true, wantArms: 2},
		}},
		{name: "a timeout error of another kind is recognised", foreign: true, steps: []step{
			{op: "read-deadline", d: read, wantArms: 1},
			{op: "read-deadline", d: idle, wantArms: 1},
			{op: "advance", d: 2 * read, wantArms: 1},
			{op: "read", wantArms: 2},
			{op: "advance", d: idle, wantArms: 2},
			{op: "read", timeout: true, wantArms: 2},
		}},
		{name: "writes: an outdated deadline is replaced", steps: []step{
			{op: "write-deadline", d: write, wantArms: 1},
			{op: "write-deadline", d: idle, wantArms: 1},
			{op: "advance", d: 2 * write, wantArms: 1},
			{op: "write", wantArms: 2},
			{op: "advance", d: idle, wantArms: 2},
			{op: "write", timeout: true, wantArms: 2},
		}},
		{name: "SetDeadline sets both directions", steps: []step{
			{op: "deadline", d: read, wantArms: 2},
			{op: "deadline", d: idle, wantArms: 2},
			{op: "advance", d: 2 * read, wantArms: 2},
			{op: "read", wantArms: 3},
			{op: "write", wantArms: 4},
			{op: "advance", d: idle, wantArms: 4},
			{op: "read", timeout: true, wantArms: 4},
			{op: "write", timeout: true, wantArms: 4},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// armSignal wraps a real connection and reports every read deadline armed
// on it.
type armSignal struct {
	net.Conn
	armed chan time.Time
}

func (a *armSignal) SetReadDeadline(t time.Time) error {
	err := a.Conn.SetReadDeadline(t)
	a.armed <- t
	return err
}

// TestBlockedRead runs against a real connection (net.Pipe) with the
// runtime's deadlines: a Read blocked past an outdated deadline keeps
// waiting and gets the data, and a deadline moved into the past from
// another goroutine ends it.
func TestBlockedRead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		interrupt bool
	}{{"outdated deadline fires", false}, {"deadline moved into the past", true}} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer client.Close()
			sig := &armSignal{Conn: server, armed: make(chan time.Time, 4)}
			c := &lazyConn{Conn: sig, now: time.Now}
			defer c.Close()

			// The first deadline is armed; the later one only recorded.
			if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			<-sig.armed
			if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := c.Read(make([]byte, 8))
				done <- result{n, err}
			}()
			// The millisecond deadline fires in the blocked Read, which
			// arms the hour.
			if got := <-sig.armed; time.Until(got) < 30*time.Minute {
				t.Fatalf("re-armed %v, want the hour deadline", got)
			}
			if tc.interrupt {
				if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
					t.Fatal(err)
				}
				<-sig.armed
				if r := <-done; !errors.Is(r.err, os.ErrDeadlineExceeded) {
					t.Fatalf("Read = %d, %v; want a timeout", r.n, r.err)
				}
				return
			}
			if _, err := client.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if r := <-done; r.err != nil || r.n != 5 {
				t.Fatalf("Read = %d, %v; want the 5 bytes written", r.n, r.err)
			}
		})
	}
}

// TestListenerWraps: Accept wraps a connection and arms its read
// deadline at once, Timeouts.Read after the clock's reading; without
// timeouts it arms none.
func TestListenerWraps(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    Timeouts
		want time.Duration // the read deadline armed, after the start; 0: none
	}{
		{"read timeout", Timeouts{Read: time.Minute, Resolution: time.Second}, time.Minute + time.Second},
		{"no timeouts", Timeouts{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			tc.t.Now = func() time.Time { return start }
			l := NewListener(ln, tc.t)
			defer l.Close()
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err == nil {
					_ = c.Close()
				}
			}()
			c, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc2, ok := c.(*timedConn)
			if !ok {
				t.Fatalf("Accept returned %T, want *timedConn", c)
			}
			var want time.Time
			if tc.want != 0 {
				want = start.Add(tc.want)
			}
			tc2.rd.mu.Lock()
			armed := tc2.rd.armed
			tc2.rd.mu.Unlock()
			if !armed.Equal(want) {
				t.Errorf("read deadline armed %v, want %v", armed, want)
			}
		})
	}
}
