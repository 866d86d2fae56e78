package lazydeadline

import (
	"net"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

// noIO is a loopback TCP connection whose Read and Write do nothing (a
// byte read, everything written) while its deadlines are the socket's:
// what is left is the deadline work around one request.
type noIO struct{ net.Conn }

func (noIO) Read(p []byte) (int, error)  { return copy(p, "x"), nil }
func (noIO) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkRequestDeadlines is the deadline work of one keep-alive request
// (a read, then a write): as fasthttp does it (idle, read and write
// deadline, each from time.Now) on the connection as it is and on a lazy
// one, and as a timed connection does it by itself with fasthttp's
// timeouts at zero.
func BenchmarkRequestDeadlines(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	_, server := testutil.DialAccepted(b, ln)
	raw := noIO{server}
	tl := NewListener(ln, Timeouts{Read: 10 * time.Second, Write: 10 * time.Second, Idle: 60 * time.Second})
	defer tl.Close()
	timed, err := tl.wrap(raw)
	if err != nil {
		b.Fatal(err)
	}

	fasthttpWay := func(c net.Conn) func() {
		buf := make([]byte, 1)
		return func() {
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, _ = c.Read(buf)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Write(buf)
		}
	}
	buf := make([]byte, 1)
	for _, bc := range []struct {
		name    string
		request func()
	}{
		{"conn=net", fasthttpWay(raw)},
		{"conn=lazy", fasthttpWay(&lazyConn{Conn: raw, now: time.Now})},
		{"conn=timed", func() {
			_, _ = timed.Read(buf)
			_, _ = timed.Write(buf)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.request()
			}
		})
	}
}
