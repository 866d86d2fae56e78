package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/config"
)

// Admin listener limits. The write timeout bounds a slow reader, and must
// exceed the longest profile asked for: net/http/pprof refuses a
// ?seconds= at or beyond the server's WriteTimeout.
const (
	adminReadHeaderTimeout = 5 * time.Second
	adminWriteTimeout      = 5 * time.Minute
	adminIdleTimeout       = 60 * time.Second
	adminMaxHeaderBytes    = 16 << 10
)

// adminServer is the opt-in admin listener (ADMIN_ADDR): the Go runtime's
// profiles under /debug/pprof/, on a net/http ServeMux of its own. It
// never uses http.DefaultServeMux, where any imported package may have
// registered handlers (importing net/http/pprof registers there too, so
// nothing here serves that mux).
type adminServer struct {
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc // ends in-flight profiles at shutdown
	served chan struct{}      // closed when Serve has returned
}

// adminMux routes /debug/pprof/ to net/http/pprof: the index (which also
// serves the named runtime profiles, heap, goroutine, allocs, block,
// mutex, threadcreate), and the handlers it does not cover; cmdline shows
// args (the program name first) with secret flags' values redacted.
func adminMux(args []string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", cmdline(args))
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startAdmin opens and serves the admin listener when cfg.AdminAddr is
// set. config.Load has refused a non-loopback address unless
// AdminAllowNonLoopback; the resolved address is checked again here, as
// listen does for --dev, so that a host name cannot lead elsewhere.
func (a *App) startAdmin(ctx context.Context) error {
	if a.cfg.AdminAddr == "" {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("app: admin listener on %s: %w", a.cfg.AdminAddr, err)
	}
	if !a.cfg.AdminAllowNonLoopback {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			_ = ln.Close()
			return fmt.Errorf("app: the admin listener serves only on loopback unless ADMIN_ALLOW_NON_LOOPBACK, and %s resolved to %s", a.cfg.AdminAddr, ln.Addr())
		}
	}
	base, cancel := context.WithCancel(context.Background())
	s := &adminServer{
		ln:     ln,
		cancel: cancel,
		served: make(chan struct{}),
		srv: &http.Server{
			Handler:           adminMux(os.Args),
			ReadHeaderTimeout: adminReadHeaderTimeout,
			WriteTimeout:      adminWriteTimeout,
			IdleTimeout:       adminIdleTimeout,
			MaxHeaderBytes:    adminMaxHeaderBytes,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          zap.NewStdLog(a.log.Named("admin")),
		},
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("tokengate: admin listener failed", zap.Error(err))
		}
	}()
	a.admin = s
	a.log.Info("tokengate: admin listener serving /debug/pprof/", zap.String("addr", ln.Addr().String()))
	return nil
}

// stopAdmin ends in-flight profiles, closes the admin listener and waits
// for its Serve to return. A no-op when there is none.
func (a *App) stopAdmin(ctx context.Context) {
	s := a.admin
	if s == nil {
		return
	}
	s.cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.served
}

// cmdline is pprof.Cmdline over args with the values of secret flags
// (--okta-client-secret, --redis-signing-key, --dev-client-secret)
// redacted: net/http/pprof serves os.Args as given, and the admin listener
// has no authentication (and may face the network with
// ADMIN_ALLOW_NON_LOOPBACK).
func cmdline(args []string) http.HandlerFunc {
	shown := slices.Clone(args)
	if len(shown) > 1 {
		shown = append(shown[:1], config.RedactArgs(shown[1:])...)
	}
	body := strings.Join(shown, "\x00")
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, body)
	}
}

// AdminAddr is the admin listener's address (host:port), or "" when
// ADMIN_ADDR is not set.
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.ln.Addr().String()
}
