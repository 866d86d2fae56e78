package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func FuzzParseBearer(f *testing.F) {
	for _, seed := range []string{
		"", "Bearer", "Bearer ", "bearer abc", "BEARER\tabc.def.ghi ", "Basic Zm9vOmJhcg==",
		"Bearerabc", " \t Bearer  x", "Bearer a b", "Bear", "\x00Bearer x", "Bearer \xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, header []byte) {
		orig := bytes.Clone(header)
		tok, err := ParseBearer(header)
		if !bytes.Equal(header, orig) {
			t.Fatal("ParseBearer modified its input")
		}
		if ref, refErr := parseBearerWithTrim(header); !bytes.Equal(tok, ref) || !errors.Is(err, refErr) {
			t.Fatalf("ParseBearer(%q) = %q, %v; with bytes.Trim %q, %v", header, tok, err, ref, refErr)
		}
		if err != nil {
			if tok != nil {
				t.Fatalf("token %q with error %v", tok, err)
			}
			if !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(tok) == 0 {
			t.Fatal("empty token without an error")
		}
		if tok[0] == ' ' || tok[0] == '\t' || tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t' {
			t.Fatalf("token %q is not trimmed", tok)
		}
		if !bytes.Contains(header, tok) {
			t.Fatalf("token %q is not part of the header", tok)
		}
		scheme := bytes.TrimLeft(header, " \t")[:6]
		if !strings.EqualFold(string(scheme), "bearer") {
			t.Fatalf("accepted scheme %q", scheme)
		}
	})
}

// parseBearerWithTrim is ParseBearer as written with bytes.TrimLeft and
// bytes.Trim, which it must agree with.
func parseBearerWithTrim(header []byte) ([]byte, error) {
	h := bytes.TrimLeft(header, " \t")
	switch {
	case len(h) < len("bearer") || !strings.EqualFold(string(h[:len("bearer")]), "bearer"):
		return nil, ErrNoToken
	case len(h) == len("bearer"):
		return nil, errEmptyBearer
	case h[len("bearer")] != ' ' && h[len("bearer")] != '\t':
		return nil, ErrNoToken
	}
	if tok := bytes.Trim(h[len("bearer"):], " \t"); len(tok) > 0 {
		return tok, nil
	}
	return nil, errEmptyBearer
}

// FuzzLocalValidate feeds arbitrary bytes to a Local validator whose key
// set is loaded: it must never panic and never accept them.
func FuzzLocalValidate(f *testing.F) {
	fx := newLocalFixture(f, nil)
	k := fx.keys
	payload, _ := json.Marshal(fx.claims(nil))
	for _, seed := range []string{
		"",
		strings.Repeat(".", 4096),
		"a.b.c",
		"a.b.c.d.e",
		"eyJhbGciOiJub25lIn0.e30.",
		unsignedToken(`{"alg":"none","kid":"rsa-1"}`, fx.claims(nil), ""),
		unsignedToken(`{"alg":"RS256","kid":"rsa-1","crit":["exp"]}`, fx.claims(nil), "c2ln"),
		unsignedToken(`{"alg":"RS256","kid":"rsa-1","jku":"http://127.0.0.1:1/"}`, fx.claims(nil), "c2ln"),
		unsignedToken(`{"alg":"ES256","kid":"rsa-1"}`, fx.claims(nil), "c2ln"),
		unsignedToken(`{"alg":"RS256"}`, fx.claims(nil), "c2ln"),
		`{"payload":"e30","signature":"c2ln","protected":"eyJhbGciOiJSUzI1NiJ9"}`,
		// Well-formed tokens whose signatures do not verify.
		sign(f, signingKey{k.rsa.kid, k.attacker.alg, k.attacker.priv}, payload, nil, false),
		sign(f, k.attackerEd, payload, nil, false),
		sign(f, k.attacker, payload, &jose.SignerOptions{EmbedJWK: true}, false),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, token []byte) {
		p, err := fx.local.Validate(t.Context(), token)
		if p != nil || err == nil {
			t.Fatalf("accepted %q: %+v", token, p)
		}
		if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("error %v is neither invalid nor unavailable", err)
		}
	})
}

// FuzzLocalClaims signs arbitrary claim bytes with a trusted key, to fuzz
// the claims decoder and checks behind the signature: no panic, and
// anything accepted satisfies every claim rule.
func FuzzLocalClaims(f *testing.F) {
	fx := newLocalFixture(f, nil)
	good, _ := json.Marshal(fx.claims(nil))
	for _, seed := range []string{
		string(good),
		`{}`, `[]`, `null`, `"str"`, `{"exp":1e400}`, `{"exp":-1e20}`, `{"aud":[1]}`,
		`{"scp":{"a":1}}`, `{"scp":"a b"}`, `{"scope":7}`, `{"iss":"a","iss":"b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, claims []byte) {
		tok := sign(t, fx.keys.ed, claims, nil, false)
		p, err := fx.local.Validate(t.Context(), []byte(tok))
		if err != nil {
			if p != nil {
				t.Fatal("Principal with an error")
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			return
		}
		now := fx.clock.Now()
		switch {
		case p.Issuer != fx.iss.issuer:
			t.Fatalf("accepted issuer %q", p.Issuer)
		case !slices.Contains(p.Audience, testAudience):
			t.Fatalf("accepted audience %q", p.Audience)
		case p.ExpiresAt.IsZero() || !now.Before(p.ExpiresAt.Add(time.Minute)):
			t.Fatalf("accepted expiry %v at %v", p.ExpiresAt, now)
		case !p.IssuedAt.IsZero() && now.Add(time.Minute).Before(p.IssuedAt):
			t.Fatalf("accepted iat %v at %v", p.IssuedAt, now)
		case !slices.Contains([]string{"client-a", "client-b"}, p.ClientID):
			t.Fatalf("accepted client %q", p.ClientID)
		}
	})
}
