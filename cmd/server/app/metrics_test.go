package app

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/config"
)

// sample is one parsed sample line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// exposition is a parsed scrape: its samples in order, and each family's
// type.
type exposition struct {
	samples []sample
	types   map[string]string
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseExposition checks text against the Prometheus text format 0.0.4 as
// tokengate writes it, strictly: it ends with a newline and has no blank
// lines; every family has exactly one HELP and one TYPE line, before its
// samples, and its samples are contiguous; every other line is
// name{label="value",...} value, with escaped label values and no
// timestamp; counters end in _total.
func parseExposition(tb testing.TB, text string) exposition {
	tb.Helper()
	if !strings.HasSuffix(text, "\n") {
		tb.Fatalf("the exposition does not end with a newline")
	}
	ex := exposition{types: map[string]string{}}
	help := map[string]bool{}
	done := map[string]bool{} // families whose samples have ended
	current := ""
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) {
			tb.Helper()
			tb.Fatalf("line %d %q: %s", i+1, line, fmt.Sprintf(format, args...))
		}
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, ok := strings.Cut(rest, " ")
			if !ok || !metricName.MatchString(name) || help[name] {
				fail("bad or repeated HELP")
			}
			help[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, ok := strings.Cut(rest, " ")
			switch {
			case !ok || !metricName.MatchString(name):
				fail("bad TYPE")
			case !help[name]:
				fail("TYPE before HELP")
			case ex.types[name] != "":
				fail("repeated TYPE")
			case typ != "counter" && typ != "gauge" && typ != "untyped":
				fail("type %q", typ)
			case typ == "counter" && !strings.HasSuffix(name, "_total"):
				fail("a counter's name must end in _total")
			}
			ex.types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			fail("unexpected comment or blank line")
		}

		s := sample{labels: map[string]string{}}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			fail("no value")
		}
		s.name, line = line[:end], line[end:]
		if !metricName.MatchString(s.name) {
			fail("bad metric name")
		}
		if strings.HasPrefix(line, "{") {
			line = line[1:]
			for !strings.HasPrefix(line, "}") {
				name, rest, ok := strings.Cut(line, `="`)
				if !ok || !labelName.MatchString(name) {
					fail("bad label name")
				}
				var value strings.Builder
				j := 0
				for ; j < len(rest) && rest[j] != '"'; j++ {
					c := rest[j]
					if c == '\\' {
						j++
						if j == len(rest) {
							fail("unterminated escape")
						}
						switch rest[j] {
						case '\\', '"':
							c = rest[j]
						case 'n':
							c = '\n'
						default:
							fail("bad escape \\%c", rest[j])
						}
					}
					value.WriteByte(c)
				}
				if j == len(rest) {
					fail("unterminated label value")
				}
				if _, dup := s.labels[name]; dup {
					fail("label %s twice", name)
				}
				s.labels[name] = value.String()
				line = strings.TrimPrefix(rest[j+1:], ",")
			}
			line = line[1:]
		}
		v, ok := strings.CutPrefix(line, " ")
		if !ok || strings.Contains(v, " ") {
			fail("want exactly one space, then the value (no timestamp)")
		}
		var err error
		if s.value, err = strconv.ParseFloat(v, 64); err != nil {
			fail("value: %v", err)
		}
		if ex.types[s.name] == "" {
			fail("sample without HELP and TYPE")
		}
		if s.name != current {
			if done[s.name] {
				fail("the samples of %s are not contiguous", s.name)
			}
			done[current] = true
			current = s.name
		}
		ex.samples = append(ex.samples, s)
	}
	for name := range help {
		if ex.types[name] == "" {
			tb.Errorf("%s has HELP but no TYPE", name)
		}
	}
	return ex
}

// value returns the value of the sample name whose labels include
// labels (name, value pairs), and whether there is one.
func (ex exposition) value(name string, labels ...string) (float64, bool) {
	for _, s := range ex.samples {
		if s.name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

// families returns the names of the families with samples, in order.
func (ex exposition) families() []string {
	var out []string
	for _, s := range ex.samples {
		if len(out) == 0 || out[len(out)-1] != s.name {
			out = append(out, s.name)
		}
	}
	return out
}

func TestParseExpositionRejects(t *testing.T) {
	for _, text := range []string{
		"a 1\n",                           // no HELP/TYPE
		"# HELP a x\n# TYPE a gauge\na 1", // no final newline
		"# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n",                                // unterminated
		"# HELP a x\n# TYPE a gauge\na 1 1700000000\n",                            // timestamp
		"# HELP a x\n# TYPE a counter\na 1\n",                                     // counter without _total
		"# HELP a x\n# TYPE a gauge\na{b=\"\\t\"} 1\n",                            // bad escape
		"# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na 1\nb 1\na 2\n", // split family
	} {
		ft := &fakeTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			parseExposition(ft, text)
		}()
		if !ft.failed {
			t.Errorf("parseExposition accepts %q", text)
		}
	}
}

// fakeTB records failure instead of failing; Fatalf panics to stop the
// parser like runtime.Goexit would.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; panic("fatal") }

// metricsCase is one mode served end to end and scraped after /token and
// /items.
type metricsCase struct {
	name       string
	args       []string
	mode       string
	keys       bool // tokengate_jwks_* expected
	introspect bool // tokengate_introspection_* expected
	// rejected is the tokengate_rejections_total reason of a token that
	// is not a JWT: malformed where it is parsed, inactive where only the
	// issuer sees it.
	rejected string
}

func (tc metricsCase) run(t *testing.T) {
	a := start(t, devConfig(t, tc.args...), Options{})
	waitReady(t, a)
	c := client(a, nil)

	// A token from tokengate's own /token, used three times.
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tokengate/token")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Set("Authorization", "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0") // dev-client:dev-secret
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("POST /token = %d %s (%v)", resp.StatusCode(), resp.Body(), err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(resp.Body(), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("POST /token body %s: %v", resp.Body(), err)
	}
	for range 3 {
		if code, body := get(t, c, "/items", tok.AccessToken); code != 200 {
			t.Fatalf("GET /items = %d %s", code, body)
		}
		a.Cache().Wait()
	}
	if code, _ := get(t, c, "/items", ""); code != 401 {
		t.Fatalf("GET /items without a token = %d", code)
	}
	if code, _ := get(t, c, "/items", "not-a-jwt"); code != 401 {
		t.Fatalf("GET /items with a token that is not a JWT = %d", code)
	}

	req.Reset()
	resp.Reset()
	req.SetRequestURI("http://tokengate/metrics")
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("GET /metrics = %d (%v)", resp.StatusCode(), err)
	}
	if ct := string(resp.Header.ContentType()); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	text := string(resp.Body())
	ex := parseExposition(t, text)
	if t.Failed() {
		return
	}

	atLeast := func(min float64, name string, labels ...string) {
		t.Helper()
		if v, ok := ex.value(name, labels...); !ok || v < min {
			t.Errorf("%s%v = %v (present %v), want ≥ %v\n%s", name, labels, v, ok, min, text)
		}
	}
	atLeast(3, "tokengate_requests_total", "outcome", "authorized")
	atLeast(1, "tokengate_requests_total", "outcome", "no_token")
	atLeast(1, "tokengate_requests_total", "outcome", "invalid_token")
	atLeast(1, "tokengate_rejections_total", "reason", tc.rejected)
	atLeast(2, "tokengate_cache_hits_total")
	atLeast(1, "tokengate_cache_validations_total")
	atLeast(1, "tokengate_cache_cost_bytes")
	atLeast(1, "tokengate_ready")
	atLeast(1, "tokengate_info", "mode", tc.mode)
	if tc.keys {
		atLeast(1, "tokengate_jwks_keys")
		atLeast(1, "tokengate_jwks_fetches_total")
		atLeast(1, "tokengate_jwks_last_success_timestamp_seconds")
	}
	if tc.introspect {
		atLeast(1, "tokengate_introspection_requests_total")
		atLeast(1, "tokengate_introspection_verdicts_total", "verdict", "active")
		atLeast(0, "tokengate_introspection_failures_total", "kind", "status_5xx")
	}
	for _, f := range ex.families() {
		if strings.HasPrefix(f, "tokengate_jwks_") && !tc.keys {
			t.Errorf("%s in %s mode, which has no key set", f, tc.mode)
		}
		if strings.HasPrefix(f, "tokengate_introspection_") && !tc.introspect {
			t.Errorf("%s in %s mode, which does not introspect", f, tc.mode)
		}
	}
	wantOrder := []string{"tokengate_requests_total", "tokengate_rejections_total", "tokengate_info", "tokengate_ready", "tokengate_policy_rules", "tokengate_policy_loaded_timestamp_seconds", "tokengate_cache_hits_total"}
	if got := ex.families(); len(got) < len(wantOrder) || strings.Join(got[:len(wantOrder)], " ") != strings.Join(wantOrder, " ") {
		t.Errorf("families begin %q, want %q", got, wantOrder)
	}

	// Deterministic: a second scrape lists the same series in the same
	// order.
	resp.Reset()
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	again := parseExposition(t, string(resp.Body()))
	if len(again.samples) != len(ex.samples) {
		t.Fatalf("%d samples, then %d", len(ex.samples), len(again.samples))
	}
	for i := range ex.samples {
		if a, b := ex.samples[i], again.samples[i]; a.name != b.name || fmt.Sprint(a.labels) != fmt.Sprint(b.labels) {
			t.Errorf("sample %d: %s%v, then %s%v", i, a.name, a.labels, b.name, b.labels)
		}
	}
}

// TestMetricsEndToEnd scrapes /metrics after a /token and /items in every
// mode, and checks the text format and the figures that must have moved.
func TestMetricsEndToEnd(t *testing.T) {
	for _, tc := range []metricsCase{
		{name: "local", mode: string(config.ModeLocal), keys: true, rejected: "malformed"},
		{name: "remote", args: []string{"--validation-mode=remote"}, mode: string(config.ModeRemote), introspect: true, rejected: "inactive"},
		{name: "hybrid", args: []string{"--validation-mode=hybrid"}, mode: string(config.ModeHybrid), keys: true, introspect: true, rejected: "malformed"},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestMetricsNotReady: before the first key fetch succeeds, tokengate_ready
// is 0 and the failed fetches are counted.
func TestMetricsNotReady(t *testing.T) {
	a := start(t, devConfig(t), Options{})
	waitReady(t, a)
	// A second App pointed at an issuer that is gone never gets keys.
	iss := a.Dev().Issuer()
	a.Close()
	cfg, err := config.Load([]string{"--okta-issuer=" + iss, "--listen=127.0.0.1:0"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, cfg, Options{})
	ex := scrape(t, b)
	if v, ok := ex.value("tokengate_ready"); !ok || v != 0 {
		t.Errorf("tokengate_ready = %v (present %v), want 0", v, ok)
	}
	if v, ok := ex.value("tokengate_jwks_keys"); !ok || v != 0 {
		t.Errorf("tokengate_jwks_keys = %v (present %v), want 0", v, ok)
	}
	if v, ok := ex.value("tokengate_jwks_last_success_timestamp_seconds"); !ok || v != 0 {
		t.Errorf("tokengate_jwks_last_success_timestamp_seconds = %v (present %v), want 0", v, ok)
	}
}

// scrape GETs /metrics from a and parses it.
func scrape(tb testing.TB, a *App) exposition {
	tb.Helper()
	code, body := get(tb, client(a, nil), "/metrics", "")
	if code != 200 {
		tb.Fatalf("GET /metrics = %d", code)
	}
	return parseExposition(tb, body)
}
