package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/handlers"
)

// Options configures a Server. Issuer is required.
type Options struct {
	// Issuer is the authorization server tokengate trusts; the caller
	// starts and closes it. tokengate uses its first client for
	// introspection.
	Issuer *devissuer.Issuer

	// Args are tokengate flags in config.Load syntax, e.g.
	// "--validation-mode=remote", "--introspection-cache-ttl=0". The
	// issuer, client credentials and listen address are set from the
	// other fields; the environment and .env files are not read.
	Args []string

	// UncachedValid makes the cache forget valid tokens
	// (authcache.Config.NoPositiveCaching) in every mode, so that each
	// request with a good token runs the validator: how the benchmarks
	// and load tests measure verification per request with a token pool
	// smaller than the number of requests. cmd/server sets it only in
	// remote mode with INTROSPECTION_CACHE_TTL=0.
	UncachedValid bool

	// Listener, when set, is served instead of a new loopback listener
	// (e.g. fasthttputil.NewInmemoryListener). Close closes it.
	Listener net.Listener

	// Logger receives tokengate's logs (nil: none).
	Logger *zap.Logger
}

// Server is a running in-process tokengate.
type Server struct {
	Config config.Config // as loaded from Options.Args

	iss       *devissuer.Issuer
	log       *zap.Logger
	ln        net.Listener
	discovery *auth.Discovery
	keys      *auth.KeySet // nil in remote mode
	cache     *authcache.Cache
	handlers  *handlers.Server
	ready     func() error
	srv       *fasthttp.Server
	serveDone chan error
	cancel    context.CancelFunc
}

// Start builds and serves a tokengate. On error it has stopped whatever it
// had started.
func Start(o Options) (_ *Server, err error) {
	if o.Issuer == nil {
		return nil, errors.New("stack: no issuer")
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	clients := o.Issuer.Clients()
	if len(clients) == 0 {
		return nil, errors.New("stack: the issuer has no client")
	}
	args := append([]string{
		"--okta-issuer=" + o.Issuer.Issuer(),
		"--okta-audience=" + o.Issuer.Audience(),
		"--okta-client-id=" + clients[0].ID,
		"--okta-client-secret=" + clients[0].Secret,
		"--listen-addr=127.0.0.1:0",
	}, o.Args...)
	cfg, err := config.Load(args, nil, "")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s := &Server{Config: cfg, iss: o.Issuer, log: log, ln: o.Listener}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.build(o); err != nil {
		return nil, err
	}
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("stack: listen: %w", err)
		}
	}
	if s.keys != nil {
		s.keys.Start()
	}
	// The same server settings as cmd/server.
	s.srv = &fasthttp.Server{
		Handler:                      s.handlers.Handler(),
		ReadTimeout:                  10 * time.Second,
		WriteTimeout:                 10 * time.Second,
		IdleTimeout:                  60 * time.Second,
		MaxRequestBodySize:           64 << 10,
		ReadBufferSize:               max(16<<10, cfg.MaxTokenSize+8<<10),
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true,
	}
	s.serveDone = make(chan error, 1)
	go func() { s.serveDone <- s.srv.Serve(s.ln) }()
	return s, nil
}

// build mirrors cmd/server's start: one size-limited client for every call
// to the authorization server, discovery, key set and validators for the
// mode, the cache, the handlers.
func (s *Server) build(o Options) (err error) {
	cfg := s.Config
	client := auth.NewHTTPClient(auth.HTTPClientConfig{
		ReadTimeout: max(5*time.Second, cfg.IntrospectionTimeout),
	})
	s.discovery, err = auth.NewDiscovery(auth.DiscoveryConfig{
		Issuer: cfg.Issuer,
		Override: auth.Metadata{
			JWKSURI:               cfg.JWKSURI,
			TokenEndpoint:         cfg.TokenEndpoint,
			IntrospectionEndpoint: cfg.IntrospectionEndpoint,
		},
		Client: client,
		Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	var local *auth.Local
	if cfg.Mode == config.ModeLocal || cfg.Mode == config.ModeHybrid {
		s.keys, err = auth.NewKeySet(auth.KeySetConfig{
			Discovery:          s.discovery,
			Client:             client,
			RefreshInterval:    cfg.JWKSRefreshInterval,
			UnknownKIDCooldown: cfg.JWKSRefreshCooldown,
			Logger:             s.log,
		})
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		leeway := cfg.ClockLeeway
		if leeway == 0 {
			leeway = -1 // auth.LocalConfig: negative means none, 0 the default
		}
		local, err = auth.NewLocal(auth.LocalConfig{
			Issuer:         cfg.Issuer,
			Audience:       cfg.Audience,
			Keys:           s.keys,
			Algorithms:     cfg.AllowedAlgorithms,
			Leeway:         leeway,
			MaxTokenSize:   cfg.MaxTokenSize,
			AllowedClients: cfg.AllowedClientIDs,
			RequireATJWT:   cfg.RequireATJWT,
			Logger:         s.log,
		})
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
	}
	var remote *auth.Remote
	if cfg.Mode == config.ModeRemote || cfg.Mode == config.ModeHybrid {
		remote, err = auth.NewRemote(auth.RemoteConfig{
			Issuer:         cfg.Issuer,
			Audience:       cfg.Audience,
			Discovery:      s.discovery,
			ClientID:       cfg.ClientID,
			ClientSecret:   cfg.ClientSecret,
			AuthMethod:     cfg.IntrospectionAuthMethod,
			Client:         client,
			Timeout:        cfg.IntrospectionTimeout,
			MaxConcurrent:  cfg.IntrospectionMaxConcurrent,
			MaxTokenSize:   cfg.MaxTokenSize,
			AllowedClients: cfg.AllowedClientIDs,
			Logger:         s.log,
		})
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
	}

	negativeTTL := cfg.NegativeCacheTTL
	if negativeTTL == 0 {
		negativeTTL = -1 // authcache: negative disables, 0 means the default
	}
	cacheCfg := authcache.Config{
		MaxCost:           cfg.CacheMaxCost,
		MaxTTL:            cfg.CacheMaxTTL,
		NegativeTTL:       negativeTTL,
		NoPositiveCaching: o.UncachedValid,
		Logger:            s.log,
	}
	var validator auth.Validator
	switch cfg.Mode {
	case config.ModeLocal:
		validator, s.ready = local, s.keys.Ready
	case config.ModeRemote:
		validator, s.ready = remote, s.introspectionReady
		if cfg.IntrospectionCacheTTL > 0 {
			cacheCfg.MaxTTL = cfg.IntrospectionCacheTTL
		} else {
			cacheCfg.NoPositiveCaching = true
		}
	case config.ModeHybrid:
		h := auth.NewHybrid(local, remote)
		validator, s.ready = h, s.keys.Ready
		cacheCfg.Revalidator = h.Revalidator()
		cacheCfg.RevalidateAfter = cfg.RevalidateAfter
	default:
		return fmt.Errorf("stack: unknown validation mode %q", cfg.Mode)
	}
	if s.cache, err = authcache.New(validator, cacheCfg); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	baseCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.handlers, err = handlers.New(handlers.Config{
		Validator:     s.cache,
		RequiredScope: cfg.RequiredScope,
		Ready:         s.ready,
		TokenEndpoint: func(ctx context.Context) (string, error) {
			return s.discovery.Endpoint(ctx, func(m auth.Metadata) string { return m.TokenEndpoint })
		},
		TokenClient:  client,
		DefaultScope: cfg.TokenScope,
		BaseContext:  baseCtx,
		Logger:       s.log,
	})
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	return nil
}

func (s *Server) introspectionReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.discovery.Endpoint(ctx, func(m auth.Metadata) string { return m.IntrospectionEndpoint })
	return err
}

// WaitReady polls readiness (what /readyz reports) until it succeeds or ctx
// ends.
func (s *Server) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		err := s.ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: not ready: %w (%w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// Addr is the listener's address (host:port for a loopback listener).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL of a loopback server, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Handler is the server's request handler.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handlers.Handler() }

// Cache is the validated-token cache, for its Stats and Wait.
func (s *Server) Cache() *authcache.Cache { return s.cache }

// Issuer is the authorization server passed in Options.
func (s *Server) Issuer() *devissuer.Issuer { return s.iss }

// Close stops serving (waiting up to five seconds for in-flight requests),
// then the key refresher, the cache and discovery, in that order. It
// tolerates a partly built server and does not close the issuer.
func (s *Server) Close() {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.srv.ShutdownWithContext(ctx)
		cancel()
		<-s.serveDone
	} else if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.keys != nil {
		s.keys.Close()
	}
	if s.cache != nil {
		s.cache.Close()
	}
	if s.discovery != nil {
		s.discovery.Close()
	}
}
