package devissuer

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestCounts(t *testing.T) {
	iss := start(t, Config{Algorithm: "ES256"})
	c := newClient()
	auth := map[string]string{"Authorization": basic("dev-client", "dev-secret")}
	tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
	mustDo(t, c, request{url: iss.DiscoveryURL()})
	mustDo(t, c, request{url: iss.OpenIDConfigurationURL()})
	mustDo(t, c, request{url: iss.JWKSURL()})
	mustDo(t, c, request{method: "POST", url: iss.TokenURL(), form: url.Values{"grant_type": {"bad"}}}) // refused, still counted
	introspect(t, c, iss, tok)
	introspect(t, c, iss, "x")
	introspect(t, c, iss, tok)
	mustDo(t, c, request{method: "POST", url: iss.RevocationURL(), form: url.Values{"token": {tok}}, header: auth})
	mustDo(t, c, request{url: iss.Issuer() + "/v1/nothing"})

	want := Counts{Discovery: 2, Keys: 1, Token: 2, Introspect: 3, Revoke: 1}
	if got := iss.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
	if got := iss.Counts().Total(); got != 9 {
		t.Errorf("Total() = %d", got)
	}
	iss.ResetCounts()
	if got := iss.Counts(); got != (Counts{}) {
		t.Errorf("after ResetCounts: %+v", got)
	}
	for _, ep := range Endpoints() {
		if strings.HasPrefix(ep.String(), "Endpoint(") {
			t.Errorf("endpoint %d has no name", int(ep))
		}
	}
	if got := Endpoint(99).String(); got != "Endpoint(99)" {
		t.Errorf("String() = %q", got)
	}
}

// faultCase installs a fault, makes one request and checks the outcome.
type faultCase struct {
	name   string
	ep     Endpoint
	fault  Fault
	req    func(iss *Issuer) request
	check  func(t *testing.T, rep reply, err error)
	issuer *Issuer
}

func (tc faultCase) run(t *testing.T) {
	iss := tc.issuer
	defer iss.ClearFaults()
	iss.SetFault(tc.ep, tc.fault)
	before := iss.Counts()
	rep, err := do(newClient(), tc.req(iss))
	tc.check(t, rep, err)
	if got := iss.Counts().Total() - before.Total(); got != 1 {
		t.Errorf("%d requests counted, want 1", got)
	}
}

func TestFaults(t *testing.T) {
	iss := start(t, Config{Algorithm: "ES256"})
	tok, err := iss.Mint(MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": basic("dev-client", "dev-secret")}
	keys := func(iss *Issuer) request { return request{url: iss.JWKSURL()} }
	intro := func(iss *Issuer) request {
		return request{method: "POST", url: iss.IntrospectionURL(), form: url.Values{"token": {tok}}, header: auth}
	}
	token := func(iss *Issuer) request {
		return request{method: "POST", url: iss.TokenURL(), form: url.Values{"grant_type": {"client_credentials"}}, header: auth}
	}
	reset := time.Unix(1900000000, 0)

	tests := []faultCase{
		{name: "500", ep: EndpointIntrospect, fault: Fault{Status: 500}, req: intro, check: func(t *testing.T, rep reply, err error) {
			if err != nil || rep.status != 500 || rep.json(t)["error"] != "server_error" {
				t.Errorf("%v %d %s", err, rep.status, rep.body)
			}
		}},
		{name: "503 on keys", ep: EndpointKeys, fault: Fault{Status: 503}, req: keys, check: func(t *testing.T, rep reply, err error) {
			if err != nil || rep.status != 503 {
				t.Errorf("%v %d", err, rep.status)
			}
		}},
		{name: "429 with Retry-After and rate-limit reset", ep: EndpointIntrospect,
			fault: Fault{Status: 429, RetryAfter: "7", RateLimitReset: reset}, req: intro,
			check: func(t *testing.T, rep reply, err error) {
				if err != nil || rep.status != 429 || rep.header["Retry-After"] != "7" ||
					rep.header["X-Rate-Limit-Reset"] != strconv.FormatInt(reset.Unix(), 10) ||
					rep.header["X-Rate-Limit-Remaining"] != "0" || rep.json(t)["errorCode"] != "E0000047" {
					t.Errorf("%v %d %v %s", err, rep.status, rep.header, rep.body)
				}
			}},
		{name: "non-JSON body", ep: EndpointIntrospect, fault: Fault{Body: []byte("<html>maintenance</html>"), ContentType: "text/html"}, req: intro,
			check: func(t *testing.T, rep reply, err error) {
				if err != nil || rep.status != 200 || string(rep.body) != "<html>maintenance</html>" || rep.header["Content-Type"] != "text/html" {
					t.Errorf("%v %d %q %q", err, rep.status, rep.body, rep.header["Content-Type"])
				}
			}},
		{name: "active as a string", ep: EndpointIntrospect, fault: Fault{Body: []byte(`{"active":"true"}`)}, req: intro,
			check: func(t *testing.T, rep reply, err error) {
				if err != nil || rep.status != 200 || string(rep.body) != `{"active":"true"}` || rep.header["Content-Type"] != "application/json" {
					t.Errorf("%v %d %q", err, rep.status, rep.body)
				}
			}},
		{name: "HTML error page", ep: EndpointKeys, fault: Fault{Status: 502, Body: []byte("<h1>Bad gateway</h1>"), ContentType: "text/html"}, req: keys,
			check: func(t *testing.T, rep reply, err error) {
				if err != nil || rep.status != 502 || !strings.HasPrefix(string(rep.body), "<h1>") {
					t.Errorf("%v %d %q", err, rep.status, rep.body)
				}
			}},
		{name: "drop", ep: EndpointToken, fault: Fault{Drop: true}, req: token, check: func(t *testing.T, rep reply, err error) {
			if err == nil {
				t.Errorf("got an answer %d %s", rep.status, rep.body)
			}
		}},
		{name: "latency then real answer", ep: EndpointIntrospect, fault: Fault{Latency: 100 * time.Millisecond}, req: intro,
			check: func(t *testing.T, rep reply, err error) {
				if err != nil || rep.status != 200 || rep.json(t)["active"] != true {
					t.Errorf("%v %d %s", err, rep.status, rep.body)
				}
			}},
		{name: "latency then drop", ep: EndpointToken, fault: Fault{Latency: 20 * time.Millisecond, Drop: true}, req: token,
			check: func(t *testing.T, rep reply, err error) {
				if err == nil {
					t.Errorf("got an answer %d", rep.status)
				}
			}},
		{name: "extra header on the real answer", ep: EndpointKeys, fault: Fault{Header: map[string]string{"X-Test": "1"}, RetryAfter: "3"}, req: keys,
			check: func(t *testing.T, rep reply, err error) {
				if err != nil || rep.status != 200 || rep.header["X-Test"] != "1" || rep.header["Retry-After"] != "3" {
					t.Errorf("%v %d %v", err, rep.status, rep.header)
				}
			}},
	}
	for _, tc := range tests {
		tc.issuer = iss
		t.Run(tc.name, tc.run)
	}

	t.Run("latency", func(t *testing.T) {
		const d = 150 * time.Millisecond
		iss.SetFault(EndpointIntrospect, Fault{Latency: d})
		defer iss.ClearFaults()
		begin := time.Now()
		rep := mustDo(t, newClient(), intro(iss))
		if took := time.Since(begin); took < d || rep.status != 200 {
			t.Errorf("answered %d after %v, want at least %v", rep.status, took, d)
		}
	})

	t.Run("latency holds up no other request", func(t *testing.T) {
		waiting := make(chan struct{}, 1)
		hook := func() { waiting <- struct{}{} }
		iss.waitHook.Store(&hook)
		defer iss.waitHook.Store(nil)
		iss.SetFault(EndpointIntrospect, Fault{Latency: time.Hour, Times: 1})
		defer iss.ClearFaults()
		slow := make(chan error, 1)
		go func() {
			_, err := do(newClient(), intro(iss))
			slow <- err
		}()
		<-waiting
		// The slow request is parked; other requests, to its endpoint
		// too, are answered meanwhile.
		for _, r := range []request{keys(iss), token(iss), intro(iss)} {
			if rep := mustDo(t, newClient(), r); rep.status != 200 {
				t.Errorf("%s: status %d", r.url, rep.status)
			}
		}
		select {
		case err := <-slow:
			t.Fatalf("slow request finished early: %v", err)
		default:
		}
		// Stop cuts the hour short; Restart serves again.
		if err := iss.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := <-slow; err == nil {
			t.Error("slow request got an answer after Stop")
		}
		if err := iss.Restart(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Times", func(t *testing.T) {
		iss.SetFault(EndpointKeys, Fault{Status: 500, Times: 2})
		c := newClient()
		var got []int
		for range 4 {
			got = append(got, mustDo(t, c, keys(iss)).status)
		}
		if want := []int{500, 500, 200, 200}; !equalInts(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
	})

	t.Run("ClearFault", func(t *testing.T) {
		iss.SetFault(EndpointKeys, Fault{Status: 500})
		iss.SetFault(EndpointDiscovery, Fault{Status: 500})
		iss.ClearFault(EndpointKeys)
		c := newClient()
		if s := mustDo(t, c, keys(iss)).status; s != 200 {
			t.Errorf("keys after ClearFault: %d", s)
		}
		if s := mustDo(t, c, request{url: iss.DiscoveryURL()}).status; s != 500 {
			t.Errorf("discovery kept its fault? %d", s)
		}
		iss.ClearFaults()
		if s := mustDo(t, c, request{url: iss.DiscoveryURL()}).status; s != 200 {
			t.Errorf("discovery after ClearFaults: %d", s)
		}
	})

	t.Run("SetFault panics on bugs", func(t *testing.T) {
		for name, f := range map[string]func(){
			"endpoint": func() { iss.SetFault(Endpoint(42), Fault{}) },
			"status":   func() { iss.SetFault(EndpointKeys, Fault{Status: 42}) },
			"latency":  func() { iss.SetFault(EndpointKeys, Fault{Latency: -1}) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: no panic", name)
					}
				}()
				f()
			}()
		}
		iss.ClearFaults()
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for n := range a {
		if a[n] != b[n] {
			return false
		}
	}
	return true
}

func TestStopRestart(t *testing.T) {
	iss := start(t, Config{Algorithm: "ES256"})
	c := newClient()
	issuer := iss.Issuer()
	mustDo(t, c, request{url: iss.JWKSURL()}) // leave a pooled keep-alive connection

	if err := iss.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for range 2 { // the pooled connection is gone, and no new one is accepted
		_, err := do(c, request{url: iss.JWKSURL()})
		if err == nil {
			t.Fatal("request succeeded while stopped")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fasthttp.ErrConnectionClosed) {
			t.Logf("error while stopped: %v", err)
		}
	}
	if _, err := do(newClient(), request{url: iss.JWKSURL()}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("fresh connection while stopped: %v, want connection refused", err)
	}

	if err := iss.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Restart(); err != nil {
		t.Fatalf("Restart while running: %v", err)
	}
	if iss.Issuer() != issuer {
		t.Errorf("issuer changed: %s → %s", issuer, iss.Issuer())
	}
	tok := getToken(t, newClient(), iss, "dev-client", "dev-secret", "")
	if got := introspect(t, newClient(), iss, tok); got["active"] != true {
		t.Errorf("after Restart: %v", got)
	}

	if err := iss.Close(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := iss.Restart(); !errors.Is(err, ErrClosed) {
		t.Errorf("Restart after Close: %v", err)
	}
	if _, err := do(newClient(), request{url: iss.JWKSURL()}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after Close: %v, want connection refused", err)
	}
}

func TestCloseWaits(t *testing.T) {
	for _, ep := range []Endpoint{EndpointKeys, EndpointToken} {
		t.Run(ep.String(), func(t *testing.T) {
			iss := start(t, Config{Algorithm: "ES256"})
			waiting := make(chan struct{}, 1)
			hook := func() { waiting <- struct{}{} }
			iss.waitHook.Store(&hook)
			iss.SetFault(ep, Fault{Latency: time.Hour})
			req := request{url: iss.JWKSURL()}
			if ep == EndpointToken {
				req = request{method: "POST", url: iss.TokenURL(), form: url.Values{"grant_type": {"client_credentials"}},
					header: map[string]string{"Authorization": basic("dev-client", "dev-secret")}}
			}
			done := make(chan error, 1)
			go func() {
				_, err := do(newClient(), req)
				done <- err
			}()
			<-waiting
			if n := iss.inflight.Load(); n != 1 {
				t.Fatalf("%d requests in flight, want 1", n)
			}
			if err := iss.Close(); err != nil {
				t.Fatal(err)
			}
			// Close returned: the handler has finished (it did not wait
			// the hour) and the serving goroutine is gone.
			if n := iss.inflight.Load(); n != 0 {
				t.Errorf("%d requests in flight after Close", n)
			}
			if err := <-done; err == nil {
				t.Error("request answered after Close")
			}
		})
	}
}

func TestHandlerInMemory(t *testing.T) {
	iss := start(t, Config{Algorithm: "EdDSA"})
	ln := serveInMemory(t, iss.Handler())
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxIdemponentCallAttempts: 1}
	rep := mustDo(t, c, request{url: iss.DiscoveryURL()})
	if rep.status != 200 || rep.json(t)["issuer"] != iss.Issuer() {
		t.Errorf("%d %s", rep.status, rep.body)
	}
	tok := getToken(t, c, iss, "dev-client", "dev-secret", "")
	if got := introspect(t, c, iss, tok); got["active"] != true {
		t.Errorf("introspection %v", got)
	}
	if got := iss.Counts(); got.Discovery != 1 || got.Token != 1 || got.Introspect != 1 {
		t.Errorf("counts %+v", got)
	}
}
