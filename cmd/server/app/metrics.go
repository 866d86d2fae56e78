package app

import (
	"runtime"
	"runtime/debug"

	"github.com/tokengate/tokengate/internal/promtext"
)

// appendMetrics is handlers.Config.Metrics: after the handlers' request
// counters, GET /metrics shows, in this order, tokengate_info,
// tokengate_ready, the policy's, the cache's series (always), the Redis
// second level's (with REDIS_URL), the key set's (local and hybrid modes)
// and the introspection client's (remote and hybrid modes), or under
// several issuers the issuers' series: readiness and validations, then the
// same key-set and introspection families as with one issuer, every sample
// labelled with its issuer (auth.Multi.AppendMetrics), and the gateway's
// (gateway mode).
// Each component renders its own families (an AppendMetrics method, through
// internal/promtext); this function only puts them in order.
func (a *App) appendMetrics(dst []byte) []byte {
	dst = append(dst, a.info...)

	var ready int64
	if a.ready() == nil {
		ready = 1
	}
	dst = promtext.AppendGauge(dst, "tokengate_ready",
		"1 when tokens can be validated (keys loaded, or the introspection endpoint known), else 0: what /readyz says.", ready)

	dst = a.policy.AppendMetrics(dst)
	dst = a.cache.Stats().AppendMetrics(dst)
	if a.l2 != nil {
		dst = a.l2.Stats().AppendMetrics(dst)
	}
	switch {
	case a.multi != nil:
		// Several issuers: their readiness, validations, key sets and
		// introspection clients, by issuer.
		dst = a.multi.AppendMetrics(dst)
	default:
		if a.keys != nil {
			dst = a.keys.Stats().AppendMetrics(dst)
		}
		if a.remote != nil {
			dst = a.remote.Stats().AppendMetrics(dst)
		}
	}
	if a.gw != nil {
		dst = a.gw.AppendMetrics(dst)
	}
	return dst
}

// infoMetric renders tokengate_info once: its labels do not change while
// the process runs.
func infoMetric(mode string, build BuildInfo) []byte {
	version := build.Version
	if version == "" {
		version = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	const name = "tokengate_info"
	b := promtext.AppendHeader(nil, name, promtext.Gauge,
		"Always 1; the labels say what runs: the validation mode, tokengate's version, commit and build date (stamped by make build), and the Go version it was built with.")
	return promtext.AppendUintSample(b, name, 1,
		"mode", mode, "version", version, "commit", build.Commit, "build_date", build.Date, "go_version", runtime.Version())
}
