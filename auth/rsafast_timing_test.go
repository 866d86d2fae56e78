package auth

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkRS256PublicOp is one RS256 signature check with the key in hand,
// impl=crypto-rsa (crypto/rsa.VerifyPKCS1v15, what go-jose calls) against
// impl=fast (fastRSAKey as built for this CPU: Montgomery assembly where
// it has ADX and BMI2) and impl=fast-mathbig (fastRSAKey on math/big's
// Exp, its path on other CPUs and sizes), hash included. For reference on the same
// machine: `openssl speed -seconds 3 rsa4096`, verify column.
func BenchmarkRS256PublicOp(b *testing.B) {
	all := rsaFixtures(b)
	msg := []byte(fastRSAMessage)
	for _, name := range []string{"rsa-2048", "rsa-3072", "rsa-4096", "rsa-8192"} {
		fx := all[name]
		sig := fx.sigs[jose.RS256]
		b.Run("key="+name+"/impl=crypto-rsa", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := sha256.Sum256(msg)
				if err := rsa.VerifyPKCS1v15(fx.pub, crypto.SHA256, h[:], sig); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, impl := range []struct {
			name string
			key  *fastRSAKey
		}{{"fast", fx.fast}, {"fast-mathbig", fx.bigExp}} {
			b.Run("key="+name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.key.VerifyPayload(msg, sig, jose.RS256); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
