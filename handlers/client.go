package handlers

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

// The client a request comes from is what per-client bounds count against
// (auth.RemoteConfig.MaxPerClient): its TCP peer or, when the peer is one
// of Config.TrustedProxies, the client those proxies name in
// X-Forwarded-For. A validator learns it from its ctx (auth.ClientFrom),
// but only on a cache miss: working it out costs, and a hit must cost
// nothing.

const headerXForwardedFor = "X-Forwarded-For"

// clientAddr returns the address of the request's client: its TCP peer, or,
// when the peer is in trusted, the rightmost X-Forwarded-For entry that is
// not (see forwardedClient). It is the zero Addr when the peer has no IP
// address (an in-memory or Unix listener): such a request is no one's.
func clientAddr(ctx *fasthttp.RequestCtx, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(ctx.RemoteAddr())
	if !peer.IsValid() || !inPrefixes(trusted, peer) {
		return peer
	}
	return forwardedClient(ctx.Request.Header.PeekAll(headerXForwardedFor), trusted, peer)
}

// peerAddr is the IP address of a connection's remote end, IPv4-mapped
// IPv6 addresses unmapped; the zero Addr when it has none, or none worth
// the name (fasthttp's 0.0.0.0 for a request without a connection).
func peerAddr(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if ip = ip.Unmap(); !ok || ip.IsUnspecified() {
		return netip.Addr{}
	}
	return ip
}

// forwardedClient walks the X-Forwarded-For header lines values (in the
// order received, each a comma-separated list; together one list) from
// the right, the end the proxies append to, skipping the entries in
// trusted (proxies of ours), and returns the first entry that is not: the
// client as the nearest trusted proxy saw it. Entries to its left were
// written by the client and prove nothing. When every entry is trusted
// the leftmost is the client; when there is none, peer is. An entry that
// is not an address (garbage, "unknown") ends the walk: the client is
// then the last trusted hop seen, the address that wrote it.
func forwardedClient(values [][]byte, trusted []netip.Prefix, peer netip.Addr) netip.Addr {
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for len(list) > 0 {
			comma := bytes.LastIndexByte(list, ',')
			entry := bytes.TrimSpace(list[comma+1:])
			list = list[:max(comma, 0)]
			if len(entry) == 0 {
				continue
			}
			addr, ok := parseForwardedAddr(entry)
			if !ok {
				return client
			}
			if !inPrefixes(trusted, addr) {
				return addr
			}
			client = addr
		}
	}
	return client
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally in brackets or with a port, as proxies write them.
// A zone is dropped and an IPv4-mapped IPv6 address unmapped.
func parseForwardedAddr(entry []byte) (netip.Addr, bool) {
	s := string(entry)
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
				return netip.Addr{}, false
			}
			if addr, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		} else {
			addr = ap.Addr()
		}
	}
	return addr.WithZone("").Unmap(), true
}

// inPrefixes reports whether addr is in one of prefixes.
func inPrefixes(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientContext is the ctx the auth middleware hands Validate: the
// server's base context, whose Value also answers auth.ClientFrom, working
// the client out of the request (clientAddr) the first time it is asked,
// which a cache does on a miss only. One is taken from Server.clientCtxs
// per request and put back when Validate has returned; it must not be
// used after that (validators keep no ctx past their return: a cache runs
// its shared validations on a context of its own).
type clientContext struct {
	context.Context // the server's base context

	s   *Server
	req *fasthttp.RequestCtx // nil while pooled

	once     sync.Once
	resolved context.Context // the base context, naming the client if known
}

// Value answers from the base context, naming the request's client.
func (c *clientContext) Value(key any) any {
	if c.req == nil {
		return c.Context.Value(key)
	}
	c.once.Do(c.resolve)
	return c.resolved.Value(key)
}

// resolve works out the client, once per request.
func (c *clientContext) resolve() {
	c.resolved = c.Context
	if addr := clientAddr(c.req, c.s.cfg.TrustedProxies); addr.IsValid() {
		c.resolved = auth.WithClient(c.Context, addr)
	}
}

// validate runs the validator for the request's token, with a ctx that
// names the request's client on demand, through the connection's memo
// when it has one (Listener). A memo hit (authcache.Cache.Recall) needs
// no ctx, so it takes none from the pool. It allocates nothing beyond what
// the validator does.
func (s *Server) validate(ctx *fasthttp.RequestCtx, token []byte) (*auth.Principal, error) {
	m := s.connMemo(ctx)
	if m != nil {
		if p := s.memo.Recall(token, m); p != nil {
			return p, nil
		}
	}
	cc := s.clientCtxs.Get().(*clientContext)
	cc.req = ctx
	var (
		p   *auth.Principal
		err error
	)
	if m != nil {
		p, err = s.memo.ValidateMemo(cc, token, m)
	} else {
		p, err = s.cfg.Validator.Validate(cc, token)
	}
	*cc = clientContext{Context: s.baseCtx, s: s}
	s.clientCtxs.Put(cc)
	return p, err
}
