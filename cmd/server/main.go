package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	// The Mozilla root bundle, used only when the system has none (a
	// scratch container): see the package doc.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/policy"
	"github.com/tokengate/tokengate/sharedcache"
)

// Build stamps, set by the linker: go build -ldflags "-X main.version=v1.2.0
// -X main.commit=… -X main.date=…" (make build and make image do it).
var (
	version = "(devel)"
	commit  = ""
	date    = ""
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // could not start, or serving failed
	exitConfig = 2 // invalid or missing configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGINT or SIGTERM starts the graceful stop; once it has,
	// the signals get their default action back, so a second one ends the
	// process at once instead of waiting out the drain.
	go func() { <-ctx.Done(); stop() }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := runWith(ctx, options{
		args:       os.Args[1:],
		getenv:     os.Getenv,
		stdout:     os.Stdout,
		stderr:     os.Stderr,
		dotenvPath: config.DefaultDotenvPath,
		reload:     hup,
	})
	signal.Stop(hup)
	stop()
	os.Exit(code)
}

// buildInfo is what the linker stamped.
func buildInfo() app.BuildInfo {
	return app.BuildInfo{Version: version, Commit: commit, Date: date}
}

// wantsVersion reports whether args ask for the version (--version or
// -version), which needs no configuration.
func wantsVersion(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--version" || a == "-version" {
			return true
		}
	}
	return false
}

// options are runWith's inputs: the process's, plus the seams tests use.
type options struct {
	args       []string
	getenv     func(string) string
	stdout     io.Writer // -h output and the --dev banner
	stderr     io.Writer // logs and configuration errors
	dotenvPath string    // "" reads no .env file

	// now is app.Options.Now (nil: time.Now).
	now func() time.Time
	// started, when set, is called once the server accepts connections,
	// with the running app. It must not block for long: runWith waits for it
	// before watching ctx.
	started func(*app.App)
	// reload receives SIGHUP: each signal calls App.Reload (nil: none).
	reload <-chan os.Signal
}

// runWith is the whole program: it serves until ctx ends and returns the
// exit code.
func runWith(ctx context.Context, o options) int {
	if o.stdout == nil {
		o.stdout = io.Discard
	}
	if o.stderr == nil {
		o.stderr = io.Discard
	}
	if wantsVersion(o.args) {
		b := buildInfo()
		fmt.Fprintf(o.stdout, "tokengate %s\ncommit %s\nbuilt %s\n%s\n", b.Version, orUnknown(b.Commit), orUnknown(b.Date), runtime.Version())
		return exitOK
	}
	cfg, err := config.Load(o.args, o.getenv, o.dotenvPath)
	if errors.Is(err, config.ErrHelp) {
		config.Usage(o.stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(o.stderr, "tokengate: %v\n", err)
		return exitConfig
	}

	log := app.NewLogger(cfg, o.stderr)
	defer func() { _ = log.Sync() }() // stderr may not support fsync
	if cfg.RedisURL != "" {
		// go-redis's process-wide logger prints every failed dial to
		// stderr; route it through ours, at most a line per 10s.
		redis.SetLogger(sharedcache.NewRedisLogger(log, nil))
	}

	a, err := app.Start(ctx, cfg, app.Options{Now: o.now, Logger: log, Build: buildInfo(), Getenv: o.getenv})
	if err != nil {
		if ctx.Err() != nil { // stopped while starting: not a failure
			log.Info("tokengate: stopped before serving", zap.Error(err))
			return exitOK
		}
		if pe, ok := errors.AsType[*policy.Error](err); ok {
			// A bad policy file is a configuration error: one line, exit 2.
			fmt.Fprintf(o.stderr, "tokengate: %v\n", pe)
			return exitConfig
		}
		if ce, ok := errors.AsType[*config.Error](err); ok {
			// So is a setting that only the policy file shows to be
			// wrong or missing (OKTA_ISSUER, an issuer's credential
			// variables, REDIS_URL where no issuer introspects).
			fmt.Fprintf(o.stderr, "tokengate: %v\n", ce)
			return exitConfig
		}
		log.Error("tokengate: cannot start", zap.Error(err))
		return exitFailed
	}
	a.PrintDevBanner(o.stdout)
	if o.started != nil {
		o.started(a)
	}

	code := exitOK
	for serving := true; serving; {
		select {
		case <-ctx.Done():
			log.Info("tokengate: stopping",
				zap.Duration("drain_delay", cfg.ShutdownDrainDelay),
				zap.Duration("timeout", cfg.ShutdownTimeout))
			serving = false
		case <-a.Done():
			log.Error("tokengate: serving failed", zap.Error(a.Err()))
			code = exitFailed
			serving = false
		case <-o.reload:
			log.Info("tokengate: SIGHUP: reloading")
			_ = a.Reload() // logged by Reload; the previous state stays in use
		}
	}
	// A stop that had to cut off requests still exits 0: SHUTDOWN_TIMEOUT
	// did its job, and the log says what was cut off.
	a.Close()
	log.Info("tokengate: stopped")
	return code
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
