package auth_test

// Per-unit verification benchmarks: Local.Validate against a raw go-jose
// parse-and-verify of the same token, per signing algorithm, so that what
// Local adds to the library (shape and header checks, key lookup, strict
// claim decoding, the Principal) is visible. Compare them with
//
//	go test -run '^$' -bench Verify -count 6 ./auth/ > verify.txt
//	benchstat -col /impl verify.txt

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil/algfix"
)

// vtPool is how many distinct tokens each benchmark cycles through: Local
// keeps nothing per token, so this only keeps the inputs realistic.
const vtPool = 32

// vtFixture is an issuer's fixture and Local validators that trust it.
type vtFixture struct {
	*algfix.Fixture
	local *auth.Local
	slow  *auth.Local // KeySetConfig.DisableFastRSA: crypto/rsa for every RSA key
	bytes [][]byte    // the fixture's tokens
}

// vtFixtures builds each fixture once per owner (the top-level test or
// benchmark): sub-benchmarks run several times, and a 4096-bit key takes
// a while to generate.
type vtFixtures struct {
	owner  testing.TB
	issuer *algfix.Set

	mu sync.Mutex // guards m
	m  map[string]*vtFixture
}

func newVTFixtures(owner testing.TB) *vtFixtures {
	return &vtFixtures{owner: owner, issuer: algfix.NewSet(owner, vtPool), m: map[string]*vtFixture{}}
}

func (f *vtFixtures) get(tb testing.TB, a algfix.Alg) *vtFixture {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if fx, ok := f.m[a.Name]; ok {
		return fx
	}
	ifx := f.issuer.Get(tb, a)
	iss := ifx.Issuer
	disc, err := auth.NewDiscovery(auth.DiscoveryConfig{Issuer: iss.Issuer()})
	if err != nil {
		tb.Fatal(err)
	}
	f.owner.Cleanup(disc.Close)
	newLocal := func(disableFastRSA bool) *auth.Local {
		keys, err := auth.NewKeySet(auth.KeySetConfig{Discovery: disc, DisableFastRSA: disableFastRSA})
		if err != nil {
			tb.Fatal(err)
		}
		f.owner.Cleanup(keys.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := keys.Refresh(ctx); err != nil {
			tb.Fatal(err)
		}
		local, err := auth.NewLocal(auth.LocalConfig{Issuer: iss.Issuer(), Audience: iss.Audience(), Keys: keys})
		if err != nil {
			tb.Fatal(err)
		}
		return local
	}
	fx := &vtFixture{Fixture: ifx, local: newLocal(false), slow: newLocal(true)}
	for _, t := range ifx.Tokens {
		fx.bytes = append(fx.bytes, []byte(t))
	}
	f.m[a.Name] = fx
	return fx
}

// BenchmarkVerify runs impl=jose (raw go-jose, so crypto/rsa for RSA) and
// impl=local (Local.Validate) on the same tokens, serially: the figures
// are the CPU cost of one first-sight verification. For RSA keys,
// impl=local-nofast is Local with KeySetConfig.DisableFastRSA, so
// crypto/rsa at every size; impl=local uses fastRSAKey above 2048 bits.
func BenchmarkVerify(b *testing.B) { benchVerify(b, algfix.Algs()) }

// BenchmarkRS256FirstSight is BenchmarkVerify for the RSA keys over 2048
// bits only, where the fast path applies: impl=local (fastRSAKey),
// impl=local-nofast and impl=jose (both crypto/rsa).
func BenchmarkRS256FirstSight(b *testing.B) {
	benchVerify(b, algfix.Algs("RS256-3072", "RS256-4096"))
}

// benchVerify runs BenchmarkVerify's sub-benchmarks for algs.
func benchVerify(b *testing.B, algs []algfix.Alg) {
	fx := newVTFixtures(b)
	ctx := context.Background()
	for _, a := range algs {
		b.Run("alg="+a.Name+"/impl=jose", func(b *testing.B) {
			f := fx.get(b, a)
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a.JWS)}
			issuer, aud := f.Issuer.Issuer(), f.Issuer.Audience()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := algfix.VerifyWithJose(f.Tokens[i%vtPool], algs, f.Public, issuer, aud); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("alg="+a.Name+"/impl=local", func(b *testing.B) {
			f := fx.get(b, a)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.local.Validate(ctx, f.bytes[i%vtPool]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		if a.Bits == 0 {
			continue
		}
		b.Run("alg="+a.Name+"/impl=local-nofast", func(b *testing.B) {
			f := fx.get(b, a)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.slow.Validate(ctx, f.bytes[i%vtPool]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// TestVerifyBenchmarkAgrees checks that both sides of BenchmarkVerify
// accept the issuer's tokens and refuse a tampered one, so the benchmark
// compares like with like.
func TestVerifyBenchmarkAgrees(t *testing.T) {
	fx := newVTFixtures(t)
	for _, a := range algfix.Algs("RS256-2048", "RS256-3072", "ES256", "EdDSA") {
		t.Run(a.Name, func(t *testing.T) {
			f := fx.get(t, a)
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a.JWS)}
			tok := f.Tokens[0]
			if err := algfix.VerifyWithJose(tok, algs, f.Public, f.Issuer.Issuer(), f.Issuer.Audience()); err != nil {
				t.Errorf("jose: %v", err)
			}
			for _, l := range []*auth.Local{f.local, f.slow} {
				p, err := l.Validate(context.Background(), []byte(tok))
				if err != nil || !p.HasScope("items") {
					t.Errorf("local: %v %+v", err, p)
				}
			}
			// Flip one character of the signature.
			bad := []byte(tok)
			last := len(bad) - 2
			if bad[last] == 'A' {
				bad[last] = 'B'
			} else {
				bad[last] = 'A'
			}
			if err := algfix.VerifyWithJose(string(bad), algs, f.Public, f.Issuer.Issuer(), f.Issuer.Audience()); err == nil {
				t.Error("jose accepted a tampered token")
			}
			for _, l := range []*auth.Local{f.local, f.slow} {
				if _, err := l.Validate(context.Background(), bad); !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("local: tampered token gave %v", err)
				}
			}
		})
	}
}
