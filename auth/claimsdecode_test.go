package auth

import (
	"reflect"
	"strings"
	"testing"

	josejson "github.com/go-jose/go-jose/v4/json"
)

// reflectDecodeClaims is what decodeClaims must agree with: go-jose's JSON
// decoder into accessTokenClaims, as Local decoded claims before the
// one-pass reader.
func reflectDecodeClaims(payload []byte) (claimSet, error) {
	var ac accessTokenClaims
	if err := josejson.Unmarshal(payload, &ac); err != nil {
		return claimSet{}, err
	}
	var c claimSet
	c.fromAccessTokenClaims(&ac)
	return c, nil
}

// checkDecodeClaimsAgrees fails t unless decodeClaims and the reflection
// decoder give the same claims, or both an error, for payload; it returns
// whether the one-pass reader took payload itself.
func checkDecodeClaimsAgrees(t *testing.T, payload []byte) (fast bool) {
	t.Helper()
	want, wantErr := reflectDecodeClaims(payload)
	var got claimSet
	fast = fastDecodeClaims(payload, &got)
	if fast && wantErr != nil {
		t.Fatalf("one-pass reader accepted %q, go-jose refused it: %v", payload, wantErr)
	}
	err := decodeClaims(payload, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeClaims(%q) error %v, go-jose %v", payload, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeClaims(%q) (fast %v)\n got  %#v\n want %#v", payload, fast, got, want)
	}
	return fast
}

func TestDecodeClaims(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		fast    bool // the one-pass reader takes it
		wantErr bool
	}{
		{"okta", `{"ver":1,"jti":"AT.x","iss":"https://e.okta.com/oauth2/default","aud":"api://default",` +
			`"iat":1700000000,"exp":1700003600,"cid":"0oa1","uid":"00u1","scp":["openid","items"],` +
			`"auth_time":1700000000,"sub":"a@b.c","groups":[{"id":1,"n":[true,false,null,-1.5e+3]}]}`, true, false},
		{"rfc 9068", " {\"iss\":\"i\",\"aud\":[\"a\",\"b\"],\"exp\":0,\"nbf\":5,\"client_id\":\"c\",\"scope\":\"a  b\"}\n", true, false},
		{"empty object", `{}`, true, false},
		{"scp string", `{"scp":"a b"}`, true, false},
		{"scp empty string", `{"scp":""}`, true, false},
		{"scp empty array", `{"scp":[]}`, true, false},
		{"aud empty array", `{"aud":[ ]}`, true, false},
		{"scp wins over scope", `{"scope":"x","scp":["y"]}`, true, false},
		{"scope array", `{"scope":["openid","items"]}`, true, false},
		{"scope empty array", `{"scope":[]}`, true, false},
		{"scope empty string", `{"scope":""}`, true, false},
		{"scp wins over a scope array", `{"scope":["x"],"aud":["a"],"scp":["y"]}`, true, false},
		{"null scope", `{"scope":null}`, false, false},
		{"null in scope", `{"scope":["a",null]}`, false, false},
		{"number in scope", `{"scope":["a",1]}`, false, true},
		{"object scope", `{"scope":{"a":1}}`, false, true},
		{"utf-8 subject", `{"sub":"Zoë ☃"}`, true, false},
		{"many scopes", `{"scp":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s"]}`, true, false},
		{"unknown escapes", `{"x":"\"\\\/\b\f\n\r\t\u00e9"}`, true, false},

		{"escape in a read claim", `{"sub":"a\u0062"}`, false, false},
		{"escaped member name", `{"\u0069ss":"i"}`, false, false},
		{"invalid utf-8", "{\"sub\":\"\xff\"}", false, false},
		{"null exp", `{"exp":null}`, false, false},
		{"null iss", `{"iss":null}`, false, false},
		{"null aud", `{"aud":null}`, false, true},
		{"null scp", `{"scp":null,"scope":"a"}`, false, false},
		{"null in scp", `{"scp":["a",null]}`, false, false},
		{"null in aud", `{"aud":["a",null]}`, false, true},
		{"fractional exp", `{"exp":1.9}`, false, false},
		{"exponent exp", `{"exp":1e3}`, false, false},
		{"negative exp", `{"exp":-1}`, false, false},
		{"long exp", `{"exp":1234567890123456}`, false, false},
		{"huge exp", `{"exp":1e400}`, false, true},
		{"string exp", `{"exp":"1"}`, false, true},
		{"leading zero", `{"exp":01}`, false, true},
		{"number iss", `{"iss":1}`, false, true},
		{"object scp", `{"scp":{"a":1}}`, false, true},
		{"duplicate read member", `{"iss":"a","iss":"a"}`, false, true},
		{"duplicate other member", `{"x":1,"x":1}`, false, true},
		{"case-sensitive names", `{"ISS":"a","Iss":"b"}`, true, false},
		{"trailing garbage", `{}x`, false, true},
		{"trailing comma", `{"a":1,}`, false, true},
		{"bad escape", `{"x":"\q"}`, false, true},
		{"control character", "{\"x\":\"\x01\"}", false, true},
		{"array", `[]`, false, true},
		{"null", `null`, false, false},
		{"empty", ``, false, true},
		{"64 array elements", `{"aud":"a","scp":[` + strings.Repeat(`"s",`, maxArrayElems-2) + `"s"]}`, true, false},
		{"65 array elements", `{"aud":"a","scp":[` + strings.Repeat(`"s",`, maxArrayElems-1) + `"s"]}`, false, false},
		{"deep", `{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false, false},
		{"unclosed", `{"iss":"a"`, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if fast := checkDecodeClaimsAgrees(t, []byte(tc.payload)); fast != tc.fast {
				t.Errorf("one-pass reader took it: %v, want %v", fast, tc.fast)
			}
			var c claimSet
			if err := decodeClaims([]byte(tc.payload), &c); (err != nil) != tc.wantErr {
				t.Errorf("error %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// TestDecodeClaimsMemberLimit checks the fallback past maxSkippedMembers.
func TestDecodeClaimsMemberLimit(t *testing.T) {
	for _, tc := range []struct {
		members int
		fast    bool
	}{
		{maxSkippedMembers, true},
		{maxSkippedMembers + 1, false},
	} {
		var b strings.Builder
		b.WriteString(`{"iss":"i"`)
		for i := range tc.members {
			b.WriteString(`,"m` + strings.Repeat("x", i) + `":1`)
		}
		b.WriteString(`}`)
		if fast := checkDecodeClaimsAgrees(t, []byte(b.String())); fast != tc.fast {
			t.Errorf("%d other members: one-pass reader took it: %v, want %v", tc.members, fast, tc.fast)
		}
	}
}

// FuzzDecodeClaims checks that decodeClaims always agrees with go-jose's
// JSON decoder, and that the one-pass reader accepts nothing go-jose
// refuses.
func FuzzDecodeClaims(f *testing.F) {
	for _, seed := range []string{
		`{"ver":1,"jti":"AT.x","iss":"https://e/","aud":"api://default","iat":1700000000,"exp":1700003600,` +
			`"cid":"0oa1","uid":"00u1","scp":["openid","items"],"sub":"a@b.c"}`,
		`{"iss":"i","aud":["a","b"],"exp":0,"nbf":5,"client_id":"c","scope":"a b"}`,
		`{"x":{"y":[1,-0.5e-7,true,false,null,"\u00e9"]},"scp":"a b"}`,
		`{"exp":null}`, `{"aud":null}`, `{"scp":["a",null]}`, `{"exp":1.5}`, `{"iss":"a","iss":"b"}`,
		`{"sub":"\u0061"}`, "{\"sub\":\"\xff\"}", `null`, `{}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecodeClaimsAgrees(t, payload)
	})
}

// BenchmarkDecodeClaims compares the one-pass reader (impl=onepass) with
// go-jose's reflection decoder (impl=reflect) on Okta-shaped claims.
func BenchmarkDecodeClaims(b *testing.B) {
	payload := []byte(`{"ver":1,"jti":"AT.Lk3m1kQ0xY9tJ4q8Yw7Zt2d5fUo3pVb0s1a2b3c4d5e","iss":"https://example.okta.com/oauth2/default",` +
		`"aud":"api://default","iat":1700000000,"exp":1700003600,"cid":"0oa1b2c3d4e5f6g7h8i9","uid":"00u1b2c3d4e5f6g7h8i9",` +
		`"scp":["openid","profile","items"],"auth_time":1700000000,"sub":"someone@example.com"}`)
	for _, bc := range []struct {
		name   string
		decode func([]byte) error
	}{
		{"reflect", func(p []byte) error { _, err := reflectDecodeClaims(p); return err }},
		{"onepass", func(p []byte) error { var c claimSet; return decodeClaims(p, &c) }},
	} {
		b.Run("impl="+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.decode(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzIssuerOf checks that Multi's issuer peek answers as encoding/json
// alone does: the same issuer, or the same reason.
func FuzzIssuerOf(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"https://e/","aud":"a","exp":1}`, `{"iss":""}`, `{}`, `{"iss":1}`, `{"iss":null}`,
		`{"iss":"a","iss":"b"}`, `{"\u0069ss":"a"}`, `{"ISS":"a"}`, `null`, `[]`, `{"iss":"a"} x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, gotErr := issuerOf(payload)
		want, wantErr := issuerByJSON(payload)
		gotReason, _ := ReasonOf(gotErr)
		wantReason, _ := ReasonOf(wantErr)
		if got != want || gotReason != wantReason || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("issuerOf(%q) = %q, %v; encoding/json gives %q, %v", payload, got, gotErr, want, wantErr)
		}
	})
}
