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
