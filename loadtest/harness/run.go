package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Request performs one request and returns its HTTP status, or an error for
// a transport failure. ctx ends at the run's hard deadline; a Request must
// return promptly when it does.
type Request func(ctx context.Context) (status int, err error)

// NewRequest returns the Request that worker id uses. Each worker calls its
// own Request from a single goroutine, so it may keep reusable buffers.
type NewRequest func(worker int) Request

// Config describes one run. Zero fields take the defaults in parentheses.
type Config struct {
	Name  string // scenario name, for the progress line and the Result
	Model Model  // Closed or Open (Closed)
	// Workers is the number of connections in the closed loop (16) or the
	// maximum number of requests in flight in the open loop (256). In the
	// open loop, a due request waits for a free worker and that wait counts
	// in its latency.
	Workers int
	// Rate is the open-loop request rate per second; required for Open.
	Rate float64
	// Warmup runs the same load first and throws its figures away (0: none).
	Warmup time.Duration
	// Duration is the measured part of the run; required.
	Duration time.Duration
	// Grace bounds how long in-flight requests may take to finish after
	// Duration (2s); then their context is cancelled. Every phase thus ends
	// within its duration plus Grace.
	Grace time.Duration
	// ExpectStatus is the status that counts as success (200).
	ExpectStatus int
	// BeforeMeasure, when set, is called after the warm-up, just before
	// the measured phase starts (e.g. to snapshot server-side counters).
	BeforeMeasure func()
	// Clock is the time source (nil: the wall clock).
	Clock Clock
	// Progress, when set, receives a status line every ProgressInterval
	// (1s) while the run lasts. With ProgressOverwrite each line starts
	// with a carriage return and overwrites the previous one (for a
	// terminal); otherwise lines end with a newline.
	Progress          io.Writer
	ProgressInterval  time.Duration
	ProgressOverwrite bool
}

func (c *Config) fill() error {
	if c.Model == "" {
		c.Model = Closed
	}
	switch c.Model {
	case Closed:
		if c.Workers <= 0 {
			c.Workers = 16
		}
	case Open:
		if c.Workers <= 0 {
			c.Workers = 256
		}
		if c.Rate <= 0 {
			return errors.New("harness: open loop needs a rate > 0")
		}
	default:
		return fmt.Errorf("harness: unknown model %q", c.Model)
	}
	if c.Duration <= 0 {
		return errors.New("harness: duration must be > 0")
	}
	if c.Warmup < 0 {
		return errors.New("harness: warm-up must be >= 0")
	}
	if c.Grace <= 0 {
		c.Grace = 2 * time.Second
	}
	if c.ExpectStatus == 0 {
		c.ExpectStatus = 200
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	return nil
}

// shardsFor picks a shard count: enough that workers rarely share a lock,
// few enough that merging them for the progress line stays cheap.
func shardsFor(workers int) int { return min(workers, 16) }

// Run warms up, then measures, and returns what it measured. It returns
// early with the figures so far and ctx's error when ctx ends.
func Run(ctx context.Context, cfg Config, newRequest NewRequest) (*Result, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if newRequest == nil {
		return nil, errors.New("harness: no request")
	}
	reqs := make([]Request, cfg.Workers)
	for i := range reqs {
		reqs[i] = newRequest(i)
	}
	if cfg.Warmup > 0 {
		rec := NewRecorder(shardsFor(cfg.Workers), cfg.ExpectStatus)
		if _, err := runPhase(ctx, &cfg, reqs, rec, cfg.Warmup, "warm-up"); err != nil {
			return nil, err
		}
	}
	if cfg.BeforeMeasure != nil {
		cfg.BeforeMeasure()
	}
	rec := NewRecorder(shardsFor(cfg.Workers), cfg.ExpectStatus)
	ph, err := runPhase(ctx, &cfg, reqs, rec, cfg.Duration, "")
	res := buildResult(&cfg, rec, ph)
	return res, err
}

type phaseStats struct {
	elapsed time.Duration
	unsent  int64
}

// runPhase runs the load for d, then waits up to cfg.Grace for in-flight
// requests, then cancels them and waits for every worker.
func runPhase(ctx context.Context, cfg *Config, reqs []Request, rec *Recorder, d time.Duration, label string) (phaseStats, error) {
	clk := cfg.Clock
	start := clk.Now()
	end := start.Add(d)
	hard, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg     sync.WaitGroup
		next   atomic.Int64 // open loop: next schedule index
		sent   atomic.Int64 // open loop: requests actually sent
		lastMu sync.Mutex   // guards last
		last   = start      // latest completion
	)
	sched := Schedule{Rate: cfg.Rate}
	for w, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var done time.Time
			if cfg.Model == Open {
				done = openWorker(hard, clk, sched, start, end, w, req, rec, &next, &sent)
			} else {
				done = closedWorker(hard, clk, end, w, req, rec)
			}
			lastMu.Lock()
			if done.After(last) {
				last = done
			}
			lastMu.Unlock()
		}()
	}

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	stopProgress := startProgress(cfg, rec, label, d)
	defer stopProgress()

	// The grace timer runs on the wall clock on purpose: it bounds real
	// time even when a fake clock drives the schedule.
	graceTimer := time.NewTimer(d + cfg.Grace)
	defer graceTimer.Stop()
	select {
	case <-finished:
	case <-graceTimer.C:
		cancel()
		<-finished
	case <-ctx.Done():
		cancel()
		<-finished
	}
	stopProgress()

	ph := phaseStats{elapsed: last.Sub(start)}
	switch {
	case ctx.Err() != nil:
		// Stopped early: count the time actually run.
		ph.elapsed = max(ph.elapsed, clk.Now().Sub(start))
	case ph.elapsed < d:
		// Workers idle at the end (open loop) still spent the time.
		ph.elapsed = d
	}
	if cfg.Model == Open {
		ph.unsent = max(0, sched.Count(d)-sent.Load())
	}
	return ph, ctx.Err()
}

// closedWorker sends back to back until end and returns when its last
// request completed.
func closedWorker(ctx context.Context, clk Clock, end time.Time, w int, req Request, rec *Recorder) time.Time {
	var last time.Time
	for ctx.Err() == nil {
		t0 := clk.Now()
		if !t0.Before(end) {
			break
		}
		status, err := req(ctx)
		last = clk.Now()
		if ctx.Err() != nil && err != nil {
			// Cancelled at the hard deadline: a timeout.
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		d := last.Sub(t0)
		rec.Record(w, d, d, status, err)
	}
	return last
}

// openWorker takes the next due request off the shared schedule, waits for
// its intended send time, sends it and records its latency.
//
// A request that is already overdue when a worker takes it waited because
// every worker was busy with earlier requests, that is, behind the target:
// its latency counts from the intended send time, so that a stalled target
// shows (no coordinated omission). A request taken early is sent when the
// worker's timer fires; its latency counts from then, so that the timer's
// own lateness (up to a millisecond on Linux) is not charged to the target.
func openWorker(ctx context.Context, clk Clock, sched Schedule, start, end time.Time, w int, req Request, rec *Recorder, next, sent *atomic.Int64) time.Time {
	var last time.Time
	for ctx.Err() == nil {
		i := next.Add(1) - 1
		due := start.Add(sched.At(i))
		if !due.Before(end) {
			break
		}
		from := due
		if clk.Now().Before(due) {
			if err := clk.SleepUntil(ctx, due); err != nil {
				break
			}
			from = time.Time{} // the actual send time, below
		}
		sent.Add(1)
		t0 := clk.Now()
		if from.IsZero() {
			from = t0
		}
		status, err := req(ctx)
		last = clk.Now()
		if ctx.Err() != nil && err != nil {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		rec.Record(w, last.Sub(from), last.Sub(t0), status, err)
	}
	return last
}

func buildResult(cfg *Config, rec *Recorder, ph phaseStats) *Result {
	lat, svc, outcomes, errs := rec.Totals()
	r := &Result{
		Scenario:     cfg.Name,
		Model:        cfg.Model,
		Workers:      cfg.Workers,
		WarmupS:      cfg.Warmup.Seconds(),
		DurationS:    ph.elapsed.Seconds(),
		Requests:     uint64(lat.TotalCount()),
		Latency:      Summarize(lat),
		Service:      Summarize(svc),
		Statuses:     outcomes,
		Errors:       errs,
		ExpectStatus: cfg.ExpectStatus,
		Unsent:       uint64(ph.unsent),
	}
	if cfg.Model == Open {
		r.TargetRate = cfg.Rate
	}
	if r.DurationS > 0 {
		r.RPS = float64(r.Requests) / r.DurationS
	}
	return r
}

// startProgress prints a status line every interval until the returned
// function is called; calling that function more than once is fine.
func startProgress(cfg *Config, rec *Recorder, label string, d time.Duration) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.ProgressInterval)
		defer t.Stop()
		began := time.Now()
		var total, totalErr uint64
		for {
			select {
			case <-done:
				if cfg.ProgressOverwrite {
					fmt.Fprint(cfg.Progress, "\r\033[K")
				}
				return
			case now := <-t.C:
				n, e, p99 := rec.Tick()
				total += n
				totalErr += e
				line := ProgressLine(cfg.Name, label, now.Sub(began), d, total, float64(n)/cfg.ProgressInterval.Seconds(), p99, totalErr)
				if cfg.ProgressOverwrite {
					fmt.Fprint(cfg.Progress, "\r\033[K"+line)
				} else {
					fmt.Fprintln(cfg.Progress, line)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

// ProgressLine formats one live status line.
func ProgressLine(name, label string, elapsed, total time.Duration, requests uint64, rps float64, p99 time.Duration, errs uint64) string {
	phase := ""
	if label != "" {
		phase = " " + label
	}
	return fmt.Sprintf("[%s%s] %4.1fs/%.0fs  %8d req  %8.0f req/s  p99 %8s  errors %d",
		name, phase, elapsed.Seconds(), total.Seconds(), requests, rps, FormatLatency(float64(p99)/float64(time.Millisecond)), errs)
}
