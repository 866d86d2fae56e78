package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Client authentication methods for RemoteConfig.AuthMethod (RFC 6749
// §2.3.1, names from the RFC 8414 registry).
const (
	// AuthMethodClientSecretBasic sends the client credentials in an
	// Authorization: Basic header, each form-urlencoded before base64 as
	// RFC 6749 §2.3.1 requires. It is the default.
	AuthMethodClientSecretBasic = "client_secret_basic"
	// AuthMethodClientSecretPost sends client_id and client_secret as form
	// fields in the request body.
	AuthMethodClientSecretPost = "client_secret_post"
)

// Defaults and bounds used by Remote when the authorization server gives
// no better answer.
const (
	// RemoteDefaultRetryAfter is the RetryAfter of an *UnavailableError
	// from Remote when the server sent neither Retry-After nor
	// X-Rate-Limit-Reset, or failed without answering.
	RemoteDefaultRetryAfter = 2 * time.Second
	// RemoteOverloadRetryAfter is the RetryAfter when a validation is
	// refused because MaxConcurrent introspections are already in flight.
	RemoteOverloadRetryAfter = 1 * time.Second
	// RemoteMaxRetryAfter caps any RetryAfter taken from the server, so a
	// confused or hostile server cannot park clients for days.
	RemoteMaxRetryAfter = time.Hour
)

// RemoteConfig configures a Remote validator. Zero (or negative) fields
// take the defaults in parentheses; NewRemote copies the struct, so the
// caller may reuse it.
type RemoteConfig struct {
	// Issuer is the authorization server's issuer identifier (required).
	// When an introspection response carries iss, it must equal Issuer
	// exactly; when it carries none, the Principal's Issuer is Issuer.
	Issuer string
	// Audience is this resource server's audience (required). When an
	// introspection response carries aud (a string or an array), it must
	// contain Audience. A response without aud is accepted unless
	// RequireAudience is set.
	Audience string
	// RequireAudience rejects an active token whose response carries no
	// aud (missing, null, "" or []) with ReasonAudienceMissing.
	// Zero (false) checks aud only when present, as RFC 7662 makes it
	// optional: the authorization server has vouched for the token. Set it
	// when one authorization server issues tokens for several APIs, or
	// tokens bound to none (node oidc-provider without a resource
	// indicator), so that only tokens issued for Audience pass.
	RequireAudience bool

	// Discovery supplies introspection_endpoint (its Override first, else
	// the discovered metadata, looked up on first use and then kept) when
	// Endpoint is empty. One of Discovery and Endpoint is required; a
	// discovery failure, or metadata without introspection_endpoint, is an
	// *UnavailableError at Validate time.
	Discovery *Discovery
	// Endpoint is the introspection URL (http or https, no user info in
	// the URL). It wins over Discovery; ORY Hydra, for instance, serves
	// introspection on an admin port and does not advertise it.
	Endpoint string

	// ClientID and ClientSecret authenticate this resource server to the
	// introspection endpoint (both required). They are never logged.
	ClientID, ClientSecret string
	// AuthMethod is AuthMethodClientSecretBasic ("", the default) or
	// AuthMethodClientSecretPost.
	AuthMethod string

	// Client performs the calls (nil: NewHTTPClient with
	// MaxResponseBodySize = MaxResponseSize). Build it with NewHTTPClient
	// so that connect and read timeouts and a body limit apply.
	Client HTTPClient
	// Timeout bounds one introspection in total: connect, send, wait and
	// read (5s). A deadline on the ctx passed to Validate shortens it. The
	// deadline is measured on the wall clock, not on Now.
	Timeout time.Duration
	// MaxConcurrent bounds introspections in flight at once (64). A
	// validation that would exceed it fails at once with an
	// *UnavailableError ("too many concurrent introspections") instead of
	// queueing: under a flood of unknown tokens the authorization server
	// sees at most MaxConcurrent requests and nothing grows without bound.
	// Nor does the log (see Logger).
	MaxConcurrent int
	// MaxPerClient bounds the introspections in flight for one client (8),
	// the address a validation's ctx names (WithClient); a validation
	// whose ctx names none counts against MaxConcurrent only. One more
	// fails at once with an *UnavailableError ("too many concurrent
	// introspections for this client", kind RemoteClientOverflow), so
	// that one source of unknown tokens cannot take every slot of
	// MaxConcurrent.
	MaxPerClient int
	// MaxTokenSize rejects larger tokens before any call is made (8192
	// bytes).
	MaxTokenSize int
	// MaxResponseSize bounds the introspection response body (1 MiB). A
	// larger body is an *UnavailableError, never a verdict.
	MaxResponseSize int
	// AllowedClients, when non-empty, lists the only client IDs (from
	// client_id, else cid) whose tokens are accepted; a token whose
	// response names no client is then rejected. Empty accepts any client.
	AllowedClients []string

	// Now is the clock for exp checks and for turning Retry-After dates
	// and X-Rate-Limit-Reset into durations (nil: time.Now).
	Now func() time.Time
	// Logger receives one line per failed introspection, naming the
	// failure, its kind and the token's Fingerprint (nil: no logging).
	// So that an authorization-server outage or a flood cannot flood the
	// log, each RemoteFailureKind gives at most one line a second (on
	// Now) at its own level (ERROR for rejected credentials, WARN
	// otherwise), which counts in "suppressed" the lines of that kind
	// logged at debug level since the previous one.
	Logger *zap.Logger
}

// Remote validates tokens by asking the authorization server (RFC 7662
// token introspection). It knows about revocation, at the price of one
// round trip per call: put it behind a cache.
//
// Strictness: the response must be a single JSON object with no member
// name given twice and nothing after it; the names Remote reads (active,
// exp, iat, iss, aud, scope, scp, client_id, cid, sub, jti, token_type,
// cnf) match case-sensitively. Anything else is an
// *UnavailableError (the server failed), never a verdict. In a well-formed
// response the token is active only if active is the JSON literal true
// ("true", 1, null or a missing member mean inactive). For an active token,
// exp (if present) must be after Now, with no leeway; iss (if present)
// must equal Issuer; aud (if present, or always with RequireAudience)
// must contain Audience; token_type is
// accepted unless it names a refresh token, an ID token or a DPoP-bound
// token, and a cnf other than null (a token bound to a key, RFC 8705 or
// RFC 9449) is refused: Remote checks no proof of possession. nbf is not checked: the server has
// already judged the token active. A present member of the wrong type
// (exp as a string, say) makes the response malformed: *UnavailableError.
//
// Failures of the server itself (refused connection, timeout, 5xx, 429,
// 401/403 for our own credentials, any other non-200 status, a body that is
// not JSON or is too large) are *UnavailableError with a Reason naming the
// failure and a RetryAfter taken from Retry-After (delta-seconds or an
// HTTP date) or Okta's X-Rate-Limit-Reset (Unix seconds), rounded up to a
// whole second, at least 1s and at most RemoteMaxRetryAfter;
// RemoteDefaultRetryAfter when the server gives neither. Every
// *UnavailableError from Remote wraps an *IntrospectionError (errors.As)
// with the failure's RemoteFailureKind, the HTTP status, the server's RFC
// 6749 error code and the RetryAfter it asked for. A bad token is a
// *TokenError whose Reason is one Local uses too (ReasonExpired,
// ReasonIssuer, ...), or ReasonInactive when the server says it is not
// active.
//
// Stats counts introspections, verdicts and failures by kind. A Remote is
// safe for concurrent use.
type Remote struct {
	issuer, audience string
	requireAudience  bool
	discovery        *Discovery
	endpoint         *remoteEndpoint // explicit endpoint; nil when discovered
	discovered       atomic.Pointer[remoteEndpoint]
	basicAuth        string // "Basic ..." header value; empty for client_secret_post
	formSuffix       string // "&token_type_hint=access_token[&client_id=..&client_secret=..]"
	client           HTTPClient
	timeout          time.Duration
	sem              chan struct{} // one slot per introspection in flight
	perClient        clientSlots   // introspections in flight per client
	maxTokenSize     int
	maxResponseSize  int
	allowedClients   []string
	now              func() time.Time
	log              *zap.Logger

	// Failure logging is rate-limited per kind, so that an outage or a
	// flood costs one line a second per kind, not one per request.
	logs [remoteFailureKinds]logLimiter

	// Counters for Stats.
	introspections atomic.Uint64
	active         atomic.Uint64
	inactive       atomic.Uint64
	rejected       atomic.Uint64
	failures       [remoteFailureKinds]atomic.Uint64
}

var _ Validator = (*Remote)(nil)

// remoteEndpoint is a checked introspection URL.
type remoteEndpoint struct {
	url  string
	host string // for logs: the URL's query might carry secrets
}

// NewRemote checks cfg and returns a Remote. It makes no network call:
// a discovered endpoint is looked up on first use.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: NewRemote: Issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: NewRemote: Audience is required")
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("auth: NewRemote: ClientID and ClientSecret are required for introspection")
	}
	if cfg.Endpoint == "" && cfg.Discovery == nil {
		return nil, errors.New("auth: NewRemote: no introspection endpoint: set Endpoint or Discovery")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 64
	}
	if cfg.MaxPerClient <= 0 {
		cfg.MaxPerClient = 8
	}
	if cfg.MaxTokenSize <= 0 {
		cfg.MaxTokenSize = 8192
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = 1 << 20
	}
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(HTTPClientConfig{MaxResponseBodySize: cfg.MaxResponseSize})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}

	r := &Remote{
		issuer:          cfg.Issuer,
		audience:        cfg.Audience,
		requireAudience: cfg.RequireAudience,
		discovery:       cfg.Discovery,
		client:          cfg.Client,
		timeout:         cfg.Timeout,
		sem:             make(chan struct{}, cfg.MaxConcurrent),
		perClient:       clientSlots{max: cfg.MaxPerClient, inFlight: make(map[netip.Addr]int)},
		maxTokenSize:    cfg.MaxTokenSize,
		maxResponseSize: cfg.MaxResponseSize,
		allowedClients:  slices.Clone(cfg.AllowedClients),
		now:             cfg.Now,
		log:             cfg.Logger,
	}

	suffix := "&token_type_hint=access_token"
	switch cfg.AuthMethod {
	case "", AuthMethodClientSecretBasic:
		r.basicAuth = BasicAuthorization(cfg.ClientID, cfg.ClientSecret)
	case AuthMethodClientSecretPost:
		suffix += "&client_id=" + url.QueryEscape(cfg.ClientID) +
			"&client_secret=" + url.QueryEscape(cfg.ClientSecret)
	default:
		return nil, fmt.Errorf("auth: NewRemote: AuthMethod %q is not %q or %q",
			cfg.AuthMethod, AuthMethodClientSecretBasic, AuthMethodClientSecretPost)
	}
	r.formSuffix = suffix

	if cfg.Endpoint != "" {
		ep, err := introspectCheckEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("auth: NewRemote: Endpoint: %w", err)
		}
		r.endpoint = ep
		r.warnPlainHTTP(ep)
	}
	return r, nil
}

// introspectCheckEndpoint accepts an absolute http or https URL with a
// host and without user info.
func introspectCheckEndpoint(raw string) (*remoteEndpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("introspection endpoint is not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("introspection endpoint scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("introspection endpoint has no host")
	}
	if u.User != nil {
		return nil, errors.New("introspection endpoint must not carry credentials; use ClientID and ClientSecret")
	}
	return &remoteEndpoint{url: raw, host: u.Host}, nil
}

// warnPlainHTTP logs once per endpoint when client credentials would cross
// a network unencrypted.
func (r *Remote) warnPlainHTTP(ep *remoteEndpoint) {
	if !strings.HasPrefix(ep.url, "http://") {
		return
	}
	host := ep.host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	r.log.Warn("auth: introspection endpoint uses plain http: the client secret and tokens travel unencrypted",
		zap.String("endpoint_host", ep.host))
}

// Validate introspects token and returns its Principal when the
// authorization server says it is active and the response passes the
// checks described on Remote.
//
// Before any call, a token that is empty, larger than MaxTokenSize, or
// contains bytes outside printable ASCII (0x21-0x7E) is a *TokenError.
// ctx cancellation is honoured before the call starts; once started, the
// call ends by its deadline (Timeout, or ctx's deadline if earlier).
func (r *Remote) Validate(ctx context.Context, token []byte) (*Principal, error) {
	if err := introspectCheckToken(token, r.maxTokenSize); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, r.fail(token, nil, introspectFailure("request cancelled before introspection",
			RemoteDefaultRetryAfter, &IntrospectionError{Kind: RemoteCancelled, Err: err}))
	}
	ep, ue := r.introspectionEndpoint(ctx)
	if ue != nil {
		return nil, r.fail(token, nil, ue)
	}

	if client, ok := ClientFrom(ctx); ok {
		if !r.perClient.acquire(client) {
			return nil, r.fail(token, ep, introspectFailure("too many concurrent introspections for this client",
				RemoteOverloadRetryAfter, &IntrospectionError{Kind: RemoteClientOverflow}))
		}
		defer r.perClient.release(client)
	}
	select {
	case r.sem <- struct{}{}:
	default:
		return nil, r.fail(token, ep, introspectFailure("too many concurrent introspections",
			RemoteOverloadRetryAfter, &IntrospectionError{Kind: RemoteOverflow}))
	}
	defer func() { <-r.sem }()

	return r.introspect(ctx, ep, token)
}

// clientSlots counts the introspections in flight per client address. A
// client with none has no entry, so the map holds at most as many
// entries as there are validations waiting to introspect.
type clientSlots struct {
	max      int
	mu       sync.Mutex         // guards inFlight
	inFlight map[netip.Addr]int // > 0 for every entry
}

// acquire takes one of client's slots, and reports false when it has none
// free.
func (c *clientSlots) acquire(client netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight[client] >= c.max {
		return false
	}
	c.inFlight[client]++
	return true
}

// release gives back a slot acquire took.
func (c *clientSlots) release(client netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.inFlight[client] - 1; n > 0 {
		c.inFlight[client] = n
	} else {
		delete(c.inFlight, client)
	}
}

// introspectCheckToken rejects tokens that must never be sent anywhere.
func introspectCheckToken(token []byte, maxSize int) error {
	if len(token) == 0 {
		return Invalid(ReasonEmpty)
	}
	if len(token) > maxSize {
		return Invalid(ReasonTooLarge)
	}
	for _, c := range token {
		if c < 0x21 || c > 0x7e {
			return Invalid(ReasonInvalidCharacters)
		}
	}
	return nil
}

// introspectionEndpoint returns the explicit endpoint, else the one
// discovered (remembered after the first success), or a RemoteNoEndpoint
// failure.
func (r *Remote) introspectionEndpoint(ctx context.Context) (*remoteEndpoint, *UnavailableError) {
	if r.endpoint != nil {
		return r.endpoint, nil
	}
	if ep := r.discovered.Load(); ep != nil {
		return ep, nil
	}
	raw, err := r.discovery.Endpoint(ctx, introspectEndpointField)
	if err != nil {
		retry := RemoteDefaultRetryAfter
		var ue *UnavailableError
		if errors.As(err, &ue) && ue.RetryAfter > 0 {
			retry = ue.RetryAfter
		}
		return nil, introspectFailure("cannot find the introspection endpoint", retry,
			&IntrospectionError{Kind: RemoteNoEndpoint, Err: err})
	}
	ep, err := introspectCheckEndpoint(raw)
	if err != nil {
		return nil, introspectFailure("discovered introspection_endpoint is unusable", RemoteDefaultRetryAfter,
			&IntrospectionError{Kind: RemoteNoEndpoint, Err: err})
	}
	if r.discovered.CompareAndSwap(nil, ep) {
		r.warnPlainHTTP(ep)
	}
	return ep, nil
}

// introspect makes the call and turns the answer into a result.
func (r *Remote) introspect(ctx context.Context, ep *remoteEndpoint, token []byte) (*Principal, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	req.SetRequestURI(ep.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.Header.Set(fasthttp.HeaderAccept, "application/json")
	if r.basicAuth != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, r.basicAuth)
	}
	body := make([]byte, 0, len("token=")+len(token)+len(r.formSuffix)+16)
	body = append(body, "token="...)
	body = fasthttp.AppendQuotedArg(body, token)
	body = append(body, r.formSuffix...)
	req.SetBodyRaw(body)

	deadline := time.Now().Add(r.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	r.introspections.Add(1)
	if err := r.client.DoDeadline(req, resp, deadline); err != nil {
		kind, reason := introspectTransportFailure(err)
		return nil, r.fail(token, ep, introspectFailure(reason, RemoteDefaultRetryAfter,
			&IntrospectionError{Kind: kind, Err: err}))
	}

	status := resp.StatusCode()
	if status != fasthttp.StatusOK {
		code := introspectOAuthErrorCode(resp.Body())
		kind, reason := introspectStatusFailure(status, code)
		return nil, r.fail(token, ep, introspectFailure(reason, RemoteDefaultRetryAfter, &IntrospectionError{
			Kind: kind, StatusCode: status, ErrorCode: code, RetryAfter: introspectRetryAfter(&resp.Header, r.now()),
		}))
	}
	respBody := resp.Body()
	if len(respBody) > r.maxResponseSize {
		return nil, r.fail(token, ep, introspectFailure("introspection response too large", RemoteDefaultRetryAfter,
			&IntrospectionError{Kind: RemoteOversize, StatusCode: status}))
	}

	p, err := r.introspectVerdict(respBody, r.now())
	if err != nil {
		if ue, ok := err.(*UnavailableError); ok {
			return nil, r.fail(token, ep, ue)
		}
		if errors.Is(err, ErrInactive) {
			r.inactive.Add(1)
		} else {
			r.rejected.Add(1)
		}
		if ce := r.log.Check(zap.DebugLevel, "auth: token rejected by introspection"); ce != nil {
			ce.Write(zap.String("token_fp", Fingerprint(token)), zap.Error(err))
		}
		return nil, err
	}
	r.active.Add(1)
	return p, nil
}

// Stats returns a snapshot of the Remote's counters. It takes no lock.
func (r *Remote) Stats() RemoteStats {
	s := RemoteStats{
		Introspections: r.introspections.Load(),
		Active:         r.active.Load(),
		Inactive:       r.inactive.Load(),
		Rejected:       r.rejected.Load(),
	}
	for i := range r.failures {
		s.Failures[i] = r.failures[i].Load()
	}
	return s
}

// introspectEndpointField selects introspection_endpoint from Metadata.
func introspectEndpointField(m Metadata) string { return m.IntrospectionEndpoint }
