package app

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/gateway"
	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/policy"
)

// panicValidator is an auth.Validator whose every call panics, standing in
// for any bug a hostile request might reach on the gateway's path.
type panicValidator struct{}

func (panicValidator) Validate(context.Context, []byte) (*auth.Principal, error) {
	panic("validator exploded")
}

// TestGatewayPanicIs500: in gateway mode a request is decided and
// forwarded ahead of the router, whose PanicHandler answers a panic with
// 500; a panic there must get the same answer (DESIGN: anything
// unexpected is a 500 with a request id, never a stack trace), not escape
// to fasthttp, which recovers nothing and would end the process.
func TestGatewayPanicIs500(t *testing.T) {
	holder := policy.NewHolder(policy.Default("items"), nil)
	s, err := handlers.New(handlers.Config{Validator: panicValidator{}, Policy: holder, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Upstream: "http://127.0.0.1:1", Policy: holder})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{handlers: s, gw: gw}
	h := a.Handler()

	var req fasthttp.Request
	req.SetRequestURI("/orders/1")
	req.Header.SetHost("api.example.com")
	req.Header.Set("Authorization", "Bearer any-token")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}, nil)

	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("the panic escaped the gateway handler: %v", v)
			}
		}()
		h(&ctx)
	}()
	if got := ctx.Response.StatusCode(); got != fasthttp.StatusInternalServerError {
		t.Errorf("status %d, want 500: %s", got, ctx.Response.Body())
	}
	if got := string(ctx.Response.Body()); got != `{"detail":"Internal Server Error"}` {
		t.Errorf("body %s", got)
	}
	if strings.Contains(string(ctx.Response.Body()), "exploded") {
		t.Errorf("body %s shows the panic", ctx.Response.Body())
	}
	if len(ctx.Response.Header.Peek("X-Request-Id")) == 0 {
		t.Error("no X-Request-Id on the 500")
	}
}
