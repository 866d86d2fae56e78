// Package bench holds tokengate's end-to-end benchmarks: the auth check on
// its own (cache hit, cache miss per signing algorithm, remote miss against
// the development issuer on loopback), the whole server over
// fasthttputil.NewInmemoryListener (GET / as the baseline, GET /items in
// local, remote and hybrid mode, cached and uncached; a cached forward-auth
// decision in each proxy dialect beside GET / on the same server), and a
// raw go-jose parse-and-verify of the same tokens, so that what tokengate
// adds over the library shows side by side.
//
// The servers are built by loadtest/stack, wired like cmd/server. Run them
// with `make bench`, or:
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// "Unique" and "miss" benchmarks cycle through a pre-minted pool of tokens
// against a cache told to keep no valid token
// (authcache.Config.NoPositiveCaching), so every operation verifies a
// signature (or introspects) even though the pool is smaller than b.N. They
// pay the cache's miss path (SHA-256, lookup, singleflight) but not the
// store of a fresh entry. The package has no non-test code besides this
// comment.
package bench
