package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/internal/redistest"
	"github.com/tokengate/tokengate/sharedcache"
)

// introspector stands for the remote validator: it answers every token
// valid (it is never called on a second-level hit, which the benchmark
// checks).
type introspector struct{ calls int }

func (v *introspector) Validate(_ context.Context, token []byte) (*auth.Principal, error) {
	v.calls++
	return &auth.Principal{
		Subject:   "sub-" + string(token),
		ClientID:  "0oa1client",
		Issuer:    "https://issuer.example.com/oauth2/default",
		Audience:  []string{"api://default"},
		Scopes:    []string{"items"},
		TokenID:   "AT.jti-" + string(token),
		IssuedAt:  time.Now().Truncate(time.Second),
		ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second),
	}, nil
}

// BenchmarkSecondLevel measures a token check that misses this replica's
// cache and hits the Redis second level (remote mode: the shared verdict
// replaces the introspection), through authcache and sharedcache against a
// real redis-server on loopback, with allocations; beside it, the
// in-process hit it turns into for the token's later requests. Every
// iteration of l2-hit uses a token this replica has not seen, which
// another replica validated and stored in Redis before the timer started.
func BenchmarkSecondLevel(b *testing.B) {
	srv := redistest.New(b)
	key := []byte("bench-signing-key-0123456789abcdef")
	newReplica := func(b *testing.B, v auth.Validator) *authcache.Cache {
		l2, err := sharedcache.New(sharedcache.Config{URL: srv.URL(), SigningKey: key, Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l2.Close() })
		c, err := authcache.New(v, authcache.Config{MaxTTL: 30 * time.Second, SecondLevel: l2})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}
	ctx := context.Background()

	b.Run("l2-hit", func(b *testing.B) {
		writer, reader := &introspector{}, &introspector{}
		w, r := newReplica(b, writer), newReplica(b, reader)
		tokens := make([][]byte, b.N)
		for i := range tokens {
			tokens[i] = []byte("l2-" + strconv.Itoa(b.N) + "-" + strconv.Itoa(i))
			if _, err := w.Validate(ctx, tokens[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := r.Validate(ctx, tokens[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if reader.calls != 0 {
			b.Fatalf("the reading replica validated %d tokens itself; want every one from Redis", reader.calls)
		}
	})

	b.Run("in-process-hit", func(b *testing.B) {
		c := newReplica(b, &introspector{})
		tok := []byte("hot")
		if _, err := c.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
		c.Wait()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
