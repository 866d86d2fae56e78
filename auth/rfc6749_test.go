package auth_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/auth"
)

func TestValidScopeToken(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{"items", true},
		{"read:items", true},
		{"https://api.example.com/items.read", true},
		{"!#[]~", true},
		{"", false},
		{"read items", false},
		{"a\tb", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a\x7f", false},
		{"a\x00", false},
		{"ü", false},
		{"a\u00a0b", false},
	}
	for _, tc := range cases {
		if got := auth.ValidScopeToken(tc.s); got != tc.want {
			t.Errorf("ValidScopeToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	// Byte by byte against the grammar as RFC 6749 writes it.
	for b := 0; b < 256; b++ {
		want := b == 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e)
		if got := auth.ValidScopeToken(string([]byte{byte(b)})); got != want {
			t.Errorf("byte %#x: %v, want %v", b, got, want)
		}
	}
}

// basicCase is one Authorization header and what ParseBasicAuthorization
// makes of it.
type basicCase struct {
	name       string
	header     string
	id, secret string
	err        error
}

func (tc basicCase) run(t *testing.T) {
	id, secret, err := auth.ParseBasicAuthorization([]byte(tc.header))
	if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
		t.Fatalf("error %v, want %v", err, tc.err)
	}
	if id != tc.id || secret != tc.secret {
		t.Fatalf("got %q/%q, want %q/%q", id, secret, tc.id, tc.secret)
	}
}

func TestParseBasicAuthorization(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []basicCase{
		{name: "plain", header: "Basic " + b64("dev-client:dev-secret"), id: "dev-client", secret: "dev-secret"},
		{name: "encoded by BasicAuthorization", header: auth.BasicAuthorization("my client", "p@ss:w+rd%"), id: "my client", secret: "p@ss:w+rd%"},
		{name: "scheme in any case, extra blanks", header: " \tbASIC \t " + b64("a:b") + " \t", id: "a", secret: "b"},
		{name: "tab after the scheme", header: "Basic\t" + b64("a:b"), id: "a", secret: "b"},
		{name: "unpadded", header: "Basic " + base64.RawStdEncoding.EncodeToString([]byte("a:bc")), id: "a", secret: "bc"},
		{name: "not form-encoded (curl -u)", header: "Basic " + b64("a%zz:50%"), id: "a%zz", secret: "50%"},
		{name: "each part decoded on its own", header: "Basic " + b64("a+b:50%"), id: "a b", secret: "50%"},
		{name: "colon in the secret", header: "Basic " + b64("a:b:c"), id: "a", secret: "b:c"},
		{name: "empty secret", header: "Basic " + b64("a:"), id: "a", secret: ""},
		{name: "empty header", header: "", err: auth.ErrNotBasic},
		{name: "bearer", header: "Bearer abc", err: auth.ErrNotBasic},
		{name: "longer scheme name", header: "Basicx " + b64("a:b"), err: auth.ErrNotBasic},
		{name: "scheme only", header: "Basic", err: auth.ErrMalformedBasic},
		{name: "scheme and blanks only", header: "Basic  ", err: auth.ErrMalformedBasic},
		{name: "not base64", header: "Basic !!!not-base64", err: auth.ErrMalformedBasic},
		{name: "no colon", header: "Basic " + b64("nocolon"), err: auth.ErrMalformedBasic},
		{name: "empty id", header: "Basic " + b64(":secret"), err: auth.ErrMalformedBasic},
	} {
		t.Run(tc.name, tc.run)
	}
}

// FuzzParseBasicAuthorization: no panic, one error kind at a time, and
// what is accepted survives BasicAuthorization unchanged.
func FuzzParseBasicAuthorization(f *testing.F) {
	for _, seed := range []string{
		"", "Basic", "Basic ", "Basic =", "Basicx abc", "Bearer abc", "Basic !!!",
		auth.BasicAuthorization("dev-client", "dev-secret"),
		auth.BasicAuthorization("odd client:ü", "s:e%c+r t"),
		"basic  " + base64.StdEncoding.EncodeToString([]byte("my+client:p%40ss%3Aw%2Brd")) + " ",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a%zz:%")),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		id, secret, err := auth.ParseBasicAuthorization(h)
		if err != nil {
			if !errors.Is(err, auth.ErrNotBasic) && !errors.Is(err, auth.ErrMalformedBasic) {
				t.Fatalf("unexpected error kind %v", err)
			}
			if id != "" || secret != "" {
				t.Fatalf("credentials %q/%q returned with error %v", id, secret, err)
			}
			return
		}
		if id == "" {
			t.Fatal("empty id accepted")
		}
		if !strings.HasPrefix(strings.ToLower(strings.TrimLeft(string(h), " \t")), "basic") {
			t.Fatalf("%q accepted without the Basic scheme", h)
		}
		id2, secret2, err := auth.ParseBasicAuthorization([]byte(auth.BasicAuthorization(id, secret)))
		if err != nil || id2 != id || secret2 != secret {
			t.Fatalf("re-encoded %q/%q parses as %q/%q, %v", id, secret, id2, secret2, err)
		}
	})
}
