package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/promtext"
	"github.com/tokengate/tokengate/policy"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxConns = 1024

	// dialTimeout bounds a connection attempt, below Timeout when that is
	// shorter.
	dialTimeout = 5 * time.Second
	// headerBufferSize bounds the upstream's response header.
	headerBufferSize = 16 << 10
)

// Config configures a Gateway. New validates it once; the zero value of
// each optional field takes the default its comment names.
type Config struct {
	// Upstream is the service's base URL, http://host:port or
	// https://host:port, without path or query. Required.
	Upstream string

	// Timeout is how long the upstream may stay silent: no response
	// header, or no byte of a streamed body moving either way, for this
	// long answers 504 (before the response began) or cuts the exchange
	// (after). 0 means DefaultTimeout; negative is an error.
	Timeout time.Duration

	// StripAuthorization removes the client's Authorization header before
	// forwarding. false forwards it: an upstream that checks the token
	// again, or calls on with it, needs it.
	StripAuthorization bool

	// Policy supplies the claim headers (policy.Policy.Headers), read at
	// each request so that a reload takes effect at once. Required.
	Policy *policy.Holder

	// TrustedProxies are the peers whose X-Forwarded-For is appended to and
	// whose X-Forwarded-Proto, X-Forwarded-Host, Forwarded, X-Real-IP and
	// True-Client-IP are kept; for any other peer the first three are
	// replaced and the others removed. nil trusts nobody.
	TrustedProxies []netip.Prefix

	// MaxConns bounds the connections to the upstream (DefaultMaxConns); a
	// request that finds none free waits up to Timeout, then gets 504.
	MaxConns int

	// Logger receives the 502 and 504 lines, with the request id; nil
	// discards them. Tokens appear only as auth.Fingerprint.
	Logger *zap.Logger
}

// Gateway forwards allowed requests to the upstream. It is safe for
// concurrent use; build it with New and Close it when done.
type Gateway struct {
	cfg    Config
	log    *zap.Logger
	client *fasthttp.HostClient
	uri    fasthttp.URI // the upstream's scheme and address; read-only after New
	names  names
	count  [numResults]atomic.Uint64
}

// result is what became of a request handed to Forward.
type result uint8

const (
	resultForwarded      result = iota // the upstream answered; its response was relayed
	resultBadGateway                   // 502: refused, reset, or a malformed response
	resultTimeout                      // 504: silent past Timeout, or no free connection in time
	resultUpgradeRefused               // 501: a protocol upgrade (WebSocket)
	resultClientError                  // 408 or 400: the client's body stopped (silent, or the connection closed) before its end
	numResults
)

var resultNames = [numResults]string{
	resultForwarded:      "forwarded",
	resultBadGateway:     "bad_gateway",
	resultTimeout:        "timeout",
	resultUpgradeRefused: "upgrade_refused",
	resultClientError:    "client_error",
}

// errUnaskedUpgrade is the failure of an upstream that switched protocols
// without being asked.
var errUnaskedUpgrade = errors.New("gateway: the upstream answered 101 Switching Protocols to a request without Upgrade")

// Pre-encoded answers.
var (
	bodyBadGateway     = []byte(`{"detail":"bad gateway: the upstream did not answer"}`)
	bodyGatewayTimeout = []byte(`{"detail":"gateway timeout: the upstream did not answer in time"}`)
	bodyBadPath        = []byte(`{"detail":"bad request path"}`)
	bodyClientTimeout  = []byte(`{"detail":"request timeout: the request body stopped arriving"}`)
	bodyClientGone     = []byte(`{"detail":"bad request: the request body ended before its announced length"}`)
	bodyNoUpgrade      = []byte(`{"detail":"protocol upgrades (WebSocket) are not supported by the gateway"}`)
	contentTypeJSON    = []byte("application/json")
	strHTTP            = []byte("http")
	strHTTPS           = []byte("https")
	strH2C             = []byte("h2c")
)

// New validates cfg and builds the Gateway's pooled client. It starts no
// goroutine; fasthttp's idle-connection cleaner runs while connections
// are pooled, and Close ends them.
func New(cfg Config) (*Gateway, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("gateway: Config.Upstream %q must be http://host:port or https://host:port", cfg.Upstream)
	}
	if cfg.Policy == nil {
		return nil, errors.New("gateway: Config.Policy is required")
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("gateway: Config.Timeout %v is negative", cfg.Timeout)
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.TrustedProxies = append([]netip.Prefix(nil), cfg.TrustedProxies...)
	isTLS := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if isTLS {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	idle := cfg.Timeout
	dialer := &net.Dialer{Timeout: min(dialTimeout, idle)}
	g := &Gateway{cfg: cfg, log: cfg.Logger, names: newNames()}
	g.uri.SetScheme(u.Scheme)
	g.uri.SetHost(addr)
	g.client = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: isTLS,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return NewIdleConn(c, idle), nil
		},
		MaxConns:           cfg.MaxConns,
		MaxConnWaitTimeout: idle,
		ReadBufferSize:     headerBufferSize,
		WriteBufferSize:    headerBufferSize,
		// Bodies are streamed both ways, never buffered: the response's
		// size is bounded by nothing but the client's patience, its
		// memory by the buffers above.
		StreamResponseBody:       true,
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		SecureErrorLogMessage:    true,
		RetryIfErr:               retryIfErr,
	}
	return g, nil
}

// retryIfErr retries once a request without a body whose pooled
// connection the upstream had closed; never a timeout (that would double
// the wait) and never a body, which has been consumed.
func retryIfErr(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 || isTimeout(err) || req.IsBodyStream() || len(req.Body()) > 0 {
		return false, false
	}
	m := req.Header.Method()
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions:
		return false, true
	}
	return false, false
}

// Close closes the pooled connections to the upstream.
func (g *Gateway) Close() { g.client.CloseIdleConnections() }

// Forward relays the request in ctx, which the caller has allowed, to the
// upstream and the upstream's response to ctx. p is the principal of the
// request's token (nil on a public route), whose claims become the
// policy's claim headers; token is only for its fingerprint in logs.
//
// The request body is forwarded from ctx.RequestBodyStream when the server
// streams request bodies (fasthttp.Server.StreamRequestBody), else from
// the buffered body. The response body is handed to the server as a
// stream, released when the server has written it.
//
// Forward answers itself, without the upstream's response, 501 for a
// protocol upgrade, 400 for a target whose path policy.Normalize refuses
// (the decision refuses it first), 408 or 400 for a client whose body
// stops coming, and 502 or 504 for an upstream that fails.
func (g *Gateway) Forward(ctx *fasthttp.RequestCtx, p *auth.Principal, token []byte) {
	in := &ctx.Request.Header
	if wantsUpgrade(in) {
		g.count[resultUpgradeRefused].Add(1)
		writeJSON(ctx, fasthttp.StatusNotImplemented, bodyNoUpgrade)
		return
	}
	// The upstream gets the path the policy matched, not the one received:
	// the two differ where upstreams differ ("/admin//../public/x" is
	// "/public/x" to the policy and "/admin/public/x" to an upstream that
	// resolves dot segments without merging slashes; "/admin/%2e%2e/x"
	// stays under "/admin/" for one that does not decode %2e).
	var pathBuf [512]byte
	path, err := policy.Normalize(pathBuf[:0], in.RequestURI())
	if err != nil {
		// The caller's decision has refused such a target already.
		writeJSON(ctx, fasthttp.StatusBadRequest, bodyBadPath)
		return
	}
	req := fasthttp.AcquireRequest()
	in.CopyTo(&req.Header)
	req.Header.DisableNormalizing() // prepareHeader names fields canonically; ReleaseRequest resets this
	// No Content-Type the client did not send (fasthttp's default is
	// application/octet-stream for a body): the upstream may sniff.
	req.Header.SetNoDefaultContentType(true)
	req.UseHostHeader = true
	g.prepareHeader(ctx, &req.Header, p, token)
	req.SetURI(&g.uri)
	setTarget(req.URI(), path, in.RequestURI())

	var body *bodyReader
	switch n := in.ContentLength(); {
	case ctx.RequestBodyStream() != nil && (n > 0 || n == -1):
		body = &bodyReader{r: ctx.RequestBodyStream(), left: int64(n)}
		req.SetBodyStream(body, n)
	case n != 0 && len(ctx.Request.Body()) > 0:
		req.SetBodyRaw(ctx.Request.Body())
	}

	resp := fasthttp.AcquireResponse()
	err = g.client.Do(req, resp)
	fasthttp.ReleaseRequest(req) // bodyReader has no Close: the server keeps its stream
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		if body != nil && body.err != nil {
			g.clientFailed(ctx, body.err, err)
			return
		}
		g.fail(ctx, err, token)
		return
	}
	if resp.StatusCode() < fasthttp.StatusOK {
		// fasthttp skips every 1xx but 101, which the upstream may not send
		// to a request without Upgrade (the gateway forwards none): what
		// follows on its connection is no longer HTTP.
		fasthttp.ReleaseResponse(resp)
		g.fail(ctx, errUnaskedUpgrade, token)
		return
	}
	g.count[resultForwarded].Add(1)
	resp.Header.DisableNormalizing()
	g.names.removeHopByHopResponse(&resp.Header)
	resp.Header.EnableNormalizing() // CopyTo copies the setting: the server's header keeps fasthttp's default
	resp.Header.CopyTo(&ctx.Response.Header)
	// Nor one the upstream did not send (the server's default is
	// text/plain; charset=utf-8); Reset restores the default.
	ctx.Response.Header.SetNoDefaultContentType(true)
	if bs := resp.BodyStream(); bs != nil {
		n := resp.Header.ContentLength()
		if n < 0 {
			n = -1 // chunked to the client, whether chunked or close-delimited from the upstream
		}
		ctx.Response.SetBodyStream(&upstreamBody{r: bs, resp: resp}, n)
		return
	}
	if body := resp.Body(); len(body) > 0 {
		ctx.Response.SetBody(body)
	}
	fasthttp.ReleaseResponse(resp)
}

// wantsUpgrade reports whether the request asks for a protocol upgrade
// the gateway must refuse rather than ignore. RFC 9110 section 7.8 lets a
// server ignore an offer and requires it to ignore one in an HTTP/1.0
// request; an offer of h2c alone (curl --http2 on http://) is ignored, so
// the client goes on in HTTP/1.1. Any other protocol (WebSocket) would
// leave the client waiting for a 101 that never comes: refused.
func wantsUpgrade(h *fasthttp.RequestHeader) bool {
	if !h.IsHTTP11() {
		return false
	}
	for _, v := range h.PeekAll(fasthttp.HeaderUpgrade) {
		for len(v) > 0 {
			var tok []byte
			if tok, v = nextToken(v); len(tok) > 0 && !bytes.EqualFold(tok, strH2C) {
				return true
			}
		}
	}
	return false
}

// setTarget sets u's path to path, the target's path in normal form
// (policy.Normalize), and u's query to target's, byte for byte as
// received (the fragment, never sent by a conforming client, is dropped,
// as policy.Normalize ignores it). u carries the upstream's scheme and
// address, which the HostClient requires and which becomes Host when the
// client sent none. Left to parse target itself, against the Host header,
// fasthttp reads a target starting with "//" as an authority when it
// contains "://" anywhere or the Host header is missing:
// "//public/admin?u=http://x" would reach the upstream as
// "/admin?u=http://x" while the policy matched "/public/admin".
func setTarget(u *fasthttp.URI, path, target []byte) {
	var query []byte
	if i := bytes.IndexAny(target, "?#"); i >= 0 && target[i] == '?' {
		query = target[i+1:]
		if j := bytes.IndexByte(query, '#'); j >= 0 {
			query = query[:j]
		}
	}
	u.SetPathBytes(path)
	u.SetQueryStringBytes(query)
}

// prepareHeader turns the client's request header, copied into h, into
// the upstream's. h's normalising is off: every name given to it here is
// in canonical form (see names).
func (g *Gateway) prepareHeader(ctx *fasthttp.RequestCtx, h *fasthttp.RequestHeader, p *auth.Principal, token []byte) {
	n := &g.names
	n.removeHopByHopRequest(h)
	// The server already answered 100-continue; the body is on its way.
	h.DelBytes(n.expect)
	if g.cfg.StripAuthorization {
		h.DelBytes(n.authz)
	}

	// Before the claim headers, so that a claim header may bear one of
	// these names.
	trusted := g.trustedPeer(ctx)
	for _, k := range n.peer {
		removeLookalikes(h, k)
		if !trusted {
			h.DelBytes(k)
		}
	}

	var buf [1024]byte
	var nameBuf [128]byte
	for _, c := range g.cfg.Policy.Load().Headers() {
		name := fasthttp.AppendNormalizedHeaderKey(nameBuf[:0], c.Name)
		h.DelBytes(name) // every client-sent copy, whatever its case
		removeLookalikes(h, name)
		v, err := policy.AppendClaim(buf[:0], c.Claim, p)
		switch {
		case err == nil:
			h.SetBytesKV(name, v)
		case errors.Is(err, policy.ErrClaimAbsent):
		default:
			g.log.Warn("gateway: claim header left out",
				zap.Uint64("request_id", ctx.ID()),
				zap.String("header", c.Name),
				zap.String("token", auth.Fingerprint(token)),
				zap.Error(err))
		}
	}

	// The fields below are set or kept under their canonical names; a
	// spelling with '_' would read as the same to some upstreams.
	removeLookalikes(h, n.xff)
	removeLookalikes(h, n.proto)
	removeLookalikes(h, n.host)
	var ipBuf [64]byte
	ip := appendIP(ipBuf[:0], ctx.RemoteIP())
	if prior := h.PeekAll("X-Forwarded-For"); trusted && len(prior) > 0 {
		var b []byte
		for _, v := range prior {
			b = append(b, v...)
			b = append(b, ", "...)
		}
		b = append(b, ip...)
		h.DelBytes(n.xff)
		h.SetBytesKV(n.xff, b)
	} else {
		h.DelBytes(n.xff)
		h.SetBytesKV(n.xff, ip)
	}
	if !trusted || len(h.PeekBytes(n.proto)) == 0 {
		h.DelBytes(n.proto)
		if ctx.IsTLS() {
			h.SetBytesKV(n.proto, strHTTPS)
		} else {
			h.SetBytesKV(n.proto, strHTTP)
		}
	}
	if !trusted || len(h.PeekBytes(n.host)) == 0 {
		h.DelBytes(n.host)
		// The Host header as received, which the upstream reads: ctx.Host()
		// is fasthttp's URI host, taken from a target like "//x/y?u=http://z".
		if hv := ctx.Request.Header.Host(); len(hv) > 0 {
			h.SetBytesKV(n.host, hv)
		}
	}
}

// appendIP appends the textual form of a peer address.
func appendIP(dst []byte, ip net.IP) []byte {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return append(dst, "unknown"...)
	}
	return a.Unmap().AppendTo(dst)
}

// trustedPeer reports whether the TCP peer is in Config.TrustedProxies.
func (g *Gateway) trustedPeer(ctx *fasthttp.RequestCtx) bool {
	addr, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// fail answers 504 for an upstream that stayed silent too long (or no
// free connection in time), 502 for anything else, and logs it with the
// request id, which the response carries in X-Request-Id.
func (g *Gateway) fail(ctx *fasthttp.RequestCtx, err error, token []byte) {
	status, body, r := fasthttp.StatusBadGateway, bodyBadGateway, resultBadGateway
	if isTimeout(err) {
		status, body, r = fasthttp.StatusGatewayTimeout, bodyGatewayTimeout, resultTimeout
	}
	g.count[r].Add(1)
	var buf [20]byte
	ctx.Response.Header.SetBytesV("X-Request-Id", strconv.AppendUint(buf[:0], ctx.ID(), 10))
	writeJSON(ctx, status, body)
	g.log.Warn("gateway: upstream failed",
		zap.Uint64("request_id", ctx.ID()),
		zap.Int("status", status),
		zap.ByteString("method", ctx.Method()),
		zap.ByteString("path", ctx.Path()),
		zap.String("token", auth.Fingerprint(token)),
		zap.Error(err))
}

// clientFailed answers a request whose body stopped coming from the
// client while it was being forwarded (bodyErr: the read that failed;
// err: what the upstream exchange returned): 408 when the client fell
// silent, else 400, and closes the connection, whose request is half
// read. It is the client's failure, not the upstream's: no 502 or 504.
func (g *Gateway) clientFailed(ctx *fasthttp.RequestCtx, bodyErr, err error) {
	status, msg := fasthttp.StatusBadRequest, bodyClientGone
	if isTimeout(bodyErr) {
		status, msg = fasthttp.StatusRequestTimeout, bodyClientTimeout
	}
	g.count[resultClientError].Add(1)
	ctx.SetConnectionClose()
	writeJSON(ctx, status, msg)
	if ce := g.log.Check(zap.DebugLevel, "gateway: client body failed"); ce != nil {
		ce.Write(zap.Uint64("request_id", ctx.ID()), zap.Int("status", status),
			zap.NamedError("body_error", bodyErr), zap.Error(err))
	}
}

// isTimeout reports whether err is a timeout of any kind fasthttp or the
// network reports, or no free connection after MaxConnWaitTimeout.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(body)
}

// AppendMetrics appends tokengate_gateway_requests_total{result} in the
// Prometheus text format.
func (g *Gateway) AppendMetrics(dst []byte) []byte {
	const name = "tokengate_gateway_requests_total"
	dst = promtext.AppendHeader(dst, name, promtext.Counter, "Allowed requests handed to the gateway, by what became of them.")
	for r := range numResults {
		dst = promtext.AppendUintSample(dst, name, g.count[r].Load(), "result", resultNames[r])
	}
	return dst
}

// bodyReader hides the server's request-body stream behind a bare Reader,
// so that releasing the upstream request never closes it: the server owns
// it, and drains or drops what is left. It keeps the error of the read
// that failed, so that Forward can tell a client that stopped sending
// from an upstream that failed. The fasthttp client reads it in the
// goroutine that called Do.
type bodyReader struct {
	r    io.Reader
	left int64 // bytes announced and not yet read; -1: chunked
	err  error // the client's failure: a read error, or EOF short of left
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.left >= 0 {
		b.left -= int64(n)
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) && b.left <= 0:
	case errors.Is(err, io.EOF):
		b.err = io.ErrUnexpectedEOF
	default:
		b.err = err
	}
	return n, err
}

// upstreamBody is the upstream's streamed response body handed to the
// server, which closes it once written (or abandoned): the upstream
// connection goes back to the pool, or is dropped when the body was not
// read to the end, and the response is released.
type upstreamBody struct {
	r    io.Reader
	resp *fasthttp.Response
	once sync.Once
}

func (b *upstreamBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWithError closes the upstream stream; err says why the server
// stopped writing (nil: it wrote everything).
func (b *upstreamBody) CloseWithError(err error) error {
	var cerr error
	b.once.Do(func() {
		if rc, ok := b.r.(fasthttp.ReadCloserWithError); ok {
			cerr = rc.CloseWithError(err)
		}
		_ = b.resp.CloseBodyStream()
		fasthttp.ReleaseResponse(b.resp)
	})
	return cerr
}
