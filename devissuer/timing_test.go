package devissuer

import (
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkMint measures one signed token per algorithm: what a load-test
// token pool costs (MintN divides it by the CPUs).
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			iss := unstarted(b, Config{Algorithm: alg})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iss.Mint(MintOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIntrospect measures the issuer's side of one introspection of a
// known token, through the handler: the cost the issuer adds to a remote
// validation besides the network.
func BenchmarkIntrospect(b *testing.B) {
	iss := unstarted(b, Config{Algorithm: "RS256"})
	tok, err := iss.Mint(MintOptions{})
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"token": {tok}, "client_id": {"dev-client"}, "client_secret": {"dev-secret"}}.Encode()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(iss.IntrospectionURL())
		ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
		ctx.Request.SetBodyString(body)
		iss.handle(&ctx, nil)
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) < 20 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
