package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokengate/tokengate/auth"
)

// fakeIssuer is one issuer's validator: it counts its calls and answers
// with its principal, or err.
type fakeIssuer struct {
	iss   string
	names string // the Issuer it puts in its principals; "" for iss
	err   error
	calls atomic.Int64
}

func (f *fakeIssuer) Validate(context.Context, []byte) (*auth.Principal, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	if f.names != "" {
		return &auth.Principal{Subject: "s", Issuer: f.names}, nil
	}
	return &auth.Principal{Subject: "s", Issuer: f.iss}, nil
}

// unsignedJWT builds header.payload.sig with payload as the claims; the
// signature is junk (Multi verifies nothing).
func unsignedJWT(payload string) []byte {
	enc := base64.RawURLEncoding
	return []byte(enc.EncodeToString([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln")
}

var errDown = &auth.UnavailableError{Reason: "down"}

type multiCase struct {
	name     string
	issuers  []*fakeIssuer // a, b, c, ...: named by position
	opaque   []bool
	maxTries int
	token    []byte
	wantIss  string  // the principal's issuer; "" when refused
	wantErr  error   // errors.Is target when refused
	calls    []int64 // calls per issuer
}

func (tc multiCase) run(t *testing.T) {
	cfg := auth.MultiConfig{MaxOpaqueTries: tc.maxTries}
	for i, f := range tc.issuers {
		cfg.Issuers = append(cfg.Issuers, auth.MultiIssuer{
			Name: string(rune('a' + i)), Issuer: f.iss, Validator: f, Opaque: i < len(tc.opaque) && tc.opaque[i],
		})
	}
	m, err := auth.NewMulti(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Validate(context.Background(), tc.token)
	switch {
	case tc.wantIss != "" && (err != nil || p.Issuer != tc.wantIss):
		t.Errorf("got %+v, %v; want issuer %s", p, err, tc.wantIss)
	case tc.wantIss == "" && !errors.Is(err, tc.wantErr):
		t.Errorf("got %+v, %v; want %v", p, err, tc.wantErr)
	}
	for i, want := range tc.calls {
		if got := tc.issuers[i].calls.Load(); got != want {
			t.Errorf("issuer %d asked %d times, want %d", i, got, want)
		}
	}
}

func TestMulti(t *testing.T) {
	const A, B, C = "https://a.example", "https://b.example", "https://c.example"
	iss := func(s string) *fakeIssuer { return &fakeIssuer{iss: s} }
	failing := func(s string, err error) *fakeIssuer { return &fakeIssuer{iss: s, err: err} }
	inactive := auth.Invalid(auth.ReasonInactive)
	for _, tc := range []multiCase{
		{name: "iss picks the issuer", issuers: []*fakeIssuer{iss(A), iss(B)},
			token: unsignedJWT(`{"iss":"` + B + `","sub":"x"}`), wantIss: B, calls: []int64{0, 1}},
		{name: "unknown iss: refused without asking anyone", issuers: []*fakeIssuer{iss(A), iss(B)},
			token: unsignedJWT(`{"iss":"https://evil.example"}`), wantErr: auth.ErrIssuer, calls: []int64{0, 0}},
		{name: "no iss", issuers: []*fakeIssuer{iss(A)},
			token: unsignedJWT(`{"sub":"x"}`), wantErr: auth.ErrIssuer, calls: []int64{0}},
		{name: "iss is matched exactly, case included", issuers: []*fakeIssuer{iss(A)},
			token: unsignedJWT(`{"ISS":"` + A + `"}`), wantErr: auth.ErrIssuer, calls: []int64{0}},
		{name: "payload not JSON", issuers: []*fakeIssuer{iss(A)},
			token: []byte("eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"), wantErr: auth.ErrMalformed, calls: []int64{0}},
		{name: "payload not base64url", issuers: []*fakeIssuer{iss(A)},
			token: []byte("a.b*c.d"), wantErr: auth.ErrMalformed, calls: []int64{0}},
		{name: "a validator that names another issuer is refused", issuers: []*fakeIssuer{{iss: A, names: B}},
			token: unsignedJWT(`{"iss":"` + A + `"}`), wantErr: auth.ErrIssuer, calls: []int64{1}},
		{name: "the chosen issuer's refusal stands", issuers: []*fakeIssuer{failing(A, inactive), iss(B)},
			token: unsignedJWT(`{"iss":"` + A + `"}`), wantErr: auth.ErrInactive, calls: []int64{1, 0}},
		{name: "opaque: first active wins, in order", issuers: []*fakeIssuer{failing(A, inactive), iss(B), iss(C)}, opaque: []bool{true, true, true}, maxTries: 3,
			token: []byte("opaque-token"), wantIss: B, calls: []int64{1, 1, 0}},
		{name: "opaque: only opaque issuers are asked", issuers: []*fakeIssuer{iss(A), iss(B)}, opaque: []bool{false, true},
			token: []byte("opaque-token"), wantIss: B, calls: []int64{0, 1}},
		{name: "opaque: at most MaxOpaqueTries asked", issuers: []*fakeIssuer{failing(A, inactive), failing(B, inactive), iss(C)}, opaque: []bool{true, true, true}, maxTries: 2,
			token: []byte("opaque-token"), wantErr: auth.ErrInactive, calls: []int64{1, 1, 0}},
		{name: "opaque: one issuer down makes it 503, not 401", issuers: []*fakeIssuer{failing(A, errDown), failing(B, inactive)}, opaque: []bool{true, true},
			token: []byte("opaque-token"), wantErr: auth.ErrUnavailable, calls: []int64{1, 1}},
		{name: "opaque: one issuer down, the next finds it", issuers: []*fakeIssuer{failing(A, errDown), iss(B)}, opaque: []bool{true, true},
			token: []byte("opaque-token"), wantIss: B, calls: []int64{1, 1}},
		{name: "opaque: three segments without a JWS header (PASETO)", issuers: []*fakeIssuer{iss(A), iss(B)}, opaque: []bool{false, true},
			token: []byte("v4.local.c2VjcmV0LXBheWxvYWQtYnl0ZXM"), wantIss: B, calls: []int64{0, 1}},
		{name: "a JWS header with white space before its brace is a JWT", issuers: []*fakeIssuer{iss(A), iss(B)}, opaque: []bool{false, true},
			token:   []byte(base64.RawURLEncoding.EncodeToString([]byte(" \n{\"alg\":\"RS256\"}")) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+A+`"}`)) + ".c2ln"),
			wantIss: A, calls: []int64{1, 0}},
		{name: "opaque without opaque issuers", issuers: []*fakeIssuer{iss(A)},
			token: []byte("opaque-token"), wantErr: auth.ErrMalformed, calls: []int64{0}},
		{name: "too large", issuers: []*fakeIssuer{iss(A)},
			token: []byte(strings.Repeat("a", 9000)), wantErr: auth.ErrTokenTooLarge, calls: []int64{0}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestMultiReady(t *testing.T) {
	down := errors.New("keys not loaded")
	mk := func(readyA, readyB error) *auth.Multi {
		m, err := auth.NewMulti(auth.MultiConfig{Issuers: []auth.MultiIssuer{
			{Name: "a", Issuer: "https://a", Validator: &fakeIssuer{}, Ready: func() error { return readyA }},
			{Name: "b", Issuer: "https://b", Validator: &fakeIssuer{}, Ready: func() error { return readyB }},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := mk(down, nil).Ready(); err != nil {
		t.Errorf("one issuer ready: %v", err)
	}
	err := mk(down, down).Ready()
	if err == nil || !strings.Contains(err.Error(), "issuer a") || !strings.Contains(err.Error(), "issuer b") {
		t.Errorf("none ready: %v", err)
	}
	m := string(mk(down, nil).AppendMetrics(nil))
	for _, want := range []string{`tokengate_issuer_ready{issuer="a"} 0`, `tokengate_issuer_ready{issuer="b"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
}

func TestNewMultiRejects(t *testing.T) {
	v := &fakeIssuer{}
	for _, cfg := range []auth.MultiConfig{
		{},
		{Issuers: []auth.MultiIssuer{{Name: "a", Issuer: "https://a"}}},
		{Issuers: []auth.MultiIssuer{{Name: "a", Issuer: "https://a", Validator: v}, {Name: "a", Issuer: "https://b", Validator: v}}},
		{Issuers: []auth.MultiIssuer{{Name: "a", Issuer: "https://a", Validator: v}, {Name: "b", Issuer: "https://a", Validator: v}}},
	} {
		if _, err := auth.NewMulti(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
