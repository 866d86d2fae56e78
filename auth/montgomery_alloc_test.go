//go:build !race

package auth

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestFastRSAVerifyAllocs guards the Montgomery public operation: an RS256
// check of a genuine signature allocates nothing, on the assembly (where
// this CPU has it) and on the pure-Go multiplication.
func TestFastRSAVerifyAllocs(t *testing.T) {
	msg := []byte(fastRSAMessage)
	for _, name := range []string{"rsa-3072", "rsa-4096", "rsa-8192", "rsa-3001"} {
		fx := rsaFixtures(t)[name]
		for _, v := range fx.verifiers() {
			if v.key.mont == nil {
				continue // math/big's Exp allocates; not this guard's path
			}
			t.Run(name+"/"+v.name, func(t *testing.T) {
				sig := fx.sigs[jose.RS256]
				allocs := testing.AllocsPerRun(20, func() {
					if err := v.key.VerifyPayload(msg, sig, jose.RS256); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Fatalf("%v allocations per verification, want 0", allocs)
				}
			})
		}
	}
}
