package auth

import (
	"strings"
	"testing"
)

// TestLocalRejectsNonCanonicalBase64url: a segment whose unused trailing
// bits are not zero decodes (leniently) to the same bytes as the canonical
// one, so without the check every token would have several spellings that
// all verify, each with its own SHA-256 and so its own cache entry, negative
// entry and revocation record. RFC 4648 §3.5 lets a decoder refuse them;
// Local does.
func TestLocalRejectsNonCanonicalBase64url(t *testing.T) {
	f := newLocalFixture(t, nil)
	tok := f.mint(t, f.keys.rsa, nil)
	if _, err := f.local.Validate(t.Context(), []byte(tok)); err != nil {
		t.Fatalf("canonical token: %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	segs := strings.Split(tok, ".")
	tried := 0
	for i, seg := range segs {
		spare := map[int]int{2: 4, 3: 2}[len(seg)%4] // unused bits in the last character
		if spare == 0 {
			continue
		}
		last := strings.IndexByte(alphabet, seg[len(seg)-1])
		for low := 1; low < 1<<spare; low++ {
			variant := append([]string(nil), segs...)
			variant[i] = seg[:len(seg)-1] + string(alphabet[last|low])
			_, err := f.local.Validate(t.Context(), []byte(strings.Join(variant, ".")))
			checkReason(t, err, ErrMalformed)
			tried++
		}
	}
	if tried == 0 {
		t.Fatal("no segment with spare bits: the test checks nothing")
	}
	// A length no base64url encoding has (4n+1) is malformed too.
	sig := segs[2] + strings.Repeat("A", (5-len(segs[2])%4)%4)
	if len(sig)%4 != 1 {
		t.Fatalf("signature of %d characters, want 4n+1", len(sig))
	}
	_, err := f.local.Validate(t.Context(), []byte(segs[0]+"."+segs[1]+"."+sig))
	checkReason(t, err, ErrMalformed)
}

func TestCanonicalBase64url(t *testing.T) {
	for _, tc := range []struct {
		seg  string
		want bool
	}{
		{"", true},
		{"QQ", true},     // "A"
		{"QR", false},    // "A" with a trailing bit set
		{"QUE", true},    // "AA"
		{"QUF", false},   // "AA" with a trailing bit set
		{"QUFB", true},   // "AAA"
		{"QUFBQ", false}, // 4n+1: no encoding has it
		{"-_", false},
		{"-w", true},
	} {
		if got := canonicalBase64url([]byte(tc.seg)); got != tc.want {
			t.Errorf("canonicalBase64url(%q) = %v, want %v", tc.seg, got, tc.want)
		}
	}
}
