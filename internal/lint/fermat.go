package lint

import (
	"crypto"
	"crypto/rsa"
	"math/big"
	"math/bits"

	zrsa "github.com/zmap/zcrypto/rsa"
	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"
)

// fermatLint is zlint's community lint that reports an RSA modulus whose
// two primes are so close that Fermat's method factors it within
// fermatRounds steps from its square root. zlint's implementation takes a
// big.Int square root in every step: about 390 us per RSA-2048
// certificate, twice all the other lints together. The Linter runs an
// equivalent check instead (same name, status, applicability and rounds;
// it finds exactly the moduli zlint's finds, TestFermatMatchesZlint) that
// rules out almost every step with a few small remainders before taking a
// square root, and keeps zlint's out of its registries so nothing runs
// twice. Unlike zlint's, its details do not print the two primes: a
// refusal is logged and audited, and the factors are the requester's
// private key.
const fermatLint = "e_rsa_fermat_factorization"

// fermatRounds is zlint's default for the lint (Rounds: 100), which our
// registries never reconfigure.
const fermatRounds = 100

const fermatDetails = "this certificate's RSA key pair is susceptible to Fermat factorization: " +
	"its two primes are so close that the modulus factors within 100 steps; generate a new key"

// fermat runs the check on zc's key as zlint's lint would (on every
// certificate with an RSA key). It returns nil when the check passes or
// does not apply, and otherwise the failing result.
func (l *Linter) fermat(zc *zx509.Certificate) *zl.LintResult {
	if !l.fermatOn || zc.PublicKeyAlgorithm != zx509.RSA {
		return nil
	}
	k, ok := zc.PublicKey.(*zrsa.PublicKey)
	if !ok || k == nil {
		return nil
	}
	return fermatResult(k.N)
}

// fermatOf checks a public key that is not (yet) in a parsed certificate:
// the subject key of a self-signed certificate, which the lint certificate
// replaces by the throwaway key.
func (l *Linter) fermatOf(pub crypto.PublicKey) *zl.LintResult {
	k, ok := pub.(*rsa.PublicKey)
	if !l.fermatOn || !ok || k == nil {
		return nil
	}
	return fermatResult(k.N)
}

func fermatResult(n *big.Int) *zl.LintResult {
	if n == nil || n.Sign() <= 0 || !fermatFactors(n, fermatRounds) {
		return nil
	}
	return &zl.LintResult{Status: zl.Error, Details: fermatDetails}
}

// fermatFactors reports whether Fermat's method factors n within rounds
// steps, exactly as zlint's lint (after Boulder's) walks it: a starts at
// floor(sqrt(n)) + 1 and grows by one a step, and the step succeeds when
// b2 = a^2 - n is a perfect square. b2 grows by 2a + 1 a step, so no step
// multiplies, and a square root is taken only for the b2 that pass
// isSquareCandidate (about one in a hundred).
func fermatFactors(n *big.Int, rounds int) bool {
	a := new(big.Int).Sqrt(n)
	a.Add(a, big.NewInt(1))
	b2 := new(big.Int).Mul(a, a)
	b2.Sub(b2, n)
	step := new(big.Int).Lsh(a, 1) // 2a + 1, for the next step
	step.Add(step, big.NewInt(1))
	two := big.NewInt(2)
	root := new(big.Int)
	for range rounds {
		if isSquareCandidate(b2) {
			root.Sqrt(b2)
			if root.Mul(root, root).Cmp(b2) == 0 {
				return true
			}
		}
		b2.Add(b2, step)
		step.Add(step, two)
	}
	return false
}

// Quadratic residues modulo 64, 63, 65 and 11: a perfect square leaves
// one of them as its remainder by each, while about 99 % of other numbers
// fail at least one test.
var (
	squareMod64 = squaresMod(64)
	squareMod63 = squaresMod(63)
	squareMod65 = squaresMod(65)
	squareMod11 = squaresMod(11)
)

func squaresMod(m int) []bool {
	s := make([]bool, m)
	for i := range m {
		s[i*i%m] = true
	}
	return s
}

// isSquareCandidate reports false only for an x (>= 0) that cannot be a
// perfect square.
func isSquareCandidate(x *big.Int) bool {
	words := x.Bits()
	if len(words) == 0 {
		return true // zero
	}
	if !squareMod64[words[0]&63] {
		return false
	}
	const m = 63 * 65 * 11
	var r uint64
	for i := len(words) - 1; i >= 0; i-- {
		if bits.UintSize == 64 {
			_, r = bits.Div64(r, uint64(words[i]), m)
		} else {
			r = (r<<32 | uint64(words[i])) % m
		}
	}
	return squareMod63[r%63] && squareMod65[r%65] && squareMod11[r%11]
}
