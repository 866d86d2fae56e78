package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/config"
)

// adminGet fetches path from the admin listener at addr.
func adminGet(tb testing.TB, addr, path string) (int, string) {
	tb.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestAdminListenerServesPprof(t *testing.T) {
	a := start(t, devConfig(t, "--admin-addr=127.0.0.1:0"), Options{})
	addr := a.AdminAddr()
	if addr == "" || addr == a.Addr() {
		t.Fatalf("AdminAddr = %q (API on %s), want a listener of its own", addr, a.Addr())
	}
	tests := []struct {
		path string
		want int
		body string
	}{
		{"/debug/pprof/", http.StatusOK, "goroutine"},
		{"/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile"},
		{"/debug/pprof/cmdline", http.StatusOK, ""},
		{"/debug/pprof/profile?seconds=1", http.StatusOK, ""},
		{"/debug/pprof/nonesuch", http.StatusNotFound, "Unknown profile"},
		{"/items", http.StatusNotFound, ""}, // the admin listener serves only pprof
		{"/", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := adminGet(t, addr, tc.path)
			if code != tc.want || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s = %d %.200q, want %d and %q", tc.path, code, body, tc.want, tc.body)
			}
		})
	}
	// The API listener does not serve the profiles.
	if code, _ := get(t, client(a, nil), "/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("API GET /debug/pprof/ = %d, want 404", code)
	}

	// Shutdown closes the admin listener with the server.
	a.Close()
	if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("admin listener %s still accepts connections after Close", addr)
	}
}

func TestAdminListenerOffByDefault(t *testing.T) {
	a := start(t, devConfig(t), Options{})
	if a.admin != nil || a.AdminAddr() != "" {
		t.Errorf("admin listener started without ADMIN_ADDR: %q", a.AdminAddr())
	}
	if code, _ := get(t, client(a, nil), "/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("API GET /debug/pprof/ = %d, want 404", code)
	}
}

// TestAdminListenerRefusesNonLoopback covers an address that config.Load
// would have refused (a Config built by hand): Start checks the resolved
// address itself and starts nothing.
func TestAdminListenerRefusesNonLoopback(t *testing.T) {
	cfg := devConfig(t)
	cfg.AdminAddr = "0.0.0.0:0"
	a, err := Start(context.Background(), cfg, Options{})
	if err == nil {
		a.Close()
		t.Fatal("Start succeeded with a non-loopback admin address")
	}
	if !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "ADMIN_ALLOW_NON_LOOPBACK") {
		t.Errorf("error %q does not explain the refusal", err)
	}
}

// TestAdminCmdlineRedactsSecrets: /debug/pprof/cmdline shows the command
// line, which net/http/pprof serves as given; a secret passed as a flag
// must not reach a client of the admin listener, which has no
// authentication.
func TestAdminCmdlineRedactsSecrets(t *testing.T) {
	const secret = "s3cr3t-pw"
	args := []string{"/usr/local/bin/tokengate", "--okta-issuer", "https://example.okta.com/oauth2/default",
		"--okta-client-secret", secret, "--redis-signing-key=" + secret + secret, "--validation-mode=remote"}
	srv := httptest.NewServer(adminMux(args))
	defer srv.Close()
	code, body := adminGet(t, strings.TrimPrefix(srv.URL, "http://"), "/debug/pprof/cmdline")
	if code != http.StatusOK || strings.Contains(body, secret) {
		t.Fatalf("GET /debug/pprof/cmdline = %d %q, want 200 without the secret", code, body)
	}
	want := strings.Join([]string{args[0], args[1], args[2], "--okta-client-secret", config.Redacted, "--redis-signing-key=" + config.Redacted, args[6]}, "\x00")
	if body != want {
		t.Errorf("cmdline %q, want %q", body, want)
	}
}
