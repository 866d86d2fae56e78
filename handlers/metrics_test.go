package handlers_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/internal/promtext"
	"github.com/valyala/fasthttp"
)

// requestsFamily renders the tokengate_requests_total family as it must
// read for the given counts, in exposition order.
func requestsFamily(authorized, noToken, invalid, scope, unavailable, failed int, extra ...int) string {
	d := append(extra, 0, 0, 0, 0, 0) // public, denied, bad_request, untrusted_peer, invalid_request
	return `# HELP tokengate_requests_total Requests to protected routes and decision endpoints, by the outcome of the check (authorized: the route's handler ran or the decision allowed a token).
# TYPE tokengate_requests_total counter
tokengate_requests_total{outcome="authorized"} ` + strconv.Itoa(authorized) + `
tokengate_requests_total{outcome="no_token"} ` + strconv.Itoa(noToken) + `
tokengate_requests_total{outcome="invalid_token"} ` + strconv.Itoa(invalid) + `
tokengate_requests_total{outcome="insufficient_scope"} ` + strconv.Itoa(scope) + `
tokengate_requests_total{outcome="unavailable"} ` + strconv.Itoa(unavailable) + `
tokengate_requests_total{outcome="error"} ` + strconv.Itoa(failed) + `
tokengate_requests_total{outcome="public"} ` + strconv.Itoa(d[0]) + `
tokengate_requests_total{outcome="denied"} ` + strconv.Itoa(d[1]) + `
tokengate_requests_total{outcome="bad_request"} ` + strconv.Itoa(d[2]) + `
tokengate_requests_total{outcome="untrusted_peer"} ` + strconv.Itoa(d[3]) + `
tokengate_requests_total{outcome="invalid_request"} ` + strconv.Itoa(d[4]) + `
`
}

// rejectionsFamily renders the tokengate_rejections_total family as it
// must read for the given counts: every auth.Reason in order, zeros
// included.
func rejectionsFamily(counts map[auth.Reason]int) string {
	var b strings.Builder
	b.WriteString("# HELP tokengate_rejections_total Requests to protected routes refused with 401 invalid_token, by the reason the token was rejected.\n")
	b.WriteString("# TYPE tokengate_rejections_total counter\n")
	for r := range auth.NumReasons {
		b.WriteString(`tokengate_rejections_total{reason="` + r.String() + `"} ` + strconv.Itoa(counts[r]) + "\n")
	}
	return b.String()
}

// TestMetricsCountsOutcomes sends requests of every outcome and reads
// them back from GET /metrics, whose content type is the text format's.
func TestMetricsCountsOutcomes(t *testing.T) {
	g := newGate(t, handlers.Config{})
	resp := g.do(t, call{path: "/metrics"})
	want{status: 200, body: requestsFamily(0, 0, 0, 0, 0, 0) + rejectionsFamily(nil), header: map[string]string{
		"Content-Type":  "text/plain; version=0.0.4; charset=utf-8",
		"Cache-Control": "no-store",
	}}.check(t, resp)

	for _, c := range []struct {
		n    int
		call call
	}{
		{3, call{path: "/items", header: bearer(tokGood)}},
		{1, call{path: "/items/99", header: bearer(tokGood)}}, // 404, but the token passed
		{2, call{path: "/items"}},
		{1, call{path: "/items/1", header: []string{"Authorization", "Basic Zm9vOmJhcg=="}}},
		{2, call{path: "/items", header: bearer(tokExpired)}},
		{1, call{path: "/items", header: bearer("unknown-token")}}, // the stub's bad signature
		{1, call{path: "/items", header: bearer(tokOdd)}},          // a reason beyond NumReasons counts as invalid
		{1, call{path: "/items", header: bearer(tokNoScope)}},
		{1, call{path: "/items", header: bearer(tokDown)}},
		{1, call{path: "/items", header: bearer(tokCanceled)}},
		{1, call{path: "/items", header: bearer(tokWeird)}},
		{1, call{path: "/items", header: bearer(tokNil)}},
		{1, call{path: "/items?access_token=x", header: bearer(tokGood)}}, // 400: two methods
		{2, call{path: "/"}},        // not protected: not counted
		{1, call{path: "/healthz"}}, // likewise
	} {
		for range c.n {
			g.do(t, c.call)
		}
	}
	resp = g.do(t, call{path: "/metrics"})
	want{status: 200, body: requestsFamily(4, 3, 4, 1, 2, 2, 0, 0, 0, 0, 1) + rejectionsFamily(map[auth.Reason]int{
		auth.ReasonExpired:   2,
		auth.ReasonSignature: 1,
		auth.ReasonInvalid:   1,
	})}.check(t, resp)
	// The labels are auth.Reason's String, spelt out once here.
	for _, line := range []string{
		`tokengate_rejections_total{reason="expired"} 2`,
		`tokengate_rejections_total{reason="signature"} 1`,
		`tokengate_rejections_total{reason="invalid"} 1`,
		`tokengate_rejections_total{reason="unknown_key"} 0`,
	} {
		if !strings.Contains(string(resp.Body()), line+"\n") {
			t.Errorf("GET /metrics lacks %q", line)
		}
	}
}

// TestMetricsHook: Config.Metrics appends after the handlers' own series
// and sees the buffer they wrote.
func TestMetricsHook(t *testing.T) {
	var calls int
	g := newGate(t, handlers.Config{Metrics: func(dst []byte) []byte {
		calls++
		if !strings.HasPrefix(string(dst), "# HELP tokengate_requests_total ") {
			t.Errorf("the hook got %q, want the handlers' series first", dst)
		}
		dst = promtext.AppendHeader(dst, "tokengate_test_gauge", promtext.Gauge, "A test gauge.")
		return promtext.AppendSample(dst, "tokengate_test_gauge", 7, "name", `a"b`)
	}})
	g.do(t, call{path: "/items", header: bearer(tokGood)})
	for i := range 3 { // the pooled buffer is reused: every scrape is whole
		resp := g.do(t, call{path: "/metrics"})
		w := want{status: 200, body: requestsFamily(1, 0, 0, 0, 0, 0) + rejectionsFamily(nil) +
			"# HELP tokengate_test_gauge A test gauge.\n# TYPE tokengate_test_gauge gauge\n" +
			`tokengate_test_gauge{name="a\"b"} 7` + "\n"}
		w.check(t, resp)
		if calls != i+1 {
			t.Fatalf("hook called %d times for %d scrapes", calls, i+1)
		}
	}
}

// TestMetricsCountConcurrently: counts from many connections at once add
// up, outcomes and rejection reasons alike (the counters are sharded; a
// scrape sums the shards).
func TestMetricsCountConcurrently(t *testing.T) {
	s, err := handlers.New(handlers.Config{Validator: newAuthStub()})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	const workers, each = 16, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := new(fasthttp.RequestCtx) // one per connection, as fasthttp does
			ctx.Request.Header.SetMethod(fasthttp.MethodGet)
			ctx.Request.SetRequestURI("/items")
			switch w % 4 {
			case 0, 2:
				ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tokGood)
			case 3:
				ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tokExpired)
			}
			for range each {
				h(ctx)
			}
		})
	}
	wg.Wait()
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI("/metrics")
	h(ctx)
	if got, want := string(ctx.Response.Body()), requestsFamily(workers/2*each, workers/4*each, workers/4*each, 0, 0, 0)+
		rejectionsFamily(map[auth.Reason]int{auth.ReasonExpired: workers / 4 * each}); got != want {
		t.Errorf("body:\n%s\nwant:\n%s", got, want)
	}
}
