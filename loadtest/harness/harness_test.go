package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

// fakeClock is a Clock that moves only when told to (or when a worker
// sleeps until a later time). Tests that use it run one worker, so the
// order of events is fixed (and SleepUntil need not be atomic).
type fakeClock struct{ *testutil.Clock }

func newFakeClock() *fakeClock {
	return &fakeClock{testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))}
}

// SleepUntil moves the clock to t, unless it is already past t.
func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.After(c.Now()) {
		c.Set(t)
	}
	return ctx.Err()
}

// serviceTimes returns a NewRequest whose requests take the given times on
// clk, in order, and then last forever after at the final one.
func serviceTimes(clk *fakeClock, times ...time.Duration) NewRequest {
	return func(int) Request {
		n := 0
		return func(context.Context) (int, error) {
			d := times[min(n, len(times)-1)]
			n++
			clk.Advance(d)
			return 200, nil
		}
	}
}

func near(t testing.TB, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > want*0.01+1e-9 {
		t.Errorf("%s = %v, want %v (±1%%)", what, got, want)
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		i     int64
		at    time.Duration
		d     time.Duration
		count int64
	}{
		{"1000/s", 1000, 1, time.Millisecond, time.Second, 1000},
		{"1000/s late index", 1000, 1500, 1500 * time.Millisecond, 10 * time.Millisecond, 10},
		{"3/s", 3, 2, 666666666, time.Second, 3},
		{"half per second", 0.5, 1, 2 * time.Second, 3 * time.Second, 2},
		{"boundary excluded", 0.5, 1, 2 * time.Second, 2 * time.Second, 1},
		{"zero duration", 100, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Schedule{Rate: tc.rate}
			if got := s.At(tc.i); got != tc.at {
				t.Errorf("At(%d) = %v, want %v", tc.i, got, tc.at)
			}
			if got := s.Count(tc.d); got != tc.count {
				t.Errorf("Count(%v) = %d, want %d", tc.d, got, tc.count)
			}
		})
	}
}

// TestOpenLoopCountsQueueing is the coordinated-omission test: one worker,
// 100 requests due at 10 ms intervals, the first takes 500 ms and the rest
// 1 ms. Request k≥1 is due at 10k ms but can only go at 500+(k-1) ms, so
// its latency is 500−9k ms until the backlog clears at k=56.
func TestOpenLoopCountsQueueing(t *testing.T) {
	clk := newFakeClock()
	res, err := Run(context.Background(), Config{
		Name: "stall", Model: Open, Rate: 100, Workers: 1,
		Duration: time.Second, Clock: clk,
	}, serviceTimes(clk, 500*time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || res.Unsent != 0 || res.Errors != 0 {
		t.Fatalf("requests %d unsent %d errors %d, want 100 0 0", res.Requests, res.Unsent, res.Errors)
	}
	near(t, "latency max", res.Latency.MaxMS, 500)
	near(t, "latency p50", res.Latency.P50MS, 50) // 44 at 1 ms, then 5, 14, 23, 32, 41, 50
	near(t, "latency p90", res.Latency.P90MS, 410)
	near(t, "service p50", res.Service.P50MS, 1)
	near(t, "service max", res.Service.MaxMS, 500)
	near(t, "duration", res.DurationS, 1)
	near(t, "rps", res.RPS, 100)
	if res.TargetRate != 100 {
		t.Errorf("target rate %v", res.TargetRate)
	}
}

// lateClock is a fakeClock whose timers fire late, like real ones.
type lateClock struct {
	*fakeClock
	slack time.Duration
}

func (c lateClock) SleepUntil(ctx context.Context, t time.Time) error {
	return c.fakeClock.SleepUntil(ctx, t.Add(c.slack))
}

// TestOpenLoopIgnoresTimerSlack: a worker whose timer fires 700 µs late
// sends late, but the target was not the cause: latency counts from the
// actual send. Only requests queued behind busy workers count from their
// due time (TestOpenLoopCountsQueueing).
func TestOpenLoopIgnoresTimerSlack(t *testing.T) {
	fc := newFakeClock()
	clk := lateClock{fakeClock: fc, slack: 700 * time.Microsecond}
	res, err := Run(context.Background(), Config{
		Name: "slack", Model: Open, Rate: 100, Workers: 1, Duration: time.Second, Clock: clk,
	}, serviceTimes(fc, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 {
		t.Fatalf("requests = %d", res.Requests)
	}
	near(t, "latency max", res.Latency.MaxMS, 1)
	near(t, "service max", res.Service.MaxMS, 1)
}

// TestClosedLoopHidesStall shows what the open loop protects against: the
// same stall in a closed loop is one slow sample among 501.
func TestClosedLoopHidesStall(t *testing.T) {
	clk := newFakeClock()
	res, err := Run(context.Background(), Config{
		Name: "stall", Model: Closed, Workers: 1, Duration: time.Second, Clock: clk,
	}, serviceTimes(clk, 500*time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 501 {
		t.Fatalf("requests = %d, want 501", res.Requests)
	}
	near(t, "p99", res.Latency.P99MS, 1)
	near(t, "max", res.Latency.MaxMS, 500)
	near(t, "rps", res.RPS, 501)
	if res.TargetRate != 0 || res.Unsent != 0 {
		t.Errorf("closed loop has target rate %v unsent %d", res.TargetRate, res.Unsent)
	}
}

func TestWarmupIsDiscarded(t *testing.T) {
	clk := newFakeClock()
	warmEnd := clk.Now().Add(100 * time.Millisecond)
	calls, callsAtMeasure := 0, 0
	res, err := Run(context.Background(), Config{
		Name: "warm", Workers: 1, Warmup: 100 * time.Millisecond, Duration: 50 * time.Millisecond, Clock: clk,
		BeforeMeasure: func() { callsAtMeasure = calls },
	}, func(int) Request {
		return func(context.Context) (int, error) {
			calls++
			status := 200
			if clk.Now().Before(warmEnd) {
				status = 500
			}
			clk.Advance(10 * time.Millisecond)
			return status, nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 15 || res.Requests != 5 || res.Errors != 0 || res.Statuses["500"] != 0 {
		t.Fatalf("calls %d requests %d errors %d statuses %v", calls, res.Requests, res.Errors, res.Statuses)
	}
	if callsAtMeasure != 10 {
		t.Errorf("BeforeMeasure saw %d calls, want 10", callsAtMeasure)
	}
	if res.WarmupS != 0.1 {
		t.Errorf("warmup_s = %v", res.WarmupS)
	}
}

// TestGraceBoundsTheRun runs on the wall clock: a request that never
// returns is cancelled after Duration+Grace, counted as a timeout, and the
// requests due meanwhile are counted as unsent.
func TestGraceBoundsTheRun(t *testing.T) {
	began := time.Now()
	res, err := Run(context.Background(), Config{
		Name: "hang", Model: Open, Rate: 1000, Workers: 1,
		Duration: 200 * time.Millisecond, Grace: 100 * time.Millisecond,
	}, func(int) Request {
		return func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("run took %v", took)
	}
	if res.Requests != 1 || res.Statuses[OutcomeTimeout] != 1 || res.Errors != 1 {
		t.Errorf("requests %d statuses %v errors %d", res.Requests, res.Statuses, res.Errors)
	}
	if res.Unsent != 199 {
		t.Errorf("unsent = %d, want 199", res.Unsent)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	res, err := Run(ctx, Config{Name: "cancel", Workers: 2, Duration: time.Minute}, func(int) Request {
		return func(ctx context.Context) (int, error) {
			once.Do(cancel)
			<-ctx.Done()
			return 0, ctx.Err()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The worker that saw the cancellation first made one request; the
	// other may not have started. Whatever was in flight is a timeout.
	if res == nil || res.Requests < 1 || res.Statuses[OutcomeTimeout] != res.Requests {
		t.Fatalf("result %+v", res)
	}
	if res.DurationS > 10 {
		t.Errorf("duration_s = %v, want the time actually run", res.DurationS)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := func(int) Request { return func(context.Context) (int, error) { return 200, nil } }
	tests := []struct {
		name string
		cfg  Config
		nr   NewRequest
		want string
	}{
		{"no duration", Config{}, ok, "duration"},
		{"open without rate", Config{Model: Open, Duration: time.Second}, ok, "rate"},
		{"unknown model", Config{Model: "half-open", Duration: time.Second}, ok, "unknown model"},
		{"negative warm-up", Config{Duration: time.Second, Warmup: -1}, ok, "warm-up"},
		{"no request", Config{Duration: time.Second}, nil, "no request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg, tc.nr)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "harness: ") {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder(4, 200)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				switch {
				case i%100 == 0:
					r.Record(w, time.Millisecond, time.Millisecond, 0, context.DeadlineExceeded)
				case i%50 == 0:
					r.Record(w, 2*time.Hour, 2*time.Hour, 401, nil) // clamped to a minute
				default:
					r.Record(w, time.Duration(i)*time.Microsecond, -time.Second, 200, nil)
				}
			}
		}()
	}
	wg.Wait()
	n, e, _ := r.Tick()
	if n != 8000 || e != 160 {
		t.Errorf("tick = %d requests %d errors, want 8000 160", n, e)
	}
	if n, e, _ := r.Tick(); n != 0 || e != 0 {
		t.Errorf("second tick = %d %d, want 0 0", n, e)
	}
	lat, svc, outcomes, errs := r.Totals()
	if lat.TotalCount() != 8000 || svc.TotalCount() != 8000 || errs != 160 {
		t.Errorf("totals %d %d errors %d", lat.TotalCount(), svc.TotalCount(), errs)
	}
	if outcomes["200"] != 7840 || outcomes["401"] != 80 || outcomes[OutcomeTimeout] != 80 {
		t.Errorf("outcomes %v", outcomes)
	}
	if got := time.Duration(lat.Max()); got < time.Minute-time.Second || got > time.Minute+time.Second {
		t.Errorf("max = %v, want about a minute (clamped)", got)
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name   string
		status int
		err    error
		want   string
	}{
		{"ok", 200, nil, "200"},
		{"unauthorized", 401, nil, "401"},
		{"odd status", 799, nil, "799"},
		{"deadline", 0, context.DeadlineExceeded, OutcomeTimeout},
		{"wrapped deadline", 0, errors.Join(errors.New("x"), os.ErrDeadlineExceeded), OutcomeTimeout},
		{"refused", 0, errors.New("connection refused"), OutcomeError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Outcome(tc.status, tc.err); got != tc.want {
				t.Errorf("Outcome = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		_ = h.RecordValue(int64(i) * int64(time.Millisecond) / 10) // 0.1 .. 100 ms
	}
	s := Summarize(h)
	if s.Count != 1000 {
		t.Fatalf("count %d", s.Count)
	}
	near(t, "min", s.MinMS, 0.1)
	near(t, "p50", s.P50MS, 50)
	near(t, "p90", s.P90MS, 90)
	near(t, "p99", s.P99MS, 99)
	near(t, "p99.9", s.P999MS, 99.9)
	near(t, "max", s.MaxMS, 100)
	near(t, "mean", s.MeanMS, 50.05)
	if len(s.Distribution) != len(DistributionPercentiles()) {
		t.Fatalf("distribution has %d points", len(s.Distribution))
	}
	for i := 1; i < len(s.Distribution); i++ {
		if s.Distribution[i].MS < s.Distribution[i-1].MS {
			t.Errorf("distribution not monotonic at %v", s.Distribution[i].Percentile)
		}
	}
	if empty := Summarize(newHistogram()); empty.Count != 0 || empty.Distribution != nil {
		t.Errorf("empty summary %+v", empty)
	}
}

func TestFormatLatency(t *testing.T) {
	tests := []struct {
		ms   float64
		want string
	}{
		{0, "0"}, {0.0421, "42µs"}, {0.85, "850µs"}, {1.234, "1.23ms"},
		{20.44, "20.4ms"}, {1500, "1.50s"},
	}
	for _, tc := range tests {
		if got := FormatLatency(tc.ms); got != tc.want {
			t.Errorf("FormatLatency(%v) = %q, want %q", tc.ms, got, tc.want)
		}
	}
}

func TestFormatStatuses(t *testing.T) {
	if got := FormatStatuses(map[string]uint64{"200": 10}, 200); got != "-" {
		t.Errorf("all good = %q", got)
	}
	got := FormatStatuses(map[string]uint64{"200": 10, "503": 2, "401": 7, OutcomeTimeout: 2}, 200)
	if want := "401×7 503×2 timeout×2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func sampleResults() []*Result {
	mk := func(name string, model Model, p50 float64) *Result {
		h := newHistogram()
		for i := 1; i <= 100; i++ {
			_ = h.RecordValue(int64(p50 * float64(i) / 50 * float64(time.Millisecond)))
		}
		r := &Result{
			Scenario: name, Model: model, Workers: 8, WarmupS: 1, DurationS: 5,
			Requests: 100, RPS: 20, Latency: Summarize(h), Service: Summarize(h),
			Statuses: map[string]uint64{"200": 99, "503": 1}, ExpectStatus: 200, Errors: 1,
		}
		if model == Open {
			r.TargetRate = 20
		}
		return r
	}
	return []*Result{
		mk("baseline", Closed, 0.05), mk("local-cached", Closed, 0.06),
		mk("remote@20ms", Open, 21), mk("hybrid@20ms", Closed, 0.07),
	}
}

func TestWriteTable(t *testing.T) {
	withCPU := sampleResults()[1:3]
	withCPU[0].SetServerCPU(2540 * time.Microsecond) // 100 requests: 25.4µs each
	rounds := sampleResults()[1:3]
	rounds[0].Round, rounds[1].Round = 1, 2
	tests := []struct {
		name    string
		results []*Result
		want    string
	}{
		{"CPU unknown", sampleResults()[1:3], "" +
			"scenario        model  conns  req/s  cpu/req     p50     p90     p99   p99.9     max  errors\n" +
			"local-cached   closed      8     20        -    60µs   108µs   119µs   120µs   120µs  503×1\n" +
			"remote@20ms   open@20      8     20        -  21.0ms  37.8ms  41.6ms  42.0ms  42.0ms  503×1\n"},
		{"CPU known", withCPU, "" +
			"scenario        model  conns  req/s  cpu/req     p50     p90     p99   p99.9     max  errors\n" +
			"local-cached   closed      8     20   25.4µs    60µs   108µs   119µs   120µs   120µs  503×1\n" +
			"remote@20ms   open@20      8     20        -  21.0ms  37.8ms  41.6ms  42.0ms  42.0ms  503×1\n"},
		{"rounds", rounds, "" +
			"scenario      round    model  conns  req/s  cpu/req     p50     p90     p99   p99.9     max  errors\n" +
			"local-cached      1   closed      8     20        -    60µs   108µs   119µs   120µs   120µs  503×1\n" +
			"remote@20ms       2  open@20      8     20        -  21.0ms  37.8ms  41.6ms  42.0ms  42.0ms  503×1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, tc.results); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("table:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestSetServerCPU(t *testing.T) {
	tests := []struct {
		name     string
		requests uint64
		cpu      time.Duration
		wantS    float64
		wantUS   float64
	}{
		{"per request", 1000, 25 * time.Millisecond, 0.025, 25},
		{"reading unavailable", 1000, -time.Millisecond, 0, 0},
		{"no request", 0, time.Second, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Result{Requests: tc.requests}
			r.SetServerCPU(tc.cpu)
			if r.ServerCPUS != tc.wantS || r.ServerCPUPerRequestUS != tc.wantUS {
				t.Errorf("got %v s, %v µs/request; want %v, %v", r.ServerCPUS, r.ServerCPUPerRequestUS, tc.wantS, tc.wantUS)
			}
		})
	}
}

// res is a result for the comparison tests.
func res(scenario string, model Model, round int, rps, cpuUS float64) *Result {
	return &Result{Scenario: scenario, Model: model, Round: round, RPS: rps, ServerCPUPerRequestUS: cpuUS}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name      string
		results   []*Result
		reference string
		want      []Comparison
	}{
		{
			name: "median of per-round ratios",
			results: []*Result{
				res("fasthttp", Closed, 1, 1000, 20), res("local-cached", Closed, 1, 900, 22),
				res("fasthttp", Closed, 2, 500, 40), res("local-cached", Closed, 2, 400, 50),
				res("fasthttp", Closed, 3, 1000, 20), res("local-cached", Closed, 3, 950, 21),
			},
			reference: "fasthttp",
			want:      []Comparison{{Scenario: "local-cached", Model: Closed, Reference: "fasthttp", Rounds: 3, RPSRatio: 0.9, CPURatio: 1.1}},
		},
		{
			name: "even number of rounds: mean of the middle two",
			results: []*Result{
				res("baseline", Closed, 1, 1000, 10), res("items", Closed, 1, 800, 12),
				res("baseline", Closed, 2, 1000, 10), res("items", Closed, 2, 600, 14),
			},
			reference: "baseline",
			want:      []Comparison{{Scenario: "items", Model: Closed, Reference: "baseline", Rounds: 2, RPSRatio: 0.7, CPURatio: 1.3}},
		},
		{
			name: "models compared apart, CPU unknown left out",
			results: []*Result{
				res("baseline", Closed, 0, 1000, 0), res("baseline", Open, 0, 100, 10),
				res("items", Closed, 0, 500, 0), res("items", Open, 0, 100, 15),
			},
			reference: "baseline",
			want: []Comparison{
				{Scenario: "items", Model: Closed, Reference: "baseline", Rounds: 1, RPSRatio: 0.5},
				{Scenario: "items", Model: Open, Reference: "baseline", Rounds: 1, RPSRatio: 1, CPURatio: 1.5},
			},
		},
		{
			name: "a round without the reference is skipped",
			results: []*Result{
				res("fasthttp", Closed, 1, 1000, 20), res("items", Closed, 1, 500, 40),
				res("items", Closed, 2, 10, 400),
			},
			reference: "fasthttp",
			want:      []Comparison{{Scenario: "items", Model: Closed, Reference: "fasthttp", Rounds: 1, RPSRatio: 0.5, CPURatio: 2}},
		},
		{
			name:      "no reference, nothing to compare",
			results:   []*Result{res("items", Closed, 0, 500, 40)},
			reference: "fasthttp",
			want:      []Comparison{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.results, tc.reference)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Scenario != w.Scenario || g.Model != w.Model || g.Reference != w.Reference || g.Rounds != w.Rounds ||
					math.Abs(g.RPSRatio-w.RPSRatio) > 1e-9 || math.Abs(g.CPURatio-w.CPURatio) > 1e-9 {
					t.Errorf("[%d] got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestWriteComparisons(t *testing.T) {
	results := []*Result{
		res("fasthttp", Closed, 1, 1000, 20), res("baseline", Closed, 1, 950, 21), res("local-cached", Closed, 1, 900, 22),
	}
	var cmp []Comparison
	for _, ref := range []string{"baseline", "fasthttp"} {
		cmp = append(cmp, Compare(results, ref)...)
	}
	var b bytes.Buffer
	if err := WriteComparisons(&b, cmp, []string{"baseline", "fasthttp"}, []string{"GET /", "fasthttp"}); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"scenario       model  rounds  req/s ÷ GET /  cpu/req ÷ GET /  req/s ÷ fasthttp  cpu/req ÷ fasthttp\n" +
		"fasthttp      closed       1          1.05×            0.95×                 -                   -\n" +
		"local-cached  closed       1          0.95×            1.05×             0.90×               1.10×\n" +
		"baseline      closed       1              -                -             0.95×               1.05×\n"
	if got := b.String(); got != want {
		t.Errorf("comparisons:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	if err := WriteComparisons(&b, nil, []string{"baseline"}, []string{"GET /"}); err != nil || b.Len() != 0 {
		t.Errorf("nothing to compare: wrote %q, %v", b.String(), err)
	}
}

// TestReportJSONSchema pins the JSON field names that tools (and the
// README) rely on.
func TestReportJSONSchema(t *testing.T) {
	rep := NewReport(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), "in-process", map[string]string{"duration": "5s"})
	rep.Results = sampleResults()
	rep.Results[0].Counters = map[string]int64{"introspect_calls": 3}
	rep.Results[0].Round, rep.Results[0].ServerCPUPerRequestUS = 2, 10 // the comparison's reference, not written as CPU
	rep.Results[1].Round = 2
	rep.Results[1].SetServerCPU(2 * time.Millisecond) // 100 requests
	rep.Comparisons = Compare(rep.Results[:2], "baseline")
	var b bytes.Buffer
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != SchemaVersion {
		t.Errorf("schema = %v", doc["schema"])
	}
	for _, k := range []string{"started", "target", "go_version", "goos", "goarch"} {
		if _, ok := doc[k].(string); !ok {
			t.Errorf("top-level %q missing or not a string", k)
		}
	}
	for _, k := range []string{"cpus", "gomaxprocs"} {
		if _, ok := doc[k].(float64); !ok {
			t.Errorf("top-level %q missing or not a number", k)
		}
	}
	results, ok := doc["results"].([]any)
	if !ok || len(results) != 4 {
		t.Fatalf("results = %v", doc["results"])
	}
	r0 := results[0].(map[string]any)
	for _, k := range []string{"workers", "warmup_s", "duration_s", "requests", "rps", "errors", "unsent", "expect_status"} {
		if _, ok := r0[k].(float64); !ok {
			t.Errorf("result %q missing or not a number", k)
		}
	}
	for _, k := range []string{"scenario", "model"} {
		if _, ok := r0[k].(string); !ok {
			t.Errorf("result %q missing or not a string", k)
		}
	}
	if _, ok := r0["target_rate"]; ok {
		t.Errorf("closed-loop result has target_rate")
	}
	if _, ok := results[2].(map[string]any)["target_rate"].(float64); !ok {
		t.Errorf("open-loop result lacks target_rate")
	}
	if r3 := results[3].(map[string]any); r3["server_cpu_us_per_request"] != nil || r3["server_cpu_s"] != nil || r3["round"] != nil {
		t.Errorf("result with CPU and round unknown has them: %v", r3)
	}
	r1 := results[1].(map[string]any)
	if r1["server_cpu_s"] != 0.002 || r1["server_cpu_us_per_request"] != 20.0 || r1["round"] != 2.0 {
		t.Errorf("server CPU and round: %v %v %v", r1["server_cpu_s"], r1["server_cpu_us_per_request"], r1["round"])
	}
	cmp, ok := doc["comparisons"].([]any)
	if !ok || len(cmp) != 1 {
		t.Fatalf("comparisons = %v", doc["comparisons"])
	}
	c0 := cmp[0].(map[string]any)
	for k, want := range map[string]any{"scenario": "local-cached", "model": "closed", "reference": "baseline", "rounds": 1.0, "rps_ratio": 1.0, "cpu_ratio": 2.0} {
		if c0[k] != want {
			t.Errorf("comparisons[0].%s = %v, want %v", k, c0[k], want)
		}
	}
	if r0["statuses"].(map[string]any)["503"] != 1.0 || r0["counters"].(map[string]any)["introspect_calls"] != 3.0 {
		t.Errorf("statuses/counters: %v %v", r0["statuses"], r0["counters"])
	}
	for _, sum := range []string{"latency", "service"} {
		s := r0[sum].(map[string]any)
		for _, k := range []string{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms"} {
			if _, ok := s[k].(float64); !ok {
				t.Errorf("%s.%s missing or not a number", sum, k)
			}
		}
		d := s["distribution"].([]any)
		if len(d) != len(DistributionPercentiles()) {
			t.Fatalf("%s.distribution has %d points", sum, len(d))
		}
		pt := d[3].(map[string]any)
		if pt["percentile"] != 50.0 {
			t.Errorf("distribution[3] = %v", pt)
		}
		if _, ok := pt["ms"].(float64); !ok {
			t.Errorf("distribution point lacks ms")
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Results[2].Latency.P99MS != rep.Results[2].Latency.P99MS || back.Settings["duration"] != "5s" {
		t.Errorf("round trip lost data")
	}
}

func TestSaveChart(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, magic string
	}{
		{"png", "latency.png", "\x89PNG"},
		{"svg", "latency.svg", "<?xml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := SaveChart(path, "test", sampleResults()); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 1000 || !bytes.HasPrefix(b, []byte(tc.magic)) {
				t.Errorf("%s: %d bytes starting %q", tc.file, len(b), b[:min(len(b), 8)])
			}
			if tc.name == "svg" && !bytes.Contains(b, []byte("remote@20ms (open)")) {
				t.Errorf("svg legend lacks the open-loop scenario")
			}
		})
	}
	if err := SaveChart(filepath.Join(dir, "x.gif"), "t", sampleResults()); err == nil {
		t.Error("gif accepted")
	}
	if err := SaveChart(filepath.Join(dir, "y.png"), "t", []*Result{{Scenario: "empty"}}); err == nil {
		t.Error("chart with no data accepted")
	}
}

func TestKind(t *testing.T) {
	for name, want := range map[string]string{
		"baseline": "baseline", "local-unique": "local", "remote@20ms": "remote",
		"remote-cached@loopback": "remote", "hybrid@20ms": "hybrid", "items": "",
	} {
		if got := Kind(name); got != want {
			t.Errorf("Kind(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	_, err := Run(context.Background(), Config{
		Name: "live", Workers: 1, Duration: 300 * time.Millisecond,
		Progress: &b, ProgressInterval: 20 * time.Millisecond,
	}, func(int) Request {
		return func(context.Context) (int, error) {
			time.Sleep(time.Millisecond)
			return 200, nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Run has stopped the progress goroutine: b is ours again.
	out := b.String()
	if !strings.Contains(out, "[live] ") || !strings.Contains(out, "req/s") || strings.Count(out, "\n") < 2 {
		t.Errorf("progress output:\n%s", out)
	}
	line := ProgressLine("s", "warm-up", 1500*time.Millisecond, 5*time.Second, 1234, 999.6, 1200*time.Microsecond, 3)
	if want := "[s warm-up]  1.5s/5s      1234 req      1000 req/s  p99   1.20ms  errors 3"; line != want {
		t.Errorf("line = %q\nwant   %q", line, want)
	}
}
