package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/handlers"
)

// Server limits. Request bodies are small form posts (/token); headers carry
// at most one bearer token of MAX_TOKEN_SIZE bytes.
const (
	maxRequestBodySize = 64 << 10
	readTimeout        = 10 * time.Second
	writeTimeout       = 10 * time.Second
	idleTimeout        = 60 * time.Second
	readyCheckTimeout  = 2 * time.Second
	readyPollInterval  = 10 * time.Millisecond
)

// Options are what Start takes besides the configuration: injected
// dependencies, and knobs for tests, benchmarks and load tests. The zero
// Options is what cmd/server uses, but for its logger.
type Options struct {
	// Now is the clock of the validators, key set, discovery and cache
	// (nil: time.Now). Network deadlines always use the wall clock.
	Now func() time.Time

	// Logger receives tokengate's logs (nil: none). NewLogger builds the
	// one cmd/server uses.
	Logger *zap.Logger

	// Listener, when set, is served instead of a new listener on
	// cfg.ListenAddr (e.g. fasthttputil.NewInmemoryListener). Shutdown
	// closes it. The --dev loopback check applies only to listeners Start
	// opens itself.
	Listener net.Listener

	// Issuer, when set, replaces the development issuer that cfg.Dev would
	// start: tokengate trusts its issuer URL and audience and uses its
	// first client for introspection and in the --dev banner. The caller
	// owns it (to mint tokens, inject faults, read counters) and closes it
	// after Shutdown. Setting it without cfg.Dev is an error.
	Issuer *devissuer.Issuer

	// MeasureUncachedValid is a measurement knob: the cache forgets valid
	// tokens in every mode (authcache.Config.NoPositiveCaching), so that
	// each request with a good token runs the validator. Benchmarks and
	// load tests use it to measure verification per request with a token
	// pool smaller than the number of requests. A server never sets it;
	// cmd/server forgets valid tokens only in remote mode with
	// INTROSPECTION_CACHE_TTL=0.
	MeasureUncachedValid bool
}

// App is one running tokengate: everything Start built, in the order
// Shutdown tears it down. Its methods are safe for concurrent use.
type App struct {
	cfg config.Config
	log *zap.Logger

	dev       *devissuer.Issuer // nil unless cfg.Dev
	ownDev    bool              // Start started dev, Shutdown closes it
	devClient devissuer.Client  // dev's first client, under cfg.Dev
	issuer    string
	audience  string
	discovery *auth.Discovery
	keys      *auth.KeySet // nil in remote mode
	remote    *auth.Remote // nil in local mode
	cache     *authcache.Cache
	handlers  *handlers.Server
	ready     func() error
	info      []byte // tokengate_info, rendered once

	server     *fasthttp.Server
	ln         net.Listener
	served     chan struct{} // closed when Serve has returned
	serveErr   error         // Serve's result; read after served is closed
	stopping   chan struct{} // closed when Shutdown begins
	baseCancel context.CancelFunc
	admin      *adminServer // nil unless cfg.AdminAddr

	stopOnce sync.Once
	stopErr  error // Shutdown's result
}

// Start builds tokengate from cfg (as config.Load returns it) and serves
// it. ctx bounds start-up only: once Start returns, the App runs until
// Shutdown or Close. On error Start has stopped whatever it had started.
//
// Start does not wait for the key set's first fetch: Ready (and /readyz)
// report it, and WaitReady waits for it.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *App, err error) {
	if opts.Issuer != nil && !cfg.Dev {
		return nil, errors.New("app: Options.Issuer is the development issuer and needs cfg.Dev")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("app: not started: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	a := &App{
		cfg:      cfg,
		log:      log,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ln:       opts.Listener,
		stopping: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			_ = a.Shutdown(ctx)
			cancel()
		}
	}()
	for _, name := range cfg.DevIgnored {
		log.Warn("tokengate: ignored under --dev: the development issuer supplies it", zap.String("variable", name))
	}

	clientID, clientSecret := cfg.ClientID, cfg.ClientSecret
	if cfg.Dev {
		if err := a.startDev(cfg, opts.Issuer); err != nil {
			return nil, err
		}
		clientID, clientSecret = a.devClient.ID, a.devClient.Secret
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
		return nil, fmt.Errorf("app: %w", err)
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
			return nil, fmt.Errorf("app: %w", err)
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
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	var remote *auth.Remote
	if cfg.Mode == config.ModeRemote || cfg.Mode == config.ModeHybrid {
		remote, err = auth.NewRemote(auth.RemoteConfig{
			Issuer:          a.issuer,
			Audience:        a.audience,
			RequireAudience: cfg.IntrospectionRequireAudience,
			Discovery:       a.discovery,
			ClientID:        clientID,
			ClientSecret:    clientSecret,
			AuthMethod:      cfg.IntrospectionAuthMethod,
			Client:          client,
			Timeout:         cfg.IntrospectionTimeout,
			MaxConcurrent:   cfg.IntrospectionMaxConcurrent,
			MaxTokenSize:    cfg.MaxTokenSize,
			AllowedClients:  cfg.AllowedClientIDs,
			Now:             now,
			Logger:          log,
		})
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		a.remote = remote
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
	switch cfg.Mode {
	case config.ModeLocal:
		validator, a.ready = local, a.keys.Ready
	case config.ModeRemote:
		validator, a.ready = remote, a.introspectionReady
		cacheCfg.MaxTTL = cfg.IntrospectionCacheTTL
		cacheCfg.NoPositiveCaching = cfg.IntrospectionCacheTTL == 0
	case config.ModeHybrid:
		h := auth.NewHybrid(local, remote)
		validator, a.ready = h, a.keys.Ready
		cacheCfg.Revalidator = h.Revalidator()
		cacheCfg.RevalidateAfter = cfg.RevalidateAfter
	default:
		return nil, fmt.Errorf("app: unknown validation mode %q", cfg.Mode)
	}
	if opts.MeasureUncachedValid {
		cacheCfg.NoPositiveCaching = true
	}
	a.cache, err = authcache.New(validator, cacheCfg)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	a.info = infoMetric(string(cfg.Mode))
	baseCtx, cancel := context.WithCancel(context.Background())
	a.baseCancel = cancel
	a.handlers, err = handlers.New(handlers.Config{
		Validator:     a.cache,
		RequiredScope: cfg.RequiredScope,
		Ready:         a.ready,
		TokenEndpoint: func(ctx context.Context) (string, error) {
			return a.discovery.Endpoint(ctx, func(m auth.Metadata) string { return m.TokenEndpoint })
		},
		TokenClient:  client,
		DefaultScope: cfg.TokenScope,
		DevClientID:  a.devClient.ID, // zero unless --dev
		BaseContext:  baseCtx,
		Metrics:      a.appendMetrics,
		Logger:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	if a.ln == nil {
		if err := a.listen(ctx); err != nil {
			return nil, err
		}
	}

	if err := a.startAdmin(ctx); err != nil {
		return nil, err
	}

	if a.keys != nil {
		a.keys.Start() // first JWKS fetch at once, in the background
	}
	a.server = &fasthttp.Server{
		Handler: a.handlers.Handler(),
		// The three timeouts bound slow and idle clients; fasthttp moves
		// the connection's deadlines for each of them on every request,
		// and serve's lazydeadline listener keeps that cheap (see
		// serveListener).
		ReadTimeout:                  readTimeout,
		WriteTimeout:                 writeTimeout,
		IdleTimeout:                  idleTimeout,
		LazyRequestTime:              true, // no handler reads ctx.Time(): spare a clock read per request
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
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		a.serveErr = a.server.Serve(serveListener(a.ln))
	}()

	log.Info("tokengate: serving",
		zap.String("addr", a.Addr()),
		zap.String("mode", string(cfg.Mode)),
		zap.String("issuer", a.issuer),
		zap.String("audience", a.audience),
		zap.String("required_scope", cfg.RequiredScope),
		zap.Bool("dev", cfg.Dev))
	return a, nil
}

// startDev adopts iss, or starts the development issuer when iss is nil,
// and points tokengate at it.
func (a *App) startDev(cfg config.Config, iss *devissuer.Issuer) error {
	if iss == nil {
		var err error
		iss, err = devissuer.Start(devissuer.Config{
			Addr:          cfg.DevIssuerAddr,
			Clients:       []devissuer.Client{{ID: cfg.DevClientID, Secret: cfg.DevClientSecret}},
			Audience:      cfg.Audience,
			DefaultScopes: strings.Fields(cfg.TokenScope),
			Logger:        a.log,
		})
		if err != nil {
			return fmt.Errorf("app: starting the development issuer: %w", err)
		}
		a.ownDev = true
	}
	a.dev = iss
	clients := iss.Clients()
	if len(clients) == 0 {
		return errors.New("app: the development issuer has no client")
	}
	a.devClient = clients[0]
	a.issuer, a.audience = iss.Issuer(), iss.Audience()
	return nil
}

// listen opens the listener on cfg.ListenAddr; under --dev it must be a
// loopback address once resolved.
func (a *App) listen(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("app: listen on %s: %w", a.cfg.ListenAddr, err)
	}
	if a.cfg.Dev {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			_ = ln.Close()
			return fmt.Errorf("app: --dev serves only on loopback, and %s resolved to %s", a.cfg.ListenAddr, ln.Addr())
		}
	}
	a.ln = ln
	return nil
}

// introspectionReady is /readyz in remote mode: ready once the
// introspection endpoint is known (configured, or discovered). Discovery
// failures are retried at most every few seconds, so probes cannot hammer
// the authorization server.
func (a *App) introspectionReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyCheckTimeout)
	defer cancel()
	_, err := a.discovery.Endpoint(ctx, func(m auth.Metadata) string { return m.IntrospectionEndpoint })
	return err
}

// Config is the configuration the App was started with.
func (a *App) Config() config.Config { return a.cfg }

// Addr is the listener's address: host:port for a TCP listener.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is how a client on this machine reaches a TCP listener, e.g.
// http://127.0.0.1:41234.
func (a *App) URL() string { return "http://" + a.Addr() }

// Handler is the request handler the server serves: router, auth
// middleware and handlers. Calling it directly (on a RequestCtx the caller
// owns) runs the same code as a request over the listener.
func (a *App) Handler() fasthttp.RequestHandler { return a.handlers.Handler() }

// Cache is the validated-token cache, for its Stats and Wait.
func (a *App) Cache() *authcache.Cache { return a.cache }

// KeySet is the issuer's JWKS, or nil in remote mode.
func (a *App) KeySet() *auth.KeySet { return a.keys }

// Dev is the development issuer (started by Start, or Options.Issuer), or
// nil unless cfg.Dev.
func (a *App) Dev() *devissuer.Issuer { return a.dev }

// Ready reports what /readyz reports: nil once tokengate can validate
// tokens (keys loaded, or introspection endpoint known), else why not.
func (a *App) Ready() error { return a.ready() }

// WaitReady polls Ready until it succeeds or ctx ends.
func (a *App) WaitReady(ctx context.Context) error {
	t := time.NewTicker(readyPollInterval)
	defer t.Stop()
	for {
		err := a.ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("app: not ready: %w (%w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// Done is closed when serving has ended: after Shutdown, or earlier when
// the listener fails (then Err says why).
func (a *App) Done() <-chan struct{} { return a.served }

// Err is why serving ended before Shutdown began; nil while serving and
// after a Shutdown.
func (a *App) Err() error {
	select {
	case <-a.served:
	default:
		return nil
	}
	select {
	case <-a.stopping:
		return nil
	default:
	}
	if a.serveErr != nil {
		return fmt.Errorf("app: serving: %w", a.serveErr)
	}
	return errors.New("app: serving: the listener was closed")
}

// Shutdown stops tokengate in order: it stops accepting connections and
// gives in-flight requests until ctx ends (then cuts them off, logs it and
// returns ctx's error), then stops the key refresher, the cache, discovery
// and a development issuer Start started. It waits for all of them. Later
// calls wait for the first and return its result.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() {
		close(a.stopping)
		a.stopErr = a.stop(ctx)
	})
	return a.stopErr
}

// Close is Shutdown bounded by cfg.ShutdownTimeout (SHUTDOWN_TIMEOUT).
func (a *App) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	_ = a.Shutdown(ctx)
}

// stop tears down what Start built; it tolerates a partly built App.
func (a *App) stop(ctx context.Context) error {
	var cut error
	if a.server != nil {
		if err := a.server.ShutdownWithContext(ctx); err != nil {
			cut = fmt.Errorf("app: in-flight requests cut off: %w", err)
			a.log.Warn("tokengate: in-flight requests did not finish in time; cutting them off", zap.Error(err))
		}
		// fasthttp's Shutdown closes only listeners Serve has registered;
		// closing ours as well ends a Serve that had not got that far.
		_ = a.ln.Close()
		<-a.served
		if a.serveErr != nil {
			a.log.Debug("tokengate: serve returned", zap.Error(a.serveErr))
		}
	} else if a.ln != nil {
		_ = a.ln.Close()
	}
	a.stopAdmin(ctx)
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
	if a.ownDev {
		if err := a.dev.Close(); err != nil {
			a.log.Warn("tokengate: development issuer", zap.Error(err))
		}
	}
	return cut
}
