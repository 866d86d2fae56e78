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
	"github.com/tokengate/tokengate/sharedcache"
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
	issuer    string            // the issuer tokengate trusts (cfg's, or dev's)

	validation // the validator chain, the cache, the key set, readiness
	handlers   *handlers.Server
	info       []byte // tokengate_info, rendered once

	server     *fasthttp.Server
	ln         net.Listener
	served     chan struct{} // closed when Serve has returned
	serveErr   error         // Serve's result; read after served is closed
	stopping   chan struct{} // closed when Shutdown begins
	baseCancel context.CancelFunc

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
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	a := &App{
		cfg:      cfg,
		log:      log,
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

	trusted := cfg // cfg as the validators see it: under --dev, pointed at the development issuer
	if cfg.Dev {
		if trusted, err = a.startDev(cfg, opts.Issuer); err != nil {
			return nil, err
		}
	}
	a.issuer = trusted.Issuer
	if a.validation, err = buildValidation(trusted, opts, log); err != nil {
		return nil, err
	}
	if err := a.buildHandlers(); err != nil {
		return nil, err
	}
	if a.ln == nil {
		if err := a.listen(ctx); err != nil {
			return nil, err
		}
	}
	a.validation.start()
	a.serve()

	log.Info("tokengate: serving",
		zap.String("addr", a.Addr()),
		zap.String("mode", string(cfg.Mode)),
		zap.String("issuer", trusted.Issuer),
		zap.String("audience", trusted.Audience),
		zap.String("required_scope", cfg.RequiredScope),
		zap.Bool("dev", cfg.Dev))
	return a, nil
}

// startDev adopts iss, or starts the development issuer when iss is nil,
// and returns cfg pointed at it: its issuer URL and audience, and its first
// client for introspection.
func (a *App) startDev(cfg config.Config, iss *devissuer.Issuer) (config.Config, error) {
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
			return cfg, fmt.Errorf("app: starting the development issuer: %w", err)
		}
		a.ownDev = true
	}
	a.dev = iss
	clients := iss.Clients()
	if len(clients) == 0 {
		return cfg, errors.New("app: the development issuer has no client")
	}
	a.devClient = clients[0]
	cfg.Issuer, cfg.Audience = iss.Issuer(), iss.Audience()
	cfg.ClientID, cfg.ClientSecret = a.devClient.ID, a.devClient.Secret
	return cfg, nil
}

// validation is how tokengate checks tokens: the mode's validator chain
// wrapped in the cache, and what /readyz, /metrics, /token and Shutdown
// need of it. buildValidation builds one per mode; a new mode (several
// issuers, a shared second-level cache) is a new case there.
type validation struct {
	client    auth.HTTPClient    // the one pooled, size-limited client to the authorization server; /token's too
	discovery *auth.Discovery    // the issuer's metadata; /token asks it for the token endpoint
	keys      *auth.KeySet       // nil in remote mode
	remote    *auth.Remote       // nil in local mode
	cache     *authcache.Cache   // wraps the mode's validator; what the handlers call
	l2        *sharedcache.Cache // the Redis second level behind cache; nil without REDIS_URL
	ready     func() error       // /readyz: nil once tokens can be checked
}

// buildValidation builds the validation of cfg.Mode for the issuer,
// audience and client in cfg. It starts no goroutine that start would
// start; on error it has closed whatever it built.
func buildValidation(cfg config.Config, opts Options, log *zap.Logger) (v validation, err error) {
	defer func() {
		if err != nil {
			v.close()
			v = validation{}
		}
	}()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Discovery, JWKS, introspection and the /token relay all use v.client.
	v.client = auth.NewHTTPClient(auth.HTTPClientConfig{
		ReadTimeout: max(5*time.Second, cfg.IntrospectionTimeout),
	})
	v.discovery, err = auth.NewDiscovery(auth.DiscoveryConfig{
		Issuer: cfg.Issuer,
		Override: auth.Metadata{
			JWKSURI:               cfg.JWKSURI,
			TokenEndpoint:         cfg.TokenEndpoint,
			IntrospectionEndpoint: cfg.IntrospectionEndpoint,
		},
		Client: v.client,
		Now:    now,
		Logger: log,
	})
	if err != nil {
		return v, fmt.Errorf("app: %w", err)
	}

	cacheCfg := authcache.Config{
		MaxCost:     cfg.CacheMaxCost,
		MaxTTL:      cfg.CacheMaxTTL,
		NegativeTTL: cfg.NegativeCacheTTL,
		Now:         now,
		Logger:      log,
	}
	var validator auth.Validator
	switch cfg.Mode {
	case config.ModeLocal:
		if validator, err = v.newLocal(cfg, now, log); err != nil {
			return v, err
		}
		v.ready = v.keys.Ready
		cacheCfg.SigningKeys = v.keys
	case config.ModeRemote:
		if v.remote, err = v.newRemote(cfg, now, log); err != nil {
			return v, err
		}
		validator, v.ready = v.remote, introspectionReady(v.discovery)
		// Remote answers live at most INTROSPECTION_CACHE_TTL; 0 keeps none.
		cacheCfg.MaxTTL = cfg.IntrospectionCacheTTL
		cacheCfg.NoPositiveCaching = cfg.IntrospectionCacheTTL == 0
	case config.ModeHybrid:
		var local *auth.Local
		if local, err = v.newLocal(cfg, now, log); err != nil {
			return v, err
		}
		if v.remote, err = v.newRemote(cfg, now, log); err != nil {
			return v, err
		}
		h := auth.NewHybrid(local, v.remote)
		validator, v.ready = h, v.keys.Ready
		cacheCfg.Revalidator = h.Revalidator()
		cacheCfg.RevalidateAfter = cfg.RevalidateAfter
		cacheCfg.MaxStaleness = cfg.MaxStaleness
		cacheCfg.SigningKeys = v.keys
		cacheCfg.SecondLevelVerifier = local // a shared verdict still needs a good signature here
	default:
		return v, fmt.Errorf("app: unknown validation mode %q", cfg.Mode)
	}
	if opts.MeasureUncachedValid {
		cacheCfg.NoPositiveCaching = true
	}
	if err = v.addSecondLevel(cfg, now, log, &cacheCfg); err != nil {
		return v, err
	}
	if v.cache, err = authcache.New(validator, cacheCfg); err != nil {
		return v, fmt.Errorf("app: %w", err)
	}
	return v, nil
}

// newLocal builds the key set (into v.keys) and the JWT validator over it.
func (v *validation) newLocal(cfg config.Config, now func() time.Time, log *zap.Logger) (*auth.Local, error) {
	var err error
	v.keys, err = auth.NewKeySet(auth.KeySetConfig{
		Discovery:          v.discovery,
		Client:             v.client,
		RefreshInterval:    cfg.JWKSRefreshInterval,
		UnknownKIDCooldown: cfg.JWKSRefreshCooldown,
		DisableFastRSA:     !cfg.RSAFastVerify,
		Now:                now,
		Logger:             log,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	local, err := auth.NewLocal(auth.LocalConfig{
		Issuer:         cfg.Issuer,
		Audience:       cfg.Audience,
		Keys:           v.keys,
		Algorithms:     cfg.AllowedAlgorithms,
		Leeway:         cfg.ClockLeeway,
		MaxTokenSize:   cfg.MaxTokenSize,
		AllowedClients: cfg.AllowedClientIDs,
		RequireATJWT:   cfg.RequireATJWT,
		Now:            now,
		Logger:         log,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return local, nil
}

// newRemote builds the introspection validator.
func (v *validation) newRemote(cfg config.Config, now func() time.Time, log *zap.Logger) (*auth.Remote, error) {
	remote, err := auth.NewRemote(auth.RemoteConfig{
		Issuer:          cfg.Issuer,
		Audience:        cfg.Audience,
		RequireAudience: cfg.IntrospectionRequireAudience,
		Discovery:       v.discovery,
		ClientID:        cfg.ClientID,
		ClientSecret:    cfg.ClientSecret,
		AuthMethod:      cfg.IntrospectionAuthMethod,
		Client:          v.client,
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
	return remote, nil
}

// start starts the background work: the key set's first fetch, at once,
// and its refresh.
func (v *validation) start() {
	if v.keys != nil {
		v.keys.Start()
	}
	v.startSecondLevel()
}

// close stops what buildValidation built, refreshers before caches, and
// waits for them. It tolerates a partly built validation.
func (v *validation) close() {
	if v.keys != nil {
		v.keys.Close()
	}
	if v.cache != nil {
		v.cache.Close()
	}
	if v.l2 != nil {
		_ = v.l2.Close() // its subscriber, then its connections
	}
	if v.discovery != nil {
		v.discovery.Close()
	}
}

// introspectionReady is /readyz in remote mode: ready once the
// introspection endpoint is known (configured, or discovered). Discovery
// failures are retried at most every few seconds, so probes cannot hammer
// the authorization server.
func introspectionReady(disc *auth.Discovery) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), readyCheckTimeout)
		defer cancel()
		_, err := disc.Endpoint(ctx, func(m auth.Metadata) string { return m.IntrospectionEndpoint })
		return err
	}
}

// buildHandlers builds the router, the auth middleware and the handlers
// over the cache.
func (a *App) buildHandlers() error {
	a.info = infoMetric(string(a.cfg.Mode))
	baseCtx, cancel := context.WithCancel(context.Background())
	a.baseCancel = cancel
	disc := a.discovery
	var err error
	a.handlers, err = handlers.New(handlers.Config{
		Validator:     a.cache,
		RequiredScope: a.cfg.RequiredScope,
		Ready:         a.ready,
		TokenEndpoint: func(ctx context.Context) (string, error) {
			return disc.Endpoint(ctx, func(m auth.Metadata) string { return m.TokenEndpoint })
		},
		TokenClient:  a.client,
		DefaultScope: a.cfg.TokenScope,
		DevClientID:  a.devClient.ID, // zero unless --dev
		BaseContext:  baseCtx,
		Metrics:      a.appendMetrics,
		Logger:       a.log,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
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

// serve serves the handlers on a.ln in a goroutine that closes a.served
// when Serve returns; Shutdown stops it.
func (a *App) serve() {
	a.server = &fasthttp.Server{
		Handler:                      a.handlers.Handler(),
		ReadTimeout:                  readTimeout,
		WriteTimeout:                 writeTimeout,
		IdleTimeout:                  idleTimeout,
		MaxRequestBodySize:           maxRequestBodySize,
		ReadBufferSize:               max(16<<10, a.cfg.MaxTokenSize+8<<10),
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		// fasthttp's parse errors otherwise quote the raw request,
		// Authorization header included.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{a.log},
	}
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		a.serveErr = a.server.Serve(a.ln)
	}()
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
// returns ctx's error), then stops the key refresher, the cache, the Redis
// second level, discovery and a development issuer Start started. It waits for all of them. Later
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
	if a.baseCancel != nil {
		a.baseCancel()
	}
	a.validation.close() // key refresher, cache, discovery
	if a.ownDev {
		if err := a.dev.Close(); err != nil {
			a.log.Warn("tokengate: development issuer", zap.Error(err))
		}
	}
	return cut
}
