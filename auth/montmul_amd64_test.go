//go:build !purego

package auth

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestMontMulAsmSupported: the assembly serves exactly the 3072-, 4096-
// and 8192-bit limb counts on a CPU with ADX and BMI2, and fixture keys of
// those sizes are prepared with it.
func TestMontMulAsmSupported(t *testing.T) {
	adx := cpu.X86.HasADX && cpu.X86.HasBMI2
	for _, tc := range []struct {
		limbs int
		key   string // a fixture of that size, if any
		want  bool
	}{
		{limbs: 33, key: "rsa-2049"},
		{limbs: 47, key: "rsa-3001"},
		{limbs: 48, key: "rsa-3072", want: adx},
		{limbs: 64, key: "rsa-4096", want: adx},
		{limbs: 96},
		{limbs: 128, key: "rsa-8192", want: adx},
	} {
		if got := montMulAsmSupported(tc.limbs); got != tc.want {
			t.Errorf("montMulAsmSupported(%d) = %v, want %v", tc.limbs, got, tc.want)
		}
		if tc.key != "" {
			if got := rsaFixtures(t)[tc.key].fast.mont != nil; got != tc.want {
				t.Errorf("%s: Montgomery arithmetic = %v, want %v", tc.key, got, tc.want)
			}
		}
	}
}
