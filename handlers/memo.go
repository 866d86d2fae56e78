package handlers

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/valyala/fasthttp"
)

// memoValidator is a Validator that can remember, for one connection, the
// token it last served (authcache.Cache): the connection's next request
// with the same token then costs a comparison instead of a hash and a
// lookup.
type memoValidator interface {
	Recall(token []byte, m *authcache.Memo) *auth.Principal
	ValidateMemo(ctx context.Context, token []byte, m *authcache.Memo) (*auth.Principal, error)
}

// Listener wraps ln so that each connection it accepts carries an
// authcache.Memo: when the Server's Validator is an authcache.Cache, a
// keep-alive client that sends the same token again is answered without
// hashing it (see authcache.Memo for why that changes no answer). Serve
// the Server's Handler from it; under TLS, wrap its result with
// tls.NewListener, so that fasthttp still sees the *tls.Conn. Any other
// listener works too, without the memo.
func Listener(ln net.Listener) net.Listener { return memoListener{ln} }

type memoListener struct{ net.Listener }

func (l memoListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &memoConn{Conn: c}, nil
}

// memoConn is a connection with its memo. fasthttp answers a connection's
// requests one after another on one goroutine, which is what a Memo needs.
type memoConn struct {
	net.Conn
	memo authcache.Memo
}

// NetConn is the wrapped connection, as tls.Conn's NetConn is, so that
// the layers under it can be reached (lazydeadline.Handshaken).
func (c *memoConn) NetConn() net.Conn { return c.Conn }

// connMemo returns the memo of ctx's connection when the Validator can use
// one; nil otherwise.
func (s *Server) connMemo(ctx *fasthttp.RequestCtx) *authcache.Memo {
	if s.memo == nil {
		return nil
	}
	return connMemo(ctx.Conn())
}

// connMemo returns the memo of the connection c, a memoConn or a TLS
// connection over one; nil for any other connection.
func connMemo(c net.Conn) *authcache.Memo {
	switch c := c.(type) {
	case *memoConn:
		return &c.memo
	case *tls.Conn:
		if mc, ok := c.NetConn().(*memoConn); ok {
			return &mc.memo
		}
	}
	return nil
}
