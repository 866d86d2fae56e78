package auth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// hybridFakeLocal is a test Validator standing in for *Local.
type hybridFakeLocal struct {
	calls atomic.Int64
	p     *Principal
	err   error
}

func (l *hybridFakeLocal) Validate(context.Context, []byte) (*Principal, error) {
	l.calls.Add(1)
	return l.p, l.err
}

// hybridCase runs a Hybrid over a fake local validator and a real Remote
// against the fake introspection endpoint.
type hybridCase struct {
	name     string
	localErr error
	reply    remoteReply
	calls    int64  // introspection calls expected
	invalid  error  // expected *TokenError reason sentinel
	unavail  string // expected *UnavailableError reason substring
	sameErr  bool   // the local error comes back as is
}

func (tc hybridCase) run(t *testing.T) {
	f := newRemoteFake(t, func(string) remoteReply { return tc.reply })
	remote := newRemoteTest(t, f.url(), nil)
	localP := &Principal{Subject: "svc", ClientID: "app", Issuer: remoteTestIssuer, Scopes: []string{"items"}}
	local := &hybridFakeLocal{p: localP, err: tc.localErr}
	if tc.localErr != nil {
		local.p = nil
	}
	h := NewHybrid(local, remote)

	p, err := h.Validate(context.Background(), []byte(remoteTestToken))
	if local.calls.Load() != 1 {
		t.Fatalf("local calls %d, want 1", local.calls.Load())
	}
	if n := f.calls.Load(); n != tc.calls {
		t.Fatalf("introspection calls %d, want %d", n, tc.calls)
	}
	switch {
	case tc.sameErr:
		if p != nil || err != tc.localErr {
			t.Fatalf("got (%v, %v), want the local error %v unchanged", p, err, tc.localErr)
		}
	case tc.invalid != nil:
		remoteWantInvalid(t, p, err, tc.invalid)
	case tc.unavail != "":
		remoteWantUnavailable(t, p, err, tc.unavail)
	default:
		if err != nil || p != localP {
			t.Fatalf("got (%v, %v), want the local principal", p, err)
		}
	}
}

func TestHybrid(t *testing.T) {
	active := remoteReply{body: `{"active":true,"scope":"other"}`}
	for _, tc := range []hybridCase{
		{
			name: "locally invalid never reaches the server", localErr: Invalid(ReasonSignature),
			reply: active, calls: 0, sameErr: true,
		},
		{
			name:     "keys unavailable never reaches the server",
			localErr: &UnavailableError{Reason: "keys not loaded"},
			reply:    active, calls: 0, sameErr: true,
		},
		{name: "valid and active: the local principal", reply: active, calls: 1},
		{name: "revoked", reply: remoteReply{body: `{"active":false}`}, calls: 1, invalid: ErrInactive},
		{name: "remote down", reply: remoteReply{status: 500}, calls: 1, unavail: "returned 500"},
		{
			name: "remote rate limited", calls: 1, unavail: "(429)",
			reply: remoteReply{status: 429, header: map[string]string{"Retry-After": "3"}},
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestHybridRevalidator(t *testing.T) {
	local, remote := &hybridFakeLocal{}, &hybridFakeLocal{err: Invalid(ReasonInactive)}
	h := NewHybrid(local, remote)
	if h.Revalidator() != Validator(remote) {
		t.Fatal("Revalidator is not the remote validator")
	}
	_, err := h.Revalidator().Validate(context.Background(), []byte("t"))
	if !errors.Is(err, ErrInvalidToken) || local.calls.Load() != 0 {
		t.Fatalf("revalidation: err %v, local calls %d", err, local.calls.Load())
	}
}

func TestNewHybridNil(t *testing.T) {
	for _, tc := range []struct {
		name          string
		local, remote Validator
	}{
		{"nil local", nil, &hybridFakeLocal{}},
		{"nil remote", &hybridFakeLocal{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewHybrid accepted a nil validator")
				}
			}()
			NewHybrid(tc.local, tc.remote)
		})
	}
}
