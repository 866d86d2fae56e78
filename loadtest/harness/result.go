package harness

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Model is a load model.
type Model string

// The load models.
const (
	// Closed: a fixed number of workers (connections), each sending its
	// next request as soon as the previous one returns. Throughput is
	// whatever the target sustains; latency is measured from each actual
	// send.
	Closed Model = "closed"
	// Open: requests are due at a fixed rate whatever the target does;
	// latency is measured from each request's intended send time, so time
	// spent waiting for a free worker counts (no coordinated omission).
	Open Model = "open"
)

// Result is what one scenario run measured.
type Result struct {
	Scenario   string  `json:"scenario"`
	Model      Model   `json:"model"`
	Workers    int     `json:"workers"`               // connections (closed) or maximum in flight (open)
	TargetRate float64 `json:"target_rate,omitempty"` // open loop only, requests/s
	WarmupS    float64 `json:"warmup_s"`
	DurationS  float64 `json:"duration_s"` // measured: first send to last completion
	Requests   uint64  `json:"requests"`   // completed, whatever their status
	RPS        float64 `json:"rps"`        // Requests / DurationS
	// Latency is measured from the actual send time in the closed loop. In
	// the open loop it is measured from the intended send time for every
	// request that was sent late because all workers were busy (queued
	// behind the target), and from the actual send time otherwise.
	Latency Summary `json:"latency"`
	// Service is always measured from the actual send time. It differs
	// from Latency only in the open loop, where the gap is time spent
	// queued behind a slow target.
	Service Summary `json:"service"`
	// Statuses counts results by HTTP status code ("200", "401", ...) or
	// by OutcomeTimeout / OutcomeError for transport failures.
	Statuses map[string]uint64 `json:"statuses"`
	// ExpectStatus is the status that counted as success; Errors counts
	// every other result.
	ExpectStatus int    `json:"expect_status"`
	Errors       uint64 `json:"errors"`
	// Unsent counts open-loop requests that were due before the end of the
	// run but never sent because the grace period ran out.
	Unsent uint64 `json:"unsent"`
	// Counters holds figures the caller adds, e.g. how many introspection
	// calls the authorization server served during the run.
	Counters map[string]int64 `json:"counters,omitempty"`
	// Round numbers the interleaved rounds (1, 2, …) when a run repeats
	// its scenarios; 0 when it does not.
	Round int `json:"round,omitempty"`
	// ServerCPUS is the CPU time, user plus system, that the server
	// process used during the measured phase, in seconds (SetServerCPU);
	// ServerCPUPerRequestUS is the same per completed request, in
	// microseconds. Both are 0 when the server's CPU time is unknown (a
	// server the harness did not start).
	ServerCPUS            float64 `json:"server_cpu_s,omitempty"`
	ServerCPUPerRequestUS float64 `json:"server_cpu_us_per_request,omitempty"`
}

// SetServerCPU records the server process's CPU time over the measured
// phase: the difference of two readings of its user plus system time
// taken around it. Nothing is recorded for a negative difference (a
// reading was unavailable) or a run that completed no request.
func (r *Result) SetServerCPU(d time.Duration) {
	if d < 0 || r.Requests == 0 {
		return
	}
	r.ServerCPUS = d.Seconds()
	r.ServerCPUPerRequestUS = float64(d) / float64(time.Microsecond) / float64(r.Requests)
}

// Summary is a latency distribution, in milliseconds.
type Summary struct {
	Count  int64   `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p99_9_ms"`
	MaxMS  float64 `json:"max_ms"`
	// Distribution samples the whole curve at DistributionPercentiles().
	Distribution []Point `json:"distribution"`
}

// Point is one percentile of a distribution.
type Point struct {
	Percentile float64 `json:"percentile"`
	MS         float64 `json:"ms"`
}

// DistributionPercentiles returns the percentiles kept in
// Summary.Distribution, in order.
func DistributionPercentiles() []float64 {
	return []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100}
}

func ms(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }

// Summarize reduces a histogram of nanoseconds to a Summary.
func Summarize(h *hdrhistogram.Histogram) Summary {
	s := Summary{Count: h.TotalCount()}
	if s.Count == 0 {
		return s
	}
	s.MinMS = ms(h.Min())
	s.MeanMS = h.Mean() / float64(time.Millisecond)
	s.P50MS = ms(h.ValueAtQuantile(50))
	s.P90MS = ms(h.ValueAtQuantile(90))
	s.P99MS = ms(h.ValueAtQuantile(99))
	s.P999MS = ms(h.ValueAtQuantile(99.9))
	s.MaxMS = ms(h.Max())
	ps := DistributionPercentiles()
	vals := h.ValueAtPercentilesSlice(ps)
	s.Distribution = make([]Point, len(vals))
	for i, v := range vals {
		p := ps[i]
		switch p {
		case 0:
			v = h.Min()
		case 100:
			v = h.Max()
		}
		s.Distribution[i] = Point{Percentile: p, MS: ms(v)}
	}
	return s
}
