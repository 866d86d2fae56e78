package policy

import (
	"errors"
	"strconv"
	"testing"
)

// decisionPolicy denies /admin/** to everyone, lets anyone reach
// /public/**, and asks for a valid token everywhere else.
const decisionPolicy = `
default: authenticated
routes:
  - path: /admin/**
    deny: true
  - path: /public/**
    public: true
`

// TestNormalizeDecisionTable is the table of path ambiguities: one row per
// way a request target can be read differently by the policy and by the
// upstream. Each row gives the normalised path (or that it is refused, which
// the caller answers with 400) and the decision for a request without a
// token against decisionPolicy: 403 for /admin/**, 200 for /public/**, 401
// for everything else.
func TestNormalizeDecisionTable(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		ci     bool   // case_insensitive_paths
		want   string // normalised path; "" when refused
		status int    // 400 refused, 401 token needed, 403 denied, 200 allowed
	}{
		{name: "plain admin", raw: "/admin", want: "/admin", status: 403},
		{name: "plain public", raw: "/public/x", want: "/public/x", status: 200},
		{name: "other path", raw: "/items", want: "/items", status: 401},
		{name: "root", raw: "/", want: "/", status: 401},

		// Dot segments, plain and encoded, never above the root.
		{name: "dot-dot out of public", raw: "/public/../admin", want: "/admin", status: 403},
		{name: "encoded dot-dot lower", raw: "/public/%2e%2e/admin", want: "/admin", status: 403},
		{name: "encoded dot-dot upper", raw: "/public/%2E%2E/admin", want: "/admin", status: 403},
		{name: "half-encoded dot-dot", raw: "/public/.%2e/admin", want: "/admin", status: 403},
		{name: "encoded dot-dot at root", raw: "/%2e%2e/admin", want: "/admin", status: 403},
		{name: "dot-dot above root", raw: "/../admin", want: "/admin", status: 403},
		{name: "many dot-dots above root", raw: "/../../../admin/x", want: "/admin/x", status: 403},
		{name: "dot-dot twice out of public", raw: "/public/x/%2e%2e/%2e%2e/admin", want: "/admin", status: 403},
		{name: "dot segment kept in public", raw: "/public/./x", want: "/public/x", status: 200},
		{name: "admin then dot", raw: "/admin/.", want: "/admin/", status: 403},
		{name: "admin then encoded dot", raw: "/admin/%2e", want: "/admin/", status: 403},
		{name: "admin then dot-dot", raw: "/admin/..", want: "/", status: 401},
		{name: "public then dot-dot", raw: "/public/x/..", want: "/public/", status: 200},
		{name: "dots inside a name are not segments", raw: "/admin../x", want: "/admin../x", status: 401},

		// Slashes.
		{name: "double slash before admin", raw: "//admin", want: "/admin", status: 403},
		{name: "many slashes", raw: "///admin///x//", want: "/admin/x/", status: 403},
		{name: "double slash inside public", raw: "/public//admin", want: "/public/admin", status: 200},
		{name: "trailing slash", raw: "/admin/", want: "/admin/", status: 403},
		{name: "encoded slash upper", raw: "/public%2Fadmin", status: 400},
		{name: "encoded slash lower", raw: "/public/..%2fadmin", status: 400},
		{name: "encoded backslash", raw: "/public/..%5Cadmin", status: 400},
		{name: "encoded backslash lower", raw: "/public/..%5cadmin", status: 400},
		{name: "raw backslash", raw: `/public/..\admin`, status: 400},

		// Path parameters are refused: Tomcat strips them, nginx and Envoy do not.
		{name: "matrix parameter", raw: "/admin;x", status: 400},
		{name: "matrix dot-dot", raw: "/public/..;/admin", status: 400},
		{name: "matrix before dot-dot", raw: "/public;x/../admin", status: 400},
		{name: "encoded semicolon", raw: "/admin%3Bx", status: 400},
		{name: "encoded semicolon lower", raw: "/admin%3bx", status: 400},

		// Query and fragment are cut before anything else.
		{name: "query", raw: "/admin?x", want: "/admin", status: 403},
		{name: "query hiding dot-dot", raw: "/public?/../admin", want: "/public", status: 200},
		{name: "fragment", raw: "/admin#x", want: "/admin", status: 403},
		{name: "fragment hiding dot-dot", raw: "/public#/../admin", want: "/public", status: 200},
		{name: "query then fragment", raw: "/admin?a#b", want: "/admin", status: 403},
		{name: "encoded question mark stays", raw: "/admin%3Fx", want: "/admin%3Fx", status: 401},

		// Case.
		{name: "upper case, case-sensitive", raw: "/ADMIN", want: "/ADMIN", status: 401},
		{name: "upper case, case-insensitive", raw: "/ADMIN", ci: true, want: "/ADMIN", status: 403},
		{name: "mixed case public, case-insensitive", raw: "/Public/x", ci: true, want: "/Public/x", status: 200},
		{name: "mixed case public, case-sensitive", raw: "/Public/x", want: "/Public/x", status: 401},

		// Percent-encoding: unreserved characters decode, others stay (in
		// upper-case hex), double encoding stays literal.
		{name: "encoded letter", raw: "/%61dmin", want: "/admin", status: 403},
		{name: "encoded letters and tilde", raw: "/public/%7Euser%2D1", want: "/public/~user-1", status: 200},
		{name: "encoded upper letter, case-insensitive", raw: "/ADM%49N", ci: true, want: "/ADMIN", status: 403},
		{name: "double-encoded dot-dot", raw: "/%252e%252e/admin", want: "/%252e%252e/admin", status: 401},
		{name: "double-encoded dot-dot in public", raw: "/public/%252e%252e/admin", want: "/public/%252e%252e/admin", status: 200},
		{name: "double-encoded slash", raw: "/public%252Fadmin", want: "/public%252Fadmin", status: 401},
		{name: "encoded space", raw: "/public/a%20b", want: "/public/a%20b", status: 200},
		{name: "raw space encoded", raw: "/public/a b", want: "/public/a%20b", status: 200},
		{name: "sub-delims kept", raw: "/public/a!$&'()*+,=:@b", want: "/public/a!$&'()*+,=:@b", status: 200},
		// Sub-delims, ':' and '@' may stand raw in a segment, and nginx,
		// Caddy and most frameworks decode their escapes before routing.
		{name: "encoded sub-delim decodes", raw: "/public/%2a", want: "/public/*", status: 200},
		{name: "encoded sub-delims, colon and at sign decode", raw: "/public/%21%24%26%27%28%29%2A%2B%2C%3D%3a%40", want: "/public/!$&'()*+,=:@", status: 200},
		{name: "encoded colon into admin", raw: "/admin%3Ax", want: "/admin:x", status: 401},

		// Control bytes and bad escapes.
		{name: "encoded NUL", raw: "/admin%00", status: 400},
		{name: "encoded NUL before dot-dot", raw: "/public/%00/../admin", status: 400},
		{name: "encoded LF", raw: "/admin%0a", status: 400},
		{name: "encoded DEL", raw: "/admin%7F", status: 400},
		{name: "raw NUL", raw: "/admin\x00", status: 400},
		{name: "raw tab", raw: "/admin\t", status: 400},
		{name: "raw CR", raw: "/admin\r", status: 400},
		{name: "truncated escape", raw: "/admin%2", status: 400},
		{name: "lone percent", raw: "/admin%", status: 400},
		{name: "non-hex escape", raw: "/admin%zz", status: 400},
		{name: "IIS %u escape", raw: "/%u002e%u002e/admin", status: 400},

		// Unicode.
		{name: "UTF-8 escape, lower hex", raw: "/caf%c3%a9", want: "/caf%C3%A9", status: 401},
		{name: "raw UTF-8", raw: "/caf\xc3\xa9", want: "/caf%C3%A9", status: 401},
		{name: "overlong UTF-8 dots stay literal", raw: "/public/%C0%AE%C0%AE/admin", want: "/public/%C0%AE%C0%AE/admin", status: 200},
		{name: "overlong UTF-8 slash stays literal", raw: "/public/..%c0%afadmin", want: "/public/..%C0%AFadmin", status: 200},
		{name: "fullwidth solidus stays literal", raw: "/public/..%EF%BC%8Fadmin", want: "/public/..%EF%BC%8Fadmin", status: 200},
		{name: "fullwidth dots stay literal", raw: "/public/%EF%BC%8E%EF%BC%8E/admin", want: "/public/%EF%BC%8E%EF%BC%8E/admin", status: 200},

		// Not an origin-form path.
		{name: "empty", raw: "", status: 400},
		{name: "relative", raw: "admin", status: 400},
		{name: "only a query", raw: "?x", status: 400},
		{name: "absolute form", raw: "http://h/admin", status: 400},
		{name: "asterisk form", raw: "*", status: 400},
	}
	policies := map[bool]*Policy{
		false: mustParse(t, decisionPolicy),
		true:  mustParse(t, "case_insensitive_paths: true\n"+decisionPolicy),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(nil, []byte(tc.raw))
			status := 0
			switch {
			case err != nil:
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("Normalize(%q) error %v does not match ErrBadPath", tc.raw, err)
				}
				if got != nil {
					t.Errorf("Normalize(%q) = %q with an error, want dst unchanged", tc.raw, got)
				}
				status = 400
			default:
				if string(got) != tc.want {
					t.Errorf("Normalize(%q) = %q, want %q", tc.raw, got, tc.want)
				}
				outcome, _ := policies[tc.ci].Match(nil, []byte("GET"), got).Decide(nil)
				status = anonymousStatus(outcome)
			}
			if status != tc.status {
				t.Errorf("%q (case-insensitive %v): status %d, want %d", tc.raw, tc.ci, status, tc.status)
			}
		})
	}
}

// anonymousStatus maps the outcome for a request without a token to the
// status a decision endpoint answers.
func anonymousStatus(o Outcome) int {
	switch o {
	case Allowed:
		return 200
	case NeedsToken:
		return 401
	case Denied, MissingScope, WrongIssuer:
		return 403
	}
	panic("unknown outcome " + strconv.Itoa(int(o)))
}

func TestNormalizeAppends(t *testing.T) {
	cases := []struct {
		name, dst, raw, want string
		wantErr              bool
	}{
		{name: "after a prefix", dst: "GET ", raw: "/a/../b", want: "GET /b"},
		{name: "dot-dot stops at the prefix", dst: "/x", raw: "/../../b", want: "/x/b"},
		{name: "root after a prefix", dst: "p", raw: "/..", want: "p/"},
		{name: "error keeps the prefix", dst: "keep", raw: "/a%2Fb", want: "keep", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, len(tc.dst), 64)
			copy(dst, tc.dst)
			got, err := Normalize(dst, []byte(tc.raw))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPathErrorReasons(t *testing.T) {
	cases := []struct{ raw, reason string }{
		{"/a%2fb", "encoded slash"},
		{"/a%5cb", "encoded backslash"},
		{`/a\b`, "backslash"},
		{"/a;b", "path parameter (;)"},
		{"/a%00", "control character"},
		{"/a%g0", "invalid percent-encoding"},
		{"a", "path does not start with /"},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := Normalize(nil, []byte(tc.raw))
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PathError", err)
			}
			if pe.Reason != tc.reason {
				t.Errorf("reason %q, want %q", pe.Reason, tc.reason)
			}
			if want := "policy: bad request path: " + tc.reason; err.Error() != want {
				t.Errorf("message %q, want %q", err.Error(), want)
			}
		})
	}
}

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
