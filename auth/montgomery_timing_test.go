package auth

import (
	"fmt"
	mrand "math/rand/v2"
	"testing"
)

// BenchmarkMontMul is one Montgomery product and one squaring of random
// values, on the arithmetic this CPU gets (op=mul, op=sqr) and the pure-Go
// reference (op=mul-go), per limb count.
func BenchmarkMontMul(b *testing.B) {
	r := mrand.New(mrand.NewPCG(5, 6))
	for _, l := range []int{48, 64, 128} {
		n := montTestModuli(r, l)["top bit set"]
		m := newMontModulus(n, 65537)
		x := bigToLimbs(montTestValues(r, n, l)[8], l)
		y := bigToLimbs(montTestValues(r, n, l)[9], l)
		z := make([]uint64, l)
		t := make([]uint64, 2*l+2)
		b.Run(fmt.Sprintf("limbs=%d/op=mul", l), func(b *testing.B) {
			for b.Loop() {
				m.mul(z, x, y, t)
			}
		})
		b.Run(fmt.Sprintf("limbs=%d/op=sqr", l), func(b *testing.B) {
			for b.Loop() {
				m.sqr(z, x, t)
			}
		})
		b.Run(fmt.Sprintf("limbs=%d/op=mul-go", l), func(b *testing.B) {
			for b.Loop() {
				montMulGo(z, x, y, m.n, t, m.n0inv)
			}
		})
	}
}
