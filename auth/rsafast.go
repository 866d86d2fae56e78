package auth

import (
	"bytes"
	"crypto"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"

	jose "github.com/go-jose/go-jose/v4"
)

// fastRSAMinBits is the modulus size above which a KeySet prepares an RSA
// key for fastRSAKey verification. Up to 2048 bits crypto/rsa has
// assembly for the modulus size and is as fast; above that its public
// operation costs several times what fastRSAKey's does. A 4096-bit RS256
// check on an AMD EPYC (Zen 4) with ADX, BMI2 (BenchmarkRS256PublicOp,
// noisy shared machine): ~50–65 µs with the Montgomery assembly, ~130 µs
// on math/big's Exp (CPUs without ADX), ~360–430 µs with crypto/rsa;
// OpenSSL's verify there takes ~65–80 µs.
const fastRSAMinBits = 2048

// DigestInfo prefixes of the hashes RS256, RS384 and RS512 use (RFC 8017
// §9.2, note 1). Constants: nothing can write them.
const (
	digestInfoSHA256 = "\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"
	digestInfoSHA384 = "\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30"
	digestInfoSHA512 = "\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40"
)

// errRSAVerification is every RS256/RS384/RS512 failure of a fastRSAKey.
// go-jose reports any verifier error as its own ErrCryptoFailure.
var errRSAVerification = errors.New("auth: RSA verification error")

// fastRSAKey is an RSA public key prepared, when the JWKS is loaded, for
// verifying RS256, RS384 and RS512 signatures faster than crypto/rsa does
// for moduli over 2048 bits. It is handed to go-jose as a
// jose.OpaqueVerifier, so go-jose still decides everything but the
// signature arithmetic (algorithm allow-list, headers, encoding).
//
// crypto/rsa runs the public operation in constant time and rebuilds its
// Montgomery constants on every call; neither is needed here, because
// everything a verification handles is public (signature, key, message).
// fastRSAKey computes s^e mod n with variable-time arithmetic (Montgomery
// multiplication in assembly on amd64 with ADX and BMI2 for 3072-, 4096-
// and 8192-bit moduli, see montModulus; math/big's Exp otherwise) and
// compares the result with the whole expected PKCS #1 v1.5 encoding (RFC 8017
// §8.2.2 and §9.2), built byte for byte: the decrypted block is never
// parsed, which rules out the padding-parsing forgeries of lenient
// verifiers. PS256, PS384 and PS512 go to crypto/rsa unchanged.
//
// A fastRSAKey is immutable and safe for concurrent use.
type fastRSAKey struct {
	pub  *rsa.PublicKey // for PS*, and what the key is
	n    *big.Int
	e    *big.Int
	size int // k, the modulus length in bytes

	// mont, when not nil, computes s^e mod n by Montgomery multiplication
	// in assembly; nil where this CPU or modulus size has none, and then
	// math/big's Exp does.
	mont *montModulus

	// emPrefix256, emPrefix384 and emPrefix512 are the expected encoding
	// EM = 00 01 FF…FF 00 || DigestInfo || H of a signature, up to H:
	// k - hLen bytes, for SHA-256, SHA-384 and SHA-512.
	emPrefix256, emPrefix384, emPrefix512 []byte
}

var _ jose.OpaqueVerifier = (*fastRSAKey)(nil)

// rsaVerificationKey returns what go-jose should verify pub's signatures
// with: a *fastRSAKey for keys over fastRSAMinBits bits, unless fast is
// false, the Go FIPS 140-3 module is enabled (its own RSA must then do
// the work), or the key is one crypto/rsa refuses (even modulus, exponent
// even or outside [3, 2³¹-1]), which stays pub so that crypto/rsa refuses
// it as before. Otherwise pub itself.
func rsaVerificationKey(pub *rsa.PublicKey, fast bool) any {
	if !fast || fips140.Enabled() || pub.N.BitLen() <= fastRSAMinBits ||
		pub.N.Bit(0) == 0 || pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return pub
	}
	return newFastRSAKey(pub)
}

// newFastRSAKey prepares pub, which must have a modulus of at least 1024
// bits, for fast verification.
func newFastRSAKey(pub *rsa.PublicKey) *fastRSAKey {
	k := (pub.N.BitLen() + 7) / 8
	var mont *montModulus
	if pub.N.BitLen() <= 64*montMaxLimbs && montMulAsmSupported((k+7)/8) {
		mont = newMontModulus(pub.N, pub.E)
	}
	return &fastRSAKey{
		mont:        mont,
		pub:         pub,
		n:           new(big.Int).Set(pub.N),
		e:           big.NewInt(int64(pub.E)),
		size:        k,
		emPrefix256: pkcs1v15Prefix(k, digestInfoSHA256, sha256.Size),
		emPrefix384: pkcs1v15Prefix(k, digestInfoSHA384, sha512.Size384),
		emPrefix512: pkcs1v15Prefix(k, digestInfoSHA512, sha512.Size),
	}
}

// pkcs1v15Prefix returns the first k - hLen bytes of the EMSA-PKCS1-v1_5
// encoding (RFC 8017 §9.2) in a k-byte block: 00 01, then FF up to the
// 00 that precedes DigestInfo. k must leave room for at least eight FF
// bytes (any modulus of 1024 bits or more does).
func pkcs1v15Prefix(k int, digestInfo string, hLen int) []byte {
	p := make([]byte, k-hLen)
	p[0], p[1] = 0x00, 0x01
	ps := len(p) - len(digestInfo) - 1
	for i := 2; i < ps; i++ {
		p[i] = 0xff
	}
	p[ps] = 0x00
	copy(p[ps+1:], digestInfo)
	return p
}

// VerifyPayload verifies signature over payload with alg, as go-jose's own
// RSA verifier would: RS256, RS384 and RS512 on the fast path, PS256,
// PS384 and PS512 with crypto/rsa (salt length detected, as go-jose
// does), anything else refused.
func (f *fastRSAKey) VerifyPayload(payload, signature []byte, alg jose.SignatureAlgorithm) error {
	switch alg {
	case jose.RS256:
		h := sha256.Sum256(payload)
		return f.verifyPKCS1v15(f.emPrefix256, h[:], signature)
	case jose.RS384:
		h := sha512.Sum384(payload)
		return f.verifyPKCS1v15(f.emPrefix384, h[:], signature)
	case jose.RS512:
		h := sha512.Sum512(payload)
		return f.verifyPKCS1v15(f.emPrefix512, h[:], signature)
	case jose.PS256:
		h := sha256.Sum256(payload)
		return rsa.VerifyPSS(f.pub, crypto.SHA256, h[:], signature, nil)
	case jose.PS384:
		h := sha512.Sum384(payload)
		return rsa.VerifyPSS(f.pub, crypto.SHA384, h[:], signature, nil)
	case jose.PS512:
		h := sha512.Sum512(payload)
		return rsa.VerifyPSS(f.pub, crypto.SHA512, h[:], signature, nil)
	}
	return fmt.Errorf("auth: RSA key cannot verify %q", alg)
}

// verifyPKCS1v15 is RSASSA-PKCS1-V1_5-VERIFY (RFC 8017 §8.2.2) given the
// hash H of the message and the expected encoding up to H.
func (f *fastRSAKey) verifyPKCS1v15(emPrefix, hashed, sig []byte) error {
	// Step 1: the signature is exactly k bytes.
	if len(sig) != f.size {
		return errRSAVerification
	}
	// Step 2a: 0 <= s < n, refused otherwise. Step 2b: m = s^e mod n,
	// variable-time: s, e and n are public. Step 2c: EM is m as k bytes.
	var buf [8 * montMaxLimbs]byte
	var em []byte
	if f.mont != nil {
		em = buf[:f.size]
		if !f.mont.exp(em, sig) {
			return errRSAVerification
		}
	} else {
		s := new(big.Int).SetBytes(sig)
		if s.Cmp(f.n) >= 0 {
			return errRSAVerification
		}
		em = new(big.Int).Exp(s, f.e, f.n).FillBytes(make([]byte, f.size))
	}
	// Steps 3 and 4: EM must equal the encoding of H built from scratch,
	// every byte of it.
	if !bytes.Equal(em[:len(emPrefix)], emPrefix) || !bytes.Equal(em[len(emPrefix):], hashed) {
		return errRSAVerification
	}
	return nil
}
