package handlers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

// FuzzTokenRequestParsing feeds untrusted Authorization headers and form
// bodies to the /token credential parser: it must never panic, must say
// which failure it saw, and what it accepts must survive re-encoding for
// the upstream unchanged.
func FuzzTokenRequestParsing(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString
	for _, seed := range []struct{ authz, form string }{
		{"", ""},
		{"Basic " + b64([]byte("dev-client:dev-secret")), ""},
		{"basic  " + b64([]byte("my+client:p%40ss%3Aw%2Brd")) + " ", ""},
		{"BASIC " + base64.RawStdEncoding.EncodeToString([]byte("a:b")), ""},
		{"Basic " + b64([]byte("a%zz:%")), ""},
		{"Basic " + b64([]byte(":secret")), ""},
		{"Basic " + b64([]byte("nocolon")), ""},
		{"Basic", ""},
		{"Basic ", ""},
		{"Basicx abc", ""},
		{"Basic !!!", ""},
		{"Basic =", ""},
		{"Bearer abc", "client_id=a&client_secret=b"},
		{"", "client_id=a&client_secret=b&grant_type=client_credentials"},
		{"Basic " + b64([]byte("a:b")), "client_secret=c"},
		{"Basic " + b64([]byte("a:b")), "client_id=c"},
		{"Basic " + b64([]byte("a%20b:c")), "client_id=a+b"},
		{"", "client_id=&client_secret=x"},
		{"", "client_id=%ff%fe&client_secret=%00"},
	} {
		f.Add([]byte(seed.authz), seed.form)
	}
	f.Fuzz(func(t *testing.T, authz []byte, body string) {
		var form fasthttp.Args
		form.Parse(body)
		c, err := clientCredentials(authz, &form)
		if err != nil {
			if !errors.Is(err, errNoCredentials) && !errors.Is(err, errMalformedBasic) && !errors.Is(err, errMultipleAuth) {
				t.Fatalf("unexpected error kind %v", err)
			}
			if c != (clientCreds{}) {
				t.Fatalf("credentials %+v returned with error %v", c, err)
			}
			return
		}
		if c.id == "" || (!c.basic && c.secret == "") {
			t.Fatalf("accepted empty credentials %+v", c)
		}
		if !c.basic {
			return
		}
		id, secret, err := auth.ParseBasicAuthorization([]byte(auth.BasicAuthorization(c.id, c.secret)))
		if err != nil || id != c.id || secret != c.secret {
			t.Fatalf("re-encoded %q/%q parses as %q/%q, %v", c.id, c.secret, id, secret, err)
		}
	})
}

// FuzzAppendJSONString checks the body encoder against encoding/json: the
// output is valid JSON and decodes to what encoding/json's does.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "token expired", `a "quoted" \ word`, "\x00\x1f\n\t\r", "<script>&", "\u2028\u2029é漢", "\xff\xfe", "bad \xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString([]byte("x"), s)
		if got[0] != 'x' {
			t.Fatal("prefix overwritten")
		}
		got = got[1:]
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %q for %q", got, s)
		}
		var a, b string
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ref, &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("decodes to %q, encoding/json's to %q", a, b)
		}
	})
}

// FuzzAppendQuoted checks that a header parameter stays one well-formed
// quoted-string of printable ASCII whatever the input.
func FuzzAppendQuoted(f *testing.F) {
	for _, s := range []string{"", "token expired", `a"b\c`, "\r\nSet-Cookie: x", "é", strings.Repeat(`"`, 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := appendQuoted(nil, s, maxDescriptionLen)
		if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("%q is not quoted", q)
		}
		if len(q) > 2*maxDescriptionLen+2 {
			t.Fatalf("%d bytes, limit %d", len(q), maxDescriptionLen)
		}
		inner := q[1 : len(q)-1]
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("byte %#x in %q", c, q)
			}
			if c == '\\' {
				i++ // quoted-pair
				if i == len(inner) {
					t.Fatalf("dangling backslash in %q", q)
				}
				continue
			}
			if c == '"' {
				t.Fatalf("unescaped quote in %q", q)
			}
		}
	})
}
