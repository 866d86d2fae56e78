package gateway_test

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokengate/tokengate/gateway"
	"github.com/tokengate/tokengate/policy"
)

// BenchmarkForward measures the gateway's own cost: a small GET through a
// fasthttp front that forwards every request (as allowed, with alice's
// claim headers) to a fasthttp upstream, all over loopback TCP with
// keep-alive. BenchmarkForward/direct is the same client straight to the
// upstream, the baseline.
func BenchmarkForward(b *testing.B) {
	body := []byte(`{"upstream":"ok"}`)
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go func() { _ = up.Serve(upLn) }()
	b.Cleanup(func() { _ = up.Shutdown() })

	gw, err := gateway.New(gateway.Config{Upstream: "http://" + upLn.Addr().String(), Policy: policy.NewHolder(policy.Default("items"), nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Close)
	frontLn := fasthttputil.NewInmemoryListener()
	front := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			gateway.HeaderReceived(ctx.Conn()) // as tokengate's gateway mode does
			gw.Forward(ctx, alice, nil)
		},
		StreamRequestBody: true,
	}
	go func() { _ = front.Serve(gateway.NewIdleListener(frontLn, 10*time.Second)) }()
	b.Cleanup(func() { _ = front.Shutdown() })

	for _, tc := range []struct {
		name string
		c    *fasthttp.HostClient
	}{
		{"direct", &fasthttp.HostClient{Addr: upLn.Addr().String()}},
		{"gateway", &fasthttp.HostClient{Addr: "gateway", Dial: func(string) (net.Conn, error) { return frontLn.Dial() }}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://api.example.com/orders/1")
				req.Header.Set("Authorization", "Bearer token")
				for pb.Next() {
					if err := tc.c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v, status %d", err, resp.StatusCode())
					}
				}
			})
		})
	}
}
