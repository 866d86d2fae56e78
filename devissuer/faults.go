package devissuer

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Endpoint names one of the issuer's endpoints, for Counts and SetFault.
type Endpoint int

// The endpoints. EndpointDiscovery covers both discovery documents.
const (
	EndpointDiscovery Endpoint = iota
	EndpointKeys
	EndpointToken
	EndpointIntrospect
	EndpointRevoke
	numEndpoints
)

// Endpoints returns every Endpoint, in declaration order.
func Endpoints() []Endpoint {
	return []Endpoint{EndpointDiscovery, EndpointKeys, EndpointToken, EndpointIntrospect, EndpointRevoke}
}

// String returns the endpoint's name, e.g. "introspect".
func (e Endpoint) String() string {
	switch e {
	case EndpointDiscovery:
		return "discovery"
	case EndpointKeys:
		return "keys"
	case EndpointToken:
		return "token"
	case EndpointIntrospect:
		return "introspect"
	case EndpointRevoke:
		return "revoke"
	}
	return "Endpoint(" + strconv.Itoa(int(e)) + ")"
}

func (e Endpoint) valid() bool { return e >= 0 && e < numEndpoints }

// Counts is the number of requests each endpoint received since Start or
// the last ResetCounts, whatever their outcome: a request is counted when
// it arrives, before any fault applies, so a dropped or failed request
// counts too. Each field is read atomically, but the struct is not one
// snapshot across endpoints.
type Counts struct {
	Discovery  uint64 // both discovery documents
	Keys       uint64 // /v1/keys
	Token      uint64 // /v1/token
	Introspect uint64 // /v1/introspect
	Revoke     uint64 // /v1/revoke
}

// Total returns the sum over all endpoints.
func (c Counts) Total() uint64 {
	return c.Discovery + c.Keys + c.Token + c.Introspect + c.Revoke
}

// Counts returns the per-endpoint request counts.
func (i *Issuer) Counts() Counts {
	return Counts{
		Discovery:  i.counts[EndpointDiscovery].Load(),
		Keys:       i.counts[EndpointKeys].Load(),
		Token:      i.counts[EndpointToken].Load(),
		Introspect: i.counts[EndpointIntrospect].Load(),
		Revoke:     i.counts[EndpointRevoke].Load(),
	}
}

// ResetCounts sets every count to zero.
func (i *Issuer) ResetCounts() {
	for n := range i.counts {
		i.counts[n].Store(0)
	}
}

// Fault changes how an endpoint answers, for tests and load tests. The
// zero Fault changes nothing. The parts apply in this order: Latency,
// then Drop, then the answer (Status and Body, or the real one).
type Fault struct {
	// Latency delays the request before anything else happens, on the
	// connection's own goroutine: other requests and endpoints are not
	// held up. It is measured on the real clock (Config.Now is not used),
	// and Stop and Close cut it short by dropping the connection.
	Latency time.Duration

	// Drop closes the connection without answering (after Latency):
	// the client sees the connection reset or closed. Note that
	// fasthttp.Client retries idempotent requests (GET) on such errors,
	// so one client call may count several times.
	Drop bool

	// Status, when non-zero, answers with this status code (100..599)
	// instead of running the endpoint. Body is sent if set; otherwise a
	// JSON error body fitting the status (Okta's E0000047 body for 429,
	// {"error":"server_error",...} for 5xx, {"error":"invalid_request",...}
	// otherwise).
	Status int

	// Body, when non-nil, is the response body instead of the endpoint's.
	// With Status zero the status is 200: use it for malformed answers
	// such as {"active":"true"} or an HTML page.
	Body []byte

	// ContentType of Body ("application/json").
	ContentType string

	// RetryAfter, when non-empty, is sent as the Retry-After header
	// (seconds or an HTTP date, verbatim).
	RetryAfter string

	// RateLimitReset, when non-zero, is sent as Okta's
	// X-Rate-Limit-Reset header (Unix seconds), with X-Rate-Limit-Limit
	// and X-Rate-Limit-Remaining: 0.
	RateLimitReset time.Time

	// Header holds further response headers to set.
	Header map[string]string

	// Times limits the fault to the next Times requests of the endpoint;
	// zero means until ClearFaults or the next SetFault.
	Times int
}

// faultState is an installed Fault with its remaining count.
type faultState struct {
	f         Fault
	remaining atomic.Int64 // used when f.Times > 0
}

// SetFault installs f on endpoint ep, replacing any earlier fault there.
// It panics on an unknown endpoint, a Status outside 100..599 or a
// negative Latency or Times: those are bugs in the calling test.
func (i *Issuer) SetFault(ep Endpoint, f Fault) {
	if !ep.valid() {
		panic(fmt.Sprintf("devissuer: SetFault: unknown endpoint %d", int(ep)))
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		panic(fmt.Sprintf("devissuer: SetFault: status %d out of range", f.Status))
	}
	if f.Latency < 0 || f.Times < 0 {
		panic("devissuer: SetFault: negative Latency or Times")
	}
	f.Body = slices.Clone(f.Body)
	f.Header = maps.Clone(f.Header)
	st := &faultState{f: f}
	st.remaining.Store(int64(f.Times))
	i.faults[ep].Store(st)
}

// ClearFault removes the fault of one endpoint.
func (i *Issuer) ClearFault(ep Endpoint) {
	if ep.valid() {
		i.faults[ep].Store(nil)
	}
}

// ClearFaults removes every fault.
func (i *Issuer) ClearFaults() {
	for n := range i.faults {
		i.faults[n].Store(nil)
	}
}

// takeFault returns the fault to apply to one request of ep, or nil.
func (i *Issuer) takeFault(ep Endpoint) *Fault {
	st := i.faults[ep].Load()
	if st == nil {
		return nil
	}
	if st.f.Times > 0 && st.remaining.Add(-1) < 0 {
		i.faults[ep].CompareAndSwap(st, nil)
		return nil
	}
	return &st.f
}

// wait sleeps d unless the serving generation stops or the issuer closes
// first; it reports whether the full time passed.
func (i *Issuer) wait(d time.Duration, gen <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	if hook := i.waitHook.Load(); hook != nil {
		(*hook)()
	}
	select {
	case <-t.C:
		return true
	case <-gen:
		return false
	case <-i.closed:
		return false
	}
}

// drop makes fasthttp close the connection without writing a response.
func drop(ctx *fasthttp.RequestCtx) {
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(net.Conn) {}) // fasthttp closes the connection on return
}

// applyFaultHeaders sets the headers a fault adds to any answer.
func applyFaultHeaders(ctx *fasthttp.RequestCtx, f *Fault) {
	h := &ctx.Response.Header
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	if !f.RateLimitReset.IsZero() {
		h.Set("X-Rate-Limit-Limit", "0")
		h.Set("X-Rate-Limit-Remaining", "0")
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(f.RateLimitReset.Unix(), 10))
	}
	for k, v := range f.Header {
		h.Set(k, v)
	}
}

// writeFault answers with the fault's status and body.
func writeFault(ctx *fasthttp.RequestCtx, f *Fault) {
	status := f.Status
	if status == 0 {
		status = fasthttp.StatusOK
	}
	body := f.Body
	if body == nil {
		switch {
		case status == fasthttp.StatusTooManyRequests:
			body = []byte(`{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorLink":"E0000047","errorId":"devissuer-fault","errorCauses":[]}`)
		case status >= 500:
			body = []byte(`{"error":"server_error","error_description":"devissuer: injected fault"}`)
		default:
			body = []byte(`{"error":"invalid_request","error_description":"devissuer: injected fault"}`)
		}
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/json"
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType(ct)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(body)
}
