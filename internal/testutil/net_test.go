package testutil_test

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"

	"github.com/tokengate/tokengate/internal/testutil"
)

func TestClosedAddrRefuses(t *testing.T) {
	addr := testutil.ClosedAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("ClosedAddr = %q (%v), want 127.0.0.1:PORT", addr, err)
	}
	conn, err := net.Dial("tcp", addr)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s succeeded, want a refusal", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
}

func TestFreePortBinds(t *testing.T) {
	port := testutil.FreePort(t)
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on the free port: %v", err)
	}
	ln.Close()
}

// TestDialAccepted: the two ends it returns are connected to each other.
func TestDialAccepted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, server := testutil.DialAccepted(t, ln)
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v; want ping", buf, err)
	}
	if client.LocalAddr().String() != server.RemoteAddr().String() {
		t.Errorf("client %s is not the server's peer %s", client.LocalAddr(), server.RemoteAddr())
	}
}
