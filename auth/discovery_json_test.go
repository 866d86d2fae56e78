package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDiscoveryMetadataNamesAreExact: RFC 8414 member names are
// case-sensitive, and a document that names a member twice says two
// things. encoding/json matched "ISSUER" or "Jwks_Uri" to the fields and
// kept the last of two "issuer"s, so the mix-up check (section 3.3) could
// pass on a member the specification does not define. Discovery now decodes
// through go-jose's JSON package, as it does claims: exact names, duplicates
// refused.
func TestDiscoveryMetadataNamesAreExact(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string // want: "" for success, else part of the error
	}{
		{"exact names", `{"issuer":@ISS@,"jwks_uri":@ISS@/keys}`, ""},
		{"issuer in another case", `{"ISSUER":@ISS@,"jwks_uri":@ISS@/keys}`, "does not match configured issuer"},
		{"jwks_uri in another case", `{"issuer":@ISS@,"Jwks_Uri":@ISS@/keys}`, "not advertised"},
		{"issuer twice", `{"issuer":"https://other.example.com","issuer":@ISS@,"jwks_uri":@ISS@/keys}`, "duplicate"},
		{"jwks_uri twice", `{"issuer":@ISS@,"jwks_uri":@ISS@/keys,"jwks_uri":"http://127.0.0.1:1/keys"}`, "duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var issuer string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				doc := strings.ReplaceAll(tc.doc, "@ISS@/keys", `"`+issuer+`/keys"`)
				_, _ = w.Write([]byte(strings.ReplaceAll(doc, "@ISS@", `"`+issuer+`"`)))
			}))
			t.Cleanup(srv.Close)
			issuer = srv.URL + "/oauth2/default"
			d := newTestDiscovery(t, DiscoveryConfig{Issuer: issuer})
			uri, err := d.Endpoint(t.Context(), func(m Metadata) string { return m.JWKSURI })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Endpoint: %v", err)
			case tc.want == "" && uri != issuer+"/keys":
				t.Fatalf("jwks_uri = %q, want %q", uri, issuer+"/keys")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Endpoint = (%q, %v), want an error mentioning %q", uri, err, tc.want)
			}
		})
	}
}
