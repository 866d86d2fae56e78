package policy

import (
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/internal/promtext"
)

// Holder keeps the current Policy for concurrent readers and swaps it on
// Reload. Load is one atomic read and does not allocate; a bad file never
// replaces a good policy. Catching SIGHUP (or watching the file) is the
// caller's job. A Holder is safe for concurrent use.
type Holder struct {
	now func() time.Time
	mu  sync.Mutex // serialises Reload, so that the file read last is the one kept
	cur atomic.Pointer[snapshot]
}

// snapshot pairs a policy with the time it was installed, so that Load and
// LoadedAt never disagree about which policy they describe.
type snapshot struct {
	p  *Policy
	at time.Time
}

// NewHolder returns a Holder serving p, which must not be nil. now is the
// clock for LoadedAt; nil means time.Now.
func NewHolder(p *Policy, now func() time.Time) *Holder {
	if p == nil {
		panic("policy: NewHolder with a nil policy")
	}
	if now == nil {
		now = time.Now
	}
	h := &Holder{now: now}
	h.cur.Store(&snapshot{p: p, at: now()})
	return h
}

// Load returns the current policy.
func (h *Holder) Load() *Policy { return h.cur.Load().p }

// Reload parses the file at path and, when it is good, makes it the current
// policy. On error (an *Error for a bad file) the current policy stays.
//
// A file whose issuers: list differs from the current policy's (in any
// entry, in their number or their order; line numbers aside) is refused
// with an *Error too: validators are built from the issuers once, at
// start, so a changed list would reach the routes but not the tokens (an
// issuer removed from the file would go on being trusted). Changing the
// issuers takes a restart.
func (h *Holder) Reload(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, err := Load(path)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(h.Load().issuers, p.issuers, sameIssuer) {
		return &Error{File: path, Msg: "the issuers list differs from the one in force; issuers change only on a restart, so the current policy stays"}
	}
	h.cur.Store(&snapshot{p: p, at: h.now()})
	return nil
}

// LoadedAt returns when the current policy was installed (by NewHolder or
// the last successful Reload), for a metric.
func (h *Holder) LoadedAt() time.Time { return h.cur.Load().at }

// Rules returns the number of routes of the current policy, for a metric.
func (h *Holder) Rules() int { return h.cur.Load().p.Len() }

// AppendMetrics appends the policy's series in the Prometheus text format:
// tokengate_policy_rules and tokengate_policy_loaded_timestamp_seconds.
func (h *Holder) AppendMetrics(dst []byte) []byte {
	dst = promtext.AppendGauge(dst, "tokengate_policy_rules",
		"Routes in the current policy (the default rule not counted).", int64(h.Rules()))
	const loaded = "tokengate_policy_loaded_timestamp_seconds"
	dst = promtext.AppendHeader(dst, loaded, promtext.Gauge, "When the current policy was loaded (start or the last good reload), in Unix seconds.")
	return promtext.AppendSample(dst, loaded, float64(h.LoadedAt().UnixMilli())/1e3)
}

// sameIssuer reports whether a and b are the same issuer entry, wherever
// they stand in their files.
func sameIssuer(a, b Issuer) bool {
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}
