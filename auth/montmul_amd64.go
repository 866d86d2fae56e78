//go:build !purego

package auth

import "golang.org/x/sys/cpu"

//go:generate go run ./internal/montgen/main.go

// The assembly Montgomery multiplications of montmul_amd64.s, one per limb
// count: z = x·y·2^(-64·N) mod n for N-limb little-endian x, y < n and an
// odd n, with z fully reduced (z < n). z may alias x or y; t is N+2 words
// of scratch that aliases nothing. n0inv is -n⁻¹ mod 2^64. They use MULX
// (BMI2), ADCX and ADOX (ADX).

//go:noescape
func montMulADX48(z, x, y, n, t *uint64, n0inv uint64)

//go:noescape
func montMulADX64(z, x, y, n, t *uint64, n0inv uint64)

//go:noescape
func montMulADX128(z, x, y, n, t *uint64, n0inv uint64)

// The assembly Montgomery squarings: z = x²·2^(-64·N) mod n, as
// montMulADX<N>(z, x, x, …) but with about a quarter fewer products; t is
// 2N words of scratch.

//go:noescape
func montSqrADX48(z, x, n, t *uint64, n0inv uint64)

//go:noescape
func montSqrADX64(z, x, n, t *uint64, n0inv uint64)

// montMulAsmSupported reports whether montMulAsm has a routine for a
// modulus of limbs 64-bit words on this CPU.
func montMulAsmSupported(limbs int) bool {
	if !cpu.X86.HasADX || !cpu.X86.HasBMI2 {
		return false
	}
	switch limbs {
	case 48, 64, 128:
		return true
	}
	return false
}

// montMulAsm sets z = x·y·R⁻¹ mod n, fully reduced, with the assembly
// routine for len(n) limbs (montMulAsmSupported must say yes), or the
// pure-Go montMulGo for any other length. t is scratch of len(n)+2 words.
func montMulAsm(z, x, y, n, t []uint64, n0inv uint64) {
	l := len(n)
	_, _, _, _ = z[l-1], x[l-1], y[l-1], t[l+1]
	switch l {
	case 48:
		montMulADX48(&z[0], &x[0], &y[0], &n[0], &t[0], n0inv)
	case 64:
		montMulADX64(&z[0], &x[0], &y[0], &n[0], &t[0], n0inv)
	case 128:
		montMulADX128(&z[0], &x[0], &y[0], &n[0], &t[0], n0inv)
	default:
		montMulGo(z, x, y, n, t, n0inv)
	}
}

// montSqrAsm sets z = x²·R⁻¹ mod n, fully reduced, with the assembly
// squaring for len(n) limbs where there is one, else as montMulAsm(z, x,
// x, …). montMulAsmSupported must say yes for len(n); t is scratch of
// 2·len(n)+2 words.
func montSqrAsm(z, x, n, t []uint64, n0inv uint64) {
	l := len(n)
	_, _, _ = z[l-1], x[l-1], t[2*l+1]
	switch l {
	case 48:
		montSqrADX48(&z[0], &x[0], &n[0], &t[0], n0inv)
	case 64:
		montSqrADX64(&z[0], &x[0], &n[0], &t[0], n0inv)
	default:
		montMulAsm(z, x, x, n, t, n0inv)
	}
}
