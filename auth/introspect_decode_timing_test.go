package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// introspectDecodeStream is the hand-written decoder that introspectDecode
// replaced, kept as the baseline of BenchmarkIntrospectDecode and as the
// oracle of FuzzIntrospectDecodeAgainstStream: one pass over
// encoding/json's token stream, names matched exactly, duplicates refused
// among the members Remote reads only.
func introspectDecodeStream(body []byte) (introspectFields, error) {
	var f introspectFields
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return f, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return f, errors.New("introspection response is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f, err
		}
		name, ok := tok.(string)
		if !ok {
			return f, errors.New("introspection response has a non-string member name")
		}
		dst := introspectStreamSlot(&f, name)
		if dst == nil {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return f, err
			}
			continue
		}
		if *dst != nil {
			return f, fmt.Errorf("introspection response has member %q twice", name)
		}
		if err := dec.Decode(dst); err != nil {
			return f, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return f, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return f, errors.New("introspection response has data after the JSON object")
	}
	return f, nil
}

// introspectStreamSlot returns where the stream decoder put member name,
// or nil for members Remote ignores.
func introspectStreamSlot(f *introspectFields, name string) *json.RawMessage {
	switch name {
	case "active":
		return (*json.RawMessage)(&f.Active)
	case "exp":
		return (*json.RawMessage)(&f.Exp)
	case "iat":
		return (*json.RawMessage)(&f.Iat)
	case "iss":
		return (*json.RawMessage)(&f.Iss)
	case "aud":
		return (*json.RawMessage)(&f.Aud)
	case "scope":
		return (*json.RawMessage)(&f.Scope)
	case "scp":
		return (*json.RawMessage)(&f.Scp)
	case "client_id":
		return (*json.RawMessage)(&f.ClientID)
	case "cid":
		return (*json.RawMessage)(&f.Cid)
	case "sub":
		return (*json.RawMessage)(&f.Sub)
	case "jti":
		return (*json.RawMessage)(&f.Jti)
	case "token_type":
		return (*json.RawMessage)(&f.TokenType)
	}
	return nil
}

// introspectSameFields reports whether a and b hold the same members.
func introspectSameFields(a, b *introspectFields) bool {
	as := [...][]byte{a.Active, a.Exp, a.Iat, a.Iss, a.Aud, a.Scope, a.Scp, a.ClientID, a.Cid, a.Sub, a.Jti, a.TokenType}
	bs := [...][]byte{b.Active, b.Exp, b.Iat, b.Iss, b.Aud, b.Scope, b.Scp, b.ClientID, b.Cid, b.Sub, b.Jti, b.TokenType}
	for i := range as {
		if (as[i] == nil) != (bs[i] == nil) || !bytes.Equal(as[i], bs[i]) {
			return false
		}
	}
	return true
}

// introspectOnlyNewlyRefused reports whether body is one that
// introspectDecode refuses and the stream decoder accepted: a name that
// Remote ignores given twice in the top-level object.
func introspectOnlyNewlyRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "duplicate key")
}

func TestIntrospectDecodeAgainstStream(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		refused    bool // by introspectDecode
	}{
		{"object", `{"active":true,"scope":"a b","exp":1}`, false},
		{"whitespace around", " \n{ \"active\" :\ttrue } \r\n", false},
		{"null members", `{"active":null,"sub":null}`, false},
		{"other case is another name", `{"Active":true,"ACTIVE":true}`, false},
		{"escaped name", `{"\u0061ctive":true}`, false},
		{"nested duplicates in an ignored member", `{"active":true,"x":{"a":1,"a":2}}`, false},
		{"duplicate read member", `{"active":false,"active":true}`, true},
		{"duplicate ignored member", `{"active":true,"x":1,"x":2}`, true},
		{"bare null", `null`, true},
		{"array", `[{"active":true}]`, true},
		{"empty", ``, true},
		{"trailing data", `{"active":true} x`, true},
		{"two objects", `{"active":true}{"active":true}`, true},
		{"truncated", `{"active":true,"scope":"ite`, true},
		{"too deep", `{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := introspectDecode([]byte(tc.body))
			if (err != nil) != tc.refused {
				t.Fatalf("introspectDecode error %v, want refused=%v", err, tc.refused)
			}
			want, werr := introspectDecodeStream([]byte(tc.body))
			switch {
			case err == nil && werr == nil && !introspectSameFields(&got, &want):
				t.Errorf("members %+v, the stream decoder's %+v", got, want)
			case err == nil && werr != nil:
				t.Errorf("accepted what the stream decoder refused (%v)", werr)
			case err != nil && werr == nil && !introspectOnlyNewlyRefused(err):
				t.Errorf("refused (%v) what the stream decoder accepted", err)
			}
		})
	}
}

// FuzzIntrospectDecodeAgainstStream: introspectDecode accepts exactly the
// bodies the stream decoder accepted, with the same members, except those
// with a duplicate member name, which it refuses.
func FuzzIntrospectDecodeAgainstStream(f *testing.F) {
	for _, seed := range []string{
		`{"active":true}`, `{"active":false,"x":1,"x":2}`, `null`, `{"a":{"b":1,"b":2}}`,
		`{"active":true,"exp":1.5,"aud":["a"],"scope":null}`, ` {"active" : true } `,
		`{"sub":"\ud800"}`, "{\"sub\":\"\xff\"}", `{"\u0061ctive":true}`, `{"active":true}x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := introspectDecode(body)
		want, werr := introspectDecodeStream(body)
		switch {
		case err == nil && werr == nil && !introspectSameFields(&got, &want):
			t.Fatalf("%q: members %+v, the stream decoder's %+v", body, got, want)
		case err == nil && werr != nil:
			t.Fatalf("%q: accepted what the stream decoder refused (%v)", body, werr)
		case err != nil && werr == nil && !introspectOnlyNewlyRefused(err):
			t.Fatalf("%q: refused (%v) what the stream decoder accepted", body, err)
		}
	})
}

// introspectBenchBodies are an Okta-shaped active answer, an inactive one,
// and an active answer with many members Remote ignores.
var introspectBenchBodies = []struct{ name, body string }{
	{"okta", `{"active":true,"scope":"items openid","username":"svc","exp":1700003600,"iat":1700000000,` +
		`"sub":"svc","aud":"api://default","iss":"https://example.okta.com/oauth2/default",` +
		`"jti":"AT.sSTk_O8EXVZE1ylXq4W8FQ","token_type":"Bearer","client_id":"0oa1b2c3d4e5f6g7h8","uid":"00u1a2b3c4"}`},
	{"inactive", `{"active":false}`},
	{"extra_members", `{"active":true,"exp":1700003600,"ext":{"roles":["a","b","c"],"tenant":"t-1","nested":{"x":[1,2,3]}},` +
		`"k1":"` + strings.Repeat("v", 200) + `","k2":[1,2,3,4,5,6,7,8,9,10],"k3":{"a":{"b":{"c":null}}},"scope":"items"}`},
}

// BenchmarkIntrospectDecode compares the decoder Remote uses
// (impl=josejson, go-jose's JSON package) with the one it replaced
// (impl=stream, encoding/json's token stream).
func BenchmarkIntrospectDecode(b *testing.B) {
	for _, impl := range []struct {
		name   string
		decode func([]byte) (introspectFields, error)
	}{
		{"stream", introspectDecodeStream},
		{"josejson", introspectDecode},
	} {
		for _, bb := range introspectBenchBodies {
			body := []byte(bb.body)
			b.Run("impl="+impl.name+"/body="+bb.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := impl.decode(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
