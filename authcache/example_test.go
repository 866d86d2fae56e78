package authcache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

// validatorFunc adapts a function to auth.Validator.
type validatorFunc func(ctx context.Context, token []byte) (*auth.Principal, error)

func (f validatorFunc) Validate(ctx context.Context, token []byte) (*auth.Principal, error) {
	return f(ctx, token)
}

func Example() {
	slow := validatorFunc(func(ctx context.Context, token []byte) (*auth.Principal, error) {
		if string(token) != "good-token" {
			return nil, auth.Invalid(auth.ReasonSignature)
		}
		return &auth.Principal{Subject: "alice", Scopes: []string{"items"}, ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	cache, err := authcache.New(slow, authcache.Config{MaxTTL: time.Minute})
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	ctx := context.Background()
	for range 3 {
		p, err := cache.Validate(ctx, []byte("good-token"))
		fmt.Println(p.Subject, p.HasScope("items"), err)
		cache.Wait() // only so that the example's counts are exact
	}
	_, err = cache.Validate(ctx, []byte("forged"))
	fmt.Println(err)

	s := cache.Stats()
	fmt.Printf("hits %d, validations %d\n", s.Hits, s.Validations)
	// Output:
	// alice true <nil>
	// alice true <nil>
	// alice true <nil>
	// auth: invalid token: signature invalid
	// hits 2, validations 2
}
