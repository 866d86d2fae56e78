package harness

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: values are nanoseconds, resolved to 3 significant digits
// from 1 µs up to one minute; longer values are clamped to a minute.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Minute)
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Outcome names used in Result.Statuses besides HTTP status codes.
const (
	OutcomeTimeout = "timeout" // the request hit its deadline
	OutcomeError   = "error"   // any other transport failure
)

// Recorder collects latencies and outcomes from many workers. Workers write
// to shards so they rarely contend; the progress reporter and the final
// summary merge the shards.
type Recorder struct {
	expect int
	shards []*shard
}

type shard struct {
	mu       sync.Mutex // guards everything below
	latency  *hdrhistogram.Histogram
	service  *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram // since the last progress tick
	outcomes map[string]uint64
	errors   uint64
	icount   uint64 // since the last progress tick
	ierrors  uint64
}

// NewRecorder returns a recorder with the given number of shards (at least
// one) that counts every outcome other than expectStatus as an error.
func NewRecorder(shards, expectStatus int) *Recorder {
	if shards < 1 {
		shards = 1
	}
	r := &Recorder{expect: expectStatus, shards: make([]*shard, shards)}
	for i := range r.shards {
		r.shards[i] = &shard{
			latency:  newHistogram(),
			service:  newHistogram(),
			interval: newHistogram(),
			outcomes: make(map[string]uint64),
		}
	}
	return r
}

// statusKeys avoids formatting the common status codes on every request.
var statusKeys = func() [600]string {
	var k [600]string
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

// Outcome returns the Result.Statuses key for a request's result: the HTTP
// status code in decimal, OutcomeTimeout or OutcomeError.
func Outcome(status int, err error) string {
	if err != nil {
		if IsTimeout(err) {
			return OutcomeTimeout
		}
		return OutcomeError
	}
	if status >= 0 && status < len(statusKeys) {
		return statusKeys[status]
	}
	return strconv.Itoa(status)
}

// IsTimeout reports whether err is a deadline of some kind.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func clampNanos(d time.Duration) int64 {
	v := int64(d)
	if v < 0 {
		return 0
	}
	if v > histHighest {
		return histHighest
	}
	return v
}

// Record adds one request made by worker: latency is measured from the
// intended send time (open loop) or the actual one (closed loop), service
// from the actual send time.
func (r *Recorder) Record(worker int, latency, service time.Duration, status int, err error) {
	s := r.shards[worker%len(r.shards)]
	key := Outcome(status, err)
	bad := err != nil || status != r.expect
	l, sv := clampNanos(latency), clampNanos(service)
	s.mu.Lock()
	_ = s.latency.RecordValue(l) // cannot fail: clamped to the range
	_ = s.service.RecordValue(sv)
	_ = s.interval.RecordValue(l)
	s.outcomes[key]++
	s.icount++
	if bad {
		s.errors++
		s.ierrors++
	}
	s.mu.Unlock()
}

// Tick returns the requests, errors and 99th percentile latency recorded
// since the previous Tick, and resets that interval.
func (r *Recorder) Tick() (requests, errs uint64, p99 time.Duration) {
	h := newHistogram()
	for _, s := range r.shards {
		s.mu.Lock()
		requests += s.icount
		errs += s.ierrors
		if s.icount > 0 {
			h.Merge(s.interval)
			s.interval.Reset()
		}
		s.icount, s.ierrors = 0, 0
		s.mu.Unlock()
	}
	return requests, errs, time.Duration(h.ValueAtQuantile(99))
}

// Totals returns the merged latency and service histograms, the outcome
// counts and the error count.
func (r *Recorder) Totals() (latency, service *hdrhistogram.Histogram, outcomes map[string]uint64, errs uint64) {
	latency, service = newHistogram(), newHistogram()
	outcomes = make(map[string]uint64)
	for _, s := range r.shards {
		s.mu.Lock()
		latency.Merge(s.latency)
		service.Merge(s.service)
		for k, v := range s.outcomes {
			outcomes[k] += v
		}
		errs += s.errors
		s.mu.Unlock()
	}
	return latency, service, outcomes, errs
}
