package stack

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
)

// TestStart checks that each Option reaches the app: the caller's issuer
// is trusted (and outlives the server), Args set the mode, UncachedValid
// the cache, Listener the transport. cmd/server/app's tests serve every
// mode end to end.
func TestStart(t *testing.T) {
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		uncached  bool
		inMemory  bool
		mode      config.Mode
		wantCalls uint64 // validator calls for three checks of one token
	}{
		{name: "local over loopback", mode: config.ModeLocal, wantCalls: 1},
		{name: "local uncached in memory", uncached: true, inMemory: true, mode: config.ModeLocal, wantCalls: 3},
		{name: "remote", args: []string{"--validation-mode=remote"}, mode: config.ModeRemote, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Issuer: iss, Args: tc.args, UncachedValid: tc.uncached}
			if tc.inMemory {
				o.Listener = fasthttputil.NewInmemoryListener()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Start(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Dev() != iss {
				t.Error("the server does not trust Options.Issuer")
			}
			if got := s.Config().Mode; got != tc.mode {
				t.Errorf("mode %s, want %s", got, tc.mode)
			}
			if tc.inMemory {
				if s.Addr() != o.Listener.Addr().String() {
					t.Errorf("Addr %s is not the in-memory listener's", s.Addr())
				}
			} else if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
				t.Errorf("URL %q is not loopback", s.URL())
			}
			for range 3 {
				if _, err := s.Cache().Validate(ctx, []byte(tok)); err != nil {
					t.Fatal(err)
				}
				s.Cache().Wait()
			}
			if got := s.Cache().Stats().Validations; got != tc.wantCalls {
				t.Errorf("validations = %d, want %d", got, tc.wantCalls)
			}
		})
	}
	if code, _, err := fasthttp.GetTimeout(nil, iss.DiscoveryURL(), 5*time.Second); err != nil || code != 200 {
		t.Errorf("the issuer after the servers closed: %d %v", code, err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil || !strings.HasPrefix(err.Error(), "stack: ") {
		t.Errorf("no issuer: %v", err)
	}
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	if _, err := Start(context.Background(), Options{Issuer: iss, Args: []string{"--validation-mode=psychic"}}); err == nil || !strings.Contains(err.Error(), "VALIDATION_MODE") {
		t.Errorf("bad mode: %v", err)
	}
}

// TestStartPolicy checks that Options.Policy reaches the decision
// endpoints, and that its temporary file is gone once the server runs.
func TestStartPolicy(t *testing.T) {
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Issuer: iss, Policy: DecisionPolicy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if path := s.Config().PolicyFile; path == "" {
		t.Error("no POLICY_FILE in the server's configuration")
	} else if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the policy file %s is still there: %v", path, err)
	}
	tests := []struct {
		uri     string
		token   bool
		status  int
		subject string
	}{
		{"/orders/1?x=1", true, 200, "dev-client"},
		{"/orders/1", false, 401, ""},
		{"/status", false, 200, ""},
		{"/elsewhere", true, 403, ""},
	}
	for _, tc := range tests {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(s.URL() + "/auth/forward")
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", tc.uri)
		if tc.token {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := string(resp.Header.Peek("X-Auth-Subject")); resp.StatusCode() != tc.status || got != tc.subject {
			t.Errorf("%s (token %v): %d, X-Auth-Subject %q; want %d, %q", tc.uri, tc.token, resp.StatusCode(), got, tc.status, tc.subject)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	if _, err := Start(ctx, Options{Issuer: iss, Policy: "routes: [oops"}); err == nil || !strings.HasPrefix(err.Error(), "stack: ") {
		t.Errorf("a bad policy: %v", err)
	}
}
