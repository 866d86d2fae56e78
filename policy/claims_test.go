package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
)

func TestAppendClaim(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	full := &auth.Principal{
		Subject: "alice", ClientID: "0oa1", Issuer: "https://okta.example/", Audience: []string{"api://a", "api://b"},
		Scopes: []string{"items:read", "items:write"}, TokenID: "jti-1", ExpiresAt: exp, IssuedAt: exp.Add(-time.Hour),
	}
	long := strings.Repeat("x", MaxClaimValue)
	cases := []struct {
		name    string
		claim   Claim
		p       *auth.Principal
		want    string
		wantErr error
	}{
		{name: "sub", claim: ClaimSubject, p: full, want: "alice"},
		{name: "client_id", claim: ClaimClientID, p: full, want: "0oa1"},
		{name: "iss", claim: ClaimIssuer, p: full, want: "https://okta.example/"},
		{name: "jti", claim: ClaimTokenID, p: full, want: "jti-1"},
		{name: "scopes space-joined", claim: ClaimScope, p: full, want: "items:read items:write"},
		{name: "aud space-joined", claim: ClaimAudience, p: full, want: "api://a api://b"},
		{name: "exp unix seconds", claim: ClaimExpiresAt, p: full, want: "1893553445"},
		{name: "iat unix seconds", claim: ClaimIssuedAt, p: full, want: "1893549845"},
		{name: "UTF-8 passes", claim: ClaimSubject, p: &auth.Principal{Subject: "zoë"}, want: "zoë"},
		{name: "inner space in a string passes", claim: ClaimSubject, p: &auth.Principal{Subject: "a b"}, want: "a b"},
		{name: "exactly the maximum", claim: ClaimSubject, p: &auth.Principal{Subject: long}, want: long},
		{name: "one scope", claim: ClaimScope, p: &auth.Principal{Scopes: []string{"a"}}, want: "a"},

		{name: "no principal", claim: ClaimSubject, wantErr: ErrClaimAbsent},
		{name: "empty sub", claim: ClaimSubject, p: &auth.Principal{}, wantErr: ErrClaimAbsent},
		{name: "no scopes", claim: ClaimScope, p: &auth.Principal{}, wantErr: ErrClaimAbsent},
		{name: "no exp", claim: ClaimExpiresAt, p: &auth.Principal{}, wantErr: ErrClaimAbsent},
		{name: "unknown claim", claim: Claim(0), p: full, wantErr: ErrClaimAbsent},

		{name: "CRLF", claim: ClaimSubject, p: &auth.Principal{Subject: "a\r\nX-Admin: 1"}, wantErr: ErrClaimUnsafe},
		{name: "LF", claim: ClaimSubject, p: &auth.Principal{Subject: "a\nb"}, wantErr: ErrClaimUnsafe},
		{name: "NUL", claim: ClaimClientID, p: &auth.Principal{ClientID: "a\x00"}, wantErr: ErrClaimUnsafe},
		{name: "tab", claim: ClaimTokenID, p: &auth.Principal{TokenID: "a\tb"}, wantErr: ErrClaimUnsafe},
		{name: "DEL", claim: ClaimIssuer, p: &auth.Principal{Issuer: "a\x7f"}, wantErr: ErrClaimUnsafe},
		{name: "leading space", claim: ClaimSubject, p: &auth.Principal{Subject: " admin"}, wantErr: ErrClaimUnsafe},
		{name: "trailing space", claim: ClaimSubject, p: &auth.Principal{Subject: "admin "}, wantErr: ErrClaimUnsafe},
		{name: "scope with a space", claim: ClaimScope, p: &auth.Principal{Scopes: []string{"read", "x admin"}}, wantErr: ErrClaimUnsafe},
		{name: "empty scope", claim: ClaimScope, p: &auth.Principal{Scopes: []string{"read", ""}}, wantErr: ErrClaimUnsafe},
		{name: "aud with LF", claim: ClaimAudience, p: &auth.Principal{Audience: []string{"a\n"}}, wantErr: ErrClaimUnsafe},
		{name: "over the maximum", claim: ClaimSubject, p: &auth.Principal{Subject: long + "x"}, wantErr: ErrClaimTooLong},
		{name: "list over the maximum", claim: ClaimScope, p: &auth.Principal{Scopes: []string{long[1:], "x"}}, wantErr: ErrClaimTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix:")
			got, err := AppendClaim(dst, tc.claim, tc.p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			want := "prefix:" + tc.want
			if string(got) != want {
				t.Errorf("AppendClaim = %q, want %q", got, want)
			}
		})
	}
}

// TestHeaderKeys checks that HeaderKeys is Headers' names in canonical
// form, index for index, for the default policy and for a file whose
// names are spelled in any case.
func TestHeaderKeys(t *testing.T) {
	cases := []struct {
		name string
		p    *Policy
		want []string
	}{
		{"default", Default("items"), []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scopes"}},
		{"file", mustParse(t, "headers:\n  x-auth-SUBJECT: sub\n  X-AUTH-SCOPES: scope\n  x_user: sub\n  Remote-User-Id9: client_id\n"),
			[]string{"X-Auth-Subject", "X-Auth-Scopes", "X_user", "Remote-User-Id9"}},
		{"no headers", mustParse(t, "headers: {}\n"), []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, hs := tc.p.HeaderKeys(), tc.p.Headers()
			if len(keys) != len(tc.want) || len(hs) != len(tc.want) {
				t.Fatalf("%d keys for %d headers, want %d", len(keys), len(hs), len(tc.want))
			}
			for i, k := range keys {
				if string(k) != tc.want[i] || !strings.EqualFold(string(k), hs[i].Name) {
					t.Errorf("key %d = %q for header %q, want %q", i, k, hs[i].Name, tc.want[i])
				}
			}
		})
	}
}
