package app

import (
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/gateway"
)

// Gateway mode (UPSTREAM_URL): tokengate is the reverse proxy in front of
// one service. Its own operational paths stay its own; every other request
// is decided by handlers.Server.Decide (the decision endpoints' decision)
// and, when allowed, forwarded by package gateway. The demo routes (/,
// /items, /token, /docs, /openapi.json) are not served: they would shadow
// the upstream's paths.

// buildGateway builds the gateway when cfg.UpstreamURL is set.
func (a *App) buildGateway() error {
	if a.cfg.UpstreamURL == "" {
		return nil
	}
	gw, err := gateway.New(gateway.Config{
		Upstream:           a.cfg.UpstreamURL,
		Timeout:            a.cfg.UpstreamTimeout,
		StripAuthorization: a.cfg.StripAuthorization,
		Policy:             a.policy,
		TrustedProxies:     a.cfg.TrustedProxies,
		Logger:             a.log,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.gw = gw
	return nil
}

// operational reports whether path (fasthttp's normalised path) is one of
// tokengate's own: /healthz, /readyz, /metrics and /auth/….
func operational(path []byte) bool {
	switch string(path) {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return len(path) > len("/auth/") && string(path[:len("/auth/")]) == "/auth/"
}

// gatewayHandler serves tokengate's operational paths with h and forwards
// every other request that Decide allows. A panic in either answers 500,
// as under the router: this runs ahead of it.
func (a *App) gatewayHandler(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer a.handlers.Recover(ctx)
		// The header is in: the body streams under the silence timeout
		// (gatewayListener).
		gateway.HeaderReceived(ctx.Conn())
		if operational(ctx.Path()) {
			h(ctx)
			return
		}
		// The Host header, which the upstream reads, not ctx.Host(): fasthttp
		// takes that from a target like "//other.host/x?u=http://y".
		v := a.handlers.Decide(ctx, ctx.Method(), ctx.Request.Header.Host(), ctx.Request.Header.RequestURI())
		if v.Allowed {
			a.gw.Forward(ctx, v.Principal, v.Token)
		}
	}
}

// gatewayListener wraps ln so that client connections time out on silence
// (timeout without a byte either way) rather than on the total length of
// a streamed upload or download, while a request header must arrive
// within timeout of its first byte (gatewayHandler ends that phase); serve
// turns the server's own read and write timeouts off in gateway mode.
func gatewayListener(ln net.Listener, timeout time.Duration) net.Listener {
	return gateway.NewIdleListener(ln, timeout)
}
