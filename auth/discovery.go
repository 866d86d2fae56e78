package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Well-known paths tried, in this order, under the issuer URL.
const (
	wellKnownOAuth = "/.well-known/oauth-authorization-server" // RFC 8414, Okta custom servers
	wellKnownOIDC  = "/.well-known/openid-configuration"       // OpenID Connect Discovery 1.0
)

// defaultMaxDocumentSize caps a discovery or JWKS body when the injected
// client does not stop the read itself (NewHTTPClient does, at 1 MiB).
const defaultMaxDocumentSize = 1 << 20

// Metadata is the part of an authorization server's metadata (RFC 8414,
// OpenID Connect Discovery) that tokengate uses.
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// DiscoveryConfig configures a Discovery. Zero fields take the defaults in
// parentheses.
type DiscoveryConfig struct {
	// Issuer is the authorization server's issuer identifier, compared
	// byte for byte with the "issuer" of the discovered metadata. Required:
	// an http(s) URL without user info, query or fragment. For Okta:
	// https://{domain}/oauth2/default.
	Issuer string

	// Override holds endpoints set explicitly. Its non-empty fields win
	// over discovered ones; a caller whose field is overridden never
	// triggers a fetch (see Endpoint). Override.Issuer is ignored.
	Override Metadata

	// Client makes the outbound requests (NewHTTPClient(HTTPClientConfig{})).
	Client HTTPClient

	// Timeout bounds each metadata request (5s). A discovery tries at most
	// two URLs, so one discovery takes at most twice this.
	Timeout time.Duration

	// RetryInterval is the minimum gap between failed discoveries (5s):
	// within it callers get the last error at once, with no request made.
	RetryInterval time.Duration

	// Now is the clock used for RetryInterval (time.Now).
	Now func() time.Time

	// Logger receives discovery failures (zap.NewNop()).
	Logger *zap.Logger
}

// Discovery finds an authorization server's endpoints from its issuer URL.
//
// It fetches {issuer}/.well-known/oauth-authorization-server and, failing
// that, {issuer}/.well-known/openid-configuration and (for an issuer with
// a path) RFC 8414's /.well-known/oauth-authorization-server{path}, on
// first use. One fetch
// runs at a time and concurrent callers share it, each free to leave when
// its own context ends; a success is kept for the life of the Discovery,
// and failures are retried at most once per RetryInterval. A document's
// member names must match exactly (RFC 8414 names are case-sensitive), a
// member given twice makes it unusable, and its "issuer" must equal Issuer
// byte for byte (RFC 8414 section 3.3). The metadata of
// an https issuer is refused if it names a plain-http endpoint (one not
// overridden). URLs in errors and logs have user info and query removed.
// A Discovery is safe for concurrent use. Close it after its users at
// shutdown.
type Discovery struct {
	issuer   string
	override Metadata
	client   HTTPClient
	timeout  time.Duration
	retry    time.Duration
	now      func() time.Time
	log      *zap.Logger

	found atomic.Pointer[Metadata] // merged metadata after the first success

	mu       sync.Mutex     // guards call, lastErr, lastFail, streak, closed
	call     *discoveryCall // the fetch in flight, or nil
	lastErr  error          // cause of the last failed fetch
	lastFail time.Time      // when it failed (d.now)
	streak   failureStreak  // the failed fetches in a row, for the log
	closed   bool
	wg       sync.WaitGroup // fetch goroutines
}

// discoveryCall is one fetch that several callers may wait for.
type discoveryCall struct {
	done chan struct{} // closed when md and err are set
	md   Metadata
	err  error
}

// NewDiscovery checks cfg and returns a Discovery. It makes no request.
func NewDiscovery(cfg DiscoveryConfig) (*Discovery, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: discovery: issuer is required")
	}
	if !strings.HasPrefix(cfg.Issuer, "https://") && !strings.HasPrefix(cfg.Issuer, "http://") {
		return nil, fmt.Errorf("auth: discovery: issuer %q is not an http(s) URL", RedactURL(cfg.Issuer))
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// RFC 8414 section 2; user info would also be echoed into errors.
		return nil, fmt.Errorf("auth: discovery: issuer %q must be a URL without user info, query or fragment", RedactURL(cfg.Issuer))
	}
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(HTTPClientConfig{})
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	override := cfg.Override
	override.Issuer = ""
	return &Discovery{
		issuer:   cfg.Issuer,
		override: override,
		client:   cfg.Client,
		timeout:  cfg.Timeout,
		retry:    cfg.RetryInterval,
		now:      cfg.Now,
		log:      cfg.Logger,
	}, nil
}

// Issuer returns the configured issuer identifier.
func (d *Discovery) Issuer() string { return d.issuer }

// Metadata returns the authorization server's metadata, with overridden
// fields in place of discovered ones. It discovers on first use unless
// every endpoint is overridden. A failure is an *UnavailableError.
func (d *Discovery) Metadata(ctx context.Context) (Metadata, error) {
	if o := d.override; o.JWKSURI != "" && o.TokenEndpoint != "" &&
		o.IntrospectionEndpoint != "" && o.RevocationEndpoint != "" {
		o.Issuer = d.issuer
		return o, nil
	}
	md, err := d.metadata(ctx)
	if err != nil {
		return Metadata{}, d.unavailable(err)
	}
	return md, nil
}

// Endpoint returns one field of the metadata, chosen by field (for
// example func(m Metadata) string { return m.JWKSURI }). An overridden
// field is returned without any request. An error, including metadata that
// lacks the field, is an *UnavailableError.
func (d *Discovery) Endpoint(ctx context.Context, field func(Metadata) string) (string, error) {
	v, err := d.endpoint(ctx, field)
	if err != nil {
		return "", d.unavailable(err)
	}
	return v, nil
}

// endpoint is Endpoint with the bare cause as error.
func (d *Discovery) endpoint(ctx context.Context, field func(Metadata) string) (string, error) {
	if v := field(d.override); v != "" {
		return v, nil
	}
	md, err := d.metadata(ctx)
	if err != nil {
		return "", err
	}
	v := field(md)
	if v == "" {
		return "", errors.New("endpoint not advertised in the issuer's metadata")
	}
	return v, nil
}

// Close stops new fetches and waits for one in flight (at most twice
// Timeout). Metadata already discovered stays available.
func (d *Discovery) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *Discovery) unavailable(err error) error {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	return &UnavailableError{Reason: "authorization server metadata unavailable", RetryAfter: d.retry, Err: err}
}

// metadata returns the merged metadata, fetching it if need be. Errors are
// bare causes, suitable for wrapping.
func (d *Discovery) metadata(ctx context.Context) (Metadata, error) {
	if md := d.found.Load(); md != nil {
		return *md, nil
	}
	d.mu.Lock()
	if md := d.found.Load(); md != nil {
		d.mu.Unlock()
		return *md, nil
	}
	c := d.call
	if c == nil {
		if d.closed {
			d.mu.Unlock()
			return Metadata{}, errors.New("discovery closed")
		}
		if d.lastErr != nil && d.now().Sub(d.lastFail) < d.retry {
			err := d.lastErr
			d.mu.Unlock()
			return Metadata{}, err
		}
		c = &discoveryCall{done: make(chan struct{})}
		d.call = c
		d.wg.Add(1)
		go d.run(c)
	}
	d.mu.Unlock()

	select {
	case <-c.done:
		return c.md, c.err
	case <-ctx.Done():
		return Metadata{}, fmt.Errorf("waiting for discovery: %w", ctx.Err())
	}
}

// run performs one discovery for c and publishes its result.
func (d *Discovery) run(c *discoveryCall) {
	defer d.wg.Done()
	md, err := d.fetch()
	if err == nil {
		merged := mergeMetadata(md, d.override)
		merged.Issuer = d.issuer
		md = merged
	}

	d.mu.Lock()
	var (
		level        zapcore.Level
		failures     int
		failingSince time.Time
	)
	now := d.now()
	if err == nil {
		d.found.Store(&md)
		d.lastErr = nil
		failures, failingSince = d.streak.succeed()
	} else {
		d.lastErr = err
		d.lastFail = now
		level = d.streak.fail(now, failureSummaryInterval)
		failures, failingSince = d.streak.count, d.streak.since
	}
	d.call = nil
	c.md, c.err = md, err
	d.mu.Unlock()
	// Logged before the waiters are released, so that whoever waited for
	// this discovery finds its line in the log.
	d.logFetch(md, err, level, failures, now.Sub(failingSince))
	close(c.done)
}

// logFetch reports one discovery's result: the failures of a run as state
// changes (see failureStreak), at the level it chose, or the success.
func (d *Discovery) logFetch(md Metadata, err error, level zapcore.Level, failures int, failingFor time.Duration) {
	if err != nil {
		// The first failure of a run, then one line per
		// failureSummaryInterval: an issuer down at start is retried for
		// as long as it is down.
		if ce := d.log.Check(level, "auth: discovery failed"); ce != nil {
			ce.Write(zap.String("issuer", d.issuer), zap.Error(err),
				zap.Int("failures_in_a_row", failures), zap.Duration("failing_for", failingFor))
		}
		return
	}
	fields := []zap.Field{zap.String("issuer", d.issuer), zap.String("jwks_uri", RedactURL(md.JWKSURI))}
	if failures > 0 {
		fields = append(fields, zap.Int("failures_before", failures), zap.Duration("failed_for", failingFor))
	}
	d.log.Info("auth: discovered authorization server", fields...)
}

// failureSummaryInterval is the least time between two warnings about
// the same run of failed discoveries.
const failureSummaryInterval = time.Minute

// fetch tries the well-known URLs in turn (see wellKnownURLs). A
// transport error (connection refused, timeout) is returned at once: the
// other URLs are on the same host.
func (d *Discovery) fetch() (Metadata, error) {
	var errs []error
	for _, u := range wellKnownURLs(d.issuer) {
		md, err := d.fetchOne(u)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
		if _, ok := errors.AsType[*transportError](err); ok {
			break
		}
	}
	return Metadata{}, joinSemicolon(errs)
}

// wellKnownURLs are the metadata URLs of issuer, in the order tried:
// {issuer}/.well-known/oauth-authorization-server (Okta's custom servers
// serve it there) and {issuer}/.well-known/openid-configuration (OpenID
// Connect Discovery), then, for an issuer with a path, the form RFC 8414
// section 3.1 gives, the well-known part between host and path
// (https://as.example.com/.well-known/oauth-authorization-server/tenant).
func wellKnownURLs(issuer string) []string {
	base := strings.TrimSuffix(issuer, "/")
	urls := []string{base + wellKnownOAuth, base + wellKnownOIDC}
	// NewDiscovery refused an issuer with user info, query or fragment, so
	// the path is everything after the authority.
	if scheme, rest, ok := strings.Cut(base, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			urls = append(urls, scheme+"://"+rest[:i]+wellKnownOAuth+rest[i:])
		}
	}
	return urls
}

// joinSemicolon is the errors of the URLs tried, in order, as one error
// that wraps each.
func joinSemicolon(errs []error) error {
	err := errs[0]
	for _, e := range errs[1:] {
		err = fmt.Errorf("%w; %w", err, e)
	}
	return err
}

func (d *Discovery) fetchOne(rawURL string) (Metadata, error) {
	doc, err := fetchDocument(d.client, rawURL, d.timeout, defaultMaxDocumentSize)
	if err != nil {
		return Metadata{}, err
	}
	// go-jose's JSON, as for claims: member names match exactly (RFC 8414
	// names are case-sensitive; encoding/json would fold case) and a
	// member given twice is an error (encoding/json keeps the last), so
	// the issuer check below reads the one "issuer" there is.
	var md Metadata
	if err := josejson.Unmarshal(doc.body, &md); err != nil {
		return Metadata{}, fmt.Errorf("GET %s: invalid metadata JSON: %w", RedactURL(rawURL), err)
	}
	if md.Issuer != d.issuer {
		// Mix-up defence (RFC 8414 section 3.3): the document must be the
		// configured issuer's own.
		return Metadata{}, fmt.Errorf("GET %s: metadata issuer %q does not match configured issuer %q",
			RedactURL(rawURL), md.Issuer, d.issuer)
	}
	if strings.HasPrefix(d.issuer, "https://") {
		// An https issuer must not send keys or client secrets over plain
		// http (RFC 8414 section 2: jwks_uri "MUST use the https scheme").
		// Overridden fields are the operator's choice and are not used.
		o := d.override
		for _, ep := range []struct{ name, value, override string }{
			{"jwks_uri", md.JWKSURI, o.JWKSURI},
			{"token_endpoint", md.TokenEndpoint, o.TokenEndpoint},
			{"introspection_endpoint", md.IntrospectionEndpoint, o.IntrospectionEndpoint},
			{"revocation_endpoint", md.RevocationEndpoint, o.RevocationEndpoint},
		} {
			if ep.value != "" && ep.override == "" && !strings.HasPrefix(ep.value, "https://") {
				return Metadata{}, fmt.Errorf("GET %s: metadata %s %q of an https issuer is not https",
					RedactURL(rawURL), ep.name, RedactURL(ep.value))
			}
		}
	}
	return md, nil
}

// mergeMetadata returns md with every non-empty field of o in place.
func mergeMetadata(md, o Metadata) Metadata {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&md.JWKSURI, o.JWKSURI)
	set(&md.TokenEndpoint, o.TokenEndpoint)
	set(&md.IntrospectionEndpoint, o.IntrospectionEndpoint)
	set(&md.RevocationEndpoint, o.RevocationEndpoint)
	return md
}

// document is a fetched JSON body with the caching hint that came with it.
type document struct {
	body   []byte        // owned copy
	maxAge time.Duration // Cache-Control max-age; -1 when absent
}

// transportError marks a failure to get any HTTP response at all.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// fetchDocument GETs url with a deadline of timeout from now (wall clock:
// network deadlines never follow an injected clock) and returns its body
// if the answer is a 200 carrying a JSON object of at most maxSize bytes.
func fetchDocument(client HTTPClient, rawURL string, timeout time.Duration, maxSize int) (document, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(rawURL)
	shown := RedactURL(rawURL) // for errors: rawURL may carry secrets
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.Set(fasthttp.HeaderAccept, "application/json")

	if err := client.DoDeadline(req, resp, time.Now().Add(timeout)); err != nil {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return document{}, fmt.Errorf("GET %s: response body over the size limit: %w", shown, err)
		}
		return document{}, &transportError{fmt.Errorf("GET %s: %w", shown, err)}
	}
	if sc := resp.StatusCode(); sc != fasthttp.StatusOK {
		return document{}, fmt.Errorf("GET %s: status %d", shown, sc)
	}
	body := resp.Body()
	if len(body) > maxSize {
		return document{}, fmt.Errorf("GET %s: response body of %d bytes is over the %d-byte limit", shown, len(body), maxSize)
	}
	if ct := resp.Header.ContentType(); bytes.Contains(bytes.ToLower(ct), []byte("html")) {
		return document{}, fmt.Errorf("GET %s: got %q, not JSON", shown, ct)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return document{}, fmt.Errorf("GET %s: empty response body", shown)
	}
	if trimmed[0] != '{' {
		return document{}, fmt.Errorf("GET %s: response body is not a JSON object", shown)
	}
	return document{
		body:   bytes.Clone(trimmed),
		maxAge: parseMaxAge(resp.Header.Peek(fasthttp.HeaderCacheControl)),
	}, nil
}

// RedactURL returns raw for use in errors and logs: without user info,
// with any query replaced by "REDACTED" (either may carry a secret) and
// without fragment. A string that does not parse as a URL becomes
// "(unparsable URL)".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// parseMaxAge returns the max-age directive of a Cache-Control value, or
// -1 when there is none (or no-store / no-cache says not to rely on it,
// which reads as 0).
func parseMaxAge(cc []byte) time.Duration {
	maxAge := time.Duration(-1)
	for part := range strings.SplitSeq(string(cc), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
			if err == nil && n >= 0 && n < 1<<31 {
				maxAge = time.Duration(n) * time.Second
			}
		}
	}
	return maxAge
}
