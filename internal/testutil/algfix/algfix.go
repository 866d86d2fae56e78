// Package algfix holds test-only fixtures per signing algorithm: a
// development issuer (devissuer) for each set-up, started once per test
// binary's owner, with tokens it minted and its public key.
//
// Only _test.go files import it. It imports devissuer, so devissuer's own
// tests cannot use it; it imports no other tokengate package, so the
// external tests of auth (package auth_test) and bench can.
package algfix

import (
	"crypto"
	"fmt"
	"sync"
	"testing"

	"github.com/tokengate/tokengate/devissuer"
)

// Alg is one signing set-up of the development issuer.
type Alg struct {
	Name string // sub-test and sub-benchmark name, such as "RS256-2048"
	JWS  string // JWS algorithm, such as "RS256"
	Bits int    // RSA key size; 0 for other key types
}

// Algs returns the set-ups called names, in that order, or every set-up
// (RS256 with 2048-, 3072- and 4096-bit keys, ES256, EdDSA) when no name
// is given. An unknown name panics: it is a mistake in the test.
func Algs(names ...string) []Alg {
	all := []Alg{
		{"RS256-2048", "RS256", 2048},
		{"RS256-3072", "RS256", 3072},
		{"RS256-4096", "RS256", 4096},
		{"ES256", "ES256", 0},
		{"EdDSA", "EdDSA", 0},
	}
	if len(names) == 0 {
		return all
	}
	out := make([]Alg, 0, len(names))
	for _, n := range names {
		i := indexOf(all, n)
		if i < 0 {
			panic(fmt.Sprintf("algfix: no set-up named %q", n))
		}
		out = append(out, all[i])
	}
	return out
}

// indexOf returns the index of the set-up called name in algs, or -1.
func indexOf(algs []Alg, name string) int {
	for i, a := range algs {
		if a.Name == name {
			return i
		}
	}
	return -1
}

// Fixture is a running development issuer and tokens it minted.
type Fixture struct {
	Issuer *devissuer.Issuer
	Public crypto.PublicKey // the signing key's public half
	Tokens []string         // distinct valid tokens, as many as the Set was asked for
}

// Set starts each set-up's issuer once, on first use, and keeps it until
// its owner's cleanup: a top-level benchmark runs once, but its
// sub-benchmarks run several times, and a 4096-bit key takes a while to
// generate. Its methods are safe for concurrent use.
type Set struct {
	owner  testing.TB // closes the issuers at its cleanup
	tokens int

	mu sync.Mutex // guards m
	m  map[string]*Fixture
}

// NewSet returns a Set whose fixtures carry tokens minted tokens each and
// live until owner's cleanup.
func NewSet(owner testing.TB, tokens int) *Set {
	return &Set{owner: owner, tokens: tokens, m: map[string]*Fixture{}}
}

// Get returns a's fixture, starting its issuer on first use. A failure
// fails tb.
func (s *Set) Get(tb testing.TB, a Alg) *Fixture {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if fx, ok := s.m[a.Name]; ok {
		return fx
	}
	iss, err := devissuer.Start(devissuer.Config{Algorithm: a.JWS, RSABits: a.Bits})
	if err != nil {
		tb.Fatalf("algfix: start a %s issuer: %v", a.Name, err)
	}
	s.owner.Cleanup(func() { _ = iss.Close() })
	tokens, err := iss.MintN(s.tokens, devissuer.MintOptions{})
	if err != nil {
		tb.Fatalf("algfix: mint %s tokens: %v", a.Name, err)
	}
	pub, ok := iss.PublicKey(iss.SigningKID())
	if !ok {
		tb.Fatalf("algfix: the %s issuer has no public key for its signing kid", a.Name)
	}
	fx := &Fixture{Issuer: iss, Public: pub, Tokens: tokens}
	s.m[a.Name] = fx
	return fx
}
