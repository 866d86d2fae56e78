package testutil

import (
	"net"
	"strconv"
	"testing"
)

// FreePort returns a loopback TCP port that was free when it was asked
// for: the port of a listener on 127.0.0.1:0, closed again. Use it for a
// server that cannot take a listener (another process, such as
// redis-server); the port may be taken by someone else before it binds.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testutil: listen on a loopback port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		tb.Fatalf("testutil: close the loopback listener: %v", err)
	}
	return port
}

// ClosedAddr returns a loopback address ("127.0.0.1:PORT") that nothing
// listens on, so that a connection to it is refused at once.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(tb)))
}

// DialAccepted dials ln's address over TCP and returns both ends: the
// client's connection and the one ln accepted for it. Both are closed when
// the test ends.
func DialAccepted(tb testing.TB, ln net.Listener) (client, server net.Conn) {
	tb.Helper()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("testutil: dial %s: %v", ln.Addr(), err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	a := <-ch
	if a.err != nil {
		tb.Fatalf("testutil: accept on %s: %v", ln.Addr(), a.err)
	}
	tb.Cleanup(func() { _ = a.c.Close() })
	return client, a.c
}
