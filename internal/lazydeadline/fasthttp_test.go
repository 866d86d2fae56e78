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
)

// TestFasthttpTimeouts serves fasthttp through a lazy listener with short
// timeouts and checks that they still bound what they bound: a busy
// keep-alive connection lives past many read deadlines, a request that
// never ends and an idle connection are cut off. It runs over loopback TCP
// and over fasthttputil's in-memory listener, whose timeouts are errors of
// its own.
func TestFasthttpTimeouts(t *testing.T) {
	for _, network := range []string{"tcp", "inmemory"} {
		t.Run(network, func(t *testing.T) {
			var (
				ln   net.Listener
				dial func() (net.Conn, error)
			)
			if network == "tcp" {
				tl, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				ln, dial = tl, func() (net.Conn, error) { return net.Dial("tcp", tl.Addr().String()) }
			} else {
				ml := fasthttputil.NewInmemoryListener()
				ln, dial = ml, ml.Dial
			}
			testFasthttpTimeouts(t, ln, dial)
		})
	}
}

func testFasthttpTimeouts(t *testing.T, ln net.Listener, dialLn func() (net.Conn, error)) {
	const readTimeout = 100 * time.Millisecond
	s := &fasthttp.Server{
		Handler:      func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
		ReadTimeout:  readTimeout,
		WriteTimeout: readTimeout,
		IdleTimeout:  2 * readTimeout,
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = s.Serve(NewListener(ln, nil)) }()
	defer func() { _ = s.Shutdown(); _ = ln.Close(); <-served }()

	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := dialLn()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, r *bufio.Reader) error {
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
	// closed waits until the server closes c: a read ends in EOF (or a
	// reset), after whatever answer fasthttp gives first.
	closed := func(t *testing.T, r *bufio.Reader) {
		t.Helper()
		if _, err := io.Copy(io.Discard, r); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("read: %v", err)
			}
		}
	}

	t.Run("busy keep-alive connection outlives the read deadlines", func(t *testing.T) {
		c, r := dial(t)
		start := time.Now()
		n := 0
		for time.Since(start) < 5*readTimeout {
			if err := get(c, r); err != nil {
				t.Fatalf("request %d after %v: %v", n, time.Since(start), err)
			}
			n++
		}
	})
	t.Run("a request that never ends is cut off", func(t *testing.T) {
		c, r := dial(t)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		closed(t, r)
	})
	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		c, r := dial(t)
		if err := get(c, r); err != nil {
			t.Fatal(err)
		}
		closed(t, r)
	})
}
