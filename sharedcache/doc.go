// Package sharedcache is the Redis second level behind authcache: it shares
// token verdicts and revocations between the replicas of one deployment.
//
// A Cache is the authcache.SecondLevel that authcache.Config.SecondLevel
// takes: it stores, under KeyPrefix + hex(SHA-256(token)), a compact signed
// authcache.L2Entry: the verdict, the auth.Principal of a valid token or the
// auth.Reason of an invalid one, when it was validated and until when it
// may be served.
// It is given digests, never tokens, and stores no token. Every entry is
// authenticated with HMAC-SHA-256 over the digest and the value, so whoever
// can write to Redis can delete verdicts but cannot forge one or move one
// token's entry to another token. Lease and Await let one replica validate a
// token new to all of them while the others wait briefly for its result;
// Revoke overwrites a verdict with a negative one, leaves a marker under
// which no valid verdict stored later is served, and broadcasts the digest
// (signed too) to every replica's subscriber (Start).
//
// What it guarantees: Redis is never a reason to fail. Every call returns
// within about Config.Timeout (50ms) whatever Redis does; down, slow,
// garbage or forged all read as a miss; nothing panics or blocks shutdown;
// New does not contact Redis, so readiness does not depend on it.
//
// What it leaves to others: what to cache and for how long (authcache's TTL
// rule gives Set its ttl), the validation itself (auth), and rendering
// Stats (the caller writes /metrics, with Stats.AppendMetrics).
//
// go-redis logs some failures (a dial that fails, a pool that cannot grow)
// through its own process-wide logger, on stderr by default: main replaces
// it once with NewRedisLogger's rate-limited one.
//
// Only a single Redis node (or a proxy in front of several) is supported;
// Sentinel and Cluster are not yet.
package sharedcache
