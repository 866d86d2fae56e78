package handlers

import "github.com/valyala/fasthttp"

// Hooks for the external tests (package handlers_test); compiled only
// into the test binary.

// ItemsRouteForTest returns the /items handler behind its scope guard,
// without the router in front.
func (s *Server) ItemsRouteForTest() fasthttp.RequestHandler { return s.items.wrap(s.listItems) }

// RequireScopeForTest puts next behind the auth middleware for scope.
func (s *Server) RequireScopeForTest(scope string, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return s.newScopeGuard(scope).wrap(next)
}
