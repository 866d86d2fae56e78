package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

// FuzzRemoteParse feeds arbitrary 200 bodies to the introspection response
// parser. It must never panic, must return exactly one of a Principal, a
// *TokenError or an *UnavailableError, and must never accept a token unless
// the body is one JSON object whose only "active" member is the literal
// true and whose exp, iss and aud (when present) pass.
func FuzzRemoteParse(f *testing.F) {
	exp := remoteUnix(time.Hour)
	for _, seed := range []string{
		`{"active":true}`,
		`{"active":false}`,
		`{"active":"true"}`,
		`{"active":1}`,
		`{"active":null}`,
		`{}`,
		`{"Active":true}`,
		`{"active":false,"active":true}`,
		`{"active":true} {"active":true}`,
		`{"active":true}x`,
		`[true]`,
		`true`,
		``,
		`{"active":true,"exp":` + exp + `,"iat":1,"iss":"` + remoteTestIssuer + `","aud":["` + remoteTestAudience +
			`"],"scope":"a b","client_id":"c","sub":"s","jti":"j","token_type":"Bearer"}`,
		`{"active":true,"exp":1}`,
		`{"active":true,"exp":1e999}`,
		`{"active":true,"exp":-1e18}`,
		`{"active":true,"exp":"` + exp + `"}`,
		`{"active":true,"aud":"api://other"}`,
		`{"active":true,"scp":["a",1]}`,
		`{"active":true,"scope":"\u0000 \ud800"}`,
		`{"active":true,"x":[[[[[[[[[[]]]]]]]]]]}`,
		"{\"active\":true,\"sub\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	r, err := NewRemote(RemoteConfig{
		Issuer: remoteTestIssuer, Audience: remoteTestAudience, Endpoint: "https://as.example.com/introspect",
		ClientID: "id", ClientSecret: "secret", AllowedClients: nil, Now: remoteTestNow,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := r.introspectVerdict(body, remoteT0)
		invalid, unavailable := errors.Is(err, ErrInvalidToken), errors.Is(err, ErrUnavailable)
		switch {
		case p == nil && err == nil:
			t.Fatal("neither principal nor error")
		case p != nil && err != nil:
			t.Fatalf("both principal and error %v", err)
		case err != nil && invalid == unavailable:
			t.Fatalf("error %v is not exactly one of invalid and unavailable", err)
		case err != nil:
			var te *TokenError
			var ue *UnavailableError
			if invalid && !errors.As(err, &te) || unavailable && !errors.As(err, &ue) {
				t.Fatalf("error %v is not a typed error", err)
			}
			return
		}

		// Accepted: check independently that the body says so.
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		if !bytes.Equal(bytes.TrimSpace(m["active"]), []byte("true")) {
			t.Fatalf("accepted with active %q: %q", m["active"], body)
		}
		if !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(remoteT0) {
			t.Fatalf("accepted with exp %v", p.ExpiresAt)
		}
		if _, ok := m["exp"]; ok && string(m["exp"]) != "null" && p.ExpiresAt.IsZero() {
			t.Fatalf("accepted with an exp that was not applied: %q", body)
		}
		if p.Issuer != remoteTestIssuer {
			t.Fatalf("accepted issuer %q", p.Issuer)
		}
		if p.Audience != nil && !slices.Contains(p.Audience, remoteTestAudience) {
			t.Fatalf("accepted audience %q", p.Audience)
		}
	})
}
