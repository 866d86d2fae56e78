package app

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/lazydeadline"
	"github.com/tokengate/tokengate/internal/testpki"
	"github.com/tokengate/tokengate/internal/testutil"
)

// The served connections' timeouts in these tests (Options.timeouts): Idle
// apart from Read, so that the one that acts can be told. A bound is
// checked to within half of it below and slack times it above, so that a
// loaded machine (-race) cannot fail the tests, while a bound that does
// not hold still does.
const (
	testRead = 200 * time.Millisecond
	testIdle = 3 * testRead
	slack    = 20
)

// slowClientCase is what one client does on a fresh connection.
type slowClientCase struct {
	name string
	run  func(t *testing.T, c *httpConn)
}

// TestSlowClients: with fasthttp's own timeouts off, the served
// connections still cut a client that sends half a request (with a 408,
// through handlers' RequestError) and close an idle keep-alive connection
// after the idle timeout, not the read timeout, while a busy one lives;
// over plain HTTP and TLS.
func TestSlowClients(t *testing.T) {
	opts := Options{timeouts: lazydeadline.Timeouts{
		Read: testRead, Write: testRead, Idle: testIdle, Resolution: 10 * time.Millisecond,
	}}
	cases := []slowClientCase{
		{"half a request gets 408 about Read after it began, then the connection closes", halfRequest},
		{"an idle keep-alive connection is closed after Idle, not Read", idleKeepAlive},
		{"a busy keep-alive connection lives through many read timeouts", busyKeepAlive},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := tr.startWith(t, opts)
			if s.app.server.ReadTimeout != 0 || s.app.server.WriteTimeout != 0 || s.app.server.IdleTimeout != 0 {
				t.Fatalf("fasthttp keeps timeouts of its own: read %v, write %v, idle %v",
					s.app.server.ReadTimeout, s.app.server.WriteTimeout, s.app.server.IdleTimeout)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, s.dial(t)) })
			}
		})
	}
}

func halfRequest(t *testing.T, c *httpConn) {
	start := time.Now()
	if err := c.SetDeadline(start.Add(slack * testRead)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /items HTTP/1.1\r\nHost: tokengate\r\nAuthorization: Bearer ey"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", slack*testRead, err)
	}
	took := time.Since(start)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || string(body) != `{"detail":"request timeout"}` {
		t.Errorf("answer %d %s, want 408 and the request timeout detail", resp.StatusCode, body)
	}
	if took < testRead/2 {
		t.Errorf("answered after %v, want about %v", took, testRead)
	}
	closed(t, c)
}

func idleKeepAlive(t *testing.T, c *httpConn) {
	if code, err := c.get(t, "/"); err != nil || code != http.StatusOK {
		t.Fatalf("GET / = %d, %v", code, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * testRead / 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.r.Peek(1); !isTimeout(err) {
		t.Fatalf("peek after the response: %v, want the client's own timeout (the connection open)", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(slack * testIdle)); err != nil {
		t.Fatal(err)
	}
	closed(t, c)
}

func busyKeepAlive(t *testing.T, c *httpConn) {
	start := time.Now()
	for n := 0; time.Since(start) < 5*testRead; n++ {
		if code, err := c.get(t, "/"); err != nil || code != http.StatusOK {
			t.Fatalf("request %d after %v: %d, %v", n, time.Since(start), code, err)
		}
	}
}

// closed reads c to its end: the server closed it before the client's
// deadline.
func closed(t *testing.T, c *httpConn) {
	t.Helper()
	if _, err := io.Copy(io.Discard, c.r); isTimeout(err) {
		t.Fatalf("connection still open: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clockGoroutines counts the goroutines of lazydeadline listeners' clocks.
func clockGoroutines() int {
	return testutil.Goroutines("github.com/tokengate/tokengate/internal/lazydeadline.NewListener")
}

// TestServeListenerClock: the served listener's clock runs while the App
// serves (none in gateway mode, whose connections bound silence instead),
// and Shutdown stops it, even right after Start.
func TestServeListenerClock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		start   func(t *testing.T) *App
		running int // clock goroutines while serving
		ready   bool
	}{
		{"serving", func(t *testing.T) *App { return start(t, devConfig(t), Options{}) }, 1, true},
		{"closed right after Start", func(t *testing.T) *App { return start(t, devConfig(t), Options{}) }, 1, false},
		{"gateway mode", func(t *testing.T) *App { return startGateway(t, "http://127.0.0.1:9") }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := clockGoroutines()
			a := tc.start(t)
			if tc.ready {
				waitReady(t, a)
				if got := clockGoroutines(); got != before+tc.running {
					t.Errorf("%d clock goroutines while serving, want %d", got, before+tc.running)
				}
			}
			a.Close()
			// The listener's Close waited for the clock's goroutine to
			// end its work; the runtime lists it until it has exited.
			testutil.WaitFor(t, "the clock's goroutine to exit after Close", func() bool { return clockGoroutines() == before })
		})
	}
}

// TestSlowTLSClients: over TLS, the handshake is part of a new
// connection's first read phase, as with fasthttp's own ReadTimeout: a
// client that stalls mid-handshake, or completes it and sends nothing, is
// cut about Read after accept, not after the (much longer) idle timeout.
func TestSlowTLSClients(t *testing.T) {
	opts := Options{timeouts: lazydeadline.Timeouts{
		Read: testRead, Write: testRead, Idle: time.Hour, Resolution: 10 * time.Millisecond,
	}}
	ca := testpki.NewCA(t, "tokengate test CA")
	f := startTLSWith(t, opts, ca.Issue(t, "127.0.0.1"), ca)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c net.Conn)
	}{
		{"a connection that sends nothing", func(*testing.T, net.Conn) {}},
		{"a ClientHello and then silence", func(t *testing.T, c net.Conn) {
			if _, err := c.Write(clientHello(t, tls.VersionTLS13)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a TLS 1.2 ClientHello and then silence", func(t *testing.T, c net.Conn) {
			if _, err := c.Write(clientHello(t, tls.VersionTLS12)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a TLS 1.2 handshake and then silence", func(t *testing.T, c net.Conn) {
			tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12})
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", f.app.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(slack * testRead)); err != nil {
				t.Fatal(err)
			}
			tc.run(t, c)
			if _, err := io.Copy(io.Discard, c); isTimeout(err) {
				t.Fatalf("connection still open after %v: %v", slack*testRead, err)
			}
		})
	}
}

// clientHello is the first flight of a TLS client offering at most max.
func clientHello(t *testing.T, max uint16) []byte {
	t.Helper()
	cc, sc := net.Pipe()
	defer sc.Close()
	go func() {
		defer cc.Close()
		_ = tls.Client(cc, &tls.Config{InsecureSkipVerify: true, MaxVersion: max}).Handshake()
	}()
	if err := sc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, err := sc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}
