package app

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/devissuer"
)

// Availability under abuse (issue 9, items 5 and 6): a flood that one
// client can send without any valid credential must not lock out a valid
// token that tokengate has never seen, in remote mode, where that token
// needs an introspection call.

// abuseLatency holds every flooded upstream call in flight for the whole
// test; the test ends it by stopping the issuer, which drops the
// connections.
const abuseLatency = time.Minute

// abuseIssuer starts a development issuer that the test owns and stops.
func abuseIssuer(tb testing.TB) *devissuer.Issuer {
	tb.Helper()
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = iss.Close() }) // after the App's own cleanup
	return iss
}

// floodRun is a burst of requests sent all at once, each on a connection
// of its own.
type floodRun struct {
	wg       sync.WaitGroup
	answered atomic.Int64
	mu       sync.Mutex  // guards statuses
	statuses map[int]int // status → count; -1 counts transport errors
}

// startFlood sends n requests to a at once, each filled in by build, and
// returns without waiting for the answers.
func startFlood(a *App, n int, dial func(addr string) (net.Conn, error), build func(req *fasthttp.Request)) *floodRun {
	f := &floodRun{statuses: map[int]int{}}
	c := &fasthttp.HostClient{Addr: a.Addr(), MaxConns: n, Dial: dial, ReadTimeout: 2 * abuseLatency}
	for range n {
		f.wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetHost("tokengate")
			build(req)
			status := -1
			if err := c.DoTimeout(req, resp, 2*abuseLatency); err == nil {
				status = resp.StatusCode()
			}
			f.mu.Lock()
			f.statuses[status]++
			f.mu.Unlock()
			f.answered.Add(1)
		})
	}
	return f
}

func (f *floodRun) count(status int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statuses[status]
}

// waitFor polls cond until it holds; the deadline is a generous bound on
// a shared, slow machine, not a performance claim.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		<-tick.C
	}
}

// TestTokenFloodLeavesIntrospection: 520 anonymous-looking /token calls to
// a slow token endpoint used to take every connection of the client that
// introspection shares, so a valid, never-seen token got 503 "no free
// connection to the introspection endpoint". The relay now has its own
// client and a bound (TOKEN_MAX_CONCURRENT) beyond which it answers 503 at
// once.
func TestTokenFloodLeavesIntrospection(t *testing.T) {
	const flooders = 520
	iss := abuseIssuer(t)
	a := start(t, devConfig(t, "--validation-mode=remote"), Options{Issuer: iss})
	waitReady(t, a)
	iss.SetFault(devissuer.EndpointToken, devissuer.Fault{Latency: abuseLatency})
	cl := iss.Clients()[0]

	f := startFlood(a, flooders, nil, func(req *fasthttp.Request) {
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("http://tokengate/token")
		req.Header.Set(fasthttp.HeaderAuthorization, auth.BasicAuthorization(cl.ID, cl.Secret))
	})
	// Every /token call is either held at the token endpoint or answered.
	waitFor(t, "the /token flood to be in place", func() bool {
		return f.answered.Load()+int64(iss.Counts().Token) >= flooders
	})

	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, client(a, nil), "/items", tok); code != 200 {
		t.Errorf("GET /items with a new valid token during a /token flood = %d %s, want 200", code, body)
	}
	held := iss.Counts().Token
	if max := uint64(a.Config().TokenMaxConcurrent); held > max {
		t.Errorf("%d /token calls reached the token endpoint at once, want at most TOKEN_MAX_CONCURRENT = %d", held, max)
	}
	if got, want := f.count(fasthttp.StatusServiceUnavailable), flooders-int(held); got != want {
		t.Errorf("%d /token calls got 503 at once, want %d (all but the %d held)", got, want, held)
	}

	if err := iss.Stop(); err != nil { // ends the held calls
		t.Fatal(err)
	}
	f.wg.Wait()
}

// TestTokenBodyTooLarge: a /token body over the server's limit is 413
// with a JSON detail, not fasthttp's text/plain 400.
func TestTokenBodyTooLarge(t *testing.T) {
	a := start(t, devConfig(t), Options{})
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("http://tokengate/token")
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.SetBodyString("grant_type=client_credentials&scope=" + strings.Repeat("a", maxRequestBodySize))
	if err := client(a, nil).DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusRequestEntityTooLarge ||
		string(resp.Header.ContentType()) != "application/json" ||
		string(resp.Body()) != `{"detail":"request body too large"}` {
		t.Errorf("got %d %s %s, want 413 application/json {\"detail\":\"request body too large\"}",
			resp.StatusCode(), resp.Header.ContentType(), resp.Body())
	}
}

// perClientCase is one way of telling two clients apart.
type perClientCase struct {
	name  string
	args  []string
	flood func(req *fasthttp.Request, i int64)          // marks the flooding source's i-th request
	dial  func(addr string) (net.Conn, error)           // the flooder's dialler; nil: the default
	valid func(tb testing.TB, a *App, token string) int // the other source's GET /items
}

// TestGarbageFloodLeavesOtherClients: in remote mode every printable
// token is introspected, and the introspections in flight are bounded.
// One source sending 100 garbage tokens against a slow introspection
// endpoint used to take every slot, so a new valid token from anyone got
// 503 "too many concurrent introspections". A client now has at most
// INTROSPECTION_MAX_PER_CLIENT in flight: another client's token passes.
func TestGarbageFloodLeavesOtherClients(t *testing.T) {
	cases := []perClientCase{
		{
			name: "clients behind a trusted proxy, told apart by X-Forwarded-For",
			flood: func(req *fasthttp.Request, _ int64) {
				req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
			},
			valid: func(tb testing.TB, a *App, token string) int {
				return getWith(tb, client(a, nil), "/items", token, "X-Forwarded-For", "203.0.113.99")
			},
		},
		{
			name: "clients told apart by their TCP peer address",
			args: []string{"--trusted-proxies=192.0.2.1"}, // loopback peers are clients
			// A spoofed X-Forwarded-For from an untrusted peer changes nothing.
			flood: func(req *fasthttp.Request, i int64) {
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i%250))
			},
			dial: dialFrom("127.0.0.2"),
			valid: func(tb testing.TB, a *App, token string) int {
				code, _ := get(tb, client(a, nil), "/items", token) // from 127.0.0.1
				return code
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func (tc perClientCase) run(t *testing.T) {
	const garbage = 100
	iss := abuseIssuer(t)
	a := start(t, devConfig(t, append([]string{"--validation-mode=remote"}, tc.args...)...), Options{Issuer: iss})
	waitReady(t, a)
	iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: abuseLatency})

	var n atomic.Int64
	f := startFlood(a, garbage, tc.dial, func(req *fasthttp.Request) {
		req.SetRequestURI("http://tokengate/items")
		i := n.Add(1)
		req.Header.Set(fasthttp.HeaderAuthorization, fmt.Sprintf("Bearer garbage-%d", i))
		tc.flood(req, i)
	})
	waitFor(t, "the garbage flood to be in place", func() bool {
		return f.answered.Load()+int64(iss.Counts().Introspect) >= garbage
	})
	held := iss.Counts().Introspect
	if max := uint64(a.Config().IntrospectionMaxPerClient); held > max {
		t.Errorf("one client has %d introspections in flight, want at most INTROSPECTION_MAX_PER_CLIENT = %d", held, max)
	}

	iss.ClearFaults()
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code := tc.valid(t, a, tok); code != 200 {
		t.Errorf("GET /items with a new valid token from another client during the flood = %d, want 200", code)
	}
	if got, want := f.count(fasthttp.StatusServiceUnavailable), garbage-int(held); got != want {
		t.Errorf("%d garbage requests got 503 at once, want %d (all but the %d held)", got, want, held)
	}

	if err := iss.Stop(); err != nil { // ends the held introspections
		t.Fatal(err)
	}
	f.wg.Wait()
}

// getWith is get with one more request header; it returns the status.
func getWith(tb testing.TB, c *fasthttp.HostClient, path, token, name, value string) int {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tokengate" + path)
	req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+token)
	req.Header.Set(name, value)
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode()
}

// dialFrom returns a dialler whose connections come from the loopback
// address local (any 127.0.0.0/8 address is the loopback interface's on
// Linux).
func dialFrom(local string) func(addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) }
}
