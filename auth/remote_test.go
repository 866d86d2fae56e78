package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/internal/testutil"
)

// Fixed test values. remoteT0 is the injected "now" of every Remote here.
const (
	remoteTestIssuer   = "https://as.example.com/oauth2/default"
	remoteTestAudience = "api://default"
	remoteTestClient   = "rs-client"
	remoteTestSecret   = "rs-secret"
	remoteTestToken    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln+/=="
)

var remoteT0 = time.Unix(1_700_000_000, 0)

func remoteTestNow() time.Time { return remoteT0 }

// remoteReply is what the fake introspection endpoint answers.
type remoteReply struct {
	status int               // 0 → 200
	header map[string]string // extra response headers
	body   string
	hold   bool // wait until the fake is released (or the client leaves)
}

// remoteReceived is what the fake saw in one request.
type remoteReceived struct {
	method, contentType, accept string
	authorization               string
	form                        url.Values
	clientID, clientSecret      string // after RFC 6749 §2.3.1 decoding
	viaBasic                    bool
}

// remoteFake is a test-only RFC 7662 endpoint on 127.0.0.1. It checks
// client authentication like a real server (401 on mismatch), counts
// calls and the peak number in flight, and answers with reply.
type remoteFake struct {
	srv                    *httptest.Server
	clientID, clientSecret string

	calls, inFlight, peak atomic.Int64
	arrived               chan struct{} // one send per held request
	release               chan struct{} // closed to free held requests
	releaseOnce           sync.Once

	mu    sync.Mutex // guards reply, last
	reply func(token string) remoteReply
	last  remoteReceived
}

func newRemoteFake(tb testing.TB, reply func(token string) remoteReply) *remoteFake {
	tb.Helper()
	f := &remoteFake{
		clientID:     remoteTestClient,
		clientSecret: remoteTestSecret,
		arrived:      make(chan struct{}, 1024),
		release:      make(chan struct{}),
		reply:        reply,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.srv.Close)
	tb.Cleanup(f.unblock) // runs first: held handlers must end before Close
	return f
}

// remoteFakeBody answers every request with a 200 and body.
func remoteFakeBody(body string) func(string) remoteReply {
	return func(string) remoteReply { return remoteReply{body: body} }
}

func (f *remoteFake) unblock() { f.releaseOnce.Do(func() { close(f.release) }) }

func (f *remoteFake) url() string { return f.srv.URL + "/oauth2/default/v1/introspect" }

func (f *remoteFake) received() remoteReceived {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *remoteFake) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}

	rec := remoteReceived{
		method:        r.Method,
		contentType:   r.Header.Get("Content-Type"),
		accept:        r.Header.Get("Accept"),
		authorization: r.Header.Get("Authorization"),
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	rec.form = r.PostForm
	if user, pass, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			http.Error(w, "bad basic encoding", http.StatusBadRequest)
			return
		}
		rec.clientID, rec.clientSecret, rec.viaBasic = id, secret, true
	} else {
		rec.clientID, rec.clientSecret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	f.mu.Lock()
	f.last = rec
	reply := f.reply
	f.mu.Unlock()

	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if rec.clientID != f.clientID || rec.clientSecret != f.clientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}

	rp := reply(r.PostForm.Get("token"))
	if rp.hold {
		f.arrived <- struct{}{}
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	if rp.status == 0 {
		rp.status = http.StatusOK
	}
	w.WriteHeader(rp.status)
	_, _ = io.WriteString(w, rp.body)
}

// newRemoteTest builds a Remote against endpoint with test defaults;
// edit adjusts the config first.
func newRemoteTest(tb testing.TB, endpoint string, edit func(*RemoteConfig)) *Remote {
	tb.Helper()
	client := NewHTTPClient(HTTPClientConfig{})
	tb.Cleanup(client.CloseIdleConnections)
	cfg := RemoteConfig{
		Issuer:       remoteTestIssuer,
		Audience:     remoteTestAudience,
		Endpoint:     endpoint,
		ClientID:     remoteTestClient,
		ClientSecret: remoteTestSecret,
		Client:       client,
		Now:          remoteTestNow,
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := NewRemote(cfg)
	if err != nil {
		tb.Fatalf("NewRemote: %v", err)
	}
	return r
}

// remoteUnix formats remoteT0 + d as a NumericDate.
func remoteUnix(d time.Duration) string {
	return strconv.FormatInt(remoteT0.Add(d).Unix(), 10)
}

// remoteWantInvalid fails unless err is a *TokenError that matches the
// reason sentinel want.
func remoteWantInvalid(tb testing.TB, p *Principal, err error, want error) {
	tb.Helper()
	var te *TokenError
	if p != nil || !errors.Is(err, ErrInvalidToken) || !errors.As(err, &te) || errors.Is(err, ErrUnavailable) {
		tb.Fatalf("got (%v, %v), want *TokenError %v", p, err, want)
	}
	if !errors.Is(err, want) {
		tb.Fatalf("error %v, want %v", err, want)
	}
}

// remoteWantUnavailable fails unless err is an *UnavailableError whose
// Reason contains reason; it returns the error.
func remoteWantUnavailable(tb testing.TB, p *Principal, err error, reason string) *UnavailableError {
	tb.Helper()
	var ue *UnavailableError
	if p != nil || !errors.Is(err, ErrUnavailable) || !errors.As(err, &ue) || errors.Is(err, ErrInvalidToken) {
		tb.Fatalf("got (%v, %v), want *UnavailableError %q", p, err, reason)
	}
	if !strings.Contains(ue.Reason, reason) {
		tb.Fatalf("reason %q, want it to contain %q", ue.Reason, reason)
	}
	return ue
}

// remoteWantKind fails unless err wraps an *IntrospectionError of kind;
// it returns that error.
func remoteWantKind(tb testing.TB, err error, kind RemoteFailureKind) *IntrospectionError {
	tb.Helper()
	ie, ok := errors.AsType[*IntrospectionError](err)
	if !ok {
		tb.Fatalf("%v wraps no *IntrospectionError", err)
	}
	if ie.Kind != kind {
		tb.Fatalf("IntrospectionError.Kind = %v, want %v (%v)", ie.Kind, kind, err)
	}
	return ie
}

// remoteVerdictCase is one 200 response body and what Validate makes of it.
type remoteVerdictCase struct {
	name        string
	body        string
	edit        func(*RemoteConfig)
	want        *Principal // nil: an error is expected
	invalid     error      // the *TokenError's reason sentinel
	unavailable string     // *UnavailableError reason substring
}

func (tc remoteVerdictCase) run(t *testing.T) {
	f := newRemoteFake(t, remoteFakeBody(tc.body))
	r := newRemoteTest(t, f.url(), tc.edit)
	p, err := r.Validate(context.Background(), []byte(remoteTestToken))
	if f.calls.Load() != 1 {
		t.Fatalf("introspection calls = %d, want 1", f.calls.Load())
	}
	want := RemoteStats{Introspections: 1}
	switch {
	case tc.invalid == ErrInactive:
		remoteWantInvalid(t, p, err, tc.invalid)
		want.Inactive = 1
	case tc.invalid != nil:
		remoteWantInvalid(t, p, err, tc.invalid)
		want.Rejected = 1
	case tc.unavailable != "":
		remoteWantUnavailable(t, p, err, tc.unavailable)
		if ie := remoteWantKind(t, err, RemoteBadResponse); ie.StatusCode != 200 || ie.Err == nil {
			t.Errorf("IntrospectionError %+v: want status 200 and the decoding error", ie)
		}
		want.Failures[RemoteBadResponse] = 1
	default:
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		remoteSamePrincipal(t, p, tc.want)
		want.Active = 1
	}
	if got := r.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// remoteRequireAudience turns RequireAudience on.
func remoteRequireAudience(c *RemoteConfig) { c.RequireAudience = true }

func remoteSamePrincipal(tb testing.TB, got, want *Principal) {
	tb.Helper()
	g, w := fmt.Sprintf("%+v", *got), fmt.Sprintf("%+v", *want)
	if g != w || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(want.IssuedAt) {
		tb.Fatalf("principal\n got %s\nwant %s", g, w)
	}
}

func TestRemoteVerdicts(t *testing.T) {
	exp := remoteUnix(10 * time.Minute)
	for _, tc := range []remoteVerdictCase{
		{
			name: "active with every member",
			body: `{"active":true,"scope":"items read","client_id":"app","username":"u","sub":"svc",
				"iss":"` + remoteTestIssuer + `","aud":"` + remoteTestAudience + `","exp":` + exp +
				`,"iat":` + remoteUnix(-time.Minute) + `,"jti":"j1","token_type":"Bearer"}`,
			want: &Principal{
				Subject: "svc", ClientID: "app", Issuer: remoteTestIssuer,
				Audience: []string{remoteTestAudience}, Scopes: []string{"items", "read"}, TokenID: "j1",
				IssuedAt: remoteT0.Add(-time.Minute), ExpiresAt: remoteT0.Add(10 * time.Minute),
			},
		},
		{
			name: "active alone",
			body: `{"active":true}`,
			want: &Principal{Issuer: remoteTestIssuer},
		},
		{
			name: "okta shape: scp array, cid, aud array, fractional exp",
			body: `{"active":true,"scp":["items"],"cid":"okta-app","aud":["other","` + remoteTestAudience +
				`"],"exp":` + exp + `.5,"uid":"x"}`,
			want: &Principal{
				ClientID: "okta-app", Issuer: remoteTestIssuer, Audience: []string{"other", remoteTestAudience},
				Scopes: []string{"items"}, ExpiresAt: remoteT0.Add(10*time.Minute + 500*time.Millisecond),
			},
		},
		{
			name: "client_id wins over cid; scope over scp; nulls are absent",
			body: `{"active":true,"client_id":"a","cid":"b","scope":"x","scp":["y"],"sub":null,"exp":null}`,
			want: &Principal{ClientID: "a", Issuer: remoteTestIssuer, Scopes: []string{"x"}},
		},
		{
			name: "allowed client",
			body: `{"active":true,"client_id":"app"}`,
			edit: func(c *RemoteConfig) { c.AllowedClients = []string{"other", "app"} },
			want: &Principal{ClientID: "app", Issuer: remoteTestIssuer},
		},
		{
			name: "whitespace around the literal true",
			body: " {\n \"active\" :\ttrue \n} \n",
			want: &Principal{Issuer: remoteTestIssuer},
		},
		{name: "active false", body: `{"active":false}`, invalid: ErrInactive},
		{name: "active is the string true", body: `{"active":"true","scope":"items"}`, invalid: ErrInactive},
		{name: "active missing", body: `{"scope":"items","exp":` + exp + `}`, invalid: ErrInactive},
		{name: "active is 1", body: `{"active":1}`, invalid: ErrInactive},
		{name: "active is null", body: `{"active":null}`, invalid: ErrInactive},
		{name: "active is an object", body: `{"active":{"true":true}}`, invalid: ErrInactive},
		{name: "Active in another case", body: `{"Active":true}`, invalid: ErrInactive},
		{name: "empty object", body: `{}`, invalid: ErrInactive},
		{name: "inactive with garbage members is still inactive", body: `{"active":false,"exp":"soon"}`, invalid: ErrInactive},
		{name: "foreign aud", body: `{"active":true,"aud":"api://other"}`, invalid: ErrAudience},
		{name: "foreign aud array", body: `{"active":true,"aud":["a","b"]}`, invalid: ErrAudience},
		{name: "empty aud array", body: `{"active":true,"aud":[]}`, invalid: ErrAudience},
		{name: "no aud without RequireAudience", body: `{"active":true,"scope":"items"}`, want: &Principal{Issuer: remoteTestIssuer, Scopes: []string{"items"}}},
		{name: "RequireAudience: no aud", body: `{"active":true,"scope":"items"}`, edit: remoteRequireAudience, invalid: ErrAudienceMissing},
		{name: "RequireAudience: null aud", body: `{"active":true,"aud":null}`, edit: remoteRequireAudience, invalid: ErrAudienceMissing},
		{name: "RequireAudience: empty aud string", body: `{"active":true,"aud":""}`, edit: remoteRequireAudience, invalid: ErrAudienceMissing},
		{name: "RequireAudience: empty aud array", body: `{"active":true,"aud":[]}`, edit: remoteRequireAudience, invalid: ErrAudienceMissing},
		{name: "RequireAudience: foreign aud", body: `{"active":true,"aud":"api://other"}`, edit: remoteRequireAudience, invalid: ErrAudience},
		{
			name: "RequireAudience: right aud",
			body: `{"active":true,"aud":"` + remoteTestAudience + `"}`,
			edit: remoteRequireAudience,
			want: &Principal{Issuer: remoteTestIssuer, Audience: []string{remoteTestAudience}},
		},
		{
			name: "RequireAudience: right aud in an array",
			body: `{"active":true,"aud":["other","` + remoteTestAudience + `"]}`,
			edit: remoteRequireAudience,
			want: &Principal{Issuer: remoteTestIssuer, Audience: []string{"other", remoteTestAudience}},
		},
		{name: "past exp", body: `{"active":true,"exp":` + remoteUnix(-time.Second) + `}`, invalid: ErrExpired},
		{name: "exp is now", body: `{"active":true,"exp":` + remoteUnix(0) + `}`, invalid: ErrExpired},
		{name: "wrong iss", body: `{"active":true,"iss":"https://evil.example.com"}`, invalid: ErrIssuer},
		{name: "iss with a trailing slash", body: `{"active":true,"iss":"` + remoteTestIssuer + `/"}`, invalid: ErrIssuer},
		{
			name:    "client not allowed",
			body:    `{"active":true,"cid":"intruder"}`,
			edit:    func(c *RemoteConfig) { c.AllowedClients = []string{"app"} },
			invalid: ErrClientNotAllowed,
		},
		{
			name:    "no client with an allow-list",
			body:    `{"active":true}`,
			edit:    func(c *RemoteConfig) { c.AllowedClients = []string{"app"} },
			invalid: ErrClientNotAllowed,
		},
		{name: "refresh token", body: `{"active":true,"token_type":"refresh_token"}`, invalid: ErrTokenType},
		{name: "DPoP-bound token", body: `{"active":true,"token_type":"DPoP"}`, invalid: ErrTokenType},
		{name: "duplicate active", body: `{"active":false,"active":true}`, unavailable: "not valid JSON"},
		{name: "duplicate exp", body: `{"active":true,"exp":1,"exp":` + exp + `}`, unavailable: "not valid JSON"},
		{name: "duplicate member Remote ignores", body: `{"active":true,"ext":1,"ext":2}`, unavailable: "not valid JSON"},
		{name: "trailing garbage", body: `{"active":true} x`, unavailable: "not valid JSON"},
		{name: "two objects", body: `{"active":true}{"active":true}`, unavailable: "not valid JSON"},
		{name: "truncated", body: `{"active":true,"scope":"ite`, unavailable: "not valid JSON"},
		{name: "trailing comma", body: `{"active":true,}`, unavailable: "not valid JSON"},
		{name: "array", body: `[{"active":true}]`, unavailable: "not valid JSON"},
		{name: "bare true", body: `true`, unavailable: "not valid JSON"},
		{name: "empty body", body: ``, unavailable: "not valid JSON"},
		{name: "html", body: `<html>login</html>`, unavailable: "not valid JSON"},
		{name: "exp as a string", body: `{"active":true,"exp":"` + exp + `"}`, unavailable: "malformed"},
		{name: "exp out of range", body: `{"active":true,"exp":1e300}`, unavailable: "malformed"},
		{name: "aud as a number", body: `{"active":true,"aud":7}`, unavailable: "malformed"},
		{name: "scope as an object", body: `{"active":true,"scope":{}}`, unavailable: "malformed"},
		{name: "sub as a number", body: `{"active":true,"sub":7}`, unavailable: "malformed"},
	} {
		t.Run(tc.name, tc.run)
	}
}

// remoteFailureCase is one failure of the authorization server.
type remoteFailureCase struct {
	name   string
	reply  remoteReply
	setup  func(tb testing.TB, f *remoteFake, c *RemoteConfig) // optional
	reason string
	retry  time.Duration
	level  zapcore.Level     // of the log line
	kind   RemoteFailureKind // counted in Stats and named in the log

	// The *IntrospectionError's other fields.
	status int           // HTTP status; 0 when there was no answer
	code   string        // the RFC 6749 error code let through
	asked  time.Duration // the RetryAfter the server asked for; 0 for none
}

func (tc remoteFailureCase) run(t *testing.T) {
	f := newRemoteFake(t, func(string) remoteReply { return tc.reply })
	core, logs := observer.New(zapcore.DebugLevel)
	r := newRemoteTest(t, f.url(), func(c *RemoteConfig) {
		c.Logger = zap.New(core)
		if tc.setup != nil {
			tc.setup(t, f, c)
		}
	})
	p, err := r.Validate(context.Background(), []byte(remoteTestToken))
	ue := remoteWantUnavailable(t, p, err, tc.reason)
	if ue.RetryAfter != tc.retry {
		t.Errorf("RetryAfter = %v, want %v", ue.RetryAfter, tc.retry)
	}
	ie := remoteWantKind(t, err, tc.kind)
	if ie.StatusCode != tc.status || ie.ErrorCode != tc.code || ie.RetryAfter != tc.asked {
		t.Errorf("IntrospectionError = %+v, want status %d, code %q, RetryAfter %v", ie, tc.status, tc.code, tc.asked)
	}

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Level != tc.level {
		t.Errorf("log level %v, want %v", e.Level, tc.level)
	}
	fields := e.ContextMap()
	if fields["token_fp"] != Fingerprint([]byte(remoteTestToken)) || fields["reason"] != ue.Reason {
		t.Errorf("log fields %v lack the fingerprint or the reason", fields)
	}
	if fields["kind"] != tc.kind.String() || fields["suppressed"] != uint64(0) {
		t.Errorf("log fields %v: want kind=%s and suppressed=0", fields, tc.kind)
	}
	want := RemoteStats{Introspections: 1}
	want.Failures[tc.kind] = 1
	if got := r.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	line := fmt.Sprint(e.Message, fields)
	for _, secret := range []string{remoteTestToken, remoteTestSecret, "c2ln"} {
		if strings.Contains(line, secret) {
			t.Errorf("log line contains %q: %s", secret, line)
		}
	}
}

func TestRemoteServerFailures(t *testing.T) {
	retryDate := remoteT0.Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []remoteFailureCase{
		{
			name: "connection refused",
			setup: func(tb testing.TB, _ *remoteFake, c *RemoteConfig) {
				c.Endpoint = "http://" + testutil.ClosedAddr(tb) + "/v1/introspect"
			},
			reason: "refused the connection", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteUnreachable,
		},
		{
			name:  "timeout",
			reply: remoteReply{hold: true, body: `{"active":true}`},
			setup: func(_ testing.TB, _ *remoteFake, c *RemoteConfig) {
				c.Timeout = 150 * time.Millisecond
			},
			reason: "timed out", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteTimeout,
		},
		{
			name:   "500",
			reply:  remoteReply{status: 500, body: `oops`},
			reason: "returned 500", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteStatus5xx, status: 500,
		},
		{
			name:   "503 with Retry-After",
			reply:  remoteReply{status: 503, header: map[string]string{"Retry-After": "7"}},
			reason: "returned 503", retry: 7 * time.Second, level: zapcore.WarnLevel, kind: RemoteStatus5xx, status: 503, asked: 7 * time.Second,
		},
		{
			name:   "429 with Retry-After seconds",
			reply:  remoteReply{status: 429, header: map[string]string{"Retry-After": "30"}},
			reason: "rate limiting us (429)", retry: 30 * time.Second, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429, asked: 30 * time.Second,
		},
		{
			name:   "429 with Retry-After date",
			reply:  remoteReply{status: 429, header: map[string]string{"Retry-After": retryDate}},
			reason: "(429)", retry: 90 * time.Second, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429, asked: 90 * time.Second,
		},
		{
			name:   "429 with X-Rate-Limit-Reset",
			reply:  remoteReply{status: 429, header: map[string]string{"X-Rate-Limit-Reset": remoteUnix(42 * time.Second)}},
			reason: "(429)", retry: 42 * time.Second, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429, asked: 42 * time.Second,
		},
		{
			name: "Retry-After wins over X-Rate-Limit-Reset",
			reply: remoteReply{status: 429, header: map[string]string{
				"Retry-After": "5", "X-Rate-Limit-Reset": remoteUnix(42 * time.Second),
			}},
			reason: "(429)", retry: 5 * time.Second, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429, asked: 5 * time.Second,
		},
		{
			name:   "429 with a reset in the past",
			reply:  remoteReply{status: 429, header: map[string]string{"X-Rate-Limit-Reset": remoteUnix(-time.Hour)}},
			reason: "(429)", retry: time.Second, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429, asked: time.Second,
		},
		{
			name:   "429 with a huge Retry-After is capped",
			reply:  remoteReply{status: 429, header: map[string]string{"Retry-After": "99999999999999999999999"}},
			reason: "(429)", retry: RemoteMaxRetryAfter, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429, asked: RemoteMaxRetryAfter,
		},
		{
			name:   "429 with an unparsable Retry-After",
			reply:  remoteReply{status: 429, header: map[string]string{"Retry-After": "soon"}},
			reason: "(429)", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429,
		},
		{
			name:   "429 without a hint",
			reply:  remoteReply{status: 429},
			reason: "(429)", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteStatus429, status: 429,
		},
		{
			name:   "401 for our credentials",
			setup:  func(_ testing.TB, _ *remoteFake, c *RemoteConfig) { c.ClientSecret = "wrong" },
			reason: "rejected our client credentials (401)", retry: RemoteDefaultRetryAfter, level: zapcore.ErrorLevel, kind: RemoteCredentialsRejected, status: 401, code: "invalid_client",
		},
		{
			name:   "403",
			reply:  remoteReply{status: 403},
			reason: "rejected our client credentials (403)", retry: RemoteDefaultRetryAfter, level: zapcore.ErrorLevel, kind: RemoteCredentialsRejected, status: 403,
		},
		{
			name:   "redirect is not followed",
			reply:  remoteReply{status: 302, header: map[string]string{"Location": "https://elsewhere.example.com/"}},
			reason: "unexpected status 302", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteBadResponse, status: 302,
		},
		{
			name:   "400 names the server's OAuth error code",
			reply:  remoteReply{status: 400, body: `{"error":"unsupported_token_type","error_description":"Structured JWT Tokens cannot be introspected"}`},
			reason: "returned 400 unsupported_token_type", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteBadResponse, status: 400, code: "unsupported_token_type",
		},
		{
			name:   "400 with an error code unfit to show",
			reply:  remoteReply{status: 400, body: `{"error":"<script>alert(1)</script> \"x\""}`},
			reason: "unexpected status 400", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteBadResponse, status: 400,
		},
		{
			name:   "not JSON",
			reply:  remoteReply{header: map[string]string{"Content-Type": "text/html"}, body: `<html>maintenance</html>`},
			reason: "not valid JSON", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteBadResponse, status: 200,
		},
		{
			name:  "body over the client's limit",
			reply: remoteReply{body: `{"active":true,"pad":"` + strings.Repeat("x", 4096) + `"}`},
			setup: func(tb testing.TB, _ *remoteFake, c *RemoteConfig) {
				client := NewHTTPClient(HTTPClientConfig{MaxResponseBodySize: 1024})
				tb.Cleanup(client.CloseIdleConnections)
				c.Client = client
			},
			reason: "too large", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteOversize,
		},
		{
			name:  "body over MaxResponseSize with an unlimited client",
			reply: remoteReply{body: `{"active":true,"pad":"` + strings.Repeat("x", 4096) + `"}`},
			setup: func(tb testing.TB, _ *remoteFake, c *RemoteConfig) {
				client := &fasthttp.Client{}
				tb.Cleanup(client.CloseIdleConnections)
				c.Client = client
				c.MaxResponseSize = 1024
			},
			reason: "too large", retry: RemoteDefaultRetryAfter, level: zapcore.WarnLevel, kind: RemoteOversize, status: 200,
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestRemoteClientAuth(t *testing.T) {
	const (
		id     = "my client:1"
		secret = "s3cr:t+/ &%=é"
		token  = "a+b/c=d.e_f~g-h%"
	)
	for _, tc := range []struct {
		name, method string
		basic        bool
	}{
		{"default is client_secret_basic", "", true},
		{"client_secret_basic", AuthMethodClientSecretBasic, true},
		{"client_secret_post", AuthMethodClientSecretPost, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRemoteFake(t, remoteFakeBody(`{"active":true,"client_id":"app"}`))
			f.clientID, f.clientSecret = id, secret
			r := newRemoteTest(t, f.url(), func(c *RemoteConfig) {
				c.ClientID, c.ClientSecret, c.AuthMethod = id, secret, tc.method
			})
			if _, err := r.Validate(context.Background(), []byte(token)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := f.received()
			if got.method != http.MethodPost || got.contentType != "application/x-www-form-urlencoded" ||
				got.accept != "application/json" {
				t.Errorf("request %s, Content-Type %q, Accept %q", got.method, got.contentType, got.accept)
			}
			if got.form.Get("token") != token || got.form.Get("token_type_hint") != "access_token" {
				t.Errorf("form %v: token or hint not as sent", got.form)
			}
			if got.viaBasic != tc.basic || got.clientID != id || got.clientSecret != secret {
				t.Errorf("server saw basic=%v id=%q secret=%q", got.viaBasic, got.clientID, got.clientSecret)
			}
			if tc.basic {
				want := "Basic " + base64.StdEncoding.EncodeToString(
					[]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
				if got.authorization != want {
					t.Errorf("Authorization %q, want %q", got.authorization, want)
				}
				if got.form.Has("client_secret") || got.form.Has("client_id") {
					t.Errorf("basic auth also sent form credentials: %v", got.form)
				}
			} else if got.authorization != "" {
				t.Errorf("post auth also sent Authorization %q", got.authorization)
			}
		})
	}
}

func TestRemoteRejectsTokensBeforeCalling(t *testing.T) {
	f := newRemoteFake(t, remoteFakeBody(`{"active":true}`))
	r := newRemoteTest(t, f.url(), func(c *RemoteConfig) { c.MaxTokenSize = 16 })
	for _, tc := range []struct {
		name, token string
		want        error
	}{
		{"empty", "", ErrEmptyToken},
		{"over MaxTokenSize", strings.Repeat("a", 17), ErrTokenTooLarge},
		{"space", "abc def", ErrInvalidCharacters},
		{"newline", "abc\ndef", ErrInvalidCharacters},
		{"NUL", "abc\x00", ErrInvalidCharacters},
		{"DEL", "abc\x7f", ErrInvalidCharacters},
		{"non-ASCII", "abcé", ErrInvalidCharacters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Validate(context.Background(), []byte(tc.token))
			remoteWantInvalid(t, p, err, tc.want)
		})
	}
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("%d introspection calls for tokens that must never leave", n)
	}
	if _, err := r.Validate(context.Background(), []byte(strings.Repeat("a", 16))); err != nil {
		t.Fatalf("token of exactly MaxTokenSize: %v", err)
	}
}

func TestRemoteConcurrencyBound(t *testing.T) {
	const limit, extra = 6, 4
	f := newRemoteFake(t, func(string) remoteReply { return remoteReply{hold: true, body: `{"active":true}`} })
	r := newRemoteTest(t, f.url(), func(c *RemoteConfig) {
		c.MaxConcurrent = limit
		c.Timeout = time.Minute // the test releases the server itself
	})

	type result struct {
		p   *Principal
		err error
	}
	results := make(chan result, limit+extra)
	var wg sync.WaitGroup
	for range limit + extra {
		wg.Go(func() {
			p, err := r.Validate(context.Background(), []byte(remoteTestToken))
			results <- result{p, err}
		})
	}

	// The overflow fails at once while the first `limit` are held.
	for range extra {
		res := <-results
		ue := remoteWantUnavailable(t, res.p, res.err, "too many concurrent introspections")
		if ue.RetryAfter != RemoteOverloadRetryAfter {
			t.Errorf("RetryAfter %v, want %v", ue.RetryAfter, RemoteOverloadRetryAfter)
		}
		remoteWantKind(t, res.err, RemoteOverflow)
	}
	for range limit {
		<-f.arrived
	}
	if n := f.inFlight.Load(); n != limit {
		t.Fatalf("%d in flight at the server, want %d", n, limit)
	}
	f.unblock()
	wg.Wait()
	close(results)
	for res := range results {
		if res.err != nil {
			t.Errorf("held validation failed: %v", res.err)
		}
	}
	if calls, peak := f.calls.Load(), f.peak.Load(); calls != limit || peak != limit {
		t.Fatalf("calls %d, peak in flight %d; want %d and %d", calls, peak, limit, limit)
	}
	// The slots are free again.
	if _, err := r.Validate(context.Background(), []byte(remoteTestToken)); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestRemoteOverflowLogIsRateLimited: a flood refused by the concurrency
// bound must not become a flood of log lines. A burst of 1000 refusals
// within one second gives one WARN line; the next refusal a second later
// gives the second, which says how many were logged at debug only in
// between.
func TestRemoteOverflowLogIsRateLimited(t *testing.T) {
	const burst, workers = 1000, 8
	f := newRemoteFake(t, func(string) remoteReply { return remoteReply{hold: true, body: `{"active":true}`} })
	clock := testutil.NewClock(remoteT0)
	core, logs := observer.New(zapcore.DebugLevel)
	r := newRemoteTest(t, f.url(), func(c *RemoteConfig) {
		c.MaxConcurrent = 1
		c.Timeout = time.Minute // the test releases the server itself
		c.Now = clock.Now
		c.Logger = zap.New(core)
	})

	held := make(chan error, 1)
	go func() {
		_, err := r.Validate(context.Background(), []byte(remoteTestToken))
		held <- err
	}()
	<-f.arrived // the only slot is taken

	overflow := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		var refused atomic.Int64
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					_, err := r.Validate(context.Background(), []byte(remoteTestToken))
					var ue *UnavailableError
					if errors.As(err, &ue) && ue.Reason == "too many concurrent introspections" {
						refused.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := refused.Load(); got != int64(n) {
			t.Fatalf("%d of %d validations refused by the bound", got, n)
		}
	}
	warnings := func() []observer.LoggedEntry {
		return logs.FilterLevelExact(zapcore.WarnLevel).FilterField(zap.String("reason", "too many concurrent introspections")).All()
	}

	overflow(burst)
	if w := warnings(); len(w) != 1 || w[0].ContextMap()["suppressed"] != uint64(0) {
		var first map[string]any
		if len(w) > 0 {
			first = w[0].ContextMap()
		}
		t.Fatalf("a burst of %d refusals gave %d WARN lines (the first with %v); want one, with suppressed=0", burst, len(w), first)
	}
	if n := logs.FilterLevelExact(zapcore.DebugLevel).Len(); n != burst-1 {
		t.Errorf("%d refusals logged at debug, want %d", n, burst-1)
	}

	clock.Advance(999 * time.Millisecond)
	overflow(1)
	if w := warnings(); len(w) != 1 {
		t.Fatalf("%d WARN lines within a second, want 1", len(w))
	}
	clock.Advance(time.Millisecond)
	overflow(1)
	w := warnings()
	if len(w) != 2 {
		t.Fatalf("%d WARN lines after a second, want 2", len(w))
	}
	fields := w[1].ContextMap()
	if fields["suppressed"] != uint64(burst) || fields["token_fp"] != Fingerprint([]byte(remoteTestToken)) {
		t.Errorf("second WARN line has fields %v; want suppressed=%d and the token's fingerprint", fields, burst)
	}
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, remoteTestToken) || strings.Contains(line, remoteTestSecret) {
			t.Errorf("log line contains the token or the secret: %s", line)
		}
	}

	f.unblock()
	if err := <-held; err != nil {
		t.Fatalf("held validation: %v", err)
	}
	want := RemoteStats{Introspections: 1, Active: 1}
	want.Failures[RemoteOverflow] = burst + 2
	if got := r.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v: every refusal counts, none is an introspection", got, want)
	}
}

func TestRemoteContext(t *testing.T) {
	t.Run("cancelled before the call", func(t *testing.T) {
		f := newRemoteFake(t, remoteFakeBody(`{"active":true}`))
		r := newRemoteTest(t, f.url(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p, err := r.Validate(ctx, []byte(remoteTestToken))
		remoteWantUnavailable(t, p, err, "cancelled")
		remoteWantKind(t, err, RemoteCancelled)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v does not wrap context.Canceled", err)
		}
		if n := f.calls.Load(); n != 0 {
			t.Fatalf("%d calls after cancellation", n)
		}
	})
	t.Run("ctx deadline shortens Timeout", func(t *testing.T) {
		f := newRemoteFake(t, func(string) remoteReply { return remoteReply{hold: true, body: `{"active":true}`} })
		r := newRemoteTest(t, f.url(), func(c *RemoteConfig) { c.Timeout = time.Minute })
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		p, err := r.Validate(ctx, []byte(remoteTestToken))
		remoteWantUnavailable(t, p, err, "timed out")
		remoteWantKind(t, err, RemoteTimeout)
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("Validate took %v: ctx deadline ignored", d)
		}
	})
}

// remoteDiscoveryServer serves metadata for issuer path /oauth2/default
// with introspectionEndpoint, counting metadata fetches.
func remoteDiscoveryServer(tb testing.TB, introspectionEndpoint func(base string) string) (issuer string, fetches *atomic.Int64) {
	tb.Helper()
	fetches = new(atomic.Int64)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/.well-known/oauth-authorization-server") {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"token_endpoint":%q,"introspection_endpoint":%q}`,
			srv.URL+"/oauth2/default", srv.URL+"/keys", srv.URL+"/token", introspectionEndpoint(srv.URL))
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/oauth2/default", fetches
}

func TestRemoteDiscoveredEndpoint(t *testing.T) {
	f := newRemoteFake(t, remoteFakeBody(`{"active":true,"scp":["items"]}`))

	newDisc := func(tb testing.TB, issuer string, override Metadata) *Discovery {
		tb.Helper()
		client := NewHTTPClient(HTTPClientConfig{})
		tb.Cleanup(client.CloseIdleConnections)
		d, err := NewDiscovery(DiscoveryConfig{Issuer: issuer, Override: override, Client: client, Now: remoteTestNow})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(d.Close)
		return d
	}
	newRemote := func(tb testing.TB, d *Discovery, issuer string) *Remote {
		return newRemoteTest(tb, "", func(c *RemoteConfig) { c.Discovery, c.Issuer = d, issuer })
	}

	t.Run("advertised", func(t *testing.T) {
		issuer, fetches := remoteDiscoveryServer(t, func(string) string { return f.url() })
		r := newRemote(t, newDisc(t, issuer, Metadata{}), issuer)
		for range 3 {
			if _, err := r.Validate(context.Background(), []byte(remoteTestToken)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		}
		if n := fetches.Load(); n != 1 {
			t.Fatalf("%d metadata fetches, want 1", n)
		}
	})
	t.Run("override needs no fetch", func(t *testing.T) {
		issuer, fetches := remoteDiscoveryServer(t, func(string) string { return "" })
		r := newRemote(t, newDisc(t, issuer, Metadata{IntrospectionEndpoint: f.url()}), issuer)
		if _, err := r.Validate(context.Background(), []byte(remoteTestToken)); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if n := fetches.Load(); n != 0 {
			t.Fatalf("%d metadata fetches, want 0", n)
		}
	})
	t.Run("not advertised", func(t *testing.T) {
		issuer, _ := remoteDiscoveryServer(t, func(string) string { return "" })
		r := newRemote(t, newDisc(t, issuer, Metadata{}), issuer)
		p, err := r.Validate(context.Background(), []byte(remoteTestToken))
		remoteWantUnavailable(t, p, err, "cannot find the introspection endpoint")
		remoteWantKind(t, err, RemoteNoEndpoint)
	})
	t.Run("advertised endpoint unusable", func(t *testing.T) {
		issuer, _ := remoteDiscoveryServer(t, func(string) string { return "ftp://as.example.com/introspect" })
		r := newRemote(t, newDisc(t, issuer, Metadata{}), issuer)
		p, err := r.Validate(context.Background(), []byte(remoteTestToken))
		remoteWantUnavailable(t, p, err, "unusable")
		remoteWantKind(t, err, RemoteNoEndpoint)
	})
	t.Run("discovery down", func(t *testing.T) {
		issuer := "http://" + testutil.ClosedAddr(t) + "/oauth2/default"
		r := newRemote(t, newDisc(t, issuer, Metadata{}), issuer)
		p, err := r.Validate(context.Background(), []byte(remoteTestToken))
		ue := remoteWantUnavailable(t, p, err, "cannot find the introspection endpoint")
		remoteWantKind(t, err, RemoteNoEndpoint)
		if ue.RetryAfter <= 0 {
			t.Errorf("RetryAfter %v, want > 0", ue.RetryAfter)
		}
	})
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("%d introspection calls, want 4", n)
	}
}

func TestNewRemoteConfig(t *testing.T) {
	valid := func() RemoteConfig {
		return RemoteConfig{
			Issuer: remoteTestIssuer, Audience: remoteTestAudience,
			Endpoint: "https://as.example.com/v1/introspect", ClientID: "id", ClientSecret: "secret",
		}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*RemoteConfig)
		wantErr string // "" means NewRemote succeeds
	}{
		{"valid", func(*RemoteConfig) {}, ""},
		{"post", func(c *RemoteConfig) { c.AuthMethod = AuthMethodClientSecretPost }, ""},
		{"discovery only", func(c *RemoteConfig) { c.Endpoint, c.Discovery = "", &Discovery{} }, ""},
		{"no issuer", func(c *RemoteConfig) { c.Issuer = "" }, "Issuer is required"},
		{"no audience", func(c *RemoteConfig) { c.Audience = "" }, "Audience is required"},
		{"no client id", func(c *RemoteConfig) { c.ClientID = "" }, "ClientID and ClientSecret"},
		{"no secret", func(c *RemoteConfig) { c.ClientSecret = "" }, "ClientID and ClientSecret"},
		{"no endpoint nor discovery", func(c *RemoteConfig) { c.Endpoint = "" }, "set Endpoint or Discovery"},
		{"unknown auth method", func(c *RemoteConfig) { c.AuthMethod = "private_key_jwt" }, "AuthMethod"},
		{"ftp endpoint", func(c *RemoteConfig) { c.Endpoint = "ftp://as.example.com/x" }, "scheme"},
		{"relative endpoint", func(c *RemoteConfig) { c.Endpoint = "/v1/introspect" }, "scheme"},
		{"no host", func(c *RemoteConfig) { c.Endpoint = "https:///v1/introspect" }, "no host"},
		{"credentials in URL", func(c *RemoteConfig) { c.Endpoint = "https://u:p@as.example.com/x" }, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.edit(&cfg)
			r, err := NewRemote(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewRemote: %v", err)
			case tc.wantErr == "" && r == nil:
				t.Fatal("NewRemote returned nil")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("NewRemote error %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr != "" && !strings.HasPrefix(err.Error(), "auth: "):
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestRemotePlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		warn     bool
	}{
		{"http://as.internal:4445/admin/oauth2/introspect", true},
		{"https://as.example.com/v1/introspect", false},
		{"http://127.0.0.1:9000/v1/introspect", false},
		{"http://[::1]:9000/v1/introspect", false},
		{"http://localhost/v1/introspect", false},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			_, err := NewRemote(RemoteConfig{
				Issuer: remoteTestIssuer, Audience: remoteTestAudience, Endpoint: tc.endpoint,
				ClientID: "id", ClientSecret: "secret", Logger: zap.New(core),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := logs.Len() == 1; got != tc.warn {
				t.Fatalf("warned %v, want %v", got, tc.warn)
			}
		})
	}
}

func TestIntrospectRetryAfterParsing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"zero", map[string]string{"Retry-After": "0"}, time.Second},
		{"seconds with spaces", map[string]string{"Retry-After": " 12 "}, 12 * time.Second},
		{"negative", map[string]string{"Retry-After": "-5"}, 0},
		{"date in the past", map[string]string{"Retry-After": remoteT0.Add(-time.Hour).UTC().Format(http.TimeFormat)}, time.Second},
		{"date, RFC 850", map[string]string{"Retry-After": remoteT0.Add(10 * time.Second).UTC().Format(time.RFC850)}, 10 * time.Second},
		{"far date is capped", map[string]string{"Retry-After": remoteT0.Add(48 * time.Hour).UTC().Format(http.TimeFormat)}, RemoteMaxRetryAfter},
		{"reset far away is capped", map[string]string{"X-Rate-Limit-Reset": remoteUnix(48 * time.Hour)}, RemoteMaxRetryAfter},
		{"reset huge", map[string]string{"X-Rate-Limit-Reset": "999999999999999999999"}, RemoteMaxRetryAfter},
		{"reset garbage", map[string]string{"X-Rate-Limit-Reset": "tomorrow"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.ResponseHeader
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if got := introspectRetryAfter(&h, remoteT0); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
