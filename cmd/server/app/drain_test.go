package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/devissuer"
)

// TestShutdownDrains: from the moment Shutdown begins, /readyz answers 503
// "shutting down" and every response carries Connection: close, while the
// server keeps serving for the drain delay; a ctx that ends cuts the delay
// short, and then Shutdown stops the server.
func TestShutdownDrains(t *testing.T) {
	a := start(t, devConfig(t, "--shutdown-drain-delay=10m"), Options{})
	waitReady(t, a)
	tok, err := a.Dev().Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := client(a, nil)
	type answer struct {
		status int
		body   string
		close  bool
	}
	do := func(t *testing.T, path, token string) answer {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://tokengate" + path)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return answer{resp.StatusCode(), string(resp.Body()), resp.ConnectionClose()}
	}
	if got := do(t, "/readyz", ""); got.status != 200 || got.close {
		t.Fatalf("before Shutdown: /readyz = %+v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- a.Shutdown(ctx) }()
	// Shutdown marks the App as draining before anything else; Ready is
	// the event to wait for.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !errors.Is(a.Ready(), errShuttingDown) {
		<-tick.C
	}

	cases := []struct {
		name, path, token string
		status            int
		body              string
	}{
		{name: "readyz says shutting down", path: "/readyz", status: 503, body: `{"detail":"not ready: shutting down"}`},
		{name: "healthz still ok", path: "/healthz", status: 200, body: `{"status":"ok"}`},
		{name: "items still served", path: "/items", token: tok, status: 200, body: itemsJSON},
		{name: "no token still 401", path: "/items", status: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, tc.path, tc.token)
			if got.status != tc.status || (tc.body != "" && got.body != tc.body) {
				t.Errorf("GET %s = %d %s, want %d %s", tc.path, got.status, got.body, tc.status, tc.body)
			}
			if !got.close {
				t.Error("no Connection: close while draining")
			}
		})
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned during the drain delay: %v", err)
	default:
	}

	cancel()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return after its ctx ended")
	}
	select {
	case <-a.Done():
	default:
		t.Error("still serving after Shutdown")
	}
	if err := a.Err(); err != nil {
		t.Errorf("Err after Shutdown = %v", err)
	}
}
