package auth

import "github.com/tokengate/tokengate/internal/promtext"

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), in a fixed order: tokengate_jwks_fetches_total,
// tokengate_jwks_fetch_failures_total,
// tokengate_jwks_unknown_kid_refreshes_total (counters), then
// tokengate_jwks_keys and tokengate_jwks_last_success_timestamp_seconds
// (gauges; the timestamp is 0 before the first success).
func (s KeySetStats) AppendMetrics(dst []byte) []byte {
	dst = promtext.AppendCounter(dst, "tokengate_jwks_fetches_total",
		"JWKS fetches attempted (background refresh and unknown key id; discovery included).", s.Fetches)
	dst = promtext.AppendCounter(dst, "tokengate_jwks_fetch_failures_total",
		"JWKS fetches that failed; the last good keys stayed in use.", s.FetchFailures)
	dst = promtext.AppendCounter(dst, "tokengate_jwks_unknown_kid_refreshes_total",
		"JWKS fetches started because a token named a key id the set did not hold (at most one per JWKS_REFRESH_COOLDOWN).", s.UnknownKIDRefreshes)
	dst = promtext.AppendGauge(dst, "tokengate_jwks_keys", "Signing keys loaded.", int64(s.KeysLoaded))
	var last int64
	if !s.LastSuccess.IsZero() {
		last = s.LastSuccess.Unix()
	}
	return promtext.AppendGauge(dst, "tokengate_jwks_last_success_timestamp_seconds",
		"Unix time of the last successful JWKS fetch; 0 before the first.", last)
}

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), in a fixed order: tokengate_introspection_requests_total,
// tokengate_introspection_verdicts_total{verdict} (active, inactive,
// rejected) and tokengate_introspection_failures_total{kind}, one series
// per RemoteFailureKind, zeros included. All three are counters.
func (s RemoteStats) AppendMetrics(dst []byte) []byte {
	dst = promtext.AppendCounter(dst, "tokengate_introspection_requests_total",
		"Requests sent to the introspection endpoint.", s.Introspections)

	const verdicts = "tokengate_introspection_verdicts_total"
	dst = promtext.AppendHeader(dst, verdicts, promtext.Counter,
		"Introspection answers, by verdict: active (accepted), inactive, or rejected (active, but expired, or the wrong issuer, audience, token type or client).")
	dst = promtext.AppendUintSample(dst, verdicts, s.Active, "verdict", "active")
	dst = promtext.AppendUintSample(dst, verdicts, s.Inactive, "verdict", "inactive")
	dst = promtext.AppendUintSample(dst, verdicts, s.Rejected, "verdict", "rejected")

	const failures = "tokengate_introspection_failures_total"
	dst = promtext.AppendHeader(dst, failures, promtext.Counter,
		"Validations the introspection client could not decide (the request got a 503), by kind.")
	for k, n := range s.Failures {
		dst = promtext.AppendUintSample(dst, failures, n, "kind", RemoteFailureKind(k).String())
	}
	return dst
}
