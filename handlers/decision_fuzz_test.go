package handlers_test

import (
	"net"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
)

// FuzzDecisionOriginal feeds untrusted original-request headers (and
// Envoy's raw request target) to the decision endpoints without a token,
// under decisionPolicy, where only /public/** is open to anonymous
// requests. Whatever the bytes, the answer is one of 200, 400, 401 and
// 403, never a panic; and a 200 is only given to a target that two
// readings put under /public: the policy's own (Normalize, as every
// decision is made) and Go's server (net/url's request-target parsing,
// then path.Clean as http.FileServer does), so that no spelling reads
// as public to the policy and as another path to an upstream.
func FuzzDecisionOriginal(f *testing.F) {
	for _, seed := range []struct {
		dialect                      uint8
		method, target, host, urlArg string
	}{
		{0, "GET", "/public/a", "x", ""},
		{0, "GET", "/public/../admin", "x", ""},
		{0, "GET", "/public#/../admin", "x", ""},
		{0, "get", "/public/%2e%2e/admin?x#y", "API.example.com:8443", ""},
		{0, "GET", "/public%2F..%2Fadmin", "x", ""},
		{0, "GET", "//public/a", "x", ""},
		{0, "GET", "/public/a;x", "x", ""},
		{0, "GET", "http://x/public/a", "x", ""},
		{1, "GET", "/public/a", "x", ""},
		{1, "POST", "", "", "https://x/public/a?q=#/../../admin"},
		{1, "GET", "/public/a", "x", "https://x/public/a"},
		{1, "GET", "", "", "http://x#/public/a"},
		{2, "GET", "/public/a", "x", ""},
		{2, "HEAD", "/../../public/a", "x", ""},
		{2, "GET", "/../../healthz", "x", ""},
		{2, "GET", "/public/a#/../../admin", "x", ""},
	} {
		f.Add(seed.dialect, seed.method, seed.target, seed.host, seed.urlArg)
	}
	s := newDecisionServer(f, "")
	h := s.Handler()
	f.Fuzz(func(t *testing.T, dialect uint8, method, target, host, urlArg string) {
		var req fasthttp.Request
		// orig is the target the upstream will get, as the header holds
		// it: fasthttp trims a value's surrounding white space (a raw CR
		// or LF cannot be in a header line anyway).
		var orig string
		switch dialect % 3 {
		case 0:
			req.SetRequestURI(handlers.PathForward)
			req.Header.Set("X-Forwarded-Method", method)
			req.Header.Set("X-Forwarded-Uri", target)
			req.Header.Set("X-Forwarded-Host", host)
			orig = string(req.Header.Peek("X-Forwarded-Uri"))
		case 1:
			req.SetRequestURI(handlers.PathRequest)
			req.Header.Set("X-Original-Method", method)
			if target != "" {
				req.Header.Set("X-Original-URI", target)
				orig = string(req.Header.Peek("X-Original-URI"))
			}
			if urlArg != "" {
				req.Header.Set("X-Original-URL", urlArg)
				urlArg = string(req.Header.Peek("X-Original-URL"))
			}
			req.Header.Set("X-Forwarded-Host", host)
		case 2:
			if target == "" || target[0] != '/' {
				return
			}
			req.Header.SetMethod(method)
			req.Header.SetRequestURI(handlers.PathEnvoy + target)
			req.Header.SetHost(host)
			if len(req.URI().PathOriginal()) == 0 {
				return // fasthttp's server answers such a Host 400 before any handler
			}
			orig = strings.TrimPrefix(string(req.Header.RequestURI()), handlers.PathEnvoy)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
		h(&ctx)
		status := ctx.Response.StatusCode()
		switch status {
		case 400, 401, 403:
			return
		case 200:
		default:
			t.Fatalf("status %d for %q %q %q %q", status, method, target, host, urlArg)
		}
		if orig == "" {
			// X-Original-URL alone: the target is what follows the
			// authority, as ingress-nginx writes
			// $scheme://$http_host$request_uri ("/" when nothing does).
			rest := urlArg[strings.Index(urlArg, "://")+3:]
			orig = "/"
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				orig = rest[i:]
			}
		}
		u, err := url.ParseRequestURI(orig)
		if err != nil {
			t.Fatalf("allowed %q, which Go's server refuses: %v", orig, err)
		}
		if p := path.Clean(u.Path); p != "/public" && !strings.HasPrefix(p, "/public/") {
			t.Fatalf("allowed %q as public; Go's server reads the path %q", orig, p)
		}
	})
}
