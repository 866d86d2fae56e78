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
	"crypto"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/devissuer"
)

// vtAlg is one signing set-up of the development issuer.
type vtAlg struct {
	name string
	alg  string
	bits int
}

var vtAlgs = []vtAlg{
	{"RS256-2048", "RS256", 2048},
	{"RS256-3072", "RS256", 3072},
	{"RS256-4096", "RS256", 4096},
	{"ES256", "ES256", 0},
	{"EdDSA", "EdDSA", 0},
}

// vtPool is how many distinct tokens each benchmark cycles through: Local
// keeps nothing per token, so this only keeps the inputs realistic.
const vtPool = 32

// vtFixture is an issuer, Local validators that trust it, and tokens.
type vtFixture struct {
	iss    *devissuer.Issuer
	local  *auth.Local
	slow   *auth.Local // KeySetConfig.DisableFastRSA: crypto/rsa for every RSA key
	pub    crypto.PublicKey
	tokens []string
	bytes  [][]byte
}

// vtFixtures builds each fixture once per test binary: sub-benchmarks run
// several times, and a 4096-bit key takes a while to generate.
type vtFixtures struct {
	mu sync.Mutex // guards m
	m  map[string]*vtFixture
}

func (f *vtFixtures) get(tb, owner testing.TB, a vtAlg) *vtFixture {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if fx, ok := f.m[a.name]; ok {
		return fx
	}
	iss, err := devissuer.Start(devissuer.Config{Algorithm: a.alg, RSABits: a.bits})
	if err != nil {
		tb.Fatal(err)
	}
	owner.Cleanup(func() { _ = iss.Close() })
	disc, err := auth.NewDiscovery(auth.DiscoveryConfig{Issuer: iss.Issuer()})
	if err != nil {
		tb.Fatal(err)
	}
	owner.Cleanup(disc.Close)
	newLocal := func(disableFastRSA bool) *auth.Local {
		keys, err := auth.NewKeySet(auth.KeySetConfig{Discovery: disc, DisableFastRSA: disableFastRSA})
		if err != nil {
			tb.Fatal(err)
		}
		owner.Cleanup(keys.Close)
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
	local, slow := newLocal(false), newLocal(true)
	tokens, err := iss.MintN(vtPool, devissuer.MintOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	pub, ok := iss.PublicKey(iss.SigningKID())
	if !ok {
		tb.Fatal("no public key for the signing kid")
	}
	fx := &vtFixture{iss: iss, local: local, slow: slow, pub: pub, tokens: tokens}
	for _, t := range tokens {
		fx.bytes = append(fx.bytes, []byte(t))
	}
	if f.m == nil {
		f.m = map[string]*vtFixture{}
	}
	f.m[a.name] = fx
	return fx
}

// vtClaims is what a plain go-jose user decodes: registered claims plus
// Okta's scp and cid.
type vtClaims struct {
	jwt.Claims
	Scp []string `json:"scp"`
	Cid string   `json:"cid"`
}

// vtJoseVerify parses with an algorithm allow-list, verifies with a key
// already in hand, decodes the claims and checks iss, aud and the time
// claims with a minute's leeway: the library floor under Local.Validate.
func vtJoseVerify(token string, algs []jose.SignatureAlgorithm, pub crypto.PublicKey, issuer, audience string) error {
	tok, err := jwt.ParseSigned(token, algs)
	if err != nil {
		return err
	}
	var c vtClaims
	if err := tok.Claims(pub, &c); err != nil {
		return err
	}
	if c.Expiry == nil {
		return errors.New("no exp")
	}
	return c.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()}, time.Minute)
}

// BenchmarkVerify runs impl=jose (raw go-jose, so crypto/rsa for RSA) and
// impl=local (Local.Validate) on the same tokens, serially: the figures
// are the CPU cost of one first-sight verification. For RSA keys,
// impl=local-nofast is Local with KeySetConfig.DisableFastRSA, so
// crypto/rsa at every size; impl=local uses fastRSAKey above 2048 bits.
func BenchmarkVerify(b *testing.B) { benchVerify(b, vtAlgs) }

// BenchmarkRS256FirstSight is BenchmarkVerify for the RSA keys over 2048
// bits only, where the fast path applies: impl=local (fastRSAKey),
// impl=local-nofast and impl=jose (both crypto/rsa).
func BenchmarkRS256FirstSight(b *testing.B) {
	benchVerify(b, []vtAlg{{"RS256-3072", "RS256", 3072}, {"RS256-4096", "RS256", 4096}})
}

// benchVerify runs BenchmarkVerify's sub-benchmarks for algs.
func benchVerify(b *testing.B, algs []vtAlg) {
	var fx vtFixtures
	ctx := context.Background()
	for _, a := range algs {
		b.Run("alg="+a.name+"/impl=jose", func(b *testing.B) {
			f := fx.get(b, b, a)
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a.alg)}
			issuer, aud := f.iss.Issuer(), f.iss.Audience()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := vtJoseVerify(f.tokens[i%vtPool], algs, f.pub, issuer, aud); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("alg="+a.name+"/impl=local", func(b *testing.B) {
			f := fx.get(b, b, a)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.local.Validate(ctx, f.bytes[i%vtPool]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		if a.bits == 0 {
			continue
		}
		b.Run("alg="+a.name+"/impl=local-nofast", func(b *testing.B) {
			f := fx.get(b, b, a)
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
	var fx vtFixtures
	for _, a := range []vtAlg{vtAlgs[0], vtAlgs[1], vtAlgs[3], vtAlgs[4]} {
		t.Run(a.name, func(t *testing.T) {
			f := fx.get(t, t, a)
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a.alg)}
			tok := f.tokens[0]
			if err := vtJoseVerify(tok, algs, f.pub, f.iss.Issuer(), f.iss.Audience()); err != nil {
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
			if err := vtJoseVerify(string(bad), algs, f.pub, f.iss.Issuer(), f.iss.Audience()); err == nil {
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
