package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/policy"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Config configures a Server. The zero value of each optional field takes
// the default named in its comment; New validates the whole struct once.
type Config struct {
	// Validator checks bearer tokens. Required; usually an authcache.Cache
	// in front of a local, remote or hybrid validator, so that a repeated
	// token costs one cache lookup.
	Validator auth.Validator

	// RequiredScope is the scope /items and /items/{id} demand ("items").
	// It must be a single RFC 6749 scope token (no spaces or quotes).
	RequiredScope string

	// Realm names the protection space in WWW-Authenticate ("tokengate").
	// It must be printable ASCII.
	Realm string

	// Ready reports whether the server can validate tokens yet (for
	// instance, whether the key set has loaded); /readyz answers 503 with
	// its error. nil means always ready.
	Ready func() error

	// TokenEndpoint returns the authorization server's token endpoint for
	// POST /token, typically from discovery. ctx carries the /token call's
	// deadline. An error answers 503 with Retry-After (taken from an
	// *auth.UnavailableError when it carries one). nil means /token is
	// not configured and answers 501.
	TokenEndpoint func(ctx context.Context) (string, error)

	// TokenClient makes the upstream /token call. nil means
	// auth.NewHTTPClient(auth.HTTPClientConfig{}): pooled, with connect and
	// read timeouts and a 1 MiB response limit. A client supplied here
	// should be size-limited the same way, and not be the one the
	// validators use: its connection pool would be shared with discovery,
	// JWKS and introspection.
	TokenClient auth.HTTPClient

	// TokenTimeout bounds a whole /token call, endpoint lookup included
	// (10s). Negative is an error.
	TokenTimeout time.Duration

	// TokenMaxConcurrent bounds the /token relays in flight at once (32):
	// beyond it POST /token answers 503 with Retry-After at once, without
	// queueing, so that a flood of /token calls to a slow token endpoint
	// holds at most this many upstream connections. Negative is an error.
	TokenMaxConcurrent int

	// DefaultScope is the scope /token asks for when the client names none
	// (RequiredScope, so that a token from /token works on /items).
	DefaultScope string

	// DevClientID is the development client's id when running under
	// --dev; the interactive docs may pre-fill it. Empty otherwise.
	DevClientID string

	// TrustedProxies are the peers whose X-Forwarded-For is believed: the
	// client of a request from one of them is the rightmost
	// X-Forwarded-For entry outside them; of any other request, its TCP
	// peer. Validators learn the client from their ctx (auth.ClientFrom)
	// on a cache miss, to bound work per client. The decision endpoints
	// answer only these peers. nil means DefaultTrustedProxies
	// (loopback); an empty non-nil slice trusts nobody.
	TrustedProxies []netip.Prefix

	// BaseContext is the server's lifetime context, passed to
	// Validator.Validate and used as the parent of upstream calls (a
	// *fasthttp.RequestCtx is never used as a context: it has no deadline
	// and is recycled after the handler returns). nil means
	// context.Background().
	BaseContext context.Context

	// Metrics, when set, appends more series to GET /metrics, after the
	// handlers' own (tokengate_requests_total, tokengate_rejections_total):
	// dst in, dst with the series appended out, in the Prometheus text
	// format version 0.0.4 (package internal/promtext writes it). It is called
	// once per scrape, on the scraping request's goroutine, and should be
	// quick and deterministic in its order. nil means only the handlers'
	// series.
	Metrics func(dst []byte) []byte

	// Policy is the route policy of the decision endpoints (/auth/forward,
	// /auth/request, /auth/envoy/…), swapped atomically on reload. nil
	// means policy.Default(RequiredScope): any valid token with the
	// required scope, and the default claim headers.
	Policy *policy.Holder

	// Logger receives operational logs; nil discards them. Tokens appear
	// only as auth.Fingerprint, client secrets never.
	Logger *zap.Logger
}

// Server holds the routes and their pre-encoded responses. It is safe for
// concurrent use; build it with New.
type Server struct {
	cfg     Config // validated copy, defaults filled; the docs read it
	log     *zap.Logger
	baseCtx context.Context
	client  auth.HTTPClient
	router  *router.Router
	policy  *policy.Holder // the decision endpoints' rules

	bearerChallenge []byte // Bearer realm="…"
	basicChallenge  []byte // Basic realm="…"
	items           *scopeGuard
	metricsBufs     sync.Pool     // *[]byte rendering buffers for GET /metrics
	clientCtxs      sync.Pool     // *clientContext, one per Validate call in flight
	memo            memoValidator // cfg.Validator, when it keeps per-connection memos; else nil
	tokenSlots      chan struct{} // one per /token relay in flight

	requests   requestCounters   // outcomes of the token check, for GET /metrics
	rejections rejectionCounters // reasons of the invalid_token rejections, for GET /metrics

	lastNotReady atomic.Pointer[string] // the Ready error last logged at warn level; nil once ready
}

// New validates cfg and builds a Server with every route mounted.
func New(cfg Config) (*Server, error) {
	if cfg.Validator == nil {
		return nil, errors.New("handlers: Config.Validator is required")
	}
	if cfg.RequiredScope == "" {
		cfg.RequiredScope = "items"
	}
	if !auth.ValidScopeToken(cfg.RequiredScope) {
		return nil, fmt.Errorf("handlers: Config.RequiredScope %q is not a single scope token", cfg.RequiredScope)
	}
	if cfg.Realm == "" {
		cfg.Realm = "tokengate"
	}
	for i := 0; i < len(cfg.Realm); i++ {
		if c := cfg.Realm[i]; c < 0x20 || c >= 0x7f {
			return nil, fmt.Errorf("handlers: Config.Realm %q must be printable ASCII", cfg.Realm)
		}
	}
	switch {
	case cfg.TokenTimeout < 0:
		return nil, fmt.Errorf("handlers: Config.TokenTimeout %v is negative", cfg.TokenTimeout)
	case cfg.TokenTimeout == 0:
		cfg.TokenTimeout = 10 * time.Second
	}
	switch {
	case cfg.TokenMaxConcurrent < 0:
		return nil, fmt.Errorf("handlers: Config.TokenMaxConcurrent %d is negative", cfg.TokenMaxConcurrent)
	case cfg.TokenMaxConcurrent == 0:
		cfg.TokenMaxConcurrent = 32
	}
	if cfg.DefaultScope == "" {
		cfg.DefaultScope = cfg.RequiredScope
	}
	if cfg.BaseContext == nil {
		cfg.BaseContext = context.Background()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	if cfg.TokenClient == nil {
		cfg.TokenClient = auth.NewHTTPClient(auth.HTTPClientConfig{})
	}

	if cfg.Policy == nil {
		cfg.Policy = policy.NewHolder(policy.Default(cfg.RequiredScope), nil)
	}
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = DefaultTrustedProxies()
	}

	s := &Server{
		cfg:             cfg,
		log:             cfg.Logger,
		baseCtx:         cfg.BaseContext,
		client:          cfg.TokenClient,
		policy:          cfg.Policy,
		bearerChallenge: append([]byte("Bearer realm="), quote(cfg.Realm)...),
		basicChallenge:  append([]byte("Basic realm="), quote(cfg.Realm)...),
		tokenSlots:      make(chan struct{}, cfg.TokenMaxConcurrent),
	}
	s.items = s.newScopeGuard(cfg.RequiredScope)
	s.metricsBufs.New = func() any { b := make([]byte, 0, 8<<10); return &b }
	s.clientCtxs.New = func() any { return &clientContext{Context: s.baseCtx, s: s} }
	s.memo, _ = cfg.Validator.(memoValidator)

	r := router.New()
	getAndHead(r, "/", s.hello)
	getAndHead(r, "/healthz", s.healthz)
	getAndHead(r, "/readyz", s.readyz)
	getAndHead(r, "/metrics", s.serveMetrics)
	getAndHead(r, "/items", s.items.wrap(s.listItems))
	getAndHead(r, "/items/{id}", s.items.wrap(s.getItem))
	r.POST("/token", s.token)
	r.ANY(PathForward, s.decideForward)
	r.ANY(PathRequest, s.decideRequest)
	r.ANY(PathEnvoy+"/{path:*}", s.decideEnvoy)
	s.mountDocs(r)

	// The router's own redirects make Location absolute from the Host
	// header; trailingSlashRedirect makes the one FastAPI makes, relative.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = trailingSlashRedirect(r)
	r.MethodNotAllowed = methodNotAllowed
	r.GlobalOPTIONS = noContent
	r.PanicHandler = s.recoverPanic
	s.router = r
	return s, nil
}

// getAndHead mounts h for GET and HEAD (RFC 9110 section 9.3.2: a HEAD is
// answered as the GET would be, headers and status included; fasthttp
// leaves the body out).
func getAndHead(r *router.Router, path string, h fasthttp.RequestHandler) {
	r.GET(path, h)
	r.HEAD(path, h)
}

// Handler returns the request handler to serve, with every route mounted.
//
// Decision requests are dispatched before the router. Envoy's
// (/auth/envoy/…): the catch-all parameter would copy the path into a
// string on every request, and the decision reads the raw request target
// anyway. /auth/forward and /auth/request, spelled exactly so: they are
// registered for any method, and the router looks such a route up only
// after the request method's own tree has missed and it has searched that
// tree for a redirect (case-insensitively), which cost a twentieth of a
// cached decision. Any other spelling goes to the router as before. The
// routes stay registered, so that the router, /openapi.json and the drift
// test agree.
func (s *Server) Handler() fasthttp.RequestHandler {
	r := s.router.Handler
	return func(ctx *fasthttp.RequestCtx) {
		p := ctx.Request.URI().PathOriginal()
		switch string(p) {
		case PathForward:
			s.decideDispatched(ctx, dialectForward)
			return
		case PathRequest:
			s.decideDispatched(ctx, dialectRequest)
			return
		}
		// The raw path, as the router and readOriginal read it, not the
		// cleaned ctx.Path(): Envoy appends the original path as it came,
		// and "/auth/envoy/../../healthz" is a decision about /healthz,
		// not the router's redirect to tokengate's own /healthz.
		if len(p) > len(PathEnvoy) && p[len(PathEnvoy)] == '/' && string(p[:len(PathEnvoy)]) == PathEnvoy {
			s.decideDispatched(ctx, dialectEnvoy)
			return
		}
		r(ctx)
	}
}

// Router returns the router, for callers that mount extra routes (metrics,
// admin) before serving. Routes must not be added once serving has begun.
func (s *Server) Router() *router.Router { return s.router }

// DefaultTrustedProxies returns the peers trusted when Config.TrustedProxies
// is nil: the IPv4 and IPv6 loopback ranges.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

func quote(s string) []byte { return appendQuoted(nil, s, len(s)) }

// hello answers GET /, the tutorial's greeting; no authentication.
func (s *Server) hello(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, bodyHello)
}

// healthz answers 200 while the process serves.
func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, bodyHealthy)
}

// ErrShuttingDown is what Config.Ready returns, or wraps, once the server
// has begun to stop: /readyz then answers "not ready: shutting down".
var ErrShuttingDown = errors.New("handlers: shutting down")

// readyz answers 200 once Config.Ready says so, else 503 with Retry-After
// and the class of its reason (see notReadyReason): anyone may ask, so the
// error itself, which names hosts and addresses, goes to the log only.
func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.logNotReady(err)
			setRetryAfter(ctx, 0)
			writeDetail(ctx, fasthttp.StatusServiceUnavailable, notReadyReason(err))
			return
		}
		s.lastNotReady.Store(nil)
	}
	writeJSON(ctx, fasthttp.StatusOK, bodyReady)
}

// notReadyReason is the fixed text /readyz shows for a Config.Ready error.
func notReadyReason(err error) string {
	switch {
	case errors.Is(err, ErrShuttingDown), errors.Is(err, context.Canceled):
		return "not ready: shutting down"
	case errors.Is(err, auth.ErrUnavailable):
		return "not ready: authorization server unavailable"
	case errors.Is(err, auth.ErrKeysNotLoaded):
		return "not ready: keys not loaded yet"
	default:
		return "not ready"
	}
}

// logNotReady logs why the server is not ready: at warn level when the
// reason differs from the one logged last (or the server was ready in
// between), else at debug level, so that probes, which anyone may send,
// cannot flood the log.
func (s *Server) logNotReady(err error) {
	msg := err.Error()
	level := zap.WarnLevel
	if last := s.lastNotReady.Load(); last != nil && *last == msg {
		level = zap.DebugLevel
	} else {
		s.lastNotReady.Store(&msg)
	}
	if ce := s.log.Check(level, "handlers: not ready"); ce != nil {
		ce.Write(zap.String("reason", notReadyReason(err)), zap.String("error", msg))
	}
}

// item is one entry of the tutorial's fixed catalogue, its JSON pre-encoded.
type item struct {
	id   int64
	body []byte
}

var (
	catalogue = [...]item{
		{1, []byte(`{"id":1,"name":"red ball"}`)},
		{2, []byte(`{"id":2,"name":"blue square"}`)},
		{3, []byte(`{"id":3,"name":"purple ellipse"}`)},
	}
	bodyItems = []byte(`[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`)

	// bodyBadItemID is FastAPI's (pydantic v2) shape for a path parameter
	// that is not an integer, without echoing the client's input.
	bodyBadItemID = []byte(`{"detail":[{"type":"int_parsing","loc":["path","id"],"msg":"Input should be a valid integer, unable to parse string as an integer"}]}`)
)

// listItems answers GET /items (behind the scope guard).
func (s *Server) listItems(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, bodyItems)
}

// getItem answers GET /items/{id} (behind the scope guard): the item, 404
// for an integer that names none, 422 for an id that is not an integer.
// The router hands the segment over as received; a percent-encoded one is
// decoded first, so that /items/%32 is item 2 (RFC 3986 section 2.3), as
// FastAPI reads it.
func (s *Server) getItem(ctx *fasthttp.RequestCtx) {
	raw, _ := ctx.UserValue("id").(string)
	if strings.IndexByte(raw, '%') >= 0 {
		if decoded, err := url.PathUnescape(raw); err == nil {
			raw = decoded
		}
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			// An integer, just not one we have.
			writeJSON(ctx, fasthttp.StatusNotFound, bodyItemNotFound)
			return
		}
		writeJSON(ctx, fasthttp.StatusUnprocessableEntity, bodyBadItemID)
		return
	}
	for i := range catalogue {
		if catalogue[i].id == id {
			writeJSON(ctx, fasthttp.StatusOK, catalogue[i].body)
			return
		}
	}
	writeJSON(ctx, fasthttp.StatusNotFound, bodyItemNotFound)
}

func notFound(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusNotFound, bodyNotFound)
}

// trailingSlashRedirect is the router's NotFound handler: a path that
// would name a route of the request's method (or of any method) with a
// trailing slash added or removed is redirected to that route, 301 for GET and HEAD (RFC 9110
// section 9.3.2: a HEAD is answered as its GET), 308 for the others, so
// that they keep their method and body; anything else is 404.
//
// The Location is the target's path and query only (RFC 9110 section
// 10.2.2): fasthttp's ctx.Redirect, which the router's own redirects use,
// makes it absolute from the Host header and the scheme tokengate sees,
// which behind a TLS-terminating proxy sent the client to plain http, and
// behind one that passes its upstream address as Host, to that address.
// The router's case-fixing redirects are off for the same reason; FastAPI
// answers those spellings 404 too.
func trailingSlashRedirect(r *router.Router) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Request.URI().PathOriginal())
		method := string(ctx.Method())
		if len(path) < 2 || path[1] == '/' || path[1] == '\\' || method == fasthttp.MethodConnect {
			notFound(ctx)
			return
		}
		target := path + "/"
		if path[len(path)-1] == '/' {
			target = path[:len(path)-1]
		}
		if !routed(r, method, target, ctx) {
			notFound(ctx)
			return
		}
		if q := ctx.URI().QueryString(); len(q) > 0 {
			target += "?" + string(q)
		}
		status := fasthttp.StatusPermanentRedirect
		if method == fasthttp.MethodGet || method == fasthttp.MethodHead {
			status = fasthttp.StatusMovedPermanently
		}
		ctx.Response.Header.Set(fasthttp.HeaderLocation, target)
		ctx.SetStatusCode(status)
	}
}

// routed reports whether r has a route for method and path, or for any
// method and path.
func routed(r *router.Router, method, path string, ctx *fasthttp.RequestCtx) bool {
	if h, _ := r.Lookup(method, path, ctx); h != nil {
		return true
	}
	h, _ := r.Lookup(router.MethodWild, path, ctx)
	return h != nil
}

// RequestError answers a request that fasthttp could not read, as
// fasthttp.Server.ErrorHandler: a body over the server's
// MaxRequestBodySize is 413, a header over its ReadBufferSize 431, a read
// timeout 408, anything else 400, each with a JSON detail that echoes
// nothing of the request.
func (s *Server) RequestError(ctx *fasthttp.RequestCtx, err error) {
	var tooSmall *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeDetail(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
	case errors.As(err, &tooSmall):
		writeDetail(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request header too large")
	case isNetTimeout(err):
		writeDetail(ctx, fasthttp.StatusRequestTimeout, "request timeout")
	default:
		writeDetail(ctx, fasthttp.StatusBadRequest, "malformed request")
	}
}

// methodNotAllowed runs after the router has set the Allow header.
func methodNotAllowed(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, bodyMethodNotAllowed)
}

// noContent answers OPTIONS after the router has set the Allow header.
func noContent(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// recoverPanic is the router's PanicHandler: it logs the panic with the
// request id and a stack, and answers a bare 500 (never the stack).
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx, v any) {
	s.log.Error("handlers: panic serving request",
		zap.Uint64("request_id", ctx.ID()),
		zap.ByteString("method", ctx.Method()),
		zap.ByteString("path", ctx.Path()),
		zap.Any("panic", v),
		zap.Stack("stack"),
	)
	ctx.Response.Reset()
	writeInternalError(ctx)
}

// Recover answers a panic of the handler it is deferred in as the
// router's PanicHandler does (a logged stack, a bare 500 with the request
// id). Defer it directly, "defer s.Recover(ctx)", in a handler that runs
// outside the router, such as gateway mode's: fasthttp recovers nothing,
// so a panic there would end the process.
func (s *Server) Recover(ctx *fasthttp.RequestCtx) {
	if v := recover(); v != nil {
		s.recoverPanic(ctx, v)
	}
}

// writeInternalError answers 500 with the request id in X-Request-Id, so
// that a client report can be matched with the log line the caller wrote.
func writeInternalError(ctx *fasthttp.RequestCtx) {
	var buf [20]byte
	ctx.Response.Header.SetBytesV(headerRequestID, strconv.AppendUint(buf[:0], ctx.ID(), 10))
	writeJSON(ctx, fasthttp.StatusInternalServerError, bodyInternalError)
}
