package app

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/proxyrun"
	"github.com/tokengate/tokengate/internal/proxytest"
)

// proxiesPolicy is the policy the real-proxy tests put tokengate under.
const proxiesPolicy = `
default: deny
routes:
  - path: /orders/**
    scopes: [items]
  - path: /admin/**
    scopes: [admin]
  - path: /status
    public: true
`

// caddyForwardAuth is the Caddyfile the README gives for forward_auth.
func caddyForwardAuth(tokengate, upstream string) string {
	return `http://{{LISTEN}} {
	# route keeps the order as written: Caddy's default order would run
	# request_header after forward_auth and delete tokengate's values.
	route {
		# Client-sent copies of the claim headers go first; forward_auth
		# then copies tokengate's values on an allowed request.
		request_header -X-Auth-Subject
		request_header -X-Auth-Client-Id
		request_header -X-Auth-Scopes
		forward_auth ` + tokengate + ` {
			uri /auth/forward
			copy_headers X-Auth-Subject X-Auth-Client-Id X-Auth-Scopes
		}
		reverse_proxy ` + upstream + `
	}
}`
}

// TestRealProxies puts tokengate's decision endpoints behind real nginx
// (auth_request) and Caddy (forward_auth) from Debian's packages, in front
// of an upstream that echoes what it receives, and checks the six
// behaviours of issue 10 through each.
func TestRealProxies(t *testing.T) {
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(proxiesPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	// Hybrid: a never-seen token needs the authorization server, so that
	// stopping it shows what the proxies make of tokengate's 503.
	a := start(t, devConfig(t, "--validation-mode=hybrid", "--policy-file="+policyPath), Options{})
	waitReady(t, a)
	up := proxytest.NewEcho(t)

	proxies := []struct {
		name  string
		start func(testing.TB) *proxytest.Proc
	}{
		{"nginx", func(tb testing.TB) *proxytest.Proc {
			return proxytest.Nginx(tb, proxyrun.NginxAuthRequest(a.Addr(), up.Addr(), ""))
		}},
		{"caddy", func(tb testing.TB) *proxytest.Proc {
			return proxytest.Caddy(tb, caddyForwardAuth(a.Addr(), up.Addr()))
		}},
	}
	for _, px := range proxies {
		t.Run(px.name, func(t *testing.T) {
			p := px.start(t)
			do := func(path, token string, header ...string) (*http.Response, []byte) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, p.URL()+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				c := &http.Client{Timeout: 10 * time.Second}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("GET %s through %s: %v\n%s", path, px.name, err, p.Log())
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, body
			}
			mint := func(scopes ...string) string {
				tok, err := a.Dev().Mint(devissuer.MintOptions{Scopes: scopes})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			good := mint("items")

			t.Run("no token: 401 with tokengate's challenge", func(t *testing.T) {
				hits := up.Hits()
				resp, body := do("/orders/1", "")
				if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="tokengate"` {
					t.Errorf("status %d, WWW-Authenticate %q, body %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
				}
				if up.Hits() != hits {
					t.Error("the upstream was reached")
				}
			})
			t.Run("valid token: upstream sees the claim headers", func(t *testing.T) {
				resp, body := do("/orders/1?x=1", good)
				e, err := proxytest.Decode(body)
				if resp.StatusCode != 200 || err != nil {
					t.Fatalf("status %d, %v: %s", resp.StatusCode, err, body)
				}
				want := map[string]string{"X-Auth-Subject": "dev-client", "X-Auth-Client-Id": "dev-client", "X-Auth-Scopes": "items"}
				for k, v := range want {
					if got := e.Header[k]; len(got) != 1 || got[0] != v {
						t.Errorf("upstream saw %s = %q, want %q", k, got, v)
					}
				}
				if e.URI != "/orders/1?x=1" {
					t.Errorf("upstream saw %q", e.URI)
				}
			})
			t.Run("client-sent claim headers never reach the upstream", func(t *testing.T) {
				for _, tc := range []struct{ path, token string }{{"/orders/1", good}, {"/status", ""}} {
					resp, body := do(tc.path, tc.token, "X-Auth-Subject", "admin", "X-Auth-Scopes", "admin")
					e, err := proxytest.Decode(body)
					if resp.StatusCode != 200 || err != nil {
						t.Fatalf("%s: status %d, %v: %s", tc.path, resp.StatusCode, err, body)
					}
					for _, k := range []string{"X-Auth-Subject", "X-Auth-Scopes"} {
						for _, v := range e.Header[k] {
							if strings.Contains(v, "admin") {
								t.Errorf("%s: upstream saw the client's %s: %q", tc.path, k, e.Header[k])
							}
						}
					}
				}
			})
			t.Run("scope missing: 403", func(t *testing.T) {
				hits := up.Hits()
				if resp, body := do("/admin/x", good); resp.StatusCode != 403 {
					t.Errorf("status %d: %s", resp.StatusCode, body)
				}
				if up.Hits() != hits {
					t.Error("the upstream was reached")
				}
			})
			t.Run("public route: 200 without a token", func(t *testing.T) {
				if resp, body := do("/status", ""); resp.StatusCode != 200 {
					t.Errorf("status %d: %s", resp.StatusCode, body)
				}
			})
			t.Run("bypass spellings are refused", func(t *testing.T) {
				for _, path := range []string{"/status/../admin/x", "/status/%2e%2e/admin/x", "//admin/x", "/admin;a=b/x", "/status%2F..%2Fadmin"} {
					hits := up.Hits()
					resp, body := do(path, "")
					if resp.StatusCode == 200 || up.Hits() != hits {
						t.Errorf("%s: status %d, upstream hits +%d: %s", path, resp.StatusCode, up.Hits()-hits, body)
					}
				}
			})
			t.Run("authorization server down, token not cached: 503", func(t *testing.T) {
				fresh := mint("items")
				if err := a.Dev().Stop(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := a.Dev().Restart(); err != nil {
						t.Fatal(err)
					}
				}()
				hits := up.Hits()
				resp, body := do("/orders/1", fresh)
				if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
					t.Errorf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
				if up.Hits() != hits {
					t.Error("the upstream was reached")
				}
			})
		})
	}
}
