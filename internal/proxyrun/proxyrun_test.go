package proxyrun_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/proxyrun"
	"github.com/tokengate/tokengate/internal/proxytest"
)

// TestNginxStartStop starts nginx with a configuration that answers by
// itself, checks that it listens where Proc says, and that Stop ends its
// whole process group and frees the port.
func TestNginxStartStop(t *testing.T) {
	bin := proxytest.Require(t, "nginx")
	for _, workers := range []int{0, 2} {
		p, err := proxyrun.Nginx(context.Background(), proxyrun.NginxConfig{
			Bin: bin, Dir: t.TempDir(), Workers: workers,
			HTTP: `server { listen {{LISTEN}}; location / { return 204; } }`,
		})
		if err != nil {
			t.Fatal(err)
		}
		pid := p.Pid()
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			p.Stop()
			t.Fatalf("workers=%d: dial %s: %v\n%s", workers, p.Addr, err, p.Log())
		}
		c.Close()
		p.Stop()
		p.Stop() // a second Stop is harmless
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("workers=%d: process group %d still exists after Stop (kill 0: %v)", workers, pid, err)
		}
		if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("workers=%d: %s still accepts connections after Stop", workers, p.Addr)
		}
	}
}

// TestStartErrors covers the failures a caller must see as errors: a
// configuration nginx refuses, a missing binary, missing fields.
func TestStartErrors(t *testing.T) {
	bin := proxytest.Require(t, "nginx")
	ctx := context.Background()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"bad configuration", func() error {
			_, err := proxyrun.Nginx(ctx, proxyrun.NginxConfig{Bin: bin, Dir: t.TempDir(), HTTP: "server { listen {{LISTEN}}; bogus_directive on; }"})
			return err
		}, "nginx -t refused"},
		{"no dir", func() error {
			_, err := proxyrun.Nginx(ctx, proxyrun.NginxConfig{Bin: bin})
			return err
		}, "needs Bin and Dir"},
		{"caddy without bin", func() error {
			_, err := proxyrun.Caddy(ctx, proxyrun.CaddyConfig{Dir: t.TempDir()})
			return err
		}, "needs Bin and Dir"},
		{"not installed", func() error {
			_, err := proxyrun.Lookup("tokengate-no-such-proxy")
			if !errors.Is(err, proxyrun.ErrNotInstalled) {
				t.Errorf("Lookup: %v does not wrap ErrNotInstalled", err)
			}
			return err
		}, "not installed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "proxyrun: ") {
				t.Errorf("error %v, want one starting proxyrun: and containing %q", err, tc.want)
			}
		})
	}
}
