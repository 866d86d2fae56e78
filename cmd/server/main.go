package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/sharedcache"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // could not start, or serving failed
	exitConfig = 2 // invalid or missing configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program: it serves until ctx ends and returns the exit
// code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runWith(ctx, options{
		args:       args,
		getenv:     getenv,
		stdout:     stdout,
		stderr:     stderr,
		dotenvPath: config.DefaultDotenvPath,
	})
}

// options are run's inputs plus the seams tests use.
type options struct {
	args       []string
	getenv     func(string) string
	stdout     io.Writer // -h output and the --dev banner
	stderr     io.Writer // logs and configuration errors
	dotenvPath string    // "" reads no .env file

	// now is app.Options.Now (nil: time.Now).
	now func() time.Time
	// started, when set, is called once the server accepts connections,
	// with the running app. It must not block for long: run waits for it
	// before watching ctx.
	started func(*app.App)
}

func runWith(ctx context.Context, o options) int {
	if o.stdout == nil {
		o.stdout = io.Discard
	}
	if o.stderr == nil {
		o.stderr = io.Discard
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

	a, err := app.Start(ctx, cfg, app.Options{Now: o.now, Logger: log})
	if err != nil {
		if ctx.Err() != nil { // stopped while starting: not a failure
			log.Info("tokengate: stopped before serving", zap.Error(err))
			return exitOK
		}
		log.Error("tokengate: cannot start", zap.Error(err))
		return exitFailed
	}
	a.PrintDevBanner(o.stdout)
	if o.started != nil {
		o.started(a)
	}

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("tokengate: stopping", zap.Duration("timeout", cfg.ShutdownTimeout))
	case <-a.Done():
		log.Error("tokengate: serving failed", zap.Error(a.Err()))
		code = exitFailed
	}
	a.Close()
	log.Info("tokengate: stopped")
	return code
}
