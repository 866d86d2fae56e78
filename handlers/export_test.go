package handlers

import (
	"context"
	"net"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/valyala/fasthttp"
)

// Hooks for the external tests (package handlers_test); compiled only
// into the test binary.

// ItemsRouteForTest returns the /items handler behind its scope guard,
// without the router in front.
func (s *Server) ItemsRouteForTest() fasthttp.RequestHandler { return s.items.wrap(s.listItems) }

// RequireScopeForTest puts next behind the auth middleware for scope.
func (s *Server) RequireScopeForTest(scope string, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return s.newScopeGuard(scope).wrap(next)
}

// ObserveMemoForTest makes every validation that goes through a
// connection's memo call seen with that memo first, once: the Server asks
// the memo (Recall) before anything else, and only then, on a miss, the
// cache through it (ValidateMemo). It reports false, and
// changes nothing, when the Validator keeps no memos (the Server then
// never uses one). Call it before serving.
func (s *Server) ObserveMemoForTest(seen func(*authcache.Memo)) bool {
	if s.memo == nil {
		return false
	}
	s.memo = observedMemo{next: s.memo, seen: seen}
	return true
}

// observedMemo is a memoValidator that reports each memo it is handed.
type observedMemo struct {
	next memoValidator
	seen func(*authcache.Memo)
}

func (o observedMemo) Recall(token []byte, m *authcache.Memo) *auth.Principal {
	o.seen(m)
	return o.next.Recall(token, m)
}

func (o observedMemo) ValidateMemo(ctx context.Context, token []byte, m *authcache.Memo) (*auth.Principal, error) {
	return o.next.ValidateMemo(ctx, token, m)
}

// ConnMemoForTest is the memo of connection c (a connection Listener
// accepted, or a TLS connection over one); nil for any other.
func ConnMemoForTest(c net.Conn) *authcache.Memo { return connMemo(c) }
