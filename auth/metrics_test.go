package auth_test

import (
	"os"
	"time"

	"github.com/tokengate/tokengate/auth"
)

func ExampleKeySetStats_AppendMetrics() {
	s := auth.KeySetStats{Fetches: 12, FetchFailures: 2, UnknownKIDRefreshes: 1, KeysLoaded: 3, LastSuccess: time.Unix(1767225600, 5e8)}
	b := s.AppendMetrics(nil)
	b = auth.KeySetStats{}.AppendMetrics(b) // before the first fetch
	os.Stdout.Write(b)
	// Output:
	// # HELP tokengate_jwks_fetches_total JWKS fetches attempted (background refresh and unknown key id; discovery included).
	// # TYPE tokengate_jwks_fetches_total counter
	// tokengate_jwks_fetches_total 12
	// # HELP tokengate_jwks_fetch_failures_total JWKS fetches that failed; the last good keys stayed in use.
	// # TYPE tokengate_jwks_fetch_failures_total counter
	// tokengate_jwks_fetch_failures_total 2
	// # HELP tokengate_jwks_unknown_kid_refreshes_total JWKS fetches started because a token named a key id the set did not hold (at most one per JWKS_REFRESH_COOLDOWN).
	// # TYPE tokengate_jwks_unknown_kid_refreshes_total counter
	// tokengate_jwks_unknown_kid_refreshes_total 1
	// # HELP tokengate_jwks_keys Signing keys loaded.
	// # TYPE tokengate_jwks_keys gauge
	// tokengate_jwks_keys 3
	// # HELP tokengate_jwks_last_success_timestamp_seconds Unix time of the last successful JWKS fetch; 0 before the first.
	// # TYPE tokengate_jwks_last_success_timestamp_seconds gauge
	// tokengate_jwks_last_success_timestamp_seconds 1767225600
	// # HELP tokengate_jwks_fetches_total JWKS fetches attempted (background refresh and unknown key id; discovery included).
	// # TYPE tokengate_jwks_fetches_total counter
	// tokengate_jwks_fetches_total 0
	// # HELP tokengate_jwks_fetch_failures_total JWKS fetches that failed; the last good keys stayed in use.
	// # TYPE tokengate_jwks_fetch_failures_total counter
	// tokengate_jwks_fetch_failures_total 0
	// # HELP tokengate_jwks_unknown_kid_refreshes_total JWKS fetches started because a token named a key id the set did not hold (at most one per JWKS_REFRESH_COOLDOWN).
	// # TYPE tokengate_jwks_unknown_kid_refreshes_total counter
	// tokengate_jwks_unknown_kid_refreshes_total 0
	// # HELP tokengate_jwks_keys Signing keys loaded.
	// # TYPE tokengate_jwks_keys gauge
	// tokengate_jwks_keys 0
	// # HELP tokengate_jwks_last_success_timestamp_seconds Unix time of the last successful JWKS fetch; 0 before the first.
	// # TYPE tokengate_jwks_last_success_timestamp_seconds gauge
	// tokengate_jwks_last_success_timestamp_seconds 0
}

func ExampleRemoteStats_AppendMetrics() {
	s := auth.RemoteStats{Introspections: 40, Active: 31, Inactive: 5, Rejected: 1}
	s.Failures[auth.RemoteTimeout] = 2
	s.Failures[auth.RemoteStatus5xx] = 1
	os.Stdout.Write(s.AppendMetrics(nil))
	// Output:
	// # HELP tokengate_introspection_requests_total Requests sent to the introspection endpoint.
	// # TYPE tokengate_introspection_requests_total counter
	// tokengate_introspection_requests_total 40
	// # HELP tokengate_introspection_verdicts_total Introspection answers, by verdict: active (accepted), inactive, or rejected (active, but expired, or the wrong issuer, audience, token type or client).
	// # TYPE tokengate_introspection_verdicts_total counter
	// tokengate_introspection_verdicts_total{verdict="active"} 31
	// tokengate_introspection_verdicts_total{verdict="inactive"} 5
	// tokengate_introspection_verdicts_total{verdict="rejected"} 1
	// # HELP tokengate_introspection_failures_total Validations the introspection client could not decide (the request got a 503), by kind.
	// # TYPE tokengate_introspection_failures_total counter
	// tokengate_introspection_failures_total{kind="unreachable"} 0
	// tokengate_introspection_failures_total{kind="timeout"} 2
	// tokengate_introspection_failures_total{kind="status_5xx"} 1
	// tokengate_introspection_failures_total{kind="status_429"} 0
	// tokengate_introspection_failures_total{kind="credentials_rejected"} 0
	// tokengate_introspection_failures_total{kind="bad_response"} 0
	// tokengate_introspection_failures_total{kind="overflow"} 0
	// tokengate_introspection_failures_total{kind="no_endpoint"} 0
	// tokengate_introspection_failures_total{kind="cancelled"} 0
	// tokengate_introspection_failures_total{kind="oversize"} 0
	// tokengate_introspection_failures_total{kind="client_overflow"} 0
}
