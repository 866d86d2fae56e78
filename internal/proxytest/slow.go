package proxytest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// NewCounter starts an upstream on a loopback port that reads each
// request's body and answers with its length in decimal, and returns its
// URL; tb.Cleanup closes it.
func NewCounter(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// Conn is a client connection for hand-written requests, each sent as
// fast or as slowly as the test says.
type Conn struct {
	net.Conn
	r *bufio.Reader
}

// Dial connects to addr; see NewConn.
func Dial(tb testing.TB, addr string) *Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return NewConn(tb, c)
}

// NewConn is c (a TCP or a TLS connection) as a Conn, whose reads are
// c's only; it gives up after a minute whatever happens, and tb.Cleanup
// closes it.
func NewConn(tb testing.TB, c net.Conn) *Conn {
	tb.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	return &Conn{Conn: c, r: bufio.NewReader(c)}
}

// Send writes s in pieces of chunk bytes, gap apart.
func (c *Conn) Send(tb testing.TB, s string, chunk int, gap time.Duration) {
	tb.Helper()
	for len(s) > 0 {
		n := min(chunk, len(s))
		if _, err := io.WriteString(c, s[:n]); err != nil {
			tb.Fatalf("after %d bytes still to send: %v", len(s), err)
		}
		if s = s[n:]; len(s) > 0 {
			time.Sleep(gap)
		}
	}
}

// Response reads the next response and its body.
func (c *Conn) Response(tb testing.TB) (*http.Response, string) {
	tb.Helper()
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(body)
}

// Upload sends a request whose header and first fast body bytes go at
// once and whose slow other body bytes go a chunk at a time, gap apart,
// and returns the response. header is the request line and header
// fields, each line ending in CRLF, without Content-Length and the empty
// line.
func (c *Conn) Upload(tb testing.TB, header string, fast, slow, chunk int, gap time.Duration) (*http.Response, string) {
	tb.Helper()
	body := make([]byte, fast+slow)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	head := header + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body[:fast])
	c.Send(tb, head, len(head), 0)
	c.Send(tb, string(body[fast:]), chunk, gap)
	return c.Response(tb)
}

// TrickleUntilClosed writes s a byte at a time, gap apart, and fails tb
// unless the server closes the connection within limit of the first
// byte. A response before the close (408) is read and dropped.
func (c *Conn) TrickleUntilClosed(tb testing.TB, s string, gap, limit time.Duration) {
	tb.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c.r)
		closed <- err
	}()
	check := func(err error) {
		tb.Helper()
		if errors.Is(err, io.EOF) || err == nil || !isTimeout(err) {
			return // EOF, or a reset: closed
		}
		tb.Fatalf("the server still reads a header trickled a byte per %v after %v (%d bytes sent)", gap, limit, int(time.Since(start)/gap))
	}
	for i := range len(s) {
		if _, err := c.Write([]byte{s[i]}); err != nil {
			check(<-closed)
			return
		}
		select {
		case err := <-closed:
			check(err)
			return
		case <-time.After(gap):
		}
	}
	tb.Fatal(fmt.Sprintf("all %d bytes went through, and the connection is open", len(s)))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
