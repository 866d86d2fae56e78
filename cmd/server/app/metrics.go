package app

import (
	"runtime"
	"runtime/debug"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/handlers"
)

// appendMetrics is handlers.Config.Metrics: after the handlers' request
// counters, GET /metrics shows, in this order, tokengate_info,
// tokengate_ready, the cache's series (always), the key set's (local and
// hybrid modes) and the introspection client's (remote and hybrid modes).
func (a *App) appendMetrics(dst []byte) []byte {
	dst = append(dst, a.info...)

	ready := 0.0
	if a.ready() == nil {
		ready = 1
	}
	dst = handlers.AppendMetricHeader(dst, "tokengate_ready", "gauge",
		"1 when tokens can be validated (keys loaded, or the introspection endpoint known), else 0: what /readyz says.")
	dst = handlers.AppendMetricSample(dst, "tokengate_ready", ready)

	dst = a.cache.Stats().AppendMetrics(dst)
	if a.keys != nil {
		dst = appendKeySetMetrics(dst, a.keys.Stats())
	}
	if a.remote != nil {
		dst = appendRemoteMetrics(dst, a.remote.Stats())
	}
	return dst
}

// infoMetric renders tokengate_info once: its labels do not change while
// the process runs.
func infoMetric(mode string) []byte {
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	b := handlers.AppendMetricHeader(nil, "tokengate_info", "gauge",
		"Always 1; the labels say what runs: the validation mode, tokengate's version and the Go version it was built with.")
	return handlers.AppendMetricSample(b, "tokengate_info", 1,
		"mode", mode, "version", version, "go_version", runtime.Version())
}

// appendKeySetMetrics appends the tokengate_jwks_* families.
func appendKeySetMetrics(dst []byte, s auth.KeySetStats) []byte {
	dst = appendCounter(dst, "tokengate_jwks_fetches_total",
		"JWKS fetches attempted (background refresh and unknown key id; discovery included).", s.Fetches)
	dst = appendCounter(dst, "tokengate_jwks_fetch_failures_total",
		"JWKS fetches that failed; the last good keys stayed in use.", s.FetchFailures)
	dst = appendCounter(dst, "tokengate_jwks_unknown_kid_refreshes_total",
		"JWKS fetches started because a token named a key id the set did not hold (at most one per JWKS_REFRESH_COOLDOWN).", s.UnknownKIDRefreshes)
	dst = handlers.AppendMetricHeader(dst, "tokengate_jwks_keys", "gauge", "Signing keys loaded.")
	dst = handlers.AppendMetricSample(dst, "tokengate_jwks_keys", float64(s.KeysLoaded))
	var last float64
	if !s.LastSuccess.IsZero() {
		last = float64(s.LastSuccess.Unix())
	}
	dst = handlers.AppendMetricHeader(dst, "tokengate_jwks_last_success_timestamp_seconds", "gauge",
		"Unix time of the last successful JWKS fetch; 0 before the first.")
	return handlers.AppendMetricSample(dst, "tokengate_jwks_last_success_timestamp_seconds", last)
}

// appendRemoteMetrics appends the tokengate_introspection_* families.
func appendRemoteMetrics(dst []byte, s auth.RemoteStats) []byte {
	dst = appendCounter(dst, "tokengate_introspection_requests_total",
		"Requests sent to the introspection endpoint.", s.Introspections)

	const verdicts = "tokengate_introspection_verdicts_total"
	dst = handlers.AppendMetricHeader(dst, verdicts, "counter",
		"Introspection answers, by verdict: active (accepted), inactive, or rejected (active, but expired, or the wrong issuer, audience, token type or client).")
	dst = handlers.AppendMetricSample(dst, verdicts, float64(s.Active), "verdict", "active")
	dst = handlers.AppendMetricSample(dst, verdicts, float64(s.Inactive), "verdict", "inactive")
	dst = handlers.AppendMetricSample(dst, verdicts, float64(s.Rejected), "verdict", "rejected")

	const failures = "tokengate_introspection_failures_total"
	dst = handlers.AppendMetricHeader(dst, failures, "counter",
		"Validations the introspection client could not decide (the request got a 503), by kind.")
	for k, n := range s.Failures {
		dst = handlers.AppendMetricSample(dst, failures, float64(n), "kind", auth.RemoteFailureKind(k).String())
	}
	return dst
}

// appendCounter appends one unlabelled counter family.
func appendCounter(dst []byte, name, help string, v uint64) []byte {
	dst = handlers.AppendMetricHeader(dst, name, "counter", help)
	return handlers.AppendMetricSample(dst, name, float64(v))
}
