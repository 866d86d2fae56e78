package handlers_test

import (
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// decisionCtx builds a RequestCtx for c as if it came from 127.0.0.1.
func decisionCtx(c call) *fasthttp.RequestCtx {
	var req fasthttp.Request
	if c.method == "" {
		c.method = fasthttp.MethodGet
	}
	req.Header.SetMethod(c.method)
	req.SetRequestURI(c.path)
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}
