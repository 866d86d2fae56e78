package authcache

import "strconv"

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), one family per field, each with its HELP and TYPE
// lines, in a fixed order: tokengate_cache_hits_total,
// tokengate_cache_negative_hits_total, tokengate_cache_misses_total,
// tokengate_cache_validations_total, tokengate_cache_revalidations_total,
// tokengate_cache_revoked_total, tokengate_cache_evictions_total,
// tokengate_cache_rejections_total (counters), then
// tokengate_cache_cost_bytes and tokengate_cache_max_cost_bytes (gauges).
func (s Stats) AppendMetrics(dst []byte) []byte {
	dst = appendCounter(dst, "tokengate_cache_hits_total", "Token checks answered from a cached valid answer.", s.Hits)
	dst = appendCounter(dst, "tokengate_cache_negative_hits_total", "Token checks answered from a cached invalid (or revoked) answer.", s.NegativeHits)
	dst = appendCounter(dst, "tokengate_cache_misses_total", "Token checks not answered from the cache (they started or joined a validation).", s.Misses)
	dst = appendCounter(dst, "tokengate_cache_validations_total", "Calls to the validator behind the cache.", s.Validations)
	dst = appendCounter(dst, "tokengate_cache_revalidations_total", "Background re-checks of cached valid tokens (hybrid mode).", s.Revalidations)
	dst = appendCounter(dst, "tokengate_cache_revoked_total", "Cached valid tokens found revoked by a background re-check.", s.Revoked)
	dst = appendCounter(dst, "tokengate_cache_evictions_total", "Entries removed by the cost bound or expiry.", s.Evictions)
	dst = appendCounter(dst, "tokengate_cache_rejections_total", "Entries refused by the cache's admission policy.", s.Rejections)
	dst = appendGauge(dst, "tokengate_cache_cost_bytes", "Estimated bytes held by the cache.", s.Cost)
	dst = appendGauge(dst, "tokengate_cache_max_cost_bytes", "The cache's bound, in bytes.", s.MaxCost)
	return dst
}

// appendCounter appends one unlabelled counter family. name and help are
// constants of this file: they need no escaping.
func appendCounter(dst []byte, name, help string, v uint64) []byte {
	dst = appendHeader(dst, name, "counter", help)
	return append(strconv.AppendUint(dst, v, 10), '\n')
}

// appendGauge appends one unlabelled gauge family.
func appendGauge(dst []byte, name, help string, v int64) []byte {
	dst = appendHeader(dst, name, "gauge", help)
	return append(strconv.AppendInt(dst, v, 10), '\n')
}

// appendHeader appends the HELP and TYPE lines and the sample's name.
func appendHeader(dst []byte, name, typ, help string) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, help...)
	dst = append(dst, "\n# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, typ...)
	dst = append(dst, '\n')
	dst = append(dst, name...)
	return append(dst, ' ')
}
