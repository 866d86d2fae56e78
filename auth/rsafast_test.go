package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// rsaFixture is an RSA test key from testdata, ready on both verification
// paths, with genuine RS256, RS384 and RS512 signatures of fastRSAMessage.
//
// The keys were made once with `openssl genpkey -algorithm RSA -pkeyopt
// rsa_keygen_bits:N` (rsa-3072-e3 with rsa_keygen_pubexp:3; rsa-2049 and
// rsa-3001, sizes openssl rounds, with crypto/rsa.GenerateKey): an
// 8192-bit key takes too long to generate per test run, and
// crypto/rsa.GenerateKey ignores any seeded reader.
type rsaFixture struct {
	name string
	priv *rsa.PrivateKey
	pub  *rsa.PublicKey
	fast *fastRSAKey
	sigs map[jose.SignatureAlgorithm][]byte // over fastRSAMessage

	// bigExp and goMont are fast with its public operation forced onto
	// math/big's Exp and onto the pure-Go Montgomery multiplication: the
	// paths other CPUs and moduli take.
	bigExp, goMont *fastRSAKey
}

// verifiers are the fixture's fastRSAKey variants, named: as built for
// this CPU, and with each other arithmetic.
func (fx *rsaFixture) verifiers() []struct {
	name string
	key  *fastRSAKey
} {
	return []struct {
		name string
		key  *fastRSAKey
	}{{"as built", fx.fast}, {"math/big", fx.bigExp}, {"Go Montgomery", fx.goMont}}
}

// withArith returns a copy of f whose public operation is math/big's
// Exp (mont nil) or, if goMont, the pure-Go Montgomery multiplication.
func withArith(f *fastRSAKey, goMont bool) *fastRSAKey {
	c := *f
	c.mont = nil
	if goMont {
		c.mont = newMontModulus(f.n, f.pub.E)
		c.mont.asm = false
	}
	return &c
}

// fastRSAMessage is what every fixture signature signs.
const fastRSAMessage = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmYXN0LXJzYSJ9"

// rsaFixtureNames are the testdata keys, smallest first. rsa-2048 is the
// largest size that stays on crypto/rsa in a KeySet; fastRSAKey is tested
// on it all the same.
var rsaFixtureNames = []string{"rsa-2048", "rsa-2049", "rsa-3001", "rsa-3072", "rsa-3072-e3", "rsa-4096", "rsa-4096-b", "rsa-8192"}

// rsaAlgs are the algorithms fastRSAKey verifies itself, with their hash.
var rsaAlgs = []struct {
	alg  jose.SignatureAlgorithm
	hash crypto.Hash
}{{jose.RS256, crypto.SHA256}, {jose.RS384, crypto.SHA384}, {jose.RS512, crypto.SHA512}}

// loadRSAFixtures reads and signs with every testdata key once per test
// binary.
var loadRSAFixtures = sync.OnceValues(func() (map[string]*rsaFixture, error) {
	out := make(map[string]*rsaFixture, len(rsaFixtureNames))
	for _, name := range rsaFixtureNames {
		b, err := os.ReadFile("testdata/" + name + ".pem")
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		priv := k.(*rsa.PrivateKey)
		fx := &rsaFixture{name: name, priv: priv, pub: &priv.PublicKey, fast: newFastRSAKey(&priv.PublicKey), sigs: map[jose.SignatureAlgorithm][]byte{}}
		fx.bigExp, fx.goMont = withArith(fx.fast, false), withArith(fx.fast, true)
		for _, a := range rsaAlgs {
			sig, err := rsa.SignPKCS1v15(nil, priv, a.hash, hashOf(a.hash, []byte(fastRSAMessage)))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			fx.sigs[a.alg] = sig
		}
		out[name] = fx
	}
	return out, nil
})

func rsaFixtures(tb testing.TB) map[string]*rsaFixture {
	tb.Helper()
	fx, err := loadRSAFixtures()
	if err != nil {
		tb.Fatal(err)
	}
	return fx
}

func hashOf(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

func hashFor(alg jose.SignatureAlgorithm) crypto.Hash {
	for _, a := range rsaAlgs {
		if a.alg == alg {
			return a.hash
		}
	}
	panic("no hash for " + alg)
}

// rawSign returns em^d mod n as k bytes: a signature over any encoding em,
// well-formed or not, made with the fixture's private key (by the CRT,
// from the two-prime key's precomputed values).
func (fx *rsaFixture) rawSign(em []byte) []byte {
	c := new(big.Int).SetBytes(em)
	p, q, pre := fx.priv.Primes[0], fx.priv.Primes[1], fx.priv.Precomputed
	m1 := new(big.Int).Exp(c, pre.Dp, p)
	m2 := new(big.Int).Exp(c, pre.Dq, q)
	h := m1.Sub(m1, m2)
	h.Mul(h, pre.Qinv).Mod(h, p)
	m := h.Mul(h, q).Add(h, m2)
	return m.FillBytes(make([]byte, fx.fast.size))
}

// encode builds 00 01 FF… 00 || digestInfo || h || trailer in k bytes,
// with the padding filling what is left.
func (fx *rsaFixture) encode(blockType byte, digestInfo string, h, trailer []byte) []byte {
	k := fx.fast.size
	em := make([]byte, 0, k)
	em = append(em, 0x00, blockType)
	for range k - 3 - len(digestInfo) - len(h) - len(trailer) {
		em = append(em, 0xff)
	}
	em = append(em, 0x00)
	em = append(em, digestInfo...)
	em = append(em, h...)
	return append(em, trailer...)
}

// bigBytes returns x as k bytes (x must fit).
func bigBytes(x *big.Int, k int) []byte { return x.FillBytes(make([]byte, k)) }

// rsaCase is one signature that fastRSAKey and crypto/rsa must judge alike.
type rsaCase struct {
	name string
	key  string // the fixture that verifies
	alg  jose.SignatureAlgorithm
	msg  string
	sig  []byte
	want bool
}

// run checks crypto/rsa and every fastRSAKey variant against want (and
// so against each other).
func (tc rsaCase) run(t *testing.T) {
	fx := rsaFixtures(t)[tc.key]
	h := hashFor(tc.alg)
	ref := rsa.VerifyPKCS1v15(fx.pub, h, hashOf(h, []byte(tc.msg)), tc.sig)
	if (ref == nil) != tc.want {
		t.Errorf("crypto/rsa: err = %v, want valid = %v", ref, tc.want)
	}
	for _, v := range fx.verifiers() {
		got := v.key.VerifyPayload([]byte(tc.msg), tc.sig, tc.alg)
		if (got == nil) != tc.want {
			t.Errorf("fastRSAKey (%s): err = %v, want valid = %v", v.name, got, tc.want)
		}
	}
}

// rsaCases are the table for one fixture: genuine signatures, tampered,
// wrong length, s >= n, wrong key, wrong hash, wrong message, and
// encodings a lenient parser might accept, signed with the right key.
func rsaCases(all map[string]*rsaFixture, fx *rsaFixture) []rsaCase {
	k := fx.fast.size
	msg := fastRSAMessage
	sig := fx.sigs[jose.RS256]
	edit := func(f func(s []byte) []byte) []byte { return f(append([]byte(nil), sig...)) }
	n := fx.pub.N
	one := big.NewInt(1)
	h256 := sha256.Sum256([]byte(msg))
	cases := []rsaCase{
		{name: "RS256", sig: sig, want: true},
		{name: "RS384", alg: jose.RS384, sig: fx.sigs[jose.RS384], want: true},
		{name: "RS512", alg: jose.RS512, sig: fx.sigs[jose.RS512], want: true},

		{name: "tampered first byte", sig: edit(func(s []byte) []byte { s[0] ^= 0x01; return s })},
		{name: "tampered middle byte", sig: edit(func(s []byte) []byte { s[k/2] ^= 0x80; return s })},
		{name: "tampered last byte", sig: edit(func(s []byte) []byte { s[k-1] ^= 0x01; return s })},

		{name: "empty", sig: nil},
		{name: "one byte short", sig: sig[1:]},
		{name: "last byte cut", sig: sig[:k-1]},
		{name: "leading zero added", sig: append([]byte{0}, sig...)},
		{name: "trailing byte added", sig: append(append([]byte(nil), sig...), 0)},

		{name: "s = 0", sig: make([]byte, k)},
		{name: "s = 1", sig: bigBytes(one, k)},
		{name: "s = n-1", sig: bigBytes(new(big.Int).Sub(n, one), k)},
		{name: "s = n", sig: bigBytes(n, k)},
		{name: "s + n", sig: sPlusN(sig, n, k)},
		{name: "all FF", sig: bytesOf(0xff, k)},

		{name: "RS256 signature as RS384", alg: jose.RS384, sig: sig},
		{name: "RS256 signature as RS512", alg: jose.RS512, sig: sig},
		{name: "RS512 signature as RS256", sig: fx.sigs[jose.RS512]},
		{name: "other message", msg: msg + ".", sig: sig},

		{name: "forged: genuine encoding by raw private op", sig: fx.rawSign(fx.encode(0x01, digestInfoSHA256, h256[:], nil)), want: true},
		// What an exponentiation that returned its input would accept.
		{name: "forged: the encoding itself as the signature", sig: fx.encode(0x01, digestInfoSHA256, h256[:], nil)},
		{name: "forged: DigestInfo without NULL parameters", sig: fx.rawSign(fx.encode(0x01, "\x30\x2f\x30\x0b\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x04\x20", h256[:], nil))},
		{name: "forged: garbage after the hash", sig: fx.rawSign(fx.encode(0x01, digestInfoSHA256, h256[:], []byte("garbage!")))},
		{name: "forged: block type 02", sig: fx.rawSign(fx.encode(0x02, digestInfoSHA256, h256[:], nil))},
		{name: "forged: SHA-384 DigestInfo with a SHA-256 hash", sig: fx.rawSign(fx.encode(0x01, digestInfoSHA384, h256[:], nil))},
		{name: "forged: zero byte inside the padding", sig: fx.rawSign(func() []byte {
			em := fx.encode(0x01, digestInfoSHA256, h256[:], nil)
			em[10] = 0x00
			return em
		}())},
		{name: "forged: no leading zero", sig: fx.rawSign(func() []byte {
			em := fx.encode(0x01, digestInfoSHA256, h256[:], nil)
			em[0], em[1] = 0x01, 0xff
			return em
		}())},
	}
	// Wrong key: every other fixture's RS256 signature (the same length
	// for the keys of the same size).
	for _, other := range rsaFixtureNames {
		if other != fx.name {
			cases = append(cases, rsaCase{name: "signed by " + other, sig: all[other].sigs[jose.RS256]})
		}
	}
	for i := range cases {
		cases[i].key = fx.name
		if cases[i].alg == "" {
			cases[i].alg = jose.RS256
		}
		if cases[i].msg == "" {
			cases[i].msg = msg
		}
	}
	return cases
}

// sPlusN returns sig + n if that fits in k bytes, else n itself: either
// way s >= n.
func sPlusN(sig []byte, n *big.Int, k int) []byte {
	s := new(big.Int).Add(new(big.Int).SetBytes(sig), n)
	if s.BitLen() > 8*k {
		s = n
	}
	return bigBytes(s, k)
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// TestFastRSAKeyAgreesWithCryptoRSA runs the cases of every fixture key
// through both verifiers.
func TestFastRSAKeyAgreesWithCryptoRSA(t *testing.T) {
	all := rsaFixtures(t)
	for _, name := range rsaFixtureNames {
		t.Run(name, func(t *testing.T) {
			for _, tc := range rsaCases(all, all[name]) {
				t.Run(tc.name, tc.run)
			}
		})
	}
}

// TestFastRSAKeyOtherAlgorithms: PS* signatures go to crypto/rsa, whatever
// their salt length, and algorithms an RSA key cannot verify are refused.
func TestFastRSAKeyOtherAlgorithms(t *testing.T) {
	fx := rsaFixtures(t)["rsa-4096"]
	msg := []byte(fastRSAMessage)
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		sig  func(t *testing.T) []byte
		want bool
	}{
		{name: "PS256", alg: jose.PS256, want: true, sig: pssSig(fx, crypto.SHA256, rsa.PSSSaltLengthEqualsHash)},
		{name: "PS384 longest salt", alg: jose.PS384, want: true, sig: pssSig(fx, crypto.SHA384, rsa.PSSSaltLengthAuto)},
		{name: "PS512", alg: jose.PS512, want: true, sig: pssSig(fx, crypto.SHA512, rsa.PSSSaltLengthEqualsHash)},
		{name: "PS256 signature as PS512", alg: jose.PS512, sig: pssSig(fx, crypto.SHA256, rsa.PSSSaltLengthEqualsHash)},
		{name: "RS256 signature as PS256", alg: jose.PS256, sig: func(*testing.T) []byte { return fx.sigs[jose.RS256] }},
		{name: "ES256", alg: jose.ES256, sig: func(*testing.T) []byte { return fx.sigs[jose.RS256] }},
		{name: "HS256", alg: jose.HS256, sig: func(*testing.T) []byte { return fx.sigs[jose.RS256] }},
		{name: "empty alg", alg: "", sig: func(*testing.T) []byte { return fx.sigs[jose.RS256] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fx.fast.VerifyPayload(msg, tc.sig(t), tc.alg)
			if (err == nil) != tc.want {
				t.Fatalf("err = %v, want valid = %v", err, tc.want)
			}
		})
	}
}

func pssSig(fx *rsaFixture, h crypto.Hash, salt int) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		sig, err := rsa.SignPSS(rand.Reader, fx.priv, h, hashOf(h, []byte(fastRSAMessage)), &rsa.PSSOptions{SaltLength: salt})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// TestRSAVerificationKey: which keys get the fast path, decided once per
// key.
func TestRSAVerificationKey(t *testing.T) {
	all := rsaFixtures(t)
	with := func(name string, edit func(p *rsa.PublicKey)) *rsa.PublicKey {
		p := *all[name].pub
		p.N = new(big.Int).Set(p.N)
		edit(&p)
		return &p
	}
	for _, tc := range []struct {
		name     string
		pub      *rsa.PublicKey
		disabled bool
		wantFast bool
	}{
		{name: "2048 bits", pub: all["rsa-2048"].pub},
		{name: "2049 bits", pub: all["rsa-2049"].pub, wantFast: true},
		{name: "4096 bits", pub: all["rsa-4096"].pub, wantFast: true},
		{name: "4096 bits, disabled", pub: all["rsa-4096"].pub, disabled: true},
		{name: "8192 bits", pub: all["rsa-8192"].pub, wantFast: true},
		{name: "e = 3", pub: all["rsa-3072-e3"].pub, wantFast: true},
		{name: "e = 1", pub: with("rsa-4096", func(p *rsa.PublicKey) { p.E = 1 })},
		{name: "e even", pub: with("rsa-4096", func(p *rsa.PublicKey) { p.E = 65536 })},
		{name: "e over 2^31-1", pub: with("rsa-4096", func(p *rsa.PublicKey) { p.E = 1<<31 + 1 })},
		{name: "n even", pub: with("rsa-4096", func(p *rsa.PublicKey) { p.N.SetBit(p.N, 0, 0) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rsaVerificationKey(tc.pub, !tc.disabled)
			switch v := got.(type) {
			case *fastRSAKey:
				if !tc.wantFast {
					t.Fatal("got a *fastRSAKey, want crypto/rsa")
				}
				if v.pub != tc.pub || v.size != (tc.pub.N.BitLen()+7)/8 {
					t.Fatalf("fastRSAKey for the wrong key: size %d", v.size)
				}
			case *rsa.PublicKey:
				if tc.wantFast {
					t.Fatal("got crypto/rsa, want a *fastRSAKey")
				}
				if v != tc.pub {
					t.Fatal("got another *rsa.PublicKey")
				}
			default:
				t.Fatalf("got %T", got)
			}
		})
	}
}

// TestPKCS1v15Prefix pins the expected encoding against RFC 8017 §9.2
// for a 2048-bit key: 00 01, 202 FF, 00, the SHA-256 DigestInfo.
func TestPKCS1v15Prefix(t *testing.T) {
	p := pkcs1v15Prefix(256, digestInfoSHA256, sha256.Size)
	want := append(append(append([]byte{0x00, 0x01}, bytesOf(0xff, 202)...), 0x00), digestInfoSHA256...)
	if string(p) != string(want) {
		t.Fatalf("prefix = %x\nwant %x", p, want)
	}
	for _, tc := range []struct {
		di   string
		hLen int
	}{{digestInfoSHA256, sha256.Size}, {digestInfoSHA384, sha512.Size384}, {digestInfoSHA512, sha512.Size}} {
		// The DigestInfo ends with OCTET STRING (04) of hLen bytes.
		if tc.di[len(tc.di)-2] != 0x04 || int(tc.di[len(tc.di)-1]) != tc.hLen {
			t.Errorf("DigestInfo %x does not announce %d hash bytes", tc.di, tc.hLen)
		}
	}
}

// FuzzFastRSAKey checks that every fastRSAKey variant and
// crypto/rsa.VerifyPKCS1v15 agree on every signature the fuzzer can make from the fixtures' genuine
// ones: any key verifying, any hash, any message, any byte tampered, any
// length, s shifted by multiples of n, or raw bytes. Any disagreement is a
// failure.
func FuzzFastRSAKey(f *testing.F) {
	all := rsaFixtures(f)
	// key, signer, sign alg, verify alg, op, pos, val, extra
	f.Add(uint8(5), uint8(5), uint8(0), uint8(0), uint8(0), uint16(0), uint8(0), []byte(nil))        // valid 4096
	f.Add(uint8(7), uint8(7), uint8(2), uint8(2), uint8(0), uint16(0), uint8(0), []byte(nil))        // valid 8192 RS512
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint16(100), uint8(4), []byte(nil))      // tampered
	f.Add(uint8(2), uint8(2), uint8(0), uint8(0), uint8(2), uint16(1), uint8(0), []byte(nil))        // one byte short
	f.Add(uint8(3), uint8(3), uint8(0), uint8(0), uint8(3), uint16(0), uint8(0), []byte{0})          // byte appended
	f.Add(uint8(5), uint8(5), uint8(0), uint8(0), uint8(4), uint16(0), uint8(1), []byte(nil))        // s + n
	f.Add(uint8(5), uint8(6), uint8(0), uint8(0), uint8(0), uint16(0), uint8(0), []byte(nil))        // wrong key, same size
	f.Add(uint8(3), uint8(4), uint8(0), uint8(0), uint8(0), uint16(0), uint8(0), []byte(nil))        // wrong key, e = 3
	f.Add(uint8(4), uint8(4), uint8(0), uint8(1), uint8(0), uint16(0), uint8(0), []byte(nil))        // wrong hash
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(5), uint16(0), uint8(0), []byte("x"))        // other message
	f.Add(uint8(2), uint8(2), uint8(0), uint8(0), uint8(6), uint16(0), uint8(0), []byte("\xff\x00")) // raw bytes
	f.Add(uint8(6), uint8(6), uint8(0), uint8(0), uint8(7), uint16(3), uint8(0), []byte("\x01"))     // raw padded to k
	f.Fuzz(func(t *testing.T, keyIdx, signerIdx, signAlg, verifyAlg, op uint8, pos uint16, val uint8, extra []byte) {
		fx := all[rsaFixtureNames[int(keyIdx)%len(rsaFixtureNames)]]
		signer := all[rsaFixtureNames[int(signerIdx)%len(rsaFixtureNames)]]
		sig := append([]byte(nil), signer.sigs[rsaAlgs[int(signAlg)%len(rsaAlgs)].alg]...)
		verify := rsaAlgs[int(verifyAlg)%len(rsaAlgs)]
		msg := []byte(fastRSAMessage)
		k := fx.fast.size
		switch op % 8 {
		case 0: // as signed
		case 1: // one byte changed
			sig[int(pos)%len(sig)] ^= val | 1
		case 2: // shortened
			sig = sig[:len(sig)-1-int(pos)%len(sig)]
		case 3: // lengthened
			if pos&1 == 0 {
				sig = append(append([]byte(nil), extra...), sig...)
			} else {
				sig = append(sig, extra...)
			}
		case 4: // s + j*n, j = 0..3: the same residue, out of range
			s := new(big.Int).SetBytes(sig)
			s.Add(s, new(big.Int).Mul(fx.pub.N, big.NewInt(int64(val%4))))
			sig = s.FillBytes(make([]byte, max(k, (s.BitLen()+7)/8)))
		case 5: // another message
			msg = append(msg, extra...)
			if len(extra) == 0 {
				msg[int(pos)%len(msg)] ^= val | 1
			}
		case 6: // the fuzzer's bytes
			sig = extra
		case 7: // the fuzzer's bytes, left-padded to k
			if len(extra) <= k {
				sig = append(make([]byte, k-len(extra)), extra...)
			} else {
				sig = extra
			}
		}
		ref := rsa.VerifyPKCS1v15(fx.pub, verify.hash, hashOf(verify.hash, msg), sig)
		for _, v := range fx.verifiers() {
			got := v.key.VerifyPayload(msg, sig, verify.alg)
			if (ref == nil) != (got == nil) {
				t.Fatalf("%s %s, %d-byte signature: crypto/rsa says %v, fastRSAKey (%s) says %v", fx.name, verify.alg, len(sig), ref, v.name, got)
			}
		}
	})
}

// TestLocalFastRSAEndToEnd validates tokens signed with 4096-bit keys
// through Local, with the fast path on and off: the same verdicts, and the
// KeySet holds the key form it should.
func TestLocalFastRSAEndToEnd(t *testing.T) {
	all := rsaFixtures(t)
	big1 := signingKey{"rsa-4096", jose.RS256, all["rsa-4096"].priv}
	big2 := signingKey{"rsa-4096-ps", jose.PS256, all["rsa-4096-b"].priv}
	small := sharedTestKeys().rsa // 2048 bits
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableFastRSA=%v", disabled), func(t *testing.T) {
			f := newLocalFixtureWith(t, func(c *KeySetConfig) { c.DisableFastRSA = disabled }, nil)
			f.iss.setKeys(big1, big2, small)
			if err := f.keySet.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			snap := f.keySet.keys.Load()
			for kid, wantFast := range map[string]bool{big1.kid: !disabled, big2.kid: !disabled, small.kid: false} {
				if _, fast := snap.byKID[kid][0].key.(*fastRSAKey); fast != wantFast {
					t.Errorf("key %s: %T, want fast = %v", kid, snap.byKID[kid][0].key, wantFast)
				}
			}

			claims, _ := json.Marshal(f.claims(nil))
			good := sign(t, big1, claims, nil, false)
			tampered := []byte(good)
			if i := len(tampered) - 5; tampered[i] == 'A' {
				tampered[i] = 'B'
			} else {
				tampered[i] = 'A'
			}
			for _, tc := range []struct {
				name, token string
				reason      error
			}{
				{name: "RS256 4096", token: good},
				{name: "PS256 4096", token: sign(t, big2, claims, nil, false)},
				{name: "RS256 2048", token: sign(t, small, claims, nil, false)},
				{name: "tampered signature", token: string(tampered), reason: ErrSignature},
				{name: "other 4096-bit key under this kid", token: sign(t, signingKey{big1.kid, jose.RS256, all["rsa-4096-b"].priv}, claims, nil, false), reason: ErrSignature},
				{name: "8192-bit signature under this kid", token: sign(t, signingKey{big1.kid, jose.RS256, all["rsa-8192"].priv}, claims, nil, false), reason: ErrSignature},
				{name: "RS384 against an RS256 key", token: sign(t, signingKey{big1.kid, jose.RS384, all["rsa-4096"].priv}, claims, nil, false), reason: ErrKeyAlgorithm},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := f.local.Validate(t.Context(), []byte(tc.token))
					checkReason(t, err, tc.reason)
				})
			}
		})
	}
}
