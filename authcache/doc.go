// Package authcache remembers what an auth.Validator said about a token.
//
// A Cache decorates any auth.Validator with a ristretto cache bounded by cost
// in bytes. It stores SHA-256 digests of tokens, never tokens: ristretto
// indexes entries by 128 bits of the digest and every hit compares the full
// 256-bit digest. The one exception is the hybrid mode (Config.Revalidator
// set), where a positive entry keeps a copy of its token in memory so that it
// can be re-checked in the background; the copy is counted in the entry's
// cost and is never logged.
//
// A caller that serves connections may keep one Memo per connection and
// call ValidateMemo: the Memo holds a copy of the connection's last good
// token and the entry it hit, and the connection's next request with the
// same bytes (compared in constant time) is answered from that entry
// without the SHA-256 and the lookup, as long as the cache would still
// serve the entry. It changes what a repeated token costs, never the
// answer.
//
// What it guarantees: an entry never outlives its token (one rule, in one
// function: min(exp − now, MaxTTL)); only "the token is bad" answers
// (auth.ErrInvalidToken) are cached as negative entries, never "we could not
// check" (auth.ErrUnavailable) or any other error, nor "unknown signing key",
// which a key-set refresh may undo; concurrent misses for one token share
// one validation, run by the first caller on the cache's own context, while
// every other caller may leave on its own ctx; a token whose signing key the
// issuer retired is not served once the key set has dropped the key
// (Config.SigningKeys); in hybrid mode an entry not re-checked for
// MaxStaleness is not served until a re-check says it is still good; a hit
// allocates nothing.
//
// With a SecondLevel (Config.SecondLevel: sharedcache over Redis), an
// in-process miss asks it before the validator, so that a token costs one
// validation per deployment rather than one per replica, and a revocation
// one replica learns reaches every replica's Forget. The interface is
// defined here and this package imports no Redis client; the same TTL rule
// decides how long a verdict lives in both levels, and the second level
// can delay a miss by its timeout but never make Validate fail.
//
// What it leaves to others: checking route scopes (auth.Principal.HasScope),
// deciding HTTP statuses (handlers) and the validation itself (auth).
package authcache
