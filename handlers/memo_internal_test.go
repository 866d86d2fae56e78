package handlers

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/valyala/fasthttp"
)

// wrappedConn stands for any connection wrapper that is not a memoConn
// (the app's lazydeadline and idle-timeout connections).
type wrappedConn struct{ net.Conn }

// connMemoCase is a connection as fasthttp may hand it to a handler, and
// the memo connMemo must find in it (nil: none).
type connMemoCase struct {
	name string
	conn net.Conn
	want *authcache.Memo
}

func (tc connMemoCase) run(t *testing.T) {
	if got := connMemo(tc.conn); got != tc.want {
		t.Errorf("connMemo = %p, want %p", got, tc.want)
	}
}

// TestConnMemo: connMemo finds the memo of a connection Listener accepted,
// whether fasthttp is handed that connection or the *tls.Conn that
// tls.NewListener made of it, and finds none in any other connection,
// including a TLS connection over another wrapper of a memoConn (TLS must
// wrap Listener's connection directly, as the app does).
func TestConnMemo(t *testing.T) {
	raw, peer := net.Pipe()
	t.Cleanup(func() { raw.Close(); peer.Close() })
	mc := &memoConn{Conn: raw}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	cases := []connMemoCase{
		{name: "memoConn", conn: mc, want: &mc.memo},
		{name: "TLS server over memoConn", conn: tls.Server(mc, cfg), want: &mc.memo},
		{name: "TLS client over memoConn", conn: tls.Client(mc, cfg), want: &mc.memo},
		{name: "plain connection", conn: raw},
		{name: "TLS over a plain connection", conn: tls.Server(raw, cfg)},
		{name: "wrapper over memoConn", conn: wrappedConn{mc}},
		{name: "TLS over a wrapper over memoConn", conn: tls.Server(wrappedConn{mc}, cfg)},
		{name: "no connection", conn: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// okValidator answers every token with the same principal.
type okValidator struct{}

func (okValidator) Validate(context.Context, []byte) (*auth.Principal, error) {
	return &auth.Principal{Subject: "svc", Scopes: []string{"items"}}, nil
}

// TestServerConnMemo: the Server uses a connection's memo only when its
// Validator keeps memos (an authcache.Cache); any other Validator is
// called as before, memo or not.
func TestServerConnMemo(t *testing.T) {
	cache, err := authcache.New(okValidator{}, authcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	raw, peer := net.Pipe()
	t.Cleanup(func() { raw.Close(); peer.Close() })
	mc := &memoConn{Conn: raw}
	tlsOverMemo := tls.Server(mc, &tls.Config{MinVersion: tls.VersionTLS12})

	cases := []struct {
		name      string
		validator auth.Validator
		conn      net.Conn
		want      *authcache.Memo
	}{
		{name: "cache, memoConn", validator: cache, conn: mc, want: &mc.memo},
		{name: "cache, TLS over memoConn", validator: cache, conn: tlsOverMemo, want: &mc.memo},
		{name: "cache, plain connection", validator: cache, conn: raw},
		{name: "other validator, memoConn", validator: okValidator{}, conn: mc},
		{name: "other validator, TLS over memoConn", validator: okValidator{}, conn: tlsOverMemo},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Validator: tc.validator})
			if err != nil {
				t.Fatal(err)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init2(tc.conn, nil, false)
			if got := s.connMemo(&ctx); got != tc.want {
				t.Errorf("connMemo = %p, want %p", got, tc.want)
			}
		})
	}
}
