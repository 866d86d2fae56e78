package sharedcache

import "strconv"

// AppendMetrics appends s to dst in the Prometheus text exposition format
// (version 0.0.4), one counter family per field, each with its HELP and
// TYPE lines, in a fixed order: tokengate_l2_hits_total,
// tokengate_l2_misses_total, tokengate_l2_errors_total,
// tokengate_l2_mac_failures_total, tokengate_l2_leases_acquired_total,
// tokengate_l2_lease_waits_total, tokengate_l2_lease_wait_hits_total,
// tokengate_l2_revocations_published_total,
// tokengate_l2_revocations_received_total.
func (s Stats) AppendMetrics(dst []byte) []byte {
	dst = appendCounter(dst, "tokengate_l2_hits_total", "Second-level lookups that found a usable entry.", s.Hits)
	dst = appendCounter(dst, "tokengate_l2_misses_total", "Second-level lookups that found no usable entry.", s.Misses)
	dst = appendCounter(dst, "tokengate_l2_errors_total", "Calls to Redis that failed or timed out (each treated as a miss).", s.Errors)
	dst = appendCounter(dst, "tokengate_l2_mac_failures_total", "Entries and revocation messages that failed authentication.", s.MACFailures)
	dst = appendCounter(dst, "tokengate_l2_leases_acquired_total", "Validation leases taken.", s.LeasesAcquired)
	dst = appendCounter(dst, "tokengate_l2_lease_waits_total", "Waits for another replica's validation.", s.LeaseWaits)
	dst = appendCounter(dst, "tokengate_l2_lease_wait_hits_total", "Waits that got another replica's result in time.", s.LeaseWaitHits)
	dst = appendCounter(dst, "tokengate_l2_revocations_published_total", "Revocations broadcast by this replica.", s.RevocationsPublished)
	dst = appendCounter(dst, "tokengate_l2_revocations_received_total", "Authenticated revocations received.", s.RevocationsReceived)
	return dst
}

// appendCounter appends one unlabelled counter family. name and help are
// constants of this file: they need no escaping.
func appendCounter(dst []byte, name, help string, v uint64) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, help...)
	dst = append(dst, "\n# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, " counter\n"...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	return append(strconv.AppendUint(dst, v, 10), '\n')
}
