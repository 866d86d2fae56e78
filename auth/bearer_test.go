package auth

import (
	"errors"
	"testing"
)

func TestParseBearer(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         string // token, when wantErr is nil
		wantErr      error
	}{
		{name: "canonical", header: "Bearer abc.def.ghi", want: "abc.def.ghi"},
		{name: "lower-case scheme", header: "bearer abc", want: "abc"},
		{name: "mixed-case scheme", header: "bEaReR abc", want: "abc"},
		{name: "tabs and spaces", header: " \tBearer \t abc \t", want: "abc"},
		{name: "empty header", header: "", wantErr: ErrNoToken},
		{name: "only spaces", header: "   ", wantErr: ErrNoToken},
		{name: "Basic scheme", header: "Basic ZGV2LWNsaWVudDpkZXYtc2VjcmV0", wantErr: ErrNoToken},
		{name: "DPoP scheme", header: "DPoP abc", wantErr: ErrNoToken},
		{name: "scheme glued to token", header: "Bearerabc", wantErr: ErrNoToken},
		{name: "short header", header: "Bear", wantErr: ErrNoToken},
		{name: "scheme only", header: "Bearer", wantErr: ErrInvalidToken},
		{name: "scheme and spaces", header: "Bearer    ", wantErr: ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBearer([]byte(tc.header))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || got != nil {
					t.Fatalf("ParseBearer(%q) = %q, %v; want error %v", tc.header, got, err, tc.wantErr)
				}
				if tc.wantErr == ErrInvalidToken {
					var te *TokenError
					if !errors.As(err, &te) || te.Reason != ReasonEmpty {
						t.Fatalf("err = %v, want reason %q", err, ReasonEmpty)
					}
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ParseBearer(%q) = %q, %v; want %q", tc.header, got, err, tc.want)
			}
		})
	}
}

func TestParseBearerDoesNotAllocate(t *testing.T) {
	h := []byte("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseBearer(h) }); n != 0 {
		t.Fatalf("ParseBearer allocates %v times", n)
	}
}
