package handlers_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/internal/testpki"
	"github.com/valyala/fasthttp"
)

// countingValidator is a fake auth.Validator whose answers a test may
// change while the server runs; it counts its calls per token.
type countingValidator struct {
	mu      sync.Mutex // guards answers and calls
	answers map[string]stubResult
	calls   map[string]int
}

var _ auth.Validator = (*countingValidator)(nil)

// newCountingValidator knows tokGood (principalGood, scope items) and
// tokNoScope (principalNoScope, scope other); any other token has a bad
// signature.
func newCountingValidator() *countingValidator {
	return &countingValidator{
		answers: map[string]stubResult{tokGood: {p: principalGood}, tokNoScope: {p: principalNoScope}},
		calls:   map[string]int{},
	}
}

func (v *countingValidator) Validate(_ context.Context, token []byte) (*auth.Principal, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls[string(token)]++
	r, ok := v.answers[string(token)]
	if !ok {
		return nil, auth.Invalid(auth.ReasonSignature)
	}
	return r.p, r.err
}

// set changes the answer for token from now on.
func (v *countingValidator) set(token string, r stubResult) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.answers[token] = r
}

// callsFor is how many times token was validated.
func (v *countingValidator) callsFor(token string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[token]
}

// memoSetup is how a memoServer's listener is built.
type memoSetup struct {
	name string
	memo bool // accept through handlers.Listener
	tls  bool // tls.NewListener outermost, as the app does
}

// memoServer is a Server with an authcache.Cache over a countingValidator,
// served by fasthttp on a loopback TCP port through the listener a
// memoSetup describes. It records each connection the listener below TLS
// accepted and each memo a validation went through.
type memoServer struct {
	setup memoSetup
	v     *countingValidator
	cache *authcache.Cache
	addr  string
	tls   *tls.Config // the client's, under TLS; nil otherwise

	mu       sync.Mutex // guards accepted and memos
	accepted []net.Conn
	memos    []*authcache.Memo
}

func newMemoServer(tb testing.TB, setup memoSetup) *memoServer {
	tb.Helper()
	ms := &memoServer{setup: setup, v: newCountingValidator()}
	cache, err := authcache.New(ms.v, authcache.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cache.Close)
	ms.cache = cache
	s, err := handlers.New(handlers.Config{Validator: cache})
	if err != nil {
		tb.Fatal(err)
	}
	if !s.ObserveMemoForTest(func(m *authcache.Memo) {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		ms.memos = append(ms.memos, m)
	}) {
		tb.Fatal("a Server over an authcache.Cache does not use connection memos")
	}

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ms.addr = tcp.Addr().String()
	var ln net.Listener = tcp
	if setup.memo {
		ln = handlers.Listener(ln)
	}
	ln = recordingListener{Listener: ln, ms: ms}
	if setup.tls {
		ca := testpki.NewCA(tb, "memo test CA")
		leaf := ca.Issue(tb, "127.0.0.1")
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf.TLS(tb)}, MinVersion: tls.VersionTLS12})
		ms.tls = &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	serveUntilCleanup(tb, &fasthttp.Server{Handler: s.Handler(), NoDefaultDate: true, CloseOnShutdown: true}, ln)
	return ms
}

// recordingListener records the connections it accepts and returns them
// unchanged.
type recordingListener struct {
	net.Listener
	ms *memoServer
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ms.mu.Lock()
		l.ms.accepted = append(l.ms.accepted, c)
		l.ms.mu.Unlock()
	}
	return c, err
}

// observed returns copies of the accepted connections and the memos seen.
func (ms *memoServer) observed() ([]net.Conn, []*authcache.Memo) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]net.Conn(nil), ms.accepted...), append([]*authcache.Memo(nil), ms.memos...)
}

// rawClient is one client connection on which requests are written by
// hand, so that every request of a test provably uses it.
type rawClient struct {
	net.Conn
	r *bufio.Reader
}

// dial opens one connection to ms, over TLS when ms serves TLS.
func (ms *memoServer) dial(tb testing.TB) *rawClient {
	tb.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	var (
		c   net.Conn
		err error
	)
	if ms.tls != nil {
		c, err = tls.DialWithDialer(d, "tcp", ms.addr, ms.tls)
	} else {
		c, err = d.Dial("tcp", ms.addr)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return &rawClient{Conn: c, r: bufio.NewReader(c)}
}

// get sends GET target with the header pairs on the connection and
// returns the response and its body.
func (c *rawClient) get(tb testing.TB, target string, header ...string) (*http.Response, string) {
	tb.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: tokengate.test\r\n", target)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		tb.Fatalf("GET %s: %v", target, err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		tb.Fatalf("GET %s: %v", target, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("GET %s: %v", target, err)
	}
	return resp, string(body)
}

// memoStep is one request of a memoCase, on the case's one connection.
type memoStep struct {
	before    func(ms *memoServer) // run before the request (nil: nothing)
	forward   bool                 // ask /auth/forward for GET /orders/1; else GET /items
	token     string
	status    int
	subject   string // the X-Auth-Subject a forward decision must carry ("" on a refusal)
	validated bool   // whether the validator must be called for this request
}

func (st memoStep) name() string {
	path := "/items"
	if st.forward {
		path = handlers.PathForward
	}
	return fmt.Sprintf("%s %s", path, st.token)
}

// memoCase is a sequence of requests on one keep-alive connection.
type memoCase struct {
	name  string
	steps []memoStep
}

// run sends the steps on one connection to a server built as setup says
// and checks each answer, whether the validator was asked, and which memo
// the validation went through: the accepted connection's own for every
// request under handlers.Listener (also behind TLS), none without it.
func (tc memoCase) run(t *testing.T, setup memoSetup) {
	ms := newMemoServer(t, setup)
	c := ms.dial(t)
	for i, st := range tc.steps {
		if st.before != nil {
			st.before(ms)
		}
		calls, stats := ms.v.callsFor(st.token), ms.cache.Stats()
		_, memosBefore := ms.observed()
		header := bearer(st.token)
		target := "/items"
		if st.forward {
			target = handlers.PathForward
			header = append(header, "X-Forwarded-Method", "GET", "X-Forwarded-Host", "api.example.com", "X-Forwarded-Uri", "/orders/1")
		}
		resp, body := c.get(t, target, header...)
		// ristretto stores an answer asynchronously: make it visible to
		// the next request.
		ms.cache.Wait()

		if resp.StatusCode != st.status {
			t.Errorf("step %d (%s): status %d, want %d: %s", i, st.name(), resp.StatusCode, st.status, body)
		}
		if st.forward {
			if got := resp.Header.Get("X-Auth-Subject"); got != st.subject {
				t.Errorf("step %d (%s): X-Auth-Subject %q, want %q", i, st.name(), got, st.subject)
			}
		}
		now := ms.cache.Stats()
		if got := ms.v.callsFor(st.token) - calls; got != b2i(st.validated) {
			t.Errorf("step %d (%s): validator called %d times, want %d", i, st.name(), got, b2i(st.validated))
		}
		if st.validated {
			if now.Misses != stats.Misses+1 {
				t.Errorf("step %d (%s): cache misses %d -> %d, want one more", i, st.name(), stats.Misses, now.Misses)
			}
		} else if hits := now.Hits + now.NegativeHits - stats.Hits - stats.NegativeHits; hits != 1 {
			t.Errorf("step %d (%s): %d cache hits, want 1", i, st.name(), hits)
		}
		accepted, memos := ms.observed()
		if len(accepted) != 1 {
			t.Fatalf("step %d (%s): %d connections accepted, want the one", i, st.name(), len(accepted))
		}
		own := handlers.ConnMemoForTest(accepted[0])
		if setup.memo != (own != nil) {
			t.Fatalf("step %d (%s): the accepted connection has memo %p, want one: %v", i, st.name(), own, setup.memo)
		}
		fresh := memos[len(memosBefore):]
		switch {
		case !setup.memo && len(fresh) != 0:
			t.Errorf("step %d (%s): validated through %d memos without handlers.Listener", i, st.name(), len(fresh))
		case setup.memo && (len(fresh) != 1 || fresh[0] != own):
			t.Errorf("step %d (%s): validated through memos %v, want exactly the connection's %p", i, st.name(), fresh, own)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// forget is a memoStep.before that revokes token the way the second
// level's subscriber does, after making the validator refuse it, so that
// only a new validation can tell.
func forget(token string) func(ms *memoServer) {
	return func(ms *memoServer) {
		ms.v.set(token, stubResult{err: auth.Invalid(auth.ReasonInactive)})
		ms.cache.Forget(sha256.Sum256([]byte(token)))
	}
}

// TestConnectionMemo sends requests on one keep-alive connection to a
// Server over an authcache.Cache: through handlers.Listener (plain and
// under TLS) each validation goes through the connection's own memo,
// /items and the decision endpoint alike; without it, through none. The
// answers, and the validator's calls, are the same in every setup: the
// validator sees a token once, alternating tokens each get their own
// principal, and a revocation (Forget) is seen by the very next request.
func TestConnectionMemo(t *testing.T) {
	const (
		a = tokGood    // principalGood: scope items
		b = tokNoScope // principalNoScope: scope other
	)
	setups := []memoSetup{
		{name: "handlers.Listener", memo: true},
		{name: "handlers.Listener under TLS", memo: true, tls: true},
		{name: "plain listener"},
		{name: "plain listener under TLS", tls: true},
	}
	cases := []memoCase{
		{name: "one token, many requests", steps: []memoStep{
			{token: a, status: 200, validated: true},
			{token: a, status: 200},
			{token: a, status: 200},
			{token: a, status: 200},
			{forward: true, token: a, status: 200, subject: "svc-a"},
			{forward: true, token: a, status: 200, subject: "svc-a"},
			{token: a, status: 200},
		}},
		{name: "alternating tokens", steps: []memoStep{
			{token: a, status: 200, validated: true},
			{token: b, status: 403, validated: true},
			{token: a, status: 200},
			{token: b, status: 403},
			{token: a, status: 200},
			{token: b, status: 403},
			{forward: true, token: a, status: 200, subject: "svc-a"},
			{forward: true, token: b, status: 403},
			{forward: true, token: a, status: 200, subject: "svc-a"},
			{token: b, status: 403},
		}},
		{name: "revoked while remembered", steps: []memoStep{
			{token: a, status: 200, validated: true},
			{token: a, status: 200},
			{token: a, status: 200},
			// The validator now refuses a, but the cache still holds
			// its answer: served without asking.
			{before: func(ms *memoServer) { ms.v.set(a, stubResult{err: auth.Invalid(auth.ReasonInactive)}) }, token: a, status: 200},
			{before: forget(a), token: a, status: 401, validated: true},
			{token: a, status: 401},
			{forward: true, token: a, status: 401},
		}},
		{name: "revoked, decision endpoint first", steps: []memoStep{
			{forward: true, token: a, status: 200, subject: "svc-a", validated: true},
			{forward: true, token: a, status: 200, subject: "svc-a"},
			{forward: true, token: a, status: 200, subject: "svc-a"},
			{before: forget(a), forward: true, token: a, status: 401, validated: true},
			{token: a, status: 401},
		}},
		{name: "revoking another token leaves the remembered one", steps: []memoStep{
			{token: a, status: 200, validated: true},
			{token: b, status: 403, validated: true},
			{token: a, status: 200},
			{token: a, status: 200},
			{before: forget(b), token: a, status: 200},
			{token: b, status: 401, validated: true},
			{token: a, status: 200},
		}},
	}
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, setup) })
			}
		})
	}
}
