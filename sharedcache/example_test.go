package sharedcache_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/sharedcache"
)

// validate stands for the validator behind the cache.
func validate(token []byte) (*auth.Principal, error) {
	return &auth.Principal{Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

// The flow of a token the local cache does not know: ask the second level,
// else lease the validation (or wait for whoever holds it), then share the
// result. Every Redis problem along the way is a miss, so the token is
// validated here as if there were no second level.
func Example() {
	cache, err := sharedcache.New(sharedcache.Config{
		URL:        "redis://127.0.0.1:6379/0",
		SigningKey: []byte(os.Getenv("L2_SIGNING_KEY")), // 32 random bytes or more, shared by every replica
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// Drop revoked tokens from local memory, whichever replica revoked them.
	_ = cache.Start(func(digest [sha256.Size]byte) { /* local.Delete(digest) */ })

	ctx := context.Background()
	token := []byte("eyJ...")
	digest := sha256.Sum256(token)
	if e, ok := cache.Get(ctx, digest); ok {
		fmt.Println("shared verdict, positive:", (e.Principal != nil))
		return
	}
	if !cache.Lease(ctx, digest) {
		if e, ok := cache.Await(ctx, digest); ok {
			fmt.Println("another replica's verdict, positive:", (e.Principal != nil))
			return
		}
	}
	p, err := validate(token)
	if err != nil {
		return
	}
	ttl := min(time.Until(p.ExpiresAt), 5*time.Minute) // the local cache's TTL rule decides
	_ = cache.Set(ctx, digest, authcache.L2Entry{Principal: p, ValidatedAt: time.Now()}, ttl)
}
