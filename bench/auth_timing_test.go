package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil/algfix"
)

// checkAuth is what the middleware does with a request's Authorization
// header: parse it, validate the token (through the cache), check the scope.
func checkAuth(ctx context.Context, v auth.Validator, header []byte) error {
	tok, err := auth.ParseBearer(header)
	if err != nil {
		return err
	}
	p, err := v.Validate(ctx, tok)
	if err != nil {
		return err
	}
	if !p.HasScope("items") {
		return errors.New("bench: scope items missing")
	}
	return nil
}

// benchCheck runs checkAuth in parallel over authz after one warming pass.
func benchCheck(b *testing.B, v auth.Validator, authz [][]byte, wait func()) {
	ctx := context.Background()
	for _, h := range authz {
		if err := checkAuth(ctx, v, h); err != nil {
			b.Fatal(err)
		}
	}
	wait()
	var cyc cycler
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := checkAuth(ctx, v, authz[cyc.next(len(authz))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuthCheck measures the auth check alone, without HTTP: the
// production cache in front of the production validators, as the
// middleware calls them.
//
//   - case=hit: a cached token (the hot path; target < 1 µs, 0 allocs).
//   - case=miss/alg=...: every call verifies a JWT signature (local mode,
//     a pool of tokens and no positive caching; see the package comment).
//   - case=remote-miss: every call introspects at the development issuer
//     over loopback TCP (remote mode, INTROSPECTION_CACHE_TTL=0).
func BenchmarkAuthCheck(b *testing.B) {
	fx := newFixtures(b)
	b.Run("case=hit", func(b *testing.B) {
		iss := fx.Get(b, rs2048())
		s := startServer(b, b, iss.Issuer, false)
		benchCheck(b, s.Cache(), bearers(iss.Tokens[:1]), s.Cache().Wait)
	})
	for _, ac := range benchAlgs() {
		b.Run("case=miss/alg="+ac.Name, func(b *testing.B) {
			iss := fx.Get(b, ac)
			s := startServer(b, b, iss.Issuer, true)
			benchCheck(b, s.Cache(), bearers(iss.Tokens), s.Cache().Wait)
		})
	}
	b.Run("case=remote-miss", func(b *testing.B) {
		iss := fx.Get(b, rs2048())
		s := startServer(b, b, iss.Issuer, false, "--validation-mode=remote", "--introspection-cache-ttl=0")
		benchCheck(b, s.Cache(), bearers(iss.Tokens), s.Cache().Wait)
	})
}

// BenchmarkJoseVerify is the raw go-jose parse-and-verify of the tokens
// that case=miss and scenario=local-unique verify, with the key already in
// hand: compare the three to see what tokengate adds over the library.
func BenchmarkJoseVerify(b *testing.B) {
	fx := newFixtures(b)
	for _, ac := range benchAlgs() {
		b.Run("alg="+ac.Name, func(b *testing.B) {
			benchJose(b, fx.Get(b, ac), ac)
		})
	}
}

// benchJose runs joseVerify in parallel over iss's pool.
func benchJose(b *testing.B, iss *algfix.Fixture, ac algfix.Alg) {
	algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(ac.JWS)}
	issuer, aud := iss.Issuer.Issuer(), iss.Issuer.Audience()
	for _, t := range iss.Tokens {
		if err := algfix.VerifyWithJose(t, algs, iss.Public, issuer, aud); err != nil {
			b.Fatal(err)
		}
	}
	var cyc cycler
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := algfix.VerifyWithJose(iss.Tokens[cyc.next(len(iss.Tokens))], algs, iss.Public, issuer, aud); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRS256FirstSight is case=miss of BenchmarkAuthCheck for RSA keys
// over 2048 bits (ORY Hydra signs with 4096), with the fast public
// operation on (RSA_FAST_VERIFY=true, the default) and off (crypto/rsa),
// beside impl=jose, the raw go-jose verification (crypto/rsa) of the same
// tokens.
func BenchmarkRS256FirstSight(b *testing.B) {
	fx := newFixtures(b)
	for _, ac := range algfix.Algs("RS256-3072", "RS256-4096") {
		for _, fast := range []bool{true, false} {
			b.Run(fmt.Sprintf("alg=%s/fast=%v", ac.Name, fast), func(b *testing.B) {
				iss := fx.Get(b, ac)
				s := startServer(b, b, iss.Issuer, true, fmt.Sprintf("--rsa-fast-verify=%v", fast))
				benchCheck(b, s.Cache(), bearers(iss.Tokens), s.Cache().Wait)
			})
		}
		b.Run("alg="+ac.Name+"/impl=jose", func(b *testing.B) {
			benchJose(b, fx.Get(b, ac), ac)
		})
	}
}
