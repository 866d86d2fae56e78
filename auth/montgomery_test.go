package auth

import (
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"testing"
)

// montTestModuli are odd moduli of every shape the arithmetic must take,
// for a limb count l: random with the top bit set, a top limb of exactly
// 2^63, a tiny top limb, all ones, and a random top limb.
func montTestModuli(r *mrand.Rand, l int) map[string]*big.Int {
	randLimbs := func() []uint64 {
		x := make([]uint64, l)
		for i := range x {
			x[i] = r.Uint64()
		}
		return x
	}
	shapes := map[string]func(x []uint64){
		"top bit set":   func(x []uint64) { x[l-1] |= 1 << 63 },
		"top limb 2^63": func(x []uint64) { x[l-1] = 1 << 63 },
		"top limb 1":    func(x []uint64) { x[l-1] = 1 },
		"all ones": func(x []uint64) {
			for i := range x {
				x[i] = ^uint64(0)
			}
		},
		"random top limb": func(x []uint64) { x[l-1] = r.Uint64()>>1 | 1 },
	}
	out := make(map[string]*big.Int, len(shapes))
	for name, shape := range shapes {
		x := randLimbs()
		shape(x)
		x[0] |= 1 // after the shape: with one limb, the top limb is the bottom one
		out[name] = limbsToBig(x)
	}
	return out
}

func limbsToBig(x []uint64) *big.Int {
	b := make([]byte, 8*len(x))
	limbsToBytes(b, x)
	return new(big.Int).SetBytes(b)
}

func bigToLimbs(x *big.Int, l int) []uint64 {
	z := make([]uint64, l)
	limbsFromBytes(z, x.Bytes())
	return z
}

// montTestValues are inputs below n: edge values and random ones.
func montTestValues(r *mrand.Rand, n *big.Int, l int) []*big.Int {
	one := big.NewInt(1)
	allOnes := new(big.Int).Sub(new(big.Int).Lsh(one, uint(64*l)), one)
	vals := []*big.Int{
		big.NewInt(0), one, big.NewInt(2),
		new(big.Int).Sub(n, one),
		new(big.Int).Sub(n, big.NewInt(2)),
		new(big.Int).Mod(allOnes, n),
		new(big.Int).Rsh(n, 1),
	}
	for range 6 {
		vals = append(vals, new(big.Int).Mod(limbsToBig(randLimbsN(r, l)), n))
	}
	return vals
}

func randLimbsN(r *mrand.Rand, l int) []uint64 {
	x := make([]uint64, l)
	for i := range x {
		x[i] = r.Uint64()
	}
	return x
}

// montMulImpl is a Montgomery product under test.
type montMulImpl struct {
	name   string
	f      func(z, x, y, n, t []uint64, n0inv uint64)
	square bool // f computes x², whatever y
}

// TestMontMul checks montMulGo, montMulAsm and montSqrAsm (its product
// is x², whatever y) against math/big,
// x·y·R⁻¹ mod n, for the limb counts with an assembly routine and others,
// moduli of every shape and edge inputs, with z apart from and aliasing
// the inputs.
func TestMontMul(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, l := range []int{1, 2, 3, 33, 47, 48, 49, 64, 65, 127, 128} {
		for name, n := range montTestModuli(r, l) {
			t.Run(fmt.Sprintf("limbs=%d/%s", l, name), func(t *testing.T) {
				m := newMontModulus(n, 3)
				if m.limbs != l {
					t.Fatalf("limbs = %d, want %d", m.limbs, l)
				}
				rInv := new(big.Int).Lsh(big.NewInt(1), uint(64*l))
				rInv.ModInverse(rInv, n)
				vals := montTestValues(r, n, l)
				tmp := make([]uint64, 2*l+2)
				muls := []montMulImpl{{name: "Go", f: montMulGo}}
				if m.asm || (l != 48 && l != 64 && l != 128) {
					// The assembly routines where this CPU runs them, and
					// the fallback of montMulAsm and montSqrAsm for the limb
					// counts they have no routine for.
					muls = append(muls, montMulImpl{name: "asm", f: montMulAsm}, montMulImpl{name: "asm squaring", square: true,
						f: func(z, x, _, n, t []uint64, n0inv uint64) { montSqrAsm(z, x, n, t, n0inv) }})
				}
				for i, x := range vals {
					y := vals[(i*5+3)%len(vals)]
					sq := new(big.Int).Mul(x, x)
					sq.Mul(sq, rInv).Mod(sq, n)
					for _, mul := range muls {
						want := new(big.Int).Mul(x, y)
						want.Mul(want, rInv).Mod(want, n)
						if mul.square {
							want = sq
						}
						z := make([]uint64, l)
						mul.f(z, bigToLimbs(x, l), bigToLimbs(y, l), m.n, tmp, m.n0inv)
						if got := limbsToBig(z); got.Cmp(want) != 0 {
							t.Fatalf("%s: %x · %x = %x, want %x", mul.name, x, y, got, want)
						}
						// z aliasing both inputs: a squaring in place.
						z = bigToLimbs(x, l)
						mul.f(z, z, z, m.n, tmp, m.n0inv)
						if got := limbsToBig(z); got.Cmp(sq) != 0 {
							t.Fatalf("%s: %x² in place = %x, want %x", mul.name, x, got, sq)
						}
					}
				}
			})
		}
	}
}

// TestMontExp checks montModulus.exp, on the assembly (where this CPU has
// it) and on the pure-Go multiplication, against math/big's Exp for every
// fixture modulus with the key's exponent and others, and that it refuses
// s >= n and lengths other than k.
func TestMontExp(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	for _, name := range rsaFixtureNames {
		fx := rsaFixtures(t)[name]
		n := fx.pub.N
		for _, e := range []int{fx.pub.E, 3, 5, 17, 65537, 1<<31 - 1} {
			for _, asm := range []bool{true, false} {
				m := newMontModulus(n, e)
				if asm && !m.asm {
					continue // no assembly for this CPU or size: the false run covers it
				}
				m.asm = asm
				t.Run(fmt.Sprintf("%s/e=%d/asm=%v", name, e, asm), func(t *testing.T) {
					k := m.size
					for _, s := range montTestValues(r, n, m.limbs) {
						want := new(big.Int).Exp(s, big.NewInt(int64(e)), n)
						got := make([]byte, k)
						if !m.exp(got, bigBytes(s, k)) {
							t.Fatalf("s=%x: refused", s)
						}
						if new(big.Int).SetBytes(got).Cmp(want) != 0 {
							t.Fatalf("s=%x: got %x, want %x", s, got, want)
						}
					}
					for _, s := range []*big.Int{n, new(big.Int).Add(n, big.NewInt(1)), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(8*k)), big.NewInt(1))} {
						if m.exp(make([]byte, k), bigBytes(s, k)) {
							t.Errorf("s = %x >= n: accepted", s)
						}
					}
					for _, lens := range [][2]int{{k - 1, k}, {k + 1, k}, {k, k - 1}, {k, k + 1}} {
						if m.exp(make([]byte, lens[1]), make([]byte, lens[0])) {
							t.Errorf("%d-byte signature into %d bytes: accepted", lens[0], lens[1])
						}
					}
				})
			}
		}
	}
}

// TestLimbBytes round-trips numbers through limbs for byte lengths that
// are and are not multiples of 8.
func TestLimbBytes(t *testing.T) {
	for _, k := range []int{1, 7, 8, 9, 375, 384, 512, 1024} {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(i*7 + 1)
		}
		l := (k + 7) / 8
		z := make([]uint64, l)
		limbsFromBytes(z, b)
		if got, want := limbsToBig(z), new(big.Int).SetBytes(b); got.Cmp(want) != 0 {
			t.Fatalf("k=%d: limbs %x, want %x", k, got, want)
		}
		back := make([]byte, k)
		limbsToBytes(back, z)
		if string(back) != string(b) {
			t.Fatalf("k=%d: bytes %x, want %x", k, back, b)
		}
	}
}
