package auth

import (
	"encoding/json"
	"testing"
)

// TestSenderConstrainedTokensRefused: a token bound to a key by "cnf"
// (RFC 9449 DPoP: jkt; RFC 8705 mutual TLS: x5t#S256) is only as good as
// the proof of possession that must come with it, and tokengate checks
// none. Remote already refused DPoP-bound tokens by their token_type; Local
// accepted the same token as a plain bearer token, so a stolen DPoP token
// could be replayed in local mode. Every validator now refuses a "cnf"
// with ReasonTokenType.
func TestSenderConstrainedTokensRefused(t *testing.T) {
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	t.Run("DPoP, every validator", reasonCase{
		"DPoP-bound", ErrTokenType,
		map[string]any{"cnf": map[string]any{"jkt": jkt}},
		`{"active":true,"token_type":"DPoP","cnf":{"jkt":"` + jkt + `"}}`,
	}.run)
	t.Run("mutual TLS, every validator", reasonCase{
		"certificate-bound", ErrTokenType,
		map[string]any{"cnf": map[string]any{"x5t#S256": jkt}},
		`{"active":true,"token_type":"Bearer","cnf":{"x5t#S256":"` + jkt + `"}}`,
	}.run)

	f := newLocalFixture(t, nil)
	for _, tc := range []struct {
		name string
		cnf  any
		want error
	}{
		{"cnf null is no binding", json.RawMessage("null"), nil},
		{"empty cnf object", map[string]any{}, ErrTokenType},
		{"cnf of another shape", "x", ErrTokenType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.local.Validate(t.Context(), []byte(f.mint(t, f.keys.rsa, map[string]any{"cnf": tc.cnf})))
			checkReason(t, err, tc.want)
		})
	}
	t.Run("remote, cnf null", func(t *testing.T) {
		fake := newRemoteFake(t, remoteFakeBody(`{"active":true,"cnf":null}`))
		r := newRemoteTest(t, fake.url(), nil)
		if _, err := r.Validate(t.Context(), []byte(remoteTestToken)); err != nil {
			t.Fatalf("cnf null: %v", err)
		}
	})
}

// TestDecodeClaimsCnf: the one-pass reader and go-jose agree on "cnf".
func TestDecodeClaimsCnf(t *testing.T) {
	for _, tc := range []struct {
		payload     string
		fast, bound bool
	}{
		{`{"iss":"i","cnf":{"jkt":"x"}}`, true, true},
		{`{"cnf":{"x5t#S256":"x"},"iss":"i"}`, true, true},
		{`{"cnf":null}`, true, false},
		{`{"cnf":{}}`, true, true},
		{`{"cnf":0}`, true, true},
		{`{"iss":"i"}`, true, false},
		{`{"cnf":{"jkt":"\u0078"}}`, true, true},
		{`{"cnf":{"jkt":"x"},"sub":"a\u0062"}`, false, true},
	} {
		if fast := checkDecodeClaimsAgrees(t, []byte(tc.payload)); fast != tc.fast {
			t.Errorf("%s: one-pass reader took it: %v, want %v", tc.payload, fast, tc.fast)
		}
		var c claimSet
		if err := decodeClaims([]byte(tc.payload), &c); err != nil {
			t.Fatalf("%s: %v", tc.payload, err)
		}
		if c.bound != tc.bound {
			t.Errorf("%s: bound = %v, want %v", tc.payload, c.bound, tc.bound)
		}
	}
	for _, bad := range []string{`{"cnf":nul}`, `{"cnf":{"a":1},"cnf":null}`} {
		var c claimSet
		if err := decodeClaims([]byte(bad), &c); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
