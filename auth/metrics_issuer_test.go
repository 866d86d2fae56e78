package auth

import (
	"strings"
	"testing"
	"time"
)

// TestIssuerMetrics: several issuers' key sets and introspection clients
// render as the one-issuer families, each header once, then every
// issuer's samples with the issuer label first, in the given order.
func TestIssuerMetrics(t *testing.T) {
	a := KeySetStats{Fetches: 3, FetchFailures: 1, UnknownKIDRefreshes: 1, KeysLoaded: 2, LastSuccess: time.Unix(1767225600, 0)}
	b := KeySetStats{Fetches: 7}
	ra := RemoteStats{Introspections: 5, Active: 4, Inactive: 1}
	rb := RemoteStats{Introspections: 2, Rejected: 2}
	rb.Failures[RemoteTimeout] = 9
	for _, tc := range []struct {
		name string
		got  string
		want []string // lines, in order; "..." skips any lines
	}{
		{"key sets", string(appendKeySetMetrics(nil, []issuerStats[KeySetStats]{{"a", a}, {"b\"", b}})), []string{
			"# HELP tokengate_jwks_fetches_total JWKS fetches attempted (background refresh and unknown key id; discovery included).",
			"# TYPE tokengate_jwks_fetches_total counter",
			`tokengate_jwks_fetches_total{issuer="a"} 3`,
			`tokengate_jwks_fetches_total{issuer="b\""} 7`,
			"# HELP tokengate_jwks_fetch_failures_total JWKS fetches that failed; the last good keys stayed in use.",
			"# TYPE tokengate_jwks_fetch_failures_total counter",
			`tokengate_jwks_fetch_failures_total{issuer="a"} 1`,
			`tokengate_jwks_fetch_failures_total{issuer="b\""} 0`,
			"...",
			"# TYPE tokengate_jwks_unknown_kid_refreshes_total counter",
			`tokengate_jwks_unknown_kid_refreshes_total{issuer="a"} 1`,
			`tokengate_jwks_unknown_kid_refreshes_total{issuer="b\""} 0`,
			"# HELP tokengate_jwks_keys Signing keys loaded.",
			"# TYPE tokengate_jwks_keys gauge",
			`tokengate_jwks_keys{issuer="a"} 2`,
			`tokengate_jwks_keys{issuer="b\""} 0`,
			"...",
			"# TYPE tokengate_jwks_last_success_timestamp_seconds gauge",
			`tokengate_jwks_last_success_timestamp_seconds{issuer="a"} 1767225600`,
			`tokengate_jwks_last_success_timestamp_seconds{issuer="b\""} 0`,
		}},
		{"introspection clients", string(appendRemoteMetrics(nil, []issuerStats[RemoteStats]{{"a", ra}, {"b", rb}})), []string{
			"# HELP tokengate_introspection_requests_total Requests sent to the introspection endpoint.",
			"# TYPE tokengate_introspection_requests_total counter",
			`tokengate_introspection_requests_total{issuer="a"} 5`,
			`tokengate_introspection_requests_total{issuer="b"} 2`,
			"...",
			"# TYPE tokengate_introspection_verdicts_total counter",
			`tokengate_introspection_verdicts_total{issuer="a",verdict="active"} 4`,
			`tokengate_introspection_verdicts_total{issuer="a",verdict="inactive"} 1`,
			`tokengate_introspection_verdicts_total{issuer="a",verdict="rejected"} 0`,
			`tokengate_introspection_verdicts_total{issuer="b",verdict="active"} 0`,
			`tokengate_introspection_verdicts_total{issuer="b",verdict="inactive"} 0`,
			`tokengate_introspection_verdicts_total{issuer="b",verdict="rejected"} 2`,
			"...",
			"# TYPE tokengate_introspection_failures_total counter",
			`tokengate_introspection_failures_total{issuer="a",kind="unreachable"} 0`,
			"...",
			`tokengate_introspection_failures_total{issuer="a",kind="client_overflow"} 0`,
			`tokengate_introspection_failures_total{issuer="b",kind="unreachable"} 0`,
			`tokengate_introspection_failures_total{issuer="b",kind="timeout"} 9`,
			"...",
			`tokengate_introspection_failures_total{issuer="b",kind="client_overflow"} 0`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := strings.Split(strings.TrimSuffix(tc.got, "\n"), "\n")
			if err := matchLines(lines, tc.want); err != "" {
				t.Errorf("%s in:\n%s", err, tc.got)
			}
			headers := map[string]int{}
			for _, l := range lines {
				if name, ok := strings.CutPrefix(l, "# TYPE "); ok {
					headers[name]++
				}
			}
			for name, n := range headers {
				if n != 1 {
					t.Errorf("%d TYPE lines for %s", n, name)
				}
			}
		})
	}
}

// matchLines reports how lines fail to follow want, where "..." in want
// skips any number of lines up to the next wanted one, and the last
// wanted line must be the last line; "" when they match.
func matchLines(lines, want []string) string {
	i, skip := 0, false
	for _, w := range want {
		if w == "..." {
			skip = true
			continue
		}
		for skip && i < len(lines) && lines[i] != w {
			i++
		}
		if i == len(lines) || lines[i] != w {
			return "missing or out of order: " + w
		}
		i, skip = i+1, false
	}
	if i != len(lines) && !skip {
		return "unexpected: " + lines[i]
	}
	return ""
}
