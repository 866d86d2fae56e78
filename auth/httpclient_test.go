package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestHTTPClientLimits: long response headers (managed servers send long
// security headers) are read, and a body over the limit is refused.
func TestHTTPClientLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strings.Repeat("a", 10<<10))
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, 2<<10))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	c := NewHTTPClient(HTTPClientConfig{MaxResponseBodySize: 1 << 10})
	for _, tc := range []struct {
		path    string
		wantErr error
	}{
		{"/", nil},
		{"/big", fasthttp.ErrBodyTooLarge},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(srv.URL + tc.path)
		err := c.DoDeadline(req, resp, time.Now().Add(5*time.Second))
		if err != tc.wantErr {
			t.Errorf("GET %s: err = %v, want %v", tc.path, err, tc.wantErr)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}
