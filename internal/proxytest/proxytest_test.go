package proxytest

import (
	"io"
	"net/http"
	"testing"
)

// TestProxiesReachTheUpstream proves the generated nginx and Caddy
// configurations start and pass a request through to the echo upstream.
func TestProxiesReachTheUpstream(t *testing.T) {
	up := NewEcho(t)
	cases := []struct {
		name  string
		start func(testing.TB) *Proc
	}{
		{"nginx", func(tb testing.TB) *Proc {
			return Nginx(tb, `
    server {
        listen {{LISTEN}};
        location / { proxy_pass http://`+up.Addr()+`; }
    }`)
		}},
		{"caddy", func(tb testing.TB) *Proc {
			return Caddy(tb, `http://{{LISTEN}} {
	reverse_proxy `+up.Addr()+`
}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.start(t)
			before := up.Hits()
			resp, err := http.Get(p.URL() + "/hello?x=1")
			if err != nil {
				t.Fatalf("GET through %s: %v\n%s", tc.name, err, p.Log())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			e, err := Decode(body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v\n%s", resp.StatusCode, err, p.Log())
			}
			if e.URI != "/hello?x=1" || up.Hits() != before+1 {
				t.Fatalf("upstream saw %q, hits %d", e.URI, up.Hits()-before)
			}
		})
	}
}
