package policy

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{
		"/", "", "/a/b", "//admin", "/public/../admin", "/%2e%2e/admin", "/a%2Fb", "/a;b", "/admin?x#y",
		"/admin/.", "/%252e", "/a%00", "/caf%c3%a9", "/caf\xc3\xa9", "/a/b/../../../c", "/.%2E/./", "/%", "/%u002e",
		"/a b", "/\\", "/../", "/a/..", "/%41%7e%5f",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		out, err := Normalize([]byte("pre"), raw)
		if !bytes.Equal(raw, orig) {
			t.Fatal("Normalize modified its input")
		}
		if !bytes.HasPrefix(out, []byte("pre")) {
			t.Fatalf("prefix lost: %q", out)
		}
		out = out[len("pre"):]
		if err != nil {
			if !errors.Is(err, ErrBadPath) || len(out) != 0 {
				t.Fatalf("error %v with output %q", err, out)
			}
			return
		}
		if len(out) == 0 || out[0] != '/' {
			t.Fatalf("Normalize(%q) = %q: does not start with /", raw, out)
		}
		if bytes.Contains(out, []byte("//")) {
			t.Fatalf("Normalize(%q) = %q: has //", raw, out)
		}
		for seg := range bytes.SplitSeq(out[1:], []byte("/")) {
			if string(seg) == "." || string(seg) == ".." {
				t.Fatalf("Normalize(%q) = %q: has a dot segment", raw, out)
			}
		}
		if bytes.ContainsAny(out, "?#;\\") {
			t.Fatalf("Normalize(%q) = %q: has ? # ; or \\", raw, out)
		}
		for _, c := range out {
			if c < 0x21 || c >= 0x7f {
				t.Fatalf("Normalize(%q) = %q: has a byte outside visible ASCII", raw, out)
			}
		}
		again, err := Normalize(nil, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Normalize(%q) = %q, but Normalize of that = %q, %v", raw, out, again, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullPolicy, decisionPolicy, matchPolicy, "", "default: deny\n", "routes:\n  - path: /a/**\n    public: true\n",
		"headers:\n  X-A: sub\n", "x: &a [1]\ny: *a\n", "---\n---\n", "routes: [{path: /a, methods: [GET]}]\n",
		"issuers:\n  - name: a\n    issuer: https://a.example/\nroutes:\n  - path: /a\n    issuers: [a]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || p != nil {
				t.Fatalf("Parse error %v (%T) with policy %v", err, err, p)
			}
			if bytes.ContainsAny([]byte(err.Error()), "\r\n") {
				t.Fatalf("message spans lines: %q", err.Error())
			}
			return
		}
		for i := range p.routes {
			r := &p.routes[i]
			if norm, err := Normalize(nil, []byte(r.Path)); err != nil || string(norm) != r.Path {
				t.Fatalf("route %d path %q is not in normal form (%q, %v)", i, r.Path, norm, err)
			}
			if r.Access == AccessPublic && (len(r.Scopes) > 0 || len(r.Issuers) > 0) {
				t.Fatalf("route %d is public with scopes or issuers", i)
			}
			// The route matches its own pattern read as a path, with "*"
			// and "**" standing for themselves.
			host := []byte(r.Host)
			if r.hostSuffix != "" {
				host = []byte("x" + r.hostSuffix)
			}
			method := []byte("GET")
			if r.Methods != nil {
				method = []byte(r.Methods[0])
			}
			if got := p.Match(host, method, []byte(r.Path)); got.Index > i {
				t.Fatalf("route %d does not match its own pattern (got route %d)", i, got.Index)
			}
		}
	})
}
