package lazydeadline

import (
	"net"
	"testing"
	"time"
)

// BenchmarkRequestDeadlines is what fasthttp does to a keep-alive
// connection's deadlines per request (IdleTimeout, then ReadTimeout, then
// WriteTimeout, each from time.Now), on a loopback TCP connection as it
// is and wrapped.
func BenchmarkRequestDeadlines(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	defer server.Close()

	for _, bc := range []struct {
		name string
		conn net.Conn
	}{{"conn=net", server}, {"conn=lazy", NewConn(server, nil)}} {
		b.Run(bc.name, func(b *testing.B) {
			c := bc.conn
			b.ReportAllocs()
			for b.Loop() {
				_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			}
		})
	}
}
