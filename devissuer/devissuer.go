package devissuer

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultAddr          = "127.0.0.1:0"
	DefaultAuthServerID  = "default"
	DefaultAudience      = "api://default"
	DefaultAlgorithm     = "RS256"
	DefaultRSABits       = 2048
	DefaultTokenLifetime = time.Hour
	DefaultKeysMaxAge    = 5 * time.Minute
	DefaultClientID      = "dev-client"
	DefaultClientSecret  = "dev-secret"
	DefaultScope         = "items"
)

// ErrClosed is returned by Restart after Close.
var ErrClosed = errors.New("devissuer: issuer closed")

// Client is a confidential OAuth client registered with the issuer.
type Client struct {
	// ID is the client_id; required, unique.
	ID string
	// Secret is the client_secret; required.
	Secret string
	// Scopes lists the scopes the client may request. Empty means any
	// scope the server grants (see Config.Scopes).
	Scopes []string
	// DefaultScopes are granted when a token request names no scope.
	// Empty means Config.DefaultScopes, less those the client may not
	// have.
	DefaultScopes []string
}

// Config configures an Issuer. The zero value is usable: one client
// dev-client/dev-secret, RS256 with a fresh 2048-bit key, one-hour tokens
// for audience api://default, on a free loopback port. Start copies the
// struct; later changes to the caller's value have no effect.
type Config struct {
	// Addr is the host:port to listen on ("127.0.0.1:0": a free port).
	// The host must be a loopback IP address or "localhost" (taken as
	// 127.0.0.1); anything else is refused.
	Addr string

	// AuthServerID is the last element of the issuer path
	// /oauth2/{AuthServerID}, like an Okta custom authorization server
	// ("default"). It must match [A-Za-z0-9_-]+.
	AuthServerID string

	// Clients are the registered clients (empty: one client with
	// DefaultClientID and DefaultClientSecret and no scope restriction).
	// The first one is the default of MintOptions.ClientID.
	Clients []Client

	// Audience is the aud claim of issued tokens ("api://default").
	Audience string

	// Algorithm is the JWS algorithm of the signing keys ("RS256"). One of
	// RS256, RS384, RS512, PS256, PS384, PS512 (RSA keys of RSABits),
	// ES256, ES384, ES512 (P-256, P-384, P-521) and EdDSA (Ed25519).
	Algorithm string

	// RSABits is the size of generated RSA keys (2048; at least 2048).
	RSABits int

	// TokenLifetime is the lifetime of issued tokens (1h); exp = iat +
	// TokenLifetime, and expires_in is its whole seconds.
	TokenLifetime time.Duration

	// Scopes are the scopes the server grants and advertises in
	// scopes_supported. Empty means any well-formed scope (RFC 6749 3.3)
	// is granted, and the advertised list is DefaultScopes plus every
	// client's Scopes.
	Scopes []string

	// DefaultScopes are granted when a token request names no scope.
	// nil means []string{"items"}; an empty non-nil slice means none, so
	// that requests must name their scopes. With Scopes set, every default
	// scope must be among them.
	DefaultScopes []string

	// TokenType is the JOSE "typ" header of tokens from /v1/token and
	// the default of Mint. Empty means no typ header, as Okta does; set
	// "at+jwt" for RFC 9068 tokens or "JWT".
	TokenType string

	// KeysMaxAge is the Cache-Control max-age of /v1/keys and of the
	// discovery documents (5m). A negative value sends
	// "Cache-Control: no-cache" instead.
	KeysMaxAge time.Duration

	// Now is the clock for iat, exp and introspection (time.Now).
	Now func() time.Time

	// TLS, when set, makes the issuer serve HTTPS with it, so that its
	// issuer URL and endpoints are https://127.0.0.1:PORT/…: for tests of
	// the trust in an authorization server's certificate. Its certificate
	// must name the loopback address clients dial. nil serves plain HTTP.
	TLS *tls.Config

	// Logger receives the issuer's logs (nil: none). Secrets and tokens
	// are never logged.
	Logger *zap.Logger
}

// Issuer is a running development authorization server. Its methods are
// safe for concurrent use. Close it when done.
type Issuer struct {
	cfg     Config
	log     *zap.Logger
	addr    string // resolved listen address, port fixed after Start
	issuer  string // http(s)://addr/oauth2/id
	prefix  string // /oauth2/id
	clients map[string]*Client

	// Pre-encoded documents (immutable after Start).
	asMetadata   []byte
	oidcMetadata []byte

	keys     keyStore
	revoked  revocations
	verified verifiedCache

	counts    [numEndpoints]atomic.Uint64
	faults    [numEndpoints]atomic.Pointer[faultState]
	inflight  atomic.Int64           // requests inside the handler, for tests
	waitHook  atomic.Pointer[func()] // tests only: called when a request starts its injected latency
	closed    chan struct{}          // closed by Close: aborts injected latency, refuses Restart
	closeOnce sync.Once

	lifeMu    sync.Mutex // guards srv, ln, gen, serveDone
	srv       *fasthttp.Server
	ln        net.Listener
	gen       chan struct{} // closed by Stop: aborts latency of this generation
	serveDone chan struct{} // closed when the serving goroutine returns

	errMu    sync.Mutex // guards serveErr
	serveErr error      // first error of a serving goroutine
}

// validAuthServerID reports whether id matches [A-Za-z0-9_-]+.
func validAuthServerID(id string) bool {
	if id == "" {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Start validates cfg, generates the first signing key, listens on cfg.Addr
// and serves in a background goroutine until Close.
func Start(cfg Config) (*Issuer, error) {
	i, err := newIssuer(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", i.addr)
	if err != nil {
		return nil, fmt.Errorf("devissuer: listen on %s: %w", i.addr, err)
	}
	if err := i.setAddr(ln.Addr().String()); err != nil {
		_ = ln.Close()
		return nil, err
	}
	i.lifeMu.Lock()
	i.serveLocked(ln)
	i.lifeMu.Unlock()
	i.log.Info("serving",
		zap.String("issuer", i.issuer),
		zap.String("algorithm", i.cfg.Algorithm),
		zap.String("kid", i.SigningKID()),
		zap.Int("clients", len(i.clients)))
	return i, nil
}

// newIssuer validates the configuration and prepares everything but the
// listener.
func newIssuer(cfg Config) (*Issuer, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	addr, err := loopbackAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.AuthServerID == "" {
		cfg.AuthServerID = DefaultAuthServerID
	}
	if !validAuthServerID(cfg.AuthServerID) {
		return nil, fmt.Errorf("devissuer: AuthServerID %q: want [A-Za-z0-9_-]+", cfg.AuthServerID)
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = DefaultAlgorithm
	}
	if !slices.Contains(KeyAlgorithms(), cfg.Algorithm) {
		return nil, fmt.Errorf("devissuer: Algorithm %q: want one of %v", cfg.Algorithm, KeyAlgorithms())
	}
	if cfg.RSABits == 0 {
		cfg.RSABits = DefaultRSABits
	}
	if cfg.RSABits < 2048 {
		return nil, fmt.Errorf("devissuer: RSABits %d: want at least 2048", cfg.RSABits)
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if cfg.TokenLifetime < time.Second {
		return nil, fmt.Errorf("devissuer: TokenLifetime %v: want at least 1s", cfg.TokenLifetime)
	}
	if cfg.KeysMaxAge == 0 {
		cfg.KeysMaxAge = DefaultKeysMaxAge
	}
	cfg.Scopes = slices.Clone(cfg.Scopes)
	if err := checkScopes("Scopes", cfg.Scopes, nil); err != nil {
		return nil, err
	}
	if cfg.DefaultScopes == nil {
		cfg.DefaultScopes = []string{DefaultScope}
	}
	cfg.DefaultScopes = slices.Clone(cfg.DefaultScopes)
	if err := checkScopes("DefaultScopes", cfg.DefaultScopes, cfg.Scopes); err != nil {
		return nil, err
	}
	if len(cfg.Clients) == 0 {
		cfg.Clients = []Client{{ID: DefaultClientID, Secret: DefaultClientSecret}}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TLS != nil {
		cfg.TLS = cfg.TLS.Clone()
		if cfg.TLS.MinVersion == 0 {
			cfg.TLS.MinVersion = tls.VersionTLS12
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}

	i := &Issuer{
		log:     cfg.Logger.Named("devissuer"),
		addr:    addr,
		clients: make(map[string]*Client, len(cfg.Clients)),
		closed:  make(chan struct{}),
	}
	clients := make([]Client, len(cfg.Clients))
	for n, c := range cfg.Clients {
		c.Scopes = slices.Clone(c.Scopes)
		c.DefaultScopes = slices.Clone(c.DefaultScopes)
		switch {
		case c.ID == "":
			return nil, fmt.Errorf("devissuer: Clients[%d]: empty ID", n)
		case c.Secret == "":
			return nil, fmt.Errorf("devissuer: Clients[%d] (%s): empty Secret", n, c.ID)
		case i.clients[c.ID] != nil:
			return nil, fmt.Errorf("devissuer: Clients[%d]: duplicate ID %q", n, c.ID)
		}
		if err := checkScopes(fmt.Sprintf("Clients[%d].Scopes", n), c.Scopes, cfg.Scopes); err != nil {
			return nil, err
		}
		if len(c.DefaultScopes) == 0 {
			for _, s := range cfg.DefaultScopes {
				if len(c.Scopes) == 0 || slices.Contains(c.Scopes, s) {
					c.DefaultScopes = append(c.DefaultScopes, s)
				}
			}
		} else if err := checkScopes(fmt.Sprintf("Clients[%d].DefaultScopes", n), c.DefaultScopes, allowedFor(&c, cfg.Scopes)); err != nil {
			return nil, err
		}
		clients[n] = c
		i.clients[c.ID] = &clients[n]
	}
	cfg.Clients = clients
	i.cfg = cfg
	i.verified.init()
	i.revoked.init()
	if _, err := i.AddKey(cfg.Algorithm); err != nil {
		return nil, err
	}
	return i, nil
}

// setAddr fixes the listening address, and with it the issuer URL and the
// discovery documents.
func (i *Issuer) setAddr(addr string) error {
	i.addr = addr
	i.prefix = "/oauth2/" + i.cfg.AuthServerID
	scheme := "http://"
	if i.cfg.TLS != nil {
		scheme = "https://"
	}
	i.issuer = scheme + addr + i.prefix
	return i.encodeMetadata()
}

// allowedFor is what a client may request: its own list, else the server's
// (nil: anything well-formed).
func allowedFor(c *Client, server []string) []string {
	if len(c.Scopes) > 0 {
		return c.Scopes
	}
	return server
}

// checkScopes reports a scope of list that is malformed or, when allowed is
// non-empty, not in allowed.
func checkScopes(field string, list, allowed []string) error {
	for _, s := range list {
		if !validScopeToken(s) {
			return fmt.Errorf("devissuer: %s: %q is not a valid scope token", field, s)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, s) {
			return fmt.Errorf("devissuer: %s: scope %q is not allowed (want one of %v)", field, s, allowed)
		}
	}
	return nil
}

// loopbackAddr checks that addr names a loopback host and returns it with
// "localhost" resolved to 127.0.0.1.
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("devissuer: Addr %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("devissuer: Addr %q: the development issuer listens on loopback addresses only", addr)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// serveLocked starts a new server generation on ln (wrapped in TLS when
// Config.TLS is set). lifeMu is held.
func (i *Issuer) serveLocked(ln net.Listener) {
	if i.cfg.TLS != nil {
		ln = tls.NewListener(ln, i.cfg.TLS)
	}
	gen := make(chan struct{})
	srv := &fasthttp.Server{
		Handler:            func(ctx *fasthttp.RequestCtx) { i.handle(ctx, gen) },
		Name:               "devissuer",
		ReadTimeout:        10 * time.Second,
		WriteTimeout:       10 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxRequestBodySize: maxRequestBody,
		CloseOnShutdown:    true,
		Logger:             fasthttpLogger{i.log},
	}
	done := make(chan struct{})
	sl := &startedListener{Listener: ln, started: make(chan struct{})}
	i.srv, i.ln, i.gen, i.serveDone = srv, ln, gen, done
	go func() {
		defer close(done)
		if err := srv.Serve(sl); err != nil && !errors.Is(err, net.ErrClosed) {
			i.log.Warn("serve", zap.Error(err))
			i.errMu.Lock()
			if i.serveErr == nil {
				i.serveErr = fmt.Errorf("devissuer: serve: %w", err)
			}
			i.errMu.Unlock()
		}
	}()
	// fasthttp's Shutdown only closes listeners that Serve has registered:
	// wait until it has, or a quick Stop would leave Serve accepting.
	select {
	case <-sl.started:
	case <-done:
	}
}

// startedListener reports the first Accept, which Serve calls only after
// registering the listener.
type startedListener struct {
	net.Listener
	once    sync.Once
	started chan struct{}
}

func (l *startedListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.started) })
	return l.Listener.Accept()
}

// shutdownTimeout bounds how long Stop waits for connections to finish.
const shutdownTimeout = 5 * time.Second

// stopLocked shuts the current generation down and waits for its serving
// goroutine. lifeMu is held.
func (i *Issuer) stopLocked() error {
	if i.srv == nil {
		return nil
	}
	srv, ln, gen, done := i.srv, i.ln, i.gen, i.serveDone
	i.srv, i.ln, i.gen, i.serveDone = nil, nil, nil, nil
	close(gen) // requests waiting on injected latency give up
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.ShutdownWithContext(ctx)
	_ = ln.Close() // normally closed by Shutdown already
	<-done
	if err != nil {
		return fmt.Errorf("devissuer: stop: %w", err)
	}
	return nil
}

// Stop closes the listener and every connection: from then on connections
// to the issuer's port are refused. Requests waiting on injected latency
// are dropped. Keys, clients, revocations, counters and faults are kept;
// Restart serves again on the same port. Stop on a stopped issuer does
// nothing.
func (i *Issuer) Stop() error {
	i.lifeMu.Lock()
	defer i.lifeMu.Unlock()
	err := i.stopLocked()
	if err == nil {
		i.log.Info("stopped", zap.String("issuer", i.issuer))
	}
	return err
}

// Restart listens again on the same address after Stop. On a running
// issuer it does nothing; after Close it returns ErrClosed. It fails if
// another process took the port meanwhile.
func (i *Issuer) Restart() error {
	i.lifeMu.Lock()
	defer i.lifeMu.Unlock()
	select {
	case <-i.closed:
		return ErrClosed
	default:
	}
	if i.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", i.addr)
	if err != nil {
		return fmt.Errorf("devissuer: restart on %s: %w", i.addr, err)
	}
	i.serveLocked(ln)
	i.log.Info("serving again", zap.String("issuer", i.issuer))
	return nil
}

// Close stops serving, aborts injected latency (also of requests served
// through Handler), and waits for the serving goroutine and in-flight
// requests to finish. It returns the first serving error, if any. Close
// is idempotent.
func (i *Issuer) Close() error {
	first := false
	i.closeOnce.Do(func() { close(i.closed); first = true })
	i.lifeMu.Lock()
	defer i.lifeMu.Unlock()
	err := i.stopLocked()
	if err == nil {
		i.errMu.Lock()
		err = i.serveErr
		i.errMu.Unlock()
	}
	if first {
		i.log.Info("closed", zap.String("issuer", i.issuer))
	}
	return err
}

// Issuer returns the issuer identifier, http://127.0.0.1:PORT/oauth2/default
// (https:// with Config.TLS).
func (i *Issuer) Issuer() string { return i.issuer }

// Addr returns the host:port the issuer listens on (kept across Restart).
func (i *Issuer) Addr() string { return i.addr }

// Audience returns the aud claim of issued tokens.
func (i *Issuer) Audience() string { return i.cfg.Audience }

// Clients returns a copy of the registered clients, secrets included (for
// tests and for `tokengate --dev` to tell its user).
func (i *Issuer) Clients() []Client {
	out := make([]Client, len(i.cfg.Clients))
	for n, c := range i.cfg.Clients {
		c.Scopes = slices.Clone(c.Scopes)
		c.DefaultScopes = slices.Clone(c.DefaultScopes)
		out[n] = c
	}
	return out
}

// Endpoint URLs, as advertised in the discovery documents.

// DiscoveryURL returns {issuer}/.well-known/oauth-authorization-server.
func (i *Issuer) DiscoveryURL() string { return i.issuer + "/.well-known/oauth-authorization-server" }

// OpenIDConfigurationURL returns {issuer}/.well-known/openid-configuration.
func (i *Issuer) OpenIDConfigurationURL() string {
	return i.issuer + "/.well-known/openid-configuration"
}

// JWKSURL returns {issuer}/v1/keys.
func (i *Issuer) JWKSURL() string { return i.issuer + "/v1/keys" }

// TokenURL returns {issuer}/v1/token.
func (i *Issuer) TokenURL() string { return i.issuer + "/v1/token" }

// IntrospectionURL returns {issuer}/v1/introspect.
func (i *Issuer) IntrospectionURL() string { return i.issuer + "/v1/introspect" }

// RevocationURL returns {issuer}/v1/revoke.
func (i *Issuer) RevocationURL() string { return i.issuer + "/v1/revoke" }

// fingerprint is the only form in which a token reaches a log: the first 8
// hex characters of its SHA-256.
func fingerprint(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:4])
}

// fasthttpLogger sends fasthttp's own messages (connection errors) to zap
// at debug level.
type fasthttpLogger struct{ log *zap.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "fasthttp"); ce != nil {
		ce.Write(zap.String("msg", fmt.Sprintf(format, args...)))
	}
}
