package devissuer

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// unstarted returns an issuer that serves through its handler only, as if
// it listened on 127.0.0.1:9.
func unstarted(tb testing.TB, cfg Config) *Issuer {
	tb.Helper()
	cfg.Logger = zap.NewNop()
	i, err := newIssuer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := i.setAddr("127.0.0.1:9"); err != nil {
		tb.Fatal(err)
	}
	return i
}

// FuzzParseBasic: no panic, at most two candidates with non-empty ids, the
// first read as auth.ParseBasicAuthorization reads the header, and
// surviving the RFC 6749 encoding.
func FuzzParseBasic(f *testing.F) {
	for _, seed := range []string{
		basic("dev-client", "dev-secret"),
		basic("odd client:ü", "s:e%c+r t"),
		"Basic ", "Basic", "basic ZGV2OnNlY3JldA", "Basic ZGV2LWNsaWVudA==", "Bearer x",
		"Basic " + "JTIy" + "OiUyMg==", "Basic %%%", "Basic OnNlY3JldA==",
		"Basic YStiOjUwJQ==", // a+b:50% sent without the RFC 6749 encoding
		"Basic\tZGV2OnNlY3JldA==", " basic ZGV2OnNlY3JldA== \t", "Basicx ZGV2OnNlY3JldA==",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		checkBasicIsAuths(t, []byte(h))
		creds, isBasic := parseBasic([]byte(h))
		if len(creds) > 0 && !isBasic {
			t.Fatal("credentials without Basic")
		}
		if len(creds) > 2 {
			t.Fatalf("%d candidates", len(creds))
		}
		for _, c := range creds {
			if c.id == "" {
				t.Fatal("empty id accepted")
			}
		}
		if len(creds) == 0 {
			return
		}
		// The RFC 6749 encoding of the first candidate decodes back to it.
		again, _ := parseBasic([]byte(basic(creds[0].id, creds[0].secret)))
		if len(again) == 0 || again[0] != creds[0] {
			t.Fatalf("round trip of %+v gave %+v", creds[0], again)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, seed := range []string{"", "items", "items  admin items", "a\tb", `"x"`, "a\\b", "ü", " items "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, ok := parseScope(s)
		if !ok {
			return
		}
		for n, sc := range scopes {
			if !validScopeToken(sc) || slices.Index(scopes, sc) != n {
				t.Fatalf("%q: bad or repeated scope %q in %q", s, sc, scopes)
			}
		}
		again, ok := parseScope(strings.Join(scopes, " "))
		if !ok || !slices.Equal(again, scopes) {
			t.Fatalf("%q: not stable: %q then %q", s, scopes, again)
		}
	})
}

// FuzzIntrospectToken feeds arbitrary tokens to introspection: the answer
// is always well-formed JSON, and only the issuer's own tokens are active.
func FuzzIntrospectToken(f *testing.F) {
	iss := unstarted(f, Config{Algorithm: "ES256"})
	good, err := iss.Mint(MintOptions{})
	if err != nil {
		f.Fatal(err)
	}
	none, _ := iss.Mint(MintOptions{Algorithm: "none"})
	for _, seed := range []string{good, none, "", "a.b.c", "a.b.c.d.e", "eyJhbGciOiJFUzI1NiJ9..", good + "x", strings.Repeat(".", 4096)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, token []byte) {
		body, active := iss.introspect(token)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("answer %q is not JSON: %v", body, err)
		}
		if m["active"] != active {
			t.Fatalf("answer %s for active %v", body, active)
		}
		if active && string(token) != good {
			t.Fatalf("a token the issuer did not mint is active: %q", token)
		}
	})
}

// FuzzTokenRequest feeds arbitrary form bodies and Authorization headers to
// /v1/token: the answer is JSON with a status from the RFC 6749 set, and a
// token is issued only with the right credentials.
func FuzzTokenRequest(f *testing.F) {
	iss := unstarted(f, Config{Algorithm: "ES256"})
	good := basic("dev-client", "dev-secret")
	seeds := []struct{ auth, body string }{
		{good, "grant_type=client_credentials"},
		{good, "grant_type=client_credentials&scope=items"},
		{"", "grant_type=client_credentials&client_id=dev-client&client_secret=dev-secret"},
		{good, "grant_type=client_credentials&client_secret=x"},
		{"Basic ???", "grant_type=client_credentials"},
		{good, "grant_type=password&scope=%zz"},
		{"", "%%%&&==="},
		{good, "grant_type=client_credentials&scope=" + url.QueryEscape(`a"b`)},
	}
	for _, s := range seeds {
		f.Add(s.auth, s.body)
	}
	f.Fuzz(func(t *testing.T, auth, body string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(iss.TokenURL())
		ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
		if auth != "" {
			ctx.Request.Header.Set("Authorization", auth)
		}
		ctx.Request.SetBodyString(body)
		iss.handle(&ctx, nil)
		status := ctx.Response.StatusCode()
		if !slices.Contains([]int{200, 400, 401}, status) {
			t.Fatalf("status %d", status)
		}
		var m map[string]any
		if err := json.Unmarshal(ctx.Response.Body(), &m); err != nil {
			t.Fatalf("answer %q is not JSON: %v", ctx.Response.Body(), err)
		}
		if status == 200 {
			tok, _ := m["access_token"].(string)
			if iss.verify([]byte(tok)) == nil {
				t.Fatal("issued token does not verify")
			}
			if !strings.Contains(body, "dev-secret") && !strings.Contains(auth, "ZGV2") {
				t.Fatalf("token issued without credentials: auth %q body %q", auth, body)
			}
		}
	})
}
