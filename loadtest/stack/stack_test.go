package stack

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokengate/tokengate/devissuer"
)

func startIssuer(tb testing.TB) *devissuer.Issuer {
	tb.Helper()
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = iss.Close() })
	return iss
}

func get(tb testing.TB, c *fasthttp.HostClient, path, token string) (int, string) {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tokengate" + path)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode(), string(resp.Body())
}

// TestModes runs every mode end to end, over loopback TCP and over an
// in-memory listener, and checks the cache setting each scenario relies on.
func TestModes(t *testing.T) {
	iss := startIssuer(t)
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		args        []string
		uncached    bool
		inMemory    bool
		wantCalls   uint64 // validator calls for three requests
		introspects bool
	}{
		{name: "local", wantCalls: 1},
		{name: "local uncached", uncached: true, wantCalls: 3},
		{name: "local in memory", inMemory: true, wantCalls: 1},
		{name: "remote ttl 0", args: []string{"--validation-mode=remote", "--introspection-cache-ttl=0"}, wantCalls: 3, introspects: true},
		{name: "remote cached", args: []string{"--validation-mode=remote"}, wantCalls: 1, introspects: true},
		{name: "hybrid", args: []string{"--validation-mode=hybrid"}, wantCalls: 1, introspects: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Issuer: iss, Args: tc.args, UncachedValid: tc.uncached}
			var ln *fasthttputil.InmemoryListener
			if tc.inMemory {
				ln = fasthttputil.NewInmemoryListener()
				o.Listener = ln
			}
			s, err := Start(o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			c := &fasthttp.HostClient{Addr: s.Addr()}
			if ln != nil {
				c.Dial = func(string) (net.Conn, error) { return ln.Dial() }
			} else if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
				t.Errorf("URL %q is not loopback", s.URL())
			}
			before := iss.Counts().Introspect
			if code, body := get(t, c, "/", ""); code != 200 || body != `{"Hello":"World"}` {
				t.Errorf("GET / = %d %s", code, body)
			}
			for range 3 {
				if code, body := get(t, c, "/items", tok); code != 200 || !strings.Contains(body, "red ball") {
					t.Fatalf("GET /items = %d %s", code, body)
				}
				s.Cache().Wait()
			}
			if code, _ := get(t, c, "/items", ""); code != 401 {
				t.Errorf("GET /items without token = %d", code)
			}
			if got := s.Cache().Stats().Validations; got != tc.wantCalls {
				t.Errorf("validations = %d, want %d", got, tc.wantCalls)
			}
			if got := iss.Counts().Introspect - before; (got > 0) != tc.introspects {
				t.Errorf("introspections = %d", got)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Options{}); err == nil || !strings.HasPrefix(err.Error(), "stack: ") {
		t.Errorf("no issuer: %v", err)
	}
	iss := startIssuer(t)
	if _, err := Start(Options{Issuer: iss, Args: []string{"--validation-mode=psychic"}}); err == nil || !strings.Contains(err.Error(), "VALIDATION_MODE") {
		t.Errorf("bad mode: %v", err)
	}
}
