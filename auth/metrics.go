package auth

import "github.com/tokengate/tokengate/internal/promtext"

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), in a fixed order: tokengate_jwks_fetches_total,
// tokengate_jwks_fetch_failures_total,
// tokengate_jwks_unknown_kid_refreshes_total (counters), then
// tokengate_jwks_keys and tokengate_jwks_last_success_timestamp_seconds
// (gauges; the timestamp is 0 before the first success). Under several
// issuers, Multi.AppendMetrics renders the same families with an issuer
// label.
func (s KeySetStats) AppendMetrics(dst []byte) []byte {
	return appendKeySetMetrics(dst, []issuerStats[KeySetStats]{{stats: s}})
}

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), in a fixed order: tokengate_introspection_requests_total,
// tokengate_introspection_verdicts_total{verdict} (active, inactive,
// rejected) and tokengate_introspection_failures_total{kind}, one series
// per RemoteFailureKind, zeros included. All three are counters. Under
// several issuers, Multi.AppendMetrics renders the same families with an
// issuer label.
func (s RemoteStats) AppendMetrics(dst []byte) []byte {
	return appendRemoteMetrics(dst, []issuerStats[RemoteStats]{{stats: s}})
}

// issuerStats is one component's figures and the issuer (MultiIssuer.Name)
// its samples name; "" (one issuer) gives samples without an issuer label.
type issuerStats[S any] struct {
	issuer string
	stats  S
}

// appendKeySetMetrics renders the key-set families of KeySetStats.AppendMetrics
// for every key set in sets: each family's header once, then its sample of
// each set, in sets' order.
func appendKeySetMetrics(dst []byte, sets []issuerStats[KeySetStats]) []byte {
	counter := func(dst []byte, name, help string, v func(KeySetStats) uint64) []byte {
		dst = promtext.AppendHeader(dst, name, promtext.Counter, help)
		for i := range sets {
			dst = appendIssuerUint(dst, name, v(sets[i].stats), sets[i].issuer, "", "")
		}
		return dst
	}
	gauge := func(dst []byte, name, help string, v func(KeySetStats) int64) []byte {
		dst = promtext.AppendHeader(dst, name, promtext.Gauge, help)
		for i := range sets {
			dst = appendIssuerInt(dst, name, v(sets[i].stats), sets[i].issuer)
		}
		return dst
	}
	dst = counter(dst, "tokengate_jwks_fetches_total",
		"JWKS fetches attempted (background refresh and unknown key id; discovery included).",
		func(s KeySetStats) uint64 { return s.Fetches })
	dst = counter(dst, "tokengate_jwks_fetch_failures_total",
		"JWKS fetches that failed; the last good keys stayed in use.",
		func(s KeySetStats) uint64 { return s.FetchFailures })
	dst = counter(dst, "tokengate_jwks_unknown_kid_refreshes_total",
		"JWKS fetches started because a token named a key id the set did not hold (at most one per JWKS_REFRESH_COOLDOWN).",
		func(s KeySetStats) uint64 { return s.UnknownKIDRefreshes })
	dst = gauge(dst, "tokengate_jwks_keys", "Signing keys loaded.",
		func(s KeySetStats) int64 { return int64(s.KeysLoaded) })
	return gauge(dst, "tokengate_jwks_last_success_timestamp_seconds",
		"Unix time of the last successful JWKS fetch; 0 before the first.",
		func(s KeySetStats) int64 {
			if s.LastSuccess.IsZero() {
				return 0
			}
			return s.LastSuccess.Unix()
		})
}

// appendRemoteMetrics renders the introspection families of
// RemoteStats.AppendMetrics for every introspection client in rs: each
// family's header once, then the samples of each client, in rs' order.
func appendRemoteMetrics(dst []byte, rs []issuerStats[RemoteStats]) []byte {
	const requests = "tokengate_introspection_requests_total"
	dst = promtext.AppendHeader(dst, requests, promtext.Counter, "Requests sent to the introspection endpoint.")
	for i := range rs {
		dst = appendIssuerUint(dst, requests, rs[i].stats.Introspections, rs[i].issuer, "", "")
	}

	const verdicts = "tokengate_introspection_verdicts_total"
	dst = promtext.AppendHeader(dst, verdicts, promtext.Counter,
		"Introspection answers, by verdict: active (accepted), inactive, or rejected (active, but expired, or the wrong issuer, audience, token type or client).")
	for i := range rs {
		s, iss := &rs[i].stats, rs[i].issuer
		dst = appendIssuerUint(dst, verdicts, s.Active, iss, "verdict", "active")
		dst = appendIssuerUint(dst, verdicts, s.Inactive, iss, "verdict", "inactive")
		dst = appendIssuerUint(dst, verdicts, s.Rejected, iss, "verdict", "rejected")
	}

	const failures = "tokengate_introspection_failures_total"
	dst = promtext.AppendHeader(dst, failures, promtext.Counter,
		"Validations the introspection client could not decide (the request got a 503), by kind.")
	for i := range rs {
		for k, n := range rs[i].stats.Failures {
			dst = appendIssuerUint(dst, failures, n, rs[i].issuer, "kind", RemoteFailureKind(k).String())
		}
	}
	return dst
}

// appendIssuerUint appends one counter sample labelled issuer="<issuer>"
// unless issuer is "", then label="value" unless label is "".
func appendIssuerUint(dst []byte, name string, v uint64, issuer, label, value string) []byte {
	var buf [4]string
	return promtext.AppendUintSample(dst, name, v, issuerLabels(&buf, issuer, label, value)...)
}

// appendIssuerInt appends one gauge sample labelled issuer="<issuer>"
// unless issuer is "".
func appendIssuerInt(dst []byte, name string, v int64, issuer string) []byte {
	var buf [4]string
	return promtext.AppendIntSample(dst, name, v, issuerLabels(&buf, issuer, "", "")...)
}

// issuerLabels returns the label pairs of a sample in buf: the issuer
// first, as in tokengate_issuer_validations_total, then label.
func issuerLabels(buf *[4]string, issuer, label, value string) []string {
	l := buf[:0]
	if issuer != "" {
		l = append(l, "issuer", issuer)
	}
	if label != "" {
		l = append(l, label, value)
	}
	return l
}
