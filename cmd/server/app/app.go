package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/gateway"
	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/internal/lazydeadline"
	"github.com/tokengate/tokengate/policy"
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

	// teardownGrace is how long past Shutdown's deadline the teardown
	// (key refresher, cache, discovery) may still take before Shutdown
	// returns without it: work that cannot be cancelled, such as an
	// introspection call, then ends by its own timeout.
	teardownGrace = 500 * time.Millisecond
)

// errShuttingDown is what Ready returns from the moment Shutdown begins;
// /readyz answers it "not ready: shutting down".
var errShuttingDown = handlers.ErrShuttingDown

// BuildInfo says which build of tokengate runs. cmd/server stamps it at
// link time (-ldflags -X); empty fields are unknown.
type BuildInfo struct {
	Version string // e.g. v1.2.0, or git describe's v1.2.0-3-gabc1234-dirty
	Commit  string // the full commit hash
	Date    string // build time, RFC 3339 in UTC
}

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
	// closes it. The --dev loopback check and TLS (cfg.TLSCertFile) apply
	// only to listeners Start opens itself: this one is served as given.
	Listener net.Listener

	// Build is the build's version, commit and date, for the logs and
	// /metrics (tokengate_info). The zero value means unknown.
	Build BuildInfo

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

	// Getenv reads the environment variables the policy file's issuers
	// name for their introspection credentials (nil: os.Getenv); where it
	// has no value, the .env file that config.Load read does
	// (config.Config.Getenv).
	Getenv func(string) string

	// timeouts, when it holds any, replaces the served connections' read,
	// write and idle timeouts (readTimeout, writeTimeout, idleTimeout)
	// outside gateway mode, and in gateway mode its Read replaces the
	// silence and header timeout (gatewayListener): a test hook, so that
	// slow and idle clients are cut in milliseconds.
	timeouts lazydeadline.Timeouts
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

	validation                // the validator chain, the cache, the key set, readiness
	policy     *policy.Holder // the decision endpoints' rules; Reload swaps them
	handlers   *handlers.Server
	gw         *gateway.Gateway // nil unless gateway mode (cfg.UpstreamURL)
	info       []byte           // tokengate_info, rendered once
	build      BuildInfo        // Options.Build
	cert       *certificate     // nil unless TLS (cfg.TLSCertFile)
	draining   atomic.Bool      // Shutdown has begun: /readyz 503, Connection: close

	server     *fasthttp.Server
	ln         net.Listener
	timed      *lazydeadline.Listener // a.ln keeping the timeouts; nil in gateway mode
	timeouts   lazydeadline.Timeouts  // what timed keeps (serveTimeouts)
	served     chan struct{}          // closed when Serve has returned
	serveErr   error                  // Serve's result; read after served is closed
	stopping   chan struct{}          // closed when Shutdown begins
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
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	a := &App{
		cfg:      cfg,
		log:      log,
		ln:       opts.Listener,
		timeouts: serveTimeouts(opts.timeouts),
		build:    opts.Build,
		stopping: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			_ = a.Shutdown(ctx)
			cancel()
		}
	}()
	// The policy file first: a bad one stops the start before anything
	// runs, with one error naming the file and line.
	pol := policy.Default(cfg.RequiredScope)
	if cfg.PolicyFile != "" {
		if pol, err = policy.Load(cfg.PolicyFile); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	a.policy = policy.NewHolder(pol, opts.Now)
	if err := checkSecondLevelModes(cfg, pol.Issuers()); err != nil {
		return nil, err
	}

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
	switch {
	case len(pol.Issuers()) > 0:
		if ignored := oneIssuerSettings(trusted); len(ignored) > 0 {
			log.Warn("tokengate: the policy file lists issuers; the one-issuer settings are ignored (each issuer's come from its entry)",
				zap.String("policy_file", cfg.PolicyFile), zap.Int("issuers", len(pol.Issuers())), zap.Strings("ignored", ignored))
		}
	case trusted.Issuer == "":
		// config.Load let OKTA_ISSUER go unset for the policy file.
		return nil, &config.Error{Var: "OKTA_ISSUER", Msg: "not set, and the policy file lists no issuers; set OKTA_ISSUER or list issuers in the policy file"}
	}
	if a.validation, err = buildValidation(trusted, pol.Issuers(), opts, log); err != nil {
		return nil, err
	}
	if err := a.buildHandlers(); err != nil {
		return nil, err
	}
	if err := a.buildGateway(); err != nil {
		return nil, err
	}
	if a.ln == nil {
		if err := a.listen(ctx); err != nil {
			return nil, err
		}
	}
	if err := a.startAdmin(ctx); err != nil {
		return nil, err
	}
	a.validation.start()
	a.serve()

	log.Info("tokengate: serving",
		zap.String("addr", a.Addr()),
		zap.String("mode", string(cfg.Mode)),
		zap.String("issuer", trusted.Issuer),
		zap.String("audience", trusted.Audience),
		zap.String("required_scope", cfg.RequiredScope),
		zap.String("upstream", cfg.UpstreamURL),
		zap.Bool("tls", a.cert != nil),
		zap.Bool("dev", cfg.Dev),
		zap.String("version", a.build.Version),
		zap.String("commit", a.build.Commit))
	return a, nil
}

// oneIssuerSettings names the one-issuer settings that cfg sets and that a
// policy file's issuers: list replaces: each entry has its own issuer,
// endpoints and credential variables. (OKTA_AUDIENCE always has a value,
// its default, so it is named only with OKTA_ISSUER.)
func oneIssuerSettings(cfg config.Config) []string {
	var names []string
	for _, s := range []struct {
		name, value string
	}{
		{"OKTA_ISSUER", cfg.Issuer}, {"OKTA_CLIENT_ID", cfg.ClientID}, {"OKTA_CLIENT_SECRET", cfg.ClientSecret},
		{"JWKS_URI", cfg.JWKSURI}, {"TOKEN_ENDPOINT", cfg.TokenEndpoint}, {"INTROSPECTION_ENDPOINT", cfg.IntrospectionEndpoint},
	} {
		if s.value != "" {
			names = append(names, s.name)
			if s.name == "OKTA_ISSUER" {
				names = append(names, "OKTA_AUDIENCE")
			}
		}
	}
	return names
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
// need of it. buildValidation builds one per mode; several issuers (the
// policy file's issuers: list) are one auth.Multi over one issuerParts
// each, under the same cache.
type validation struct {
	issuerParts                    // the one issuer's parts; under several issuers, the first's (for /token)
	cache       *authcache.Cache   // wraps the mode's validator (or the Multi); what the handlers call
	issuers     []issuerParts      // several issuers only, in the file's order
	multi       *auth.Multi        // several issuers only
	l2          *sharedcache.Cache // the Redis second level behind cache; nil without REDIS_URL
}

// issuerParts is one issuer's own validation: its client, discovery, key
// set, introspection client and concurrency bound, and readiness.
type issuerParts struct {
	name        string
	client      auth.HTTPClient // the one pooled, size-limited client to the authorization server; /token's too
	discovery   *auth.Discovery // the issuer's metadata; /token asks it for the token endpoint
	keys        *auth.KeySet    // nil in remote mode
	remote      *auth.Remote    // nil in local mode
	local       *auth.Local     // the JWT validator (local and hybrid mode); nil in remote mode
	validator   auth.Validator  // the mode's validator
	revalidator auth.Validator  // what re-checks a cached token: the introspection client (hybrid), else validator
	ready       func() error    // /readyz: nil once tokens can be checked
}

// buildValidation builds the validation of cfg.Mode for the issuer,
// audience and client in cfg, or, when issuers is not empty, of each of
// them under one auth.Multi. It starts no goroutine that start would
// start; on error it has closed whatever it built.
func buildValidation(cfg config.Config, issuers []policy.Issuer, opts Options, log *zap.Logger) (v validation, err error) {
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
	cacheCfg := authcache.Config{
		MaxCost:     cfg.CacheMaxCost,
		MaxTTL:      cfg.CacheMaxTTL,
		NegativeTTL: cfg.NegativeCacheTTL,
		Now:         now,
		Logger:      log,
	}
	var validator auth.Validator
	if len(issuers) == 0 {
		if v.issuerParts, err = buildIssuer(cfg, now, log); err != nil {
			return v, err
		}
		validator = v.validator
		switch cfg.Mode {
		case config.ModeLocal:
			cacheCfg.SigningKeys = v.keys
		case config.ModeRemote:
			// Remote answers live at most INTROSPECTION_CACHE_TTL; 0 keeps none.
			cacheCfg.MaxTTL = cfg.IntrospectionCacheTTL
			cacheCfg.NoPositiveCaching = cfg.IntrospectionCacheTTL == 0
		case config.ModeHybrid:
			cacheCfg.Revalidator = v.revalidator
			cacheCfg.RevalidateAfter = cfg.RevalidateAfter
			cacheCfg.MaxStaleness = cfg.MaxStaleness
			cacheCfg.SigningKeys = v.keys
			cacheCfg.SecondLevelVerifier = v.local // a shared verdict still needs a good signature here
		}
	} else {
		if validator, err = v.buildIssuers(cfg, issuers, opts.Getenv, now, log, &cacheCfg); err != nil {
			return v, err
		}
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

// buildIssuer builds one issuer's parts for cfg.Mode.
func buildIssuer(cfg config.Config, now func() time.Time, log *zap.Logger) (p issuerParts, err error) {
	defer func() {
		if err != nil {
			p.close()
			p = issuerParts{}
		}
	}()
	// Discovery, JWKS, introspection and the /token relay all use p.client.
	p.client = auth.NewHTTPClient(auth.HTTPClientConfig{
		ReadTimeout: max(5*time.Second, cfg.IntrospectionTimeout),
	})
	p.discovery, err = auth.NewDiscovery(auth.DiscoveryConfig{
		Issuer: cfg.Issuer,
		Override: auth.Metadata{
			JWKSURI:               cfg.JWKSURI,
			TokenEndpoint:         cfg.TokenEndpoint,
			IntrospectionEndpoint: cfg.IntrospectionEndpoint,
		},
		Client: p.client,
		Now:    now,
		Logger: log,
	})
	if err != nil {
		return p, fmt.Errorf("app: %w", err)
	}
	switch cfg.Mode {
	case config.ModeLocal:
		if p.local, err = p.newLocal(cfg, now, log); err != nil {
			return p, err
		}
		p.validator, p.revalidator, p.ready = p.local, p.local, p.keys.Ready
	case config.ModeRemote:
		if p.remote, err = p.newRemote(cfg, now, log); err != nil {
			return p, err
		}
		p.validator, p.revalidator, p.ready = p.remote, p.remote, introspectionReady(p.discovery)
	case config.ModeHybrid:
		if p.local, err = p.newLocal(cfg, now, log); err != nil {
			return p, err
		}
		if p.remote, err = p.newRemote(cfg, now, log); err != nil {
			return p, err
		}
		h := auth.NewHybrid(p.local, p.remote)
		p.validator, p.revalidator, p.ready = h, h.Revalidator(), p.keys.Ready
	default:
		return p, fmt.Errorf("app: unknown validation mode %q", cfg.Mode)
	}
	return p, nil
}

// newLocal builds the key set (into p.keys) and the JWT validator over it.
func (p *issuerParts) newLocal(cfg config.Config, now func() time.Time, log *zap.Logger) (*auth.Local, error) {
	var err error
	p.keys, err = auth.NewKeySet(auth.KeySetConfig{
		Discovery:          p.discovery,
		Client:             p.client,
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
		Keys:           p.keys,
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
func (p *issuerParts) newRemote(cfg config.Config, now func() time.Time, log *zap.Logger) (*auth.Remote, error) {
	remote, err := auth.NewRemote(auth.RemoteConfig{
		Issuer:          cfg.Issuer,
		Audience:        cfg.Audience,
		RequireAudience: cfg.IntrospectionRequireAudience,
		Discovery:       p.discovery,
		ClientID:        cfg.ClientID,
		ClientSecret:    cfg.ClientSecret,
		AuthMethod:      cfg.IntrospectionAuthMethod,
		Client:          p.client,
		Timeout:         cfg.IntrospectionTimeout,
		MaxConcurrent:   cfg.IntrospectionMaxConcurrent,
		MaxPerClient:    cfg.IntrospectionMaxPerClient,
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

// start starts the background work: each key set's first fetch, at once,
// and its refresh.
func (v *validation) start() {
	if v.keys != nil {
		v.keys.Start()
	}
	for i := range v.issuers[min(1, len(v.issuers)):] { // the first is v.issuerParts
		if k := v.issuers[i+1].keys; k != nil {
			k.Start()
		}
	}
	v.startSecondLevel()
}

// close stops what buildValidation built, refreshers before caches, and
// waits for them. It tolerates a partly built validation.
func (v *validation) close() {
	if len(v.issuers) > 0 {
		for i := range v.issuers {
			v.issuers[i].closeKeys()
		}
	} else {
		v.issuerParts.closeKeys()
	}
	if v.cache != nil {
		v.cache.Close()
	}
	if v.l2 != nil {
		_ = v.l2.Close() // its subscriber, then its connections
	}
	if len(v.issuers) > 0 {
		for i := range v.issuers {
			v.issuers[i].closeDiscovery()
		}
	} else {
		v.issuerParts.closeDiscovery()
	}
}

func (p *issuerParts) close() { p.closeKeys(); p.closeDiscovery() }

func (p *issuerParts) closeKeys() {
	if p.keys != nil {
		p.keys.Close()
	}
}

func (p *issuerParts) closeDiscovery() {
	if p.discovery != nil {
		p.discovery.Close()
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
	mode := string(a.cfg.Mode)
	if a.multi != nil {
		mode = "multi" // each issuer has its own mode, in the policy file
	}
	a.info = infoMetric(mode, a.build)
	ready := a.ready
	a.ready = func() error {
		if a.draining.Load() {
			return errShuttingDown
		}
		return ready()
	}
	baseCtx, cancel := context.WithCancel(context.Background())
	a.baseCancel = cancel
	disc := a.discovery
	var err error
	a.handlers, err = handlers.New(handlers.Config{
		Validator:      a.cache,
		Policy:         a.policy,
		TrustedProxies: a.cfg.TrustedProxies,
		RequiredScope:  a.cfg.RequiredScope,
		Ready:          a.ready,
		TokenEndpoint: func(ctx context.Context) (string, error) {
			return disc.Endpoint(ctx, func(m auth.Metadata) string { return m.TokenEndpoint })
		},
		// The relay's own pool, no larger than its bound.
		TokenClient:        auth.NewHTTPClient(auth.HTTPClientConfig{MaxConnsPerHost: a.cfg.TokenMaxConcurrent}),
		TokenMaxConcurrent: a.cfg.TokenMaxConcurrent,
		DefaultScope:       a.cfg.TokenScope,
		DevClientID:        a.devClient.ID, // zero unless --dev
		BaseContext:        baseCtx,
		Metrics:            a.appendMetrics,
		Logger:             a.log,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// Reload re-reads what can change without a restart: the policy file
// (POLICY_FILE) and the TLS certificate and key (TLS_CERT_FILE,
// TLS_KEY_FILE). cmd/server calls it on SIGHUP. Each part that cannot be
// used keeps the one in force, is logged and is returned; the other part
// is still reloaded.
func (a *App) Reload() error {
	return errors.Join(a.reloadPolicy(), a.reloadCertificate())
}

// reloadPolicy re-reads POLICY_FILE; a bad new file keeps the current
// policy (a *policy.Error names the file and line).
func (a *App) reloadPolicy() error {
	if a.cfg.PolicyFile == "" {
		return nil
	}
	if err := a.policy.Reload(a.cfg.PolicyFile); err != nil {
		a.log.Error("tokengate: policy reload failed; keeping the current policy", zap.Error(err))
		return fmt.Errorf("app: %w", err)
	}
	a.log.Info("tokengate: policy reloaded", zap.String("file", a.cfg.PolicyFile), zap.Int("rules", a.policy.Rules()))
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
	if a.cfg.TLSCertFile != "" {
		cert, err := newCertificate(a.cfg.TLSCertFile, a.cfg.TLSKeyFile, a.log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		a.cert = cert
	}
	a.ln = ln
	return nil
}

// serve serves the handlers on a.ln in a goroutine that closes a.served
// when Serve returns; Shutdown stops it.
func (a *App) serve() {
	a.server = &fasthttp.Server{
		Handler: a.Handler(),
		// No ReadTimeout, WriteTimeout or IdleTimeout: the connections
		// keep them by themselves (serveListener), or, in gateway mode,
		// bound silence instead (gatewayListener). Either way fasthttp
		// reads no clock for deadlines.
		LazyRequestTime:              true, // no handler reads ctx.Time(): spare a clock read per request
		MaxRequestBodySize:           maxRequestBodySize,
		ReadBufferSize:               max(16<<10, a.cfg.MaxTokenSize+8<<10),
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		// fasthttp's parse errors otherwise quote the raw request,
		// Authorization header included.
		SecureErrorLogMessage: true,
		// Requests fasthttp cannot read (a body over MaxRequestBodySize:
		// 413) get a JSON detail like every other answer.
		ErrorHandler: a.handlers.RequestError,
		Logger:       fasthttpLogger{a.log},
	}
	var ln net.Listener
	if a.gw != nil {
		// Bodies of any size stream through, bounded by silence
		// (gatewayListener) rather than by total duration; fasthttp
		// bounds the wait for the next request.
		a.server.StreamRequestBody = true
		a.server.IdleTimeout = idleTimeout
		ln = gatewayListener(a.ln, a.timeouts.Read)
	} else {
		t := a.timeouts
		if a.cert != nil {
			// The TLS handshake is read under the first request's read
			// timeout, not the idle one its flights would otherwise start.
			t.Handshake = true
			a.server.ConnState = handshaken
		}
		a.timed = serveListener(a.ln, t)
		ln = a.timed
	}
	// Each connection remembers the last token it passed, so that its
	// next request with that token skips the hash (authcache.Memo).
	ln = handlers.Listener(ln)
	// TLS goes outermost: fasthttp recognises a TLS connection
	// (RequestCtx.IsTLS, which the gateway's X-Forwarded-Proto and the
	// docs' server URL follow) only when it is handed the *tls.Conn
	// itself. The wrappers below it see the TCP connection, whose
	// deadlines tls.Conn's own pass through to.
	if a.cert != nil {
		ln = tls.NewListener(ln, a.cert.tlsConfig())
	}
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		a.serveErr = a.server.Serve(ln)
	}()
}

// Config is the configuration the App was started with.
func (a *App) Config() config.Config { return a.cfg }

// Addr is the listener's address: host:port for a TCP listener.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is how a client on this machine reaches a TCP listener, e.g.
// http://127.0.0.1:41234.
func (a *App) URL() string {
	if a.cert != nil {
		return "https://" + a.Addr()
	}
	return "http://" + a.Addr()
}

// Build is Options.Build: the version, commit and date of this build.
func (a *App) Build() BuildInfo { return a.build }

// Handler is the request handler the server serves: router, auth
// middleware and handlers. Calling it directly (on a RequestCtx the caller
// owns) runs the same code as a request over the listener.
func (a *App) Handler() fasthttp.RequestHandler {
	h := a.handlers.Handler()
	if a.gw != nil {
		h = a.gatewayHandler(h)
	}
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		if a.draining.Load() {
			ctx.SetConnectionClose()
		}
	}
}

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

// Shutdown stops tokengate in order. At once /readyz answers 503
// ("shutting down") and every response carries Connection: close; it keeps
// serving so for cfg.ShutdownDrainDelay (SHUTDOWN_DRAIN_DELAY), the time a
// load balancer takes to stop sending, unless ctx ends first. Then it stops
// accepting connections and gives in-flight requests until ctx ends (then
// cuts them off, logs it and returns ctx's error), and stops the key
// refresher, the cache, discovery and a development issuer Start started,
// waiting for them until ctx ends and briefly past it: work that cannot be
// cancelled (a fasthttp call in flight) is left to end by its own timeout,
// so Shutdown returns shortly after ctx's deadline whatever runs. Later
// calls wait for the first and return its result.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() {
		a.draining.Store(true)
		close(a.stopping)
		a.stopErr = a.stop(ctx)
	})
	return a.stopErr
}

// Close is Shutdown bounded by cfg.ShutdownDrainDelay plus
// cfg.ShutdownTimeout: the drain, then SHUTDOWN_TIMEOUT for what is in
// flight.
func (a *App) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownDrainDelay+a.cfg.ShutdownTimeout)
	defer cancel()
	_ = a.Shutdown(ctx)
}

// drain keeps serving, with /readyz 503 and Connection: close, for the
// drain delay or until ctx ends.
func (a *App) drain(ctx context.Context) {
	d := a.cfg.ShutdownDrainDelay
	if d <= 0 {
		return
	}
	a.log.Info("tokengate: draining: /readyz answers 503 and responses close their connections",
		zap.Duration("drain_delay", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// stop tears down what Start built; it tolerates a partly built App.
func (a *App) stop(ctx context.Context) error {
	var cut error
	if a.server != nil {
		a.drain(ctx)
		if err := a.server.ShutdownWithContext(ctx); err != nil {
			cut = fmt.Errorf("app: in-flight requests cut off: %w", err)
			a.log.Warn("tokengate: in-flight requests did not finish in time; cutting them off", zap.Error(err))
		}
		// fasthttp's Shutdown closes only listeners Serve has registered;
		// closing ours as well ends a Serve that had not got that far,
		// and stops the timed listener's clock whatever became of the
		// wrappers around it (Close waits for the clock's goroutine).
		if a.timed != nil {
			_ = a.timed.Close()
		}
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
	if err := a.teardown(ctx); err != nil {
		return errors.Join(cut, err)
	}
	return cut
}

// teardown stops the key refresher, the cache, discovery and a development
// issuer Start started, in that order, and waits for them until ctx ends
// and teardownGrace more. The cache waits for validations in flight, and a
// fasthttp call cannot be cancelled: one stuck past SHUTDOWN_TIMEOUT is
// left to end by its own bound (INTROSPECTION_TIMEOUT) on the teardown's
// goroutine, which then finishes, while the process is free to exit.
func (a *App) teardown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.validation.close() // key refresher, cache, discovery
		if a.gw != nil {
			a.gw.Close()
		}
		if a.ownDev {
			if err := a.dev.Close(); err != nil {
				a.log.Warn("tokengate: development issuer", zap.Error(err))
			}
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	grace := time.NewTimer(teardownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
		a.log.Warn("tokengate: validations still in flight at the shutdown deadline; not waiting for them")
		return fmt.Errorf("app: teardown not finished at the shutdown deadline: %w", ctx.Err())
	}
}
