package authcache

import "github.com/tokengate/tokengate/internal/promtext"

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), one family per field, each with its HELP and TYPE
// lines, in a fixed order: tokengate_cache_hits_total,
// tokengate_cache_negative_hits_total, tokengate_cache_misses_total,
// tokengate_cache_validations_total, tokengate_cache_revalidations_total,
// tokengate_cache_revoked_total, tokengate_cache_stale_waits_total,
// tokengate_cache_retired_keys_total, tokengate_cache_evictions_total,
// tokengate_cache_rejections_total (counters), then
// tokengate_cache_cost_bytes and tokengate_cache_max_cost_bytes (gauges).
func (s Stats) AppendMetrics(dst []byte) []byte {
	dst = promtext.AppendCounter(dst, "tokengate_cache_hits_total", "Token checks answered from a cached valid answer.", s.Hits)
	dst = promtext.AppendCounter(dst, "tokengate_cache_negative_hits_total", "Token checks answered from a cached invalid (or revoked) answer.", s.NegativeHits)
	dst = promtext.AppendCounter(dst, "tokengate_cache_misses_total", "Token checks not answered from the cache (they started or joined a validation).", s.Misses)
	dst = promtext.AppendCounter(dst, "tokengate_cache_validations_total", "Calls to the validator behind the cache.", s.Validations)
	dst = promtext.AppendCounter(dst, "tokengate_cache_revalidations_total", "Background re-checks of cached valid tokens (hybrid mode).", s.Revalidations)
	dst = promtext.AppendCounter(dst, "tokengate_cache_revoked_total", "Cached valid tokens found revoked by a background re-check.", s.Revoked)
	dst = promtext.AppendCounter(dst, "tokengate_cache_forgotten_total", "Cached valid tokens dropped because a revocation was published (by this replica or another).", s.Forgotten)
	dst = promtext.AppendCounter(dst, "tokengate_cache_stale_waits_total", "Token checks that found a cached valid answer older than the maximum staleness and waited for its re-check.", s.StaleWaits)
	dst = promtext.AppendCounter(dst, "tokengate_cache_retired_keys_total", "Token checks that found a cached answer signed by a key the issuer no longer publishes, and validated afresh.", s.RetiredKeys)
	dst = promtext.AppendCounter(dst, "tokengate_cache_evictions_total", "Entries removed by the cost bound or expiry.", s.Evictions)
	dst = promtext.AppendCounter(dst, "tokengate_cache_rejections_total", "Entries refused by the cache's admission policy.", s.Rejections)
	dst = promtext.AppendGauge(dst, "tokengate_cache_cost_bytes", "Estimated bytes held by the cache.", s.Cost)
	dst = promtext.AppendGauge(dst, "tokengate_cache_max_cost_bytes", "The cache's bound, in bytes.", s.MaxCost)
	return dst
}
