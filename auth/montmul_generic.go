//go:build !amd64 || purego

package auth

// montMulAsmSupported reports whether montMulAsm has an assembly routine
// for limbs words: never on this platform, where fastRSAKey keeps the
// math/big path.
func montMulAsmSupported(limbs int) bool { return false }

// montMulAsm is montMulGo on platforms without an assembly routine.
func montMulAsm(z, x, y, n, t []uint64, n0inv uint64) {
	montMulGo(z, x, y, n, t, n0inv)
}

// montSqrAsm is montMulGo(z, x, x, …) on platforms without an assembly
// routine.
func montSqrAsm(z, x, n, t []uint64, n0inv uint64) {
	montMulGo(z, x, x, n, t, n0inv)
}
