package handlers

import (
	"strings"
	"testing"
)

// FuzzAppendDescription checks that an RFC 6750 error_description stays
// one quoted-string whose content is only what section 3 allows:
// %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash, no escapes).
func FuzzAppendDescription(f *testing.F) {
	for _, s := range []string{"", "token expired", `bad "kid" \ here`, "\r\nSet-Cookie: x", "é", strings.Repeat(`\`, 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := appendDescription(nil, s, maxDescriptionLen)
		if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("%q is not quoted", q)
		}
		inner := q[1 : len(q)-1]
		if len(inner) > maxDescriptionLen {
			t.Fatalf("%d bytes, limit %d", len(inner), maxDescriptionLen)
		}
		for i := 0; i < len(inner); i++ {
			if c := inner[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Fatalf("byte %#x not allowed by RFC 6750 in %q", c, q)
			}
		}
	})
}
