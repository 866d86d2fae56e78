package main

import (
	"bytes"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/devissuer"
)

// The flood tests of issue 3: 10,000 random, well-formed tokens.
//
// "Well-formed" means JWT-shaped and plausible: three base64url segments,
// an RS256 header with a kid, Okta-shaped claims naming the right issuer
// and audience and a future exp, and a 256-byte signature — random, so no
// token is validly signed. Half of them name the issuer's real signing kid
// (the signature check runs and fails); the other half name a random kid
// (the unknown-kid refresh path, which must stay rate-limited).
//
// Both modes send the full 10,000 (no reduction was needed): on a shared
// 2-core machine under -race each flood takes 1.5–2.5 s and each test about
// 3 s. Figures seen there: hybrid, 10,000 × 401, 0 introspections, 1 JWKS
// fetch, ~9,000 evictions at 256 KiB; remote with a bound of 8 and 100 ms
// per call, 80–115 introspections (peak in flight exactly 8), the rest 503.
const (
	floodTokens      = 10000
	floodConcurrency = 200 // client-side bound: requests in flight at once
	// The cache bounds: small, so that the answers stored overflow them
	// (remote mode stores only the ~100 answers it introspected).
	hybridCacheCost = 256 << 10
	remoteCacheCost = 8 << 10
	// floodMaxIntrospections is INTROSPECTION_MAX_CONCURRENT for the
	// remote flood: small, so that overflow is certain.
	floodMaxIntrospections = 8
	// floodIntrospectLatency keeps each introspection in flight long
	// enough for calls to overlap and the bound to fill.
	floodIntrospectLatency = 100 * time.Millisecond
	// goroutineSlack allows for goroutines that outlive Close by design
	// and do not grow with load: fasthttp.Client's connection cleaners
	// (one per client plus one per upstream host; they sleep on a timer
	// nobody can stop) and the runtime's own.
	goroutineSlack = 10
)

// randomTokens returns n JWT-shaped tokens for iss that no key signed.
func randomTokens(tb testing.TB, iss *devissuer.Issuer, n int) []string {
	tb.Helper()
	b64 := base64.RawURLEncoding
	realKID := iss.SigningKID()
	now := time.Now().Unix()
	out := make([]string, n)
	sig := make([]byte, 256)
	for i := range out {
		var rnd [16]byte
		_, _ = crand.Read(rnd[:])
		kid := realKID
		if i%2 == 1 {
			kid = hex.EncodeToString(rnd[:8]) // a key nobody published
		}
		header, err := json.Marshal(map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"})
		if err != nil {
			tb.Fatal(err)
		}
		claims, err := json.Marshal(map[string]any{
			"ver": 1,
			"jti": "AT." + hex.EncodeToString(rnd[:]),
			"iss": iss.Issuer(),
			"aud": iss.Audience(),
			"iat": now,
			"exp": now + 3600,
			"cid": devissuer.DefaultClientID,
			"sub": devissuer.DefaultClientID,
			"scp": []string{"items"},
		})
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = crand.Read(sig)
		out[i] = b64.EncodeToString(header) + "." + b64.EncodeToString(claims) + "." + b64.EncodeToString(sig)
	}
	return out
}

// floodResult tallies the answers of a flood.
type floodResult struct {
	mu       sync.Mutex     // guards the fields below
	statuses map[int]int    // status → count
	bad      []string       // answers that broke a rule, for the failure message
	bodies   map[int]string // one body per status, for the failure message

	peakGoroutines atomic.Int64
}

func (r *floodResult) add(status int, problem, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[status]++
	if _, ok := r.bodies[status]; !ok {
		r.bodies[status] = body
	}
	if problem != "" && len(r.bad) < 10 {
		r.bad = append(r.bad, problem)
	}
}

// flood sends GET /items once with each token, floodConcurrency at a time,
// over a client of its own (kept-alive connections; closed at the end).
// check returns what is wrong with one answer, or "".
func flood(tb testing.TB, base string, tokens []string, check func(status int, h http.Header, body string) string) *floodResult {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: floodConcurrency, MaxConnsPerHost: floodConcurrency}
	client := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	defer tr.CloseIdleConnections()

	res := &floodResult{statuses: map[int]int{}, bodies: map[int]string{}}
	var next atomic.Int64
	var wg sync.WaitGroup
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // samples the goroutine count while the flood runs
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > res.peakGoroutines.Load() {
				res.peakGoroutines.Store(n)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	for range floodConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(tokens) {
					return
				}
				req, err := http.NewRequest(http.MethodGet, base+"/items", nil)
				if err != nil {
					tb.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				resp, err := client.Do(req)
				if err != nil {
					tb.Errorf("request %d: %v", i, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					tb.Errorf("request %d: reading body: %v", i, err)
					return
				}
				res.add(resp.StatusCode, check(resp.StatusCode, resp.Header, string(body)), string(body))
			}
		})
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	return res
}

// checkInvalidToken accepts only RFC 6750 invalid_token answers.
func checkInvalidToken(status int, h http.Header, body string) string {
	if status != http.StatusUnauthorized {
		return "status " + strconv.Itoa(status) + ", want 401: " + body
	}
	if wa := h.Get("WWW-Authenticate"); !strings.Contains(wa, `error="invalid_token"`) {
		return "401 with WWW-Authenticate " + strconv.Quote(wa)
	}
	return ""
}

// settleGoroutines waits until at most want goroutines run, and fails with
// the stacks of the survivors if they do not go within 10s.
func settleGoroutines(tb testing.TB, want int) int {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Fatalf("%d goroutines after stop, want at most %d; stacks:\n%s", n, want, buf)
		}
		time.Sleep(20 * time.Millisecond) // polling runtime state: nothing to wait on
	}
}

// TestFloodHybrid: hybrid mode under a flood of forged tokens makes no
// introspection call at all (bad tokens never reach the authorization
// server), refreshes the JWKS at most once for all the made-up kids, and
// holds the cache within its cost bound.
func TestFloodHybrid(t *testing.T) {
	baseline := runtime.NumGoroutine()
	iss := startIssuer(t)
	tokens := randomTokens(t, iss, floodTokens)
	clock := &fakeClock{} // never advanced: one unknown-kid cooldown spans the flood
	s := startServer(t, issuerArgs(iss,
		"--validation-mode", "hybrid",
		"--cache-max-cost", strconv.Itoa(hybridCacheCost),
	), nil, clock.Now)
	s.keysReady(t)
	before := iss.Counts()

	start := time.Now()
	res := flood(t, s.base, tokens, checkInvalidToken)
	took := time.Since(start)
	s.Cache().Wait()
	after := iss.Counts()
	st := s.Cache().Stats()

	t.Logf("hybrid flood: %d tokens in %v; statuses %v; introspections %d; JWKS fetches during the flood %d; cache cost %d of %d bytes, %d evictions, %d rejections; peak goroutines %d (baseline %d)",
		len(tokens), took.Round(time.Millisecond), res.statuses, after.Introspect, after.Keys-before.Keys,
		st.Cost, st.MaxCost, st.Evictions, st.Rejections, res.peakGoroutines.Load(), baseline)
	if len(res.bad) > 0 {
		t.Errorf("answers that are not 401 invalid_token (first %d):\n%s", len(res.bad), strings.Join(res.bad, "\n"))
	}
	if res.statuses[http.StatusUnauthorized] != len(tokens) {
		t.Errorf("%d of %d answers were 401", res.statuses[http.StatusUnauthorized], len(tokens))
	}
	if after.Introspect != 0 {
		t.Errorf("%d introspection calls, want 0: forged tokens must be rejected locally", after.Introspect)
	}
	// One refresh per cooldown for the made-up kids, plus the background
	// refresher's first fetch in case it was scheduled after keysReady.
	if n := after.Keys - before.Keys; n > 2 {
		t.Errorf("%d JWKS fetches during the flood of unknown kids, want at most 2 (cooldown 30s)", n)
	}
	checkBounded(t, st, hybridCacheCost, len(tokens), res.peakGoroutines.Load(), baseline)

	s.stop(t)
	_ = iss.Close()
	n := settleGoroutines(t, baseline+goroutineSlack)
	t.Logf("goroutines after stop: %d (baseline %d)", n, baseline)
}

// TestFloodRemote: remote mode under a flood of unknown tokens never has
// more than INTROSPECTION_MAX_CONCURRENT introspections in flight,
// answers the overflow at once with 503 and Retry-After (never 401, never
// 200), and holds the cache within its cost bound.
//
// The issuer cannot report how many calls it serves at once, so
// INTROSPECTION_ENDPOINT points at a counting proxy in front of it.
func TestFloodRemote(t *testing.T) {
	baseline := runtime.NumGoroutine()
	iss := startIssuer(t)
	tokens := randomTokens(t, iss, floodTokens)
	iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: floodIntrospectLatency})
	proxy := newCountingProxy(t, iss.IntrospectionURL())
	s := startServer(t, issuerArgs(iss,
		"--validation-mode", "remote",
		"--introspection-endpoint", proxy.url,
		"--introspection-max-concurrent", strconv.Itoa(floodMaxIntrospections),
		"--cache-max-cost", strconv.Itoa(remoteCacheCost),
	), nil, nil)

	start := time.Now()
	res := flood(t, s.base, tokens, func(status int, h http.Header, body string) string {
		switch status {
		case http.StatusServiceUnavailable:
			ra, err := strconv.Atoi(h.Get("Retry-After"))
			if err != nil || ra <= 0 {
				return "503 with Retry-After " + strconv.Quote(h.Get("Retry-After"))
			}
			if !strings.Contains(body, `"detail"`) {
				return "503 body " + body
			}
			return ""
		case http.StatusUnauthorized:
			return checkInvalidToken(status, h, body)
		}
		return "status " + strconv.Itoa(status) + ", want 401 or 503: " + body
	})
	took := time.Since(start)
	s.Cache().Wait()
	st := s.Cache().Stats()
	calls, peak := proxy.calls.Load(), proxy.peak.Load()
	n401, n503 := res.statuses[http.StatusUnauthorized], res.statuses[http.StatusServiceUnavailable]

	t.Logf("remote flood: %d tokens in %v; statuses %v; introspections %d (issuer counted %d), peak in flight %d of %d; cache cost %d of %d bytes, %d evictions, %d rejections; peak goroutines %d (baseline %d)",
		len(tokens), took.Round(time.Millisecond), res.statuses, calls, iss.Counts().Introspect, peak, floodMaxIntrospections,
		st.Cost, st.MaxCost, st.Evictions, st.Rejections, res.peakGoroutines.Load(), baseline)
	if len(res.bad) > 0 {
		t.Errorf("answers that break the rules (first %d):\n%s", len(res.bad), strings.Join(res.bad, "\n"))
	}
	if peak > floodMaxIntrospections {
		t.Errorf("%d introspections in flight at once, want at most %d", peak, floodMaxIntrospections)
	}
	if peak < 2 {
		t.Errorf("at most %d introspection in flight: the flood did not overlap calls, so the bound went untested", peak)
	}
	if n503 == 0 {
		t.Error("no 503: the flood never overflowed the bound, so the overflow went untested")
	}
	// Every token is distinct, so each introspected token is one 401
	// (inactive) and every other answer must be an overflow 503: an
	// overflow answered 401 would make these differ.
	if int64(n401) != calls {
		t.Errorf("%d answers were 401 but %d tokens were introspected: overflow must be 503, never 401", n401, calls)
	}
	if n401+n503 != len(tokens) {
		t.Errorf("%d 401s + %d 503s, want %d answers in all", n401, n503, len(tokens))
	}
	if got := iss.Counts().Introspect; got != uint64(calls) {
		t.Errorf("issuer counted %d introspections, proxy %d", got, calls)
	}
	checkBounded(t, st, remoteCacheCost, n401, res.peakGoroutines.Load(), baseline) // overflow answers are not cached

	s.stop(t)
	proxy.close()
	_ = iss.Close()
	n := settleGoroutines(t, baseline+goroutineSlack)
	t.Logf("goroutines after stop: %d (baseline %d)", n, baseline)
}

// checkBounded asserts "nothing grows without bound": the cache holds no
// more than its cost bound and, when the stored answers cannot all fit,
// evicted or refused some to stay there; and the goroutines alive during
// the flood followed the client's concurrency, not the number of tokens.
func checkBounded(tb testing.TB, st authcache.Stats, maxCost int64, stored int, peakGoroutines int64, baseline int) {
	tb.Helper()
	// A negative entry costs well over this (about 256 bytes with
	// ristretto's overhead); stored*minEntryCost past the bound means
	// the cache cannot have kept them all.
	const minEntryCost = 128
	if st.MaxCost != maxCost {
		tb.Errorf("cache MaxCost %d, want CACHE_MAX_COST %d", st.MaxCost, maxCost)
	}
	if st.Cost > st.MaxCost {
		tb.Errorf("cache cost %d exceeds its bound %d", st.Cost, st.MaxCost)
	}
	if int64(stored)*minEntryCost > st.MaxCost && st.Evictions+st.Rejections == 0 {
		tb.Errorf("%d answers stored in %d bytes without an eviction or rejection", stored, st.MaxCost)
	}
	// Per request in flight: the client's goroutine and its connection's
	// two, the server's connection worker, the cache's shared validation,
	// and the proxy's share. Six per request, plus a fixed allowance:
	// a leak per token would show as thousands.
	if limit := int64(baseline + 6*floodConcurrency + 200); peakGoroutines > limit {
		tb.Errorf("peak of %d goroutines during the flood, want at most %d (they must follow concurrency, not token count)", peakGoroutines, limit)
	}
}

// countingProxy forwards introspection calls to the issuer and records how
// many it serves at once.
type countingProxy struct {
	url      string
	srv      *httptest.Server
	target   string
	client   *http.Client
	inFlight atomic.Int64
	peak     atomic.Int64
	calls    atomic.Int64
	once     sync.Once
}

func newCountingProxy(tb testing.TB, target string) *countingProxy {
	tb.Helper()
	p := &countingProxy{
		target: target,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	p.srv = httptest.NewServer(p) // 127.0.0.1
	p.url = p.srv.URL + "/v1/introspect"
	tb.Cleanup(p.close)
	return p
}

func (p *countingProxy) close() {
	p.once.Do(func() {
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
}

// ServeHTTP forwards one call. The in-flight count drops before the
// answer is written, so a client that has its answer is no longer counted:
// the peak is an exact upper bound of the calls tokengate had open.
func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	n := p.inFlight.Add(1)
	for old := p.peak.Load(); n > old && !p.peak.CompareAndSwap(old, n); old = p.peak.Load() {
	}
	status, header, body := p.forward(r)
	p.inFlight.Add(-1)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (p *countingProxy) forward(r *http.Request) (int, http.Header, []byte) {
	in, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	req, err := http.NewRequest(http.MethodPost, p.target, bytes.NewReader(in))
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	for _, k := range []string{"Authorization", "Content-Type", "Accept"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Retry-After", "Cache-Control"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	return resp.StatusCode, h, out
}
