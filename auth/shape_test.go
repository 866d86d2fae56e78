package auth

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// compactShapeReference is the byte-by-byte shape check that
// checkCompactShape replaced with a lookup table, kept as the oracle its
// answers must equal.
func compactShapeReference(token []byte) (reason Reason, bad bool) {
	switch bytes.Count(token, []byte{'.'}) {
	case 2:
	case 4:
		return ReasonEncrypted, true
	default:
		return ReasonMalformed, true
	}
	if token[0] == '.' || bytes.Contains(token, []byte("..")) {
		return ReasonMalformed, true
	}
	for _, c := range token {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return ReasonMalformed, true
		}
	}
	return ReasonInvalid, false
}

// shapeLabel folds a shape check's answer into one comparable string:
// "ok" for a well-shaped token, else the reason's label.
func shapeLabel(reason Reason, bad bool) string {
	if !bad {
		return "ok"
	}
	return reason.String()
}

// shapeBenchToken is about the size and alphabet of an Okta RS256 access
// token.
var shapeBenchToken = []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 5) + "." +
	strings.Repeat("eyJpc3MiOiJodHRwczovL2V4YW1wbGUub2t0YS5jb20i-_", 8) + "." +
	strings.Repeat("Zm9vYmFyYmF6cXV4", 22))

func TestCheckCompactShape(t *testing.T) {
	cases := []struct {
		name, token, want string
	}{
		{"empty", "", "malformed"},
		{"one segment", "abc", "malformed"},
		{"two segments", "abc.def", "malformed"},
		{"three segments", "abc.def.ghi", "ok"},
		{"empty signature", "abc.def.", "ok"},
		{"empty header", ".def.ghi", "malformed"},
		{"empty payload", "abc..ghi", "malformed"},
		{"four segments", "a.b.c.d", "malformed"},
		{"five segments (JWE)", "a.b.c.d.e", "encrypted"},
		{"five segments with bad bytes", "a b.c.d.e.f", "encrypted"},
		{"six segments", "a.b.c.d.e.f", "malformed"},
		{"dots only", "..", "malformed"},
		{"base64url alphabet", "ABCXYZabcxyz.0189-_.", "ok"},
		{"padding", "abc=.def.ghi", "malformed"},
		{"standard base64", "ab+c.d/ef.ghi", "malformed"},
		{"space", "abc.def.gh i", "malformed"},
		{"NUL", "abc.def.gh\x00", "malformed"},
		{"high byte", "abc.d\xc3\xa9f.ghi", "malformed"},
		{"DEL", "abc.def.ghi\x7f", "malformed"},
		{"typical JWT", string(shapeBenchToken), "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := shapeLabel(checkCompactShape([]byte(tc.token))); got != tc.want {
				t.Errorf("checkCompactShape(%q) = %q, want %q", tc.token, got, tc.want)
			}
			if got := shapeLabel(compactShapeReference([]byte(tc.token))); got != tc.want {
				t.Errorf("reference(%q) = %q, want %q", tc.token, got, tc.want)
			}
		})
	}
}

// TestCheckCompactShapeEveryByte puts each of the 256 byte values at each
// position of a few tokens: the table must classify every byte as the
// reference does.
func TestCheckCompactShapeEveryByte(t *testing.T) {
	for _, base := range []string{"ab.cd.ef", "a.b.c.d.e", "abcdefghijklmnopqrstuvwxyz.0123456789.ABC"} {
		tok := []byte(base)
		for i := range tok {
			orig := tok[i]
			for b := range 256 {
				tok[i] = byte(b)
				if got, want := shapeLabel(checkCompactShape(tok)), shapeLabel(compactShapeReference(tok)); got != want {
					t.Fatalf("checkCompactShape(%q) = %q, want %q", tok, got, want)
				}
			}
			tok[i] = orig
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab.-_Z9=+/ \x00\x80\xff"
	for range 20_000 {
		tok := make([]byte, rng.IntN(24))
		for i := range tok {
			tok[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if got, want := shapeLabel(checkCompactShape(tok)), shapeLabel(compactShapeReference(tok)); got != want {
			t.Fatalf("checkCompactShape(%q) = %q, want %q", tok, got, want)
		}
	}
}

func FuzzCheckCompactShape(f *testing.F) {
	for _, seed := range []string{"", "a.b.c", "a.b.", ".b.c", "a..c", "a.b.c.d.e", "a=.b.c", "a.b.c\xff", string(shapeBenchToken)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, token []byte) {
		if got, want := shapeLabel(checkCompactShape(token)), shapeLabel(compactShapeReference(token)); got != want {
			t.Fatalf("checkCompactShape(%q) = %q, want %q", token, got, want)
		}
	})
}

// BenchmarkCheckCompactShape measures the shape check a local validation
// runs before parsing, on a token of typical size and on the reference
// implementation.
func BenchmarkCheckCompactShape(b *testing.B) {
	for _, bc := range []struct {
		name  string
		check func([]byte) (Reason, bool)
	}{
		{"impl=table", checkCompactShape},
		{"impl=reference", compactShapeReference},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(shapeBenchToken)))
			for b.Loop() {
				if r, bad := bc.check(shapeBenchToken); bad {
					b.Fatal(r)
				}
			}
		})
	}
}
