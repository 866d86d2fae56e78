//go:build !race

package policy

import (
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
)

// TestHotPathDoesNotAllocate guards what a decision endpoint does per
// request: normalise into a buffer with room, match, decide, render every
// claim header into a buffer with room, read the holder.
func TestHotPathDoesNotAllocate(t *testing.T) {
	p := benchPolicy(t)
	h := NewHolder(p, nil)
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	pr := &auth.Principal{
		Subject: "alice", ClientID: "0oa1", Issuer: "https://okta.example/", Audience: []string{"api://a", "api://b"},
		Scopes: []string{"r19", "w19"}, TokenID: "j", ExpiresAt: exp, IssuedAt: exp,
	}
	raw := []byte("/api/v19//items/./%2e%2e/items/42?x=1")
	host, method := []byte("api.example.com:443"), []byte("GET")
	pathBuf := make([]byte, 0, 256)
	valBuf := make([]byte, 0, 256)
	claims := []Claim{ClaimSubject, ClaimClientID, ClaimScope, ClaimIssuer, ClaimAudience, ClaimTokenID, ClaimExpiresAt, ClaimIssuedAt}

	cases := []struct {
		name string
		fn   func()
	}{
		{name: "Normalize", fn: func() {
			if _, err := Normalize(pathBuf[:0], raw); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Normalize refusing", fn: func() {
			if _, err := Normalize(pathBuf[:0], []byte("/a%2Fb")); err == nil {
				t.Fatal("no error")
			}
		}},
		{name: "Match last route", fn: func() {
			if r := p.Match(host, method, []byte("/api/v19/items/42")); r.Index != 38 {
				t.Fatalf("route %d", r.Index)
			}
		}},
		{name: "Match default", fn: func() {
			if r := p.Match(host, method, []byte("/nowhere")); r.Index != -1 {
				t.Fatalf("route %d", r.Index)
			}
		}},
		{name: "Decide", fn: func() {
			if o, _ := p.routes[38].Decide(pr); o != Allowed {
				t.Fatalf("outcome %v", o)
			}
		}},
		{name: "AppendClaim every claim", fn: func() {
			for _, c := range claims {
				if _, err := AppendClaim(valBuf[:0], c, pr); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "AppendClaim refusing", fn: func() {
			if _, err := AppendClaim(valBuf[:0], ClaimSubject, &auth.Principal{Subject: "a\n"}); err == nil {
				t.Fatal("no error")
			}
		}},
		{name: "Holder", fn: func() { _, _, _ = h.Load(), h.LoadedAt(), h.Rules() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(1000, tc.fn); allocs != 0 {
				t.Errorf("%s allocates %v times per run, want 0", tc.name, allocs)
			}
		})
	}
}
