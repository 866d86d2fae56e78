package sharedcache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/internal/testutil"
)

// keyedValidator verifies every token with the key "k1" while keys holds
// it, and counts its calls.
type keyedValidator struct {
	keys  *testutil.Keys
	calls atomic.Int64
}

func (v *keyedValidator) Validate(_ context.Context, token []byte) (*auth.Principal, error) {
	v.calls.Add(1)
	if !v.keys.HoldsKey("k1") {
		return nil, auth.Invalid(auth.ReasonUnknownKey)
	}
	return &auth.Principal{Subject: string(token), ExpiresAt: time.Now().Add(time.Hour), KeyThumbprint: "k1"}, nil
}

// TestRetiredKeyAcrossReplicas: a replica that took a token's verdict from
// Redis stops serving it once its key set drops the key that verified the
// token, as the replica that validated it does (authcache.Config
// SigningKeys without a SecondLevelVerifier: the several-issuers setup).
func TestRetiredKeyAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	keys := testutil.NewKeys("k1")
	var replicas [2]*authcache.Cache
	var validators [2]*keyedValidator
	for i := range replicas {
		validators[i] = &keyedValidator{keys: keys}
		c, err := authcache.New(validators[i], authcache.Config{
			MaxTTL: time.Minute, SigningKeys: keys, SecondLevel: newTestCache(t, srv, nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		replicas[i] = c
	}
	ctx := context.Background()
	for i, c := range replicas {
		if _, err := c.Validate(ctx, []byte("tok")); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		c.Wait()
	}
	if n := validators[1].calls.Load(); n != 0 {
		t.Fatalf("replica 1 validated the token %d times, want 0 (a verdict from Redis)", n)
	}
	keys.Drop("k1")
	for i, c := range replicas {
		if p, err := c.Validate(ctx, []byte("tok")); err == nil {
			t.Errorf("replica %d served %+v after its key was retired", i, p)
		}
	}
}
