package app

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil"
)

const itemsJSON = `[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`

// devConfig loads a --dev configuration on a free loopback port, plus args.
func devConfig(tb testing.TB, args ...string) config.Config {
	tb.Helper()
	cfg, err := config.Load(append([]string{"--dev", "--listen=127.0.0.1:0"}, args...), nil, "")
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// start starts an App and closes it at cleanup.
func start(tb testing.TB, cfg config.Config, opts Options) *App {
	tb.Helper()
	a, err := Start(context.Background(), cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	return a
}

func waitReady(tb testing.TB, a *App) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
}

// client dials a: through ln when it is in memory, else over TCP.
func client(a *App, ln *fasthttputil.InmemoryListener) *fasthttp.HostClient {
	c := &fasthttp.HostClient{Addr: a.Addr(), ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if ln != nil {
		c.Dial = func(string) (net.Conn, error) { return ln.Dial() }
	}
	return c
}

func get(tb testing.TB, c *fasthttp.HostClient, path, token string) (int, string) {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tokengate" + path)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode(), string(resp.Body())
}

// modeCase is one configuration served end to end: three requests with
// one good token must run the validator wantCalls times.
type modeCase struct {
	name        string
	args        []string
	uncached    bool // Options.MeasureUncachedValid
	inMemory    bool // Options.Listener
	wantCalls   uint64
	introspects bool
}

func (tc modeCase) run(t *testing.T) {
	opts := Options{MeasureUncachedValid: tc.uncached}
	var ln *fasthttputil.InmemoryListener
	if tc.inMemory {
		ln = fasthttputil.NewInmemoryListener()
		opts.Listener = ln
	}
	a := start(t, devConfig(t, tc.args...), opts)
	waitReady(t, a)
	if !tc.inMemory && !strings.HasPrefix(a.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %q is not loopback", a.URL())
	}
	tok, err := a.Dev().Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := client(a, ln)
	if code, body := get(t, c, "/", ""); code != 200 || body != `{"Hello":"World"}` {
		t.Errorf("GET / = %d %s", code, body)
	}
	for range 3 {
		if code, body := get(t, c, "/items", tok); code != 200 || body != itemsJSON {
			t.Fatalf("GET /items = %d %s", code, body)
		}
		a.Cache().Wait()
	}
	if code, _ := get(t, c, "/items", ""); code != 401 {
		t.Errorf("GET /items without token = %d", code)
	}
	if got := a.Cache().Stats().Validations; got != tc.wantCalls {
		t.Errorf("validations = %d, want %d", got, tc.wantCalls)
	}
	if got := a.Dev().Counts().Introspect; (got > 0) != tc.introspects {
		t.Errorf("introspections = %d", got)
	}
	if (a.KeySet() == nil) != (a.Config().Mode == config.ModeRemote) {
		t.Errorf("mode %s: KeySet() = %v", a.Config().Mode, a.KeySet())
	}
}

// TestModes serves every mode end to end from a --dev configuration, over
// loopback TCP and over an in-memory listener, and checks the cache
// setting each relies on.
func TestModes(t *testing.T) {
	cases := []modeCase{
		{name: "local", wantCalls: 1},
		{name: "local measure uncached", uncached: true, wantCalls: 3},
		{name: "local in memory", inMemory: true, wantCalls: 1},
		{name: "remote ttl 0", args: []string{"--validation-mode=remote", "--introspection-cache-ttl=0"}, wantCalls: 3, introspects: true},
		{name: "remote cached", args: []string{"--validation-mode=remote"}, wantCalls: 1, introspects: true},
		{name: "remote measure uncached", args: []string{"--validation-mode=remote"}, uncached: true, wantCalls: 3, introspects: true},
		{name: "hybrid", args: []string{"--validation-mode=hybrid"}, wantCalls: 1, introspects: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestIssuerOption: an issuer the caller passes is trusted and used, and
// outlives the App; one Start starts is closed with it.
func TestIssuerOption(t *testing.T) {
	iss, err := devissuer.Start(devissuer.Config{
		Audience: "api://elsewhere",
		Clients:  []devissuer.Client{{ID: "bench-client", Secret: "bench-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Hybrid introspects, with the issuer's first client rather than
	// --dev-client-id.
	a, err := Start(context.Background(), devConfig(t, "--validation-mode=hybrid"), Options{Issuer: iss})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, a)
	if a.Dev() != iss {
		t.Error("Dev() is not Options.Issuer")
	}
	if code, body := get(t, client(a, nil), "/items", tok); code != 200 {
		t.Errorf("GET /items = %d %s", code, body)
	}
	if n := iss.Counts().Introspect; n != 1 {
		t.Errorf("%d introspections, want 1", n)
	}
	var banner bytes.Buffer
	a.PrintDevBanner(&banner)
	if !strings.Contains(banner.String(), "-u bench-client:bench-secret") {
		t.Errorf("banner does not name the issuer's client:\n%s", banner.String())
	}
	a.Close()
	if code, _, err := fasthttp.GetTimeout(nil, iss.DiscoveryURL(), 5*time.Second); err != nil || code != 200 {
		t.Errorf("the caller's issuer after Close: %d %v", code, err)
	}

	own := start(t, devConfig(t), Options{})
	addr := own.Dev().Addr()
	own.Close()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("the development issuer Start started still listens at %s after Close", addr)
	}
}

func TestStartErrors(t *testing.T) {
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	notDev, err := config.Load([]string{"--okta-issuer=" + iss.Issuer(), "--listen=127.0.0.1:0"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	badMode := devConfig(t)
	badMode.Mode = "psychic"

	cases := []struct {
		name string
		ctx  context.Context
		cfg  config.Config
		opts Options
		want string
		is   error
	}{
		{name: "issuer without dev", ctx: context.Background(), cfg: notDev, opts: Options{Issuer: iss}, want: "needs cfg.Dev"},
		{name: "cancelled", ctx: cancelled, cfg: devConfig(t), want: "not started", is: context.Canceled},
		{name: "port taken", ctx: context.Background(), cfg: devConfig(t, "--listen="+taken.Addr().String()), want: "listen on"},
		{name: "unknown mode", ctx: context.Background(), cfg: badMode, want: `unknown validation mode "psychic"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Start(tc.ctx, tc.cfg, tc.opts)
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			if !strings.HasPrefix(err.Error(), "app: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want app: ...%s", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestCloseRightAfterStart: a Close that races Serve's start still ends
// Serve (fasthttp's Shutdown alone would miss a listener Serve had not yet
// registered), and later calls return at once.
func TestCloseRightAfterStart(t *testing.T) {
	for range 20 {
		a, err := Start(context.Background(), devConfig(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.Close()
			if err := a.Shutdown(context.Background()); err != nil {
				t.Errorf("second Shutdown: %v", err)
			}
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not return")
		}
		select {
		case <-a.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if err := a.Err(); err != nil {
			t.Errorf("Err after Close: %v", err)
		}
	}
}

// TestListenerFailure: when the listener fails before Shutdown, Done is
// closed and Err says so; Close still stops the rest.
func TestListenerFailure(t *testing.T) {
	ln := fasthttputil.NewInmemoryListener()
	a := start(t, devConfig(t), Options{Listener: ln})
	if err := a.Err(); err != nil {
		t.Fatalf("Err while serving: %v", err)
	}
	_ = ln.Close()
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the listener failed")
	}
	if err := a.Err(); err == nil || !strings.HasPrefix(err.Error(), "app: serving") {
		t.Errorf("Err = %v", err)
	}
}

// TestShutdownCutsOff: Shutdown gives in-flight requests until its ctx
// ends, then cuts them off, logs it and says so.
func TestShutdownCutsOff(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	a := start(t, devConfig(t), Options{Logger: zap.New(core)})
	// The issuer holds the call until it closes; only the /token call's
	// own 10s timeout (handlers.Config.TokenTimeout) would end it sooner.
	a.Dev().SetFault(devissuer.EndpointToken, devissuer.Fault{Latency: time.Hour})
	go func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(a.URL() + "/token")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("Authorization", "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0")
		_ = fasthttp.DoTimeout(req, resp, 10*time.Second)
	}()
	// The issuer offers no notification: poll its counter.
	testutil.WaitFor(t, "the /token call to reach the issuer", func() bool { return a.Dev().Counts().Token > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := a.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want a deadline error", err)
	}
	// The deadline error shows that the server stopped waiting at 100ms;
	// this bound shows that the rest of the teardown did not wait for the
	// held request either. Only time tells that from waiting until the
	// call timed out at 10s; 5s is generous (-race on a loaded machine)
	// and still well under those 10s.
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Shutdown took %v: it waited for the in-flight request", took)
	}
	if logs.FilterMessageSnippet("did not finish in time").Len() != 1 {
		t.Errorf("log does not say requests were cut off: %v", logs.All())
	}
}

// TestFasthttpLogWithholdsRequestBytes: fasthttp quotes unparsable request
// bytes in its errors; only what comes before the quote is logged.
func TestFasthttpLogWithholdsRequestBytes(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	fasthttpLogger{zap.New(core)}.Printf("error when serving connection %q<->%q: %v", "127.0.0.1:1", "127.0.0.1:2",
		errors.New(`cannot parse header "Authorization Bearer secret-token"`))
	if logs.Len() != 1 {
		t.Fatalf("%d entries, want 1", logs.Len())
	}
	got := logs.All()[0].ContextMap()["detail"]
	want := `error when serving connection "127.0.0.1:1"<->"127.0.0.1:2": cannot parse header (request bytes withheld)`
	if got != want {
		t.Errorf("detail %q, want %q", got, want)
	}
}

// zeroCase is one "0 turns it off" setting served end to end: a token
// minted expiredFor ago is requested twice, and must get wantCode and run
// the validator wantCalls times.
type zeroCase struct {
	name       string
	args       []string
	expiredFor time.Duration
	wantCode   int
	wantCalls  uint64
}

func (tc zeroCase) run(t *testing.T) {
	now := time.Now() // frozen: the validator's clock does not move
	a := start(t, devConfig(t, tc.args...), Options{Now: func() time.Time { return now }})
	waitReady(t, a)
	tok, err := a.Dev().Mint(devissuer.MintOptions{IssuedAt: now.Add(-2 * time.Hour), Lifetime: 2*time.Hour - tc.expiredFor})
	if err != nil {
		t.Fatal(err)
	}
	c := client(a, nil)
	for range 2 {
		if code, body := get(t, c, "/items", tok); code != tc.wantCode {
			t.Fatalf("GET /items = %d %s, want %d", code, body, tc.wantCode)
		}
		a.Cache().Wait()
	}
	if got := a.Cache().Stats().Validations; got != tc.wantCalls {
		t.Errorf("validations = %d, want %d", got, tc.wantCalls)
	}
}

// TestZeroTurnsOff: CLOCK_LEEWAY=0 and NEGATIVE_CACHE_TTL=0 mean none, as
// README says, and their defaults apply otherwise.
func TestZeroTurnsOff(t *testing.T) {
	cases := []zeroCase{
		// Past exp, a token is not cached (its entry would outlive it).
		{name: "default leeway accepts 30s past exp", expiredFor: 30 * time.Second, wantCode: 200, wantCalls: 2},
		{name: "CLOCK_LEEWAY=0 refuses 30s past exp", args: []string{"--clock-leeway=0"}, expiredFor: 30 * time.Second, wantCode: 401, wantCalls: 1},
		{name: "CLOCK_LEEWAY=0 accepts a valid token", args: []string{"--clock-leeway=0"}, expiredFor: -time.Second, wantCode: 200, wantCalls: 1},
		{name: "default negative cache", expiredFor: time.Hour, wantCode: 401, wantCalls: 1},
		{name: "NEGATIVE_CACHE_TTL=0", args: []string{"--negative-cache-ttl=0"}, expiredFor: time.Hour, wantCode: 401, wantCalls: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestBuildValidation: each mode builds its own parts and nothing else; an
// unknown mode builds nothing.
func TestBuildValidation(t *testing.T) {
	cases := []struct {
		mode             config.Mode
		keys, remote, ok bool
	}{
		{mode: config.ModeLocal, keys: true, ok: true},
		{mode: config.ModeRemote, remote: true, ok: true},
		{mode: config.ModeHybrid, keys: true, remote: true, ok: true},
		{mode: "several-issuers"},
	}
	for _, tc := range cases {
		t.Run(string(tc.mode), func(t *testing.T) {
			cfg, err := config.Load([]string{"--okta-issuer=http://127.0.0.1:9/oauth2/default",
				"--okta-client-id=id", "--okta-client-secret=secret"}, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Mode = tc.mode
			v, err := buildValidation(cfg, nil, Options{}, zap.NewNop())
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "unknown validation mode") ||
					v.client != nil || v.discovery != nil || v.keys != nil || v.remote != nil || v.cache != nil || v.ready != nil {
					t.Fatalf("got %+v, %v; want nothing and an unknown-mode error", v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer v.close()
			if (v.keys != nil) != tc.keys || (v.remote != nil) != tc.remote {
				t.Errorf("keys %v, remote %v; want keys %v, remote %v", v.keys != nil, v.remote != nil, tc.keys, tc.remote)
			}
			if v.client == nil || v.discovery == nil || v.cache == nil || v.ready == nil {
				t.Errorf("incomplete: %+v", v)
			}
			if v.ready() == nil {
				t.Error("ready before any key or endpoint is known")
			}
		})
	}
}
