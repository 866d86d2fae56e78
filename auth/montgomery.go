package auth

import (
	"encoding/binary"
	"math/big"
	"math/bits"
)

// montMaxLimbs is the largest modulus, in 64-bit limbs, a montModulus
// takes: 8192 bits. Its working space then fits in fixed-size arrays on
// the stack, so an exponentiation allocates nothing.
const montMaxLimbs = 128

// montModulus is an odd RSA modulus n and public exponent e prepared
// once, when its key is loaded, for Montgomery arithmetic with R =
// 2^(64·limbs): n as little-endian 64-bit limbs, n0inv = -n⁻¹ mod 2^64
// and R^e mod n.
//
// A montModulus is immutable and safe for concurrent use.
type montModulus struct {
	n     []uint64 // n, least significant limb first
	re    []uint64 // R^e mod n, to correct the powers of R⁻¹ of exp
	e     int      // the public exponent, odd and positive
	n0inv uint64   // -n⁻¹ mod 2^64
	limbs int      // len(n)
	size  int      // k, n's length in bytes

	// asm says whether products go to the assembly montMulAsm (this CPU
	// and limb count have one) rather than the pure-Go montMulGo.
	asm bool
}

// newMontModulus prepares n, which must be odd, positive and at most
// montMaxLimbs limbs long, and e, which must be odd and positive.
func newMontModulus(n *big.Int, e int) *montModulus {
	size := (n.BitLen() + 7) / 8
	limbs := (size + 7) / 8
	m := &montModulus{
		n:     make([]uint64, limbs),
		re:    make([]uint64, limbs),
		e:     e,
		limbs: limbs,
		size:  size,
		asm:   montMulAsmSupported(limbs),
	}
	limbsFromBytes(m.n, n.Bytes())
	r := new(big.Int).Lsh(big.NewInt(1), uint(64*limbs))
	limbsFromBytes(m.re, r.Exp(r, big.NewInt(int64(e)), n).Bytes())
	// Newton's iteration for n0⁻¹ mod 2^64: n0 is its own inverse mod 8,
	// and each step doubles the bits that are right (3, 6, 12, 24, 48, 96).
	n0 := m.n[0]
	inv := n0
	for range 5 {
		inv *= 2 - n0*inv
	}
	m.n0inv = -inv
	return m
}

// mul sets z = x·y·R⁻¹ mod n, fully reduced, for x, y < n; z may alias x
// or y. t is scratch of 2·limbs+2 words.
func (m *montModulus) mul(z, x, y, t []uint64) {
	if m.asm {
		montMulAsm(z, x, y, m.n, t, m.n0inv)
		return
	}
	montMulGo(z, x, y, m.n, t, m.n0inv)
}

// sqr sets z = x²·R⁻¹ mod n as mul(z, x, x, t) does, with the assembly
// squaring where there is one.
func (m *montModulus) sqr(z, x, t []uint64) {
	if m.asm {
		montSqrAsm(z, x, m.n, t, m.n0inv)
		return
	}
	montMulGo(z, x, x, m.n, t, m.n0inv)
}

// exp sets dst to s^e mod n as k big-endian bytes, where s is sig read as
// a big-endian number, and reports true; or, if sig or dst is not k bytes
// long or s >= n, leaves dst as it was and reports false. Variable time:
// it is for public values only.
func (m *montModulus) exp(dst, sig []byte) bool {
	if len(sig) != m.size || len(dst) != m.size {
		return false
	}
	var s, acc [montMaxLimbs]uint64
	var t [2*montMaxLimbs + 2]uint64
	l := m.limbs
	sl, accl, tl := s[:l], acc[:l], t[:2*l+2]
	limbsFromBytes(sl, sig)
	if !limbsLess(sl, m.n) {
		return false
	}
	// Left to right square-and-multiply on s itself, outside the
	// Montgomery domain: each product brings a factor R⁻¹, and acc =
	// s^a·R^-(a-1) holds at every step (a squaring makes it
	// s^2a·R^-(2a-1), a product by s makes it s^(a+1)·R^-a). One last
	// product by R^e makes acc = s^e, with no conversion into the domain
	// or out of it.
	copy(accl, sl)
	for i := bits.Len(uint(m.e)) - 2; i >= 0; i-- {
		m.sqr(accl, accl, tl)
		if m.e>>i&1 == 1 {
			m.mul(accl, accl, sl, tl)
		}
	}
	m.mul(accl, accl, m.re, tl)
	limbsToBytes(dst, accl)
	return true
}

// limbsFromBytes sets z to the big-endian number b, which must fit in
// len(z) limbs.
func limbsFromBytes(z []uint64, b []byte) {
	clear(z)
	i := 0
	for ; len(b) >= 8; i++ {
		z[i] = binary.BigEndian.Uint64(b[len(b)-8:])
		b = b[:len(b)-8]
	}
	for _, c := range b {
		z[i] = z[i]<<8 | uint64(c)
	}
}

// limbsToBytes writes x into dst as len(dst) big-endian bytes; x must fit.
func limbsToBytes(dst []byte, x []uint64) {
	i := 0
	for ; len(dst) >= 8; i++ {
		binary.BigEndian.PutUint64(dst[len(dst)-8:], x[i])
		dst = dst[:len(dst)-8]
	}
	for j := len(dst) - 1; j >= 0; j-- {
		dst[j] = byte(x[i])
		x[i] >>= 8
	}
}

// limbsLess reports whether x < y, both of the same length.
func limbsLess(x, y []uint64) bool {
	for i := len(x) - 1; i >= 0; i-- {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

// montMulGo sets z = x·y·R⁻¹ mod n, fully reduced, for x, y < n (R =
// 2^(64·len(n)), n odd, n0inv = -n⁻¹ mod 2^64): the pure-Go reference of
// the assembly, CIOS as it does, word by word. z may alias x or y; t is
// scratch of len(n)+2 words.
func montMulGo(z, x, y, n, t []uint64, n0inv uint64) {
	l := len(n)
	clear(t[:l+2])
	for i := range l {
		// t += x·y[i]
		var c uint64
		for j := range l {
			hi, lo := bits.Mul64(x[j], y[i])
			lo, cc := bits.Add64(lo, t[j], 0)
			hi += cc
			lo, cc = bits.Add64(lo, c, 0)
			t[j], c = lo, hi+cc
		}
		var cc uint64
		t[l], cc = bits.Add64(t[l], c, 0)
		t[l+1] = cc
		// t = (t + m·n) / 2^64 with m making the low word zero
		mw := t[0] * n0inv
		hi, lo := bits.Mul64(n[0], mw)
		_, cc = bits.Add64(lo, t[0], 0)
		c = hi + cc
		for j := 1; j < l; j++ {
			hi, lo := bits.Mul64(n[j], mw)
			lo, cc := bits.Add64(lo, t[j], 0)
			hi += cc
			lo, cc = bits.Add64(lo, c, 0)
			t[j-1], c = lo, hi+cc
		}
		t[l-1], cc = bits.Add64(t[l], c, 0)
		t[l] = t[l+1] + cc
	}
	// t < 2n: subtract n unless that borrows.
	var b uint64
	for j := range l {
		z[j], b = bits.Sub64(t[j], n[j], b)
	}
	if t[l] < b {
		copy(z[:l], t[:l])
	}
}
