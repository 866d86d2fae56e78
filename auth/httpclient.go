package auth

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTPClient is the part of *fasthttp.Client that auth uses for outbound
// calls (discovery, JWKS, introspection). Every call passes a deadline.
// Build one with NewHTTPClient so that responses are size-limited.
type HTTPClient interface {
	DoDeadline(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error
}

// HTTPClientConfig sizes an outbound client. Zero fields take the defaults
// in parentheses.
type HTTPClientConfig struct {
	// MaxResponseBodySize caps every response body (1 MiB). A larger body
	// fails the call with fasthttp.ErrBodyTooLarge instead of being read.
	MaxResponseBodySize int
	// DialTimeout bounds connection set-up (2s).
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each read and write on a
	// connection (5s each). The per-call deadline still applies on top.
	ReadTimeout, WriteTimeout time.Duration
	// MaxConnsPerHost bounds the connection pool per host (512).
	MaxConnsPerHost int
	// ReadBufferSize bounds the response headers (32 KiB): managed
	// authorization servers send long security headers, and fasthttp's
	// 4 KiB default fails them with "small read buffer".
	ReadBufferSize int
}

// NewHTTPClient returns a pooled fasthttp client with timeouts and a
// response-size limit set, suitable for talking to an authorization server.
func NewHTTPClient(cfg HTTPClientConfig) *fasthttp.Client {
	if cfg.MaxResponseBodySize <= 0 {
		cfg.MaxResponseBodySize = 1 << 20
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = 512
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 32 << 10
	}
	dial := cfg.DialTimeout
	return &fasthttp.Client{
		Name:                          "tokengate",
		MaxResponseBodySize:           cfg.MaxResponseBodySize,
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		MaxConnsPerHost:               cfg.MaxConnsPerHost,
		ReadBufferSize:                cfg.ReadBufferSize,
		MaxIdleConnDuration:           30 * time.Second,
		NoDefaultUserAgentHeader:      false,
		DisableHeaderNamesNormalizing: false,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, dial)
		},
	}
}
