package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/loadtest/harness"
)

// checkLoopbackURL accepts only http URLs whose host is a loopback IP
// address or "localhost": the load test never sends traffic off this
// machine. It returns the address to dial, host:port with localhost
// pinned to 127.0.0.1 and port 80 by default.
func checkLoopbackURL(raw string) (addr string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-url: %q must be an http:// URL with a host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("-url: %q must be a bare base URL such as http://127.0.0.1:8000", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("-url: %q is not a loopback address: the load test only targets this machine (127.0.0.1, ::1 or localhost)", host)
	}
	return net.JoinHostPort(host, port), nil
}

// target is one server under test and the client that loads it.
type target struct {
	addr    string // host:port
	hc      *fasthttp.HostClient
	timeout time.Duration
}

func newTarget(addr string, conns int, timeout time.Duration) *target {
	return &target{
		addr:    addr,
		timeout: timeout,
		hc: &fasthttp.HostClient{
			Addr:                addr,
			Name:                "tokengate-loadtest",
			MaxConns:            conns,
			ReadTimeout:         timeout,
			WriteTimeout:        timeout,
			MaxResponseBodySize: 1 << 20,
			MaxIdleConnDuration: 10 * time.Second,
		},
	}
}

func (t *target) close() { t.hc.CloseIdleConnections() }

// bearerHeaders turns tokens into ready-made Authorization values.
func bearerHeaders(tokens []string) [][]byte {
	out := make([][]byte, len(tokens))
	for i, t := range tokens {
		out[i] = []byte("Bearer " + t)
	}
	return out
}

// requests returns the harness request factory for GET path. With
// authorization values, every request takes the next one of the pool
// (shared by all workers), so consecutive requests carry different tokens.
func (t *target) requests(path string, authz [][]byte) harness.NewRequest {
	var next atomic.Uint64
	uri := "http://" + t.addr + path
	return func(int) harness.Request {
		req, resp := &fasthttp.Request{}, &fasthttp.Response{}
		req.SetRequestURI(uri)
		return func(context.Context) (int, error) {
			if len(authz) > 0 {
				i := next.Add(1) - 1
				req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz[i%uint64(len(authz))])
			}
			if err := t.hc.DoDeadline(req, resp, time.Now().Add(t.timeout)); err != nil {
				return 0, err
			}
			return resp.StatusCode(), nil
		}
	}
}

// preflight makes one request and checks status and body, so that a
// misconfigured scenario fails at once with a clear message instead of
// measuring error pages.
func (t *target) preflight(path string, authz []byte, wantBody string) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + t.addr + path)
	if authz != nil {
		req.Header.SetBytesV(fasthttp.HeaderAuthorization, authz)
	}
	// The first request may wait for an introspection at the injected
	// distance; allow a generous bound.
	if err := t.hc.DoTimeout(req, resp, t.timeout+10*time.Second); err != nil {
		return fmt.Errorf("preflight GET %s: %w", path, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK || !bytes.Contains(resp.Body(), []byte(wantBody)) {
		return fmt.Errorf("preflight GET %s: status %d, body %.200q (want 200 and %q)", path, resp.StatusCode(), resp.Body(), wantBody)
	}
	return nil
}

// fetchTokens gets n access tokens from POST /token with client_secret_basic,
// as a client of a running tokengate would.
func fetchTokens(ctx context.Context, t *target, clientID, clientSecret string, n int) ([]string, error) {
	out := make([]string, 0, n)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+url.QueryEscape(clientSecret)))
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		req.Reset()
		req.SetRequestURI("http://" + t.addr + "/token")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set(fasthttp.HeaderAuthorization, basic)
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString("grant_type=client_credentials")
		if err := t.hc.DoTimeout(req, resp, t.timeout+10*time.Second); err != nil {
			return nil, fmt.Errorf("POST /token: %w", err)
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return nil, fmt.Errorf("POST /token: status %d: %.200q", resp.StatusCode(), resp.Body())
		}
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(resp.Body(), &body); err != nil {
			return nil, fmt.Errorf("POST /token: %w", err)
		}
		if body.AccessToken == "" || strings.ContainsAny(body.AccessToken, " \r\n") {
			return nil, errors.New("POST /token: no usable access_token in the answer")
		}
		out = append(out, body.AccessToken)
	}
	return out, nil
}
