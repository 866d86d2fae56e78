package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/handlers"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // could not start, or serving failed
	exitConfig = 2 // invalid or missing configuration
)

// Server limits. Request bodies are small form posts (/token); headers carry
// at most one bearer token of MAX_TOKEN_SIZE bytes.
const (
	maxRequestBodySize = 64 << 10
	readTimeout        = 10 * time.Second
	writeTimeout       = 10 * time.Second
	idleTimeout        = 60 * time.Second
	readyCheckTimeout  = 2 * time.Second
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

	// now is the clock of the validators, key set, discovery and cache
	// (nil: time.Now). Network deadlines always use the wall clock.
	now func() time.Time
	// started, when set, is called once the server accepts connections,
	// with the running app (its bound address in app.addr). It must not
	// block for long: run waits for it before watching ctx.
	started func(*app)
}

// app is one running tokengate: everything start built, in the order stop
// tears it down.
type app struct {
	cfg  config.Config
	log  *zap.Logger
	addr string // bound listen address, host:port

	dev       *devissuer.Issuer // nil unless --dev
	issuer    string
	audience  string
	discovery *auth.Discovery
	keys      *auth.KeySet // nil in remote mode
	cache     *authcache.Cache
	handlers  *handlers.Server

	server     *fasthttp.Server
	ln         net.Listener
	serveDone  chan error // receives Serve's result
	baseCancel context.CancelFunc
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

	log := newLogger(cfg, o.stderr)
	defer func() { _ = log.Sync() }() // stderr may not support fsync

	a, err := start(cfg, log, o.now)
	if err != nil {
		log.Error("tokengate: cannot start", zap.Error(err))
		return exitFailed
	}
	if cfg.Dev {
		a.printDevBanner(o.stdout)
	}
	if o.started != nil {
		o.started(a)
	}

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("tokengate: stopping", zap.Duration("timeout", cfg.ShutdownTimeout))
	case err := <-a.serveDone:
		// Serve returns only on a listener failure before shutdown.
		a.serveDone <- err // for stop
		log.Error("tokengate: serving failed", zap.Error(err))
		code = exitFailed
	}
	a.stop()
	log.Info("tokengate: stopped")
	return code
}

// newLogger builds the zap logger: JSON lines, or console lines under
// --dev (LOG_FORMAT), at LOG_LEVEL, to w.
func newLogger(cfg config.Config, w io.Writer) *zap.Logger {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil { // config validated it
		level = zapcore.InfoLevel
	}
	var enc zapcore.Encoder
	if cfg.LogFormat == config.LogConsole {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	sink := zapcore.Lock(zapcore.AddSync(w))
	return zap.New(zapcore.NewCore(enc, sink, level), zap.ErrorOutput(sink))
}

// start builds and starts everything. On error it has stopped whatever it
// had started.
func start(cfg config.Config, log *zap.Logger, now func() time.Time) (_ *app, err error) {
	if now == nil {
		now = time.Now
	}
	a := &app{cfg: cfg, log: log, issuer: cfg.Issuer, audience: cfg.Audience}
	defer func() {
		if err != nil {
			a.stop()
		}
	}()
	for _, name := range cfg.DevIgnored {
		log.Warn("tokengate: ignored under --dev: the development issuer supplies it", zap.String("variable", name))
	}

	clientID, clientSecret := cfg.ClientID, cfg.ClientSecret
	if cfg.Dev {
		a.dev, err = devissuer.Start(devissuer.Config{
			Addr:          cfg.DevIssuerAddr,
			Clients:       []devissuer.Client{{ID: cfg.DevClientID, Secret: cfg.DevClientSecret}},
			Audience:      cfg.Audience,
			DefaultScopes: strings.Fields(cfg.TokenScope),
			Logger:        log,
		})
		if err != nil {
			return nil, fmt.Errorf("starting the development issuer: %w", err)
		}
		a.issuer = a.dev.Issuer()
		clientID, clientSecret = cfg.DevClientID, cfg.DevClientSecret
	}

	// One pooled, size-limited client for every call to the authorization
	// server: discovery, JWKS, introspection and the /token relay.
	client := auth.NewHTTPClient(auth.HTTPClientConfig{
		ReadTimeout: max(5*time.Second, cfg.IntrospectionTimeout),
	})

	a.discovery, err = auth.NewDiscovery(auth.DiscoveryConfig{
		Issuer: a.issuer,
		Override: auth.Metadata{
			JWKSURI:               cfg.JWKSURI,
			TokenEndpoint:         cfg.TokenEndpoint,
			IntrospectionEndpoint: cfg.IntrospectionEndpoint,
		},
		Client: client,
		Now:    now,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}

	var local *auth.Local
	if cfg.Mode == config.ModeLocal || cfg.Mode == config.ModeHybrid {
		a.keys, err = auth.NewKeySet(auth.KeySetConfig{
			Discovery:          a.discovery,
			Client:             client,
			RefreshInterval:    cfg.JWKSRefreshInterval,
			UnknownKIDCooldown: cfg.JWKSRefreshCooldown,
			Now:                now,
			Logger:             log,
		})
		if err != nil {
			return nil, err
		}
		leeway := cfg.ClockLeeway
		if leeway == 0 {
			leeway = -1 // auth.LocalConfig: negative means none, 0 means the default
		}
		local, err = auth.NewLocal(auth.LocalConfig{
			Issuer:         a.issuer,
			Audience:       a.audience,
			Keys:           a.keys,
			Algorithms:     cfg.AllowedAlgorithms,
			Leeway:         leeway,
			MaxTokenSize:   cfg.MaxTokenSize,
			AllowedClients: cfg.AllowedClientIDs,
			RequireATJWT:   cfg.RequireATJWT,
			Now:            now,
			Logger:         log,
		})
		if err != nil {
			return nil, err
		}
	}
	var remote *auth.Remote
	if cfg.Mode == config.ModeRemote || cfg.Mode == config.ModeHybrid {
		remote, err = auth.NewRemote(auth.RemoteConfig{
			Issuer:         a.issuer,
			Audience:       a.audience,
			Discovery:      a.discovery,
			ClientID:       clientID,
			ClientSecret:   clientSecret,
			AuthMethod:     cfg.IntrospectionAuthMethod,
			Client:         client,
			Timeout:        cfg.IntrospectionTimeout,
			MaxConcurrent:  cfg.IntrospectionMaxConcurrent,
			MaxTokenSize:   cfg.MaxTokenSize,
			AllowedClients: cfg.AllowedClientIDs,
			Now:            now,
			Logger:         log,
		})
		if err != nil {
			return nil, err
		}
	}

	negativeTTL := cfg.NegativeCacheTTL
	if negativeTTL == 0 {
		negativeTTL = -1 // authcache: negative disables, 0 means the default
	}
	cacheCfg := authcache.Config{
		MaxCost:     cfg.CacheMaxCost,
		MaxTTL:      cfg.CacheMaxTTL,
		NegativeTTL: negativeTTL,
		Now:         now,
		Logger:      log,
	}
	var validator auth.Validator
	var ready func() error
	switch cfg.Mode {
	case config.ModeLocal:
		validator, ready = local, a.keys.Ready
	case config.ModeRemote:
		validator, ready = remote, a.introspectionReady
		cacheCfg.MaxTTL = cfg.IntrospectionCacheTTL
		cacheCfg.NoPositiveCaching = cfg.IntrospectionCacheTTL == 0
	case config.ModeHybrid:
		h := auth.NewHybrid(local, remote)
		validator, ready = h, a.keys.Ready
		cacheCfg.Revalidator = h.Revalidator()
		cacheCfg.RevalidateAfter = cfg.RevalidateAfter
	default:
		return nil, fmt.Errorf("unknown validation mode %q", cfg.Mode)
	}
	a.cache, err = authcache.New(validator, cacheCfg)
	if err != nil {
		return nil, err
	}

	baseCtx, cancel := context.WithCancel(context.Background())
	a.baseCancel = cancel
	devClient := ""
	if cfg.Dev {
		devClient = cfg.DevClientID
	}
	a.handlers, err = handlers.New(handlers.Config{
		Validator:     a.cache,
		RequiredScope: cfg.RequiredScope,
		Ready:         ready,
		TokenEndpoint: func(ctx context.Context) (string, error) {
			return a.discovery.Endpoint(ctx, func(m auth.Metadata) string { return m.TokenEndpoint })
		},
		TokenClient:  client,
		DefaultScope: cfg.TokenScope,
		DevClientID:  devClient,
		BaseContext:  baseCtx,
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	a.addr = ln.Addr().String()
	if cfg.Dev {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			_ = ln.Close()
			return nil, fmt.Errorf("--dev serves only on loopback, and %s resolved to %s", cfg.ListenAddr, a.addr)
		}
	}

	if a.keys != nil {
		a.keys.Start() // first JWKS fetch at once, in the background
	}
	a.server = &fasthttp.Server{
		Handler:                      a.handlers.Handler(),
		ReadTimeout:                  readTimeout,
		WriteTimeout:                 writeTimeout,
		IdleTimeout:                  idleTimeout,
		MaxRequestBodySize:           maxRequestBodySize,
		ReadBufferSize:               max(16<<10, cfg.MaxTokenSize+8<<10),
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		// fasthttp's parse errors otherwise quote the raw request,
		// Authorization header included.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{log},
	}
	a.ln = ln
	a.serveDone = make(chan error, 1)
	go func() { a.serveDone <- a.server.Serve(ln) }()

	log.Info("tokengate: serving",
		zap.String("addr", a.addr),
		zap.String("mode", string(cfg.Mode)),
		zap.String("issuer", a.issuer),
		zap.String("audience", a.audience),
		zap.String("required_scope", cfg.RequiredScope),
		zap.Bool("dev", cfg.Dev))
	return a, nil
}

// introspectionReady is /readyz in remote mode: ready once the
// introspection endpoint is known (configured, or discovered). Discovery
// failures are retried at most every few seconds, so probes cannot hammer
// the authorization server.
func (a *app) introspectionReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyCheckTimeout)
	defer cancel()
	_, err := a.discovery.Endpoint(ctx, func(m auth.Metadata) string { return m.IntrospectionEndpoint })
	return err
}

// stop tears down what start built, in order: listener and in-flight
// requests (bounded by SHUTDOWN_TIMEOUT), key refresher, cache, discovery,
// development issuer. It tolerates a partly built app.
func (a *app) stop() {
	if a.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		if err := a.server.ShutdownWithContext(ctx); err != nil {
			a.log.Warn("tokengate: in-flight requests did not finish in time; cutting them off",
				zap.Duration("timeout", a.cfg.ShutdownTimeout), zap.Error(err))
		}
		cancel()
		// fasthttp's Shutdown closes only listeners Serve has registered;
		// closing ours as well ends a Serve that had not got that far.
		_ = a.ln.Close()
		if err := <-a.serveDone; err != nil {
			a.log.Debug("tokengate: serve returned", zap.Error(err))
		}
	}
	if a.baseCancel != nil {
		a.baseCancel()
	}
	if a.keys != nil {
		a.keys.Close()
	}
	if a.cache != nil {
		a.cache.Close()
	}
	if a.discovery != nil {
		a.discovery.Close()
	}
	if a.dev != nil {
		if err := a.dev.Close(); err != nil {
			a.log.Warn("tokengate: development issuer", zap.Error(err))
		}
	}
}

// baseURL is how a client on this machine reaches the server.
func (a *app) baseURL() string {
	return "http://" + a.addr
}

// printDevBanner tells a --dev user where everything is and how to get a
// token, in a form meant to be copied.
func (a *app) printDevBanner(w io.Writer) {
	base := a.baseURL()
	tokenCurl := fmt.Sprintf("curl -s -X POST %s/token -u %s:%s", base, a.cfg.DevClientID, a.cfg.DevClientSecret)
	itemsCurl := fmt.Sprintf(`curl -s %s/items -H "Authorization: Bearer $(%s | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"`, base, tokenCurl)
	var b strings.Builder
	fmt.Fprintf(&b, "\ntokengate is running in development mode (--dev): its own authorization server\n")
	fmt.Fprintf(&b, "issues the tokens. Nothing here is meant for production.\n\n")
	fmt.Fprintf(&b, "  API               %s/\n", base)
	if a.hasRoute("/docs") {
		fmt.Fprintf(&b, "  interactive docs  %s/docs\n", base)
	}
	fmt.Fprintf(&b, "  dev issuer        %s\n", a.issuer)
	fmt.Fprintf(&b, "  dev client        %s / %s (scope %s)\n", a.cfg.DevClientID, a.cfg.DevClientSecret, a.cfg.TokenScope)
	fmt.Fprintf(&b, "  validation mode   %s\n\n", a.cfg.Mode)
	fmt.Fprintf(&b, "Get a token:\n\n  %s\n\n", tokenCurl)
	fmt.Fprintf(&b, "Call /items with a fresh token:\n\n  %s\n\n", itemsCurl)
	fmt.Fprintf(&b, "Stop with Ctrl-C.\n\n")
	_, _ = io.WriteString(w, b.String())
}

// hasRoute reports whether GET path is registered.
func (a *app) hasRoute(path string) bool {
	return slices.Contains(a.handlers.Router().List()[fasthttp.MethodGet], path)
}

// fasthttpLogger sends fasthttp's own messages (connection errors) to zap.
// Its errors about unparsable requests quote the offending bytes — a
// malformed header line, which may be the Authorization header itself —
// so an error argument is logged only up to its first quote.
type fasthttpLogger struct{ log *zap.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "tokengate: fasthttp"); ce != nil {
		safe := make([]any, len(args))
		for i, a := range args {
			safe[i] = a
			if err, ok := a.(error); ok {
				msg := err.Error()
				if q := strings.IndexByte(msg, '"'); q >= 0 {
					msg = msg[:q] + "(request bytes withheld)"
				}
				safe[i] = msg
			}
		}
		ce.Write(zap.String("detail", fmt.Sprintf(format, safe...)))
	}
}
