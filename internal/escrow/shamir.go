package escrow

import (
	"errors"
	"fmt"
	"io"
)

// Shamir's secret sharing over GF(2^8) with the AES polynomial
// x^8 + x^4 + x^3 + x + 1, each byte of the secret shared on its own
// polynomial of degree threshold-1. Share x (1..n) holds the values of every
// polynomial at x; any threshold of them give the secret back by Lagrange
// interpolation at 0, and fewer say nothing about it.
//
// The field arithmetic runs in constant time: multiplication is carry-less,
// bit by bit, with masks instead of branches, and inversion is a fixed
// chain of multiplications (a^254). No table is indexed by secret data, so
// the time and cache lines touched do not depend on the secret or the
// shares' values.

// Limits of a sharing: a share's x coordinate is one non-zero byte.
const (
	minThreshold = 2
	maxShares    = 255
)

// gfMul multiplies a and b in GF(2^8) in constant time.
func gfMul(a, b byte) byte {
	var r byte
	for range 8 {
		r ^= a & -(b & 1)
		// a *= x, reducing by the field polynomial when the top bit
		// carries out.
		a = a<<1 ^ 0x1b&-(a>>7)
		b >>= 1
	}
	return r
}

// gfInv returns the inverse of a (0 for 0) as a^254, by a fixed sequence
// of squarings and multiplications.
func gfInv(a byte) byte {
	// 254 = 0b11111110: square-and-multiply over its bits, always the
	// same operations whatever a is.
	a2 := gfMul(a, a)        // a^2
	a3 := gfMul(a2, a)       // a^3
	a6 := gfMul(a3, a3)      // a^6
	a7 := gfMul(a6, a)       // a^7
	a14 := gfMul(a7, a7)     // a^14
	a15 := gfMul(a14, a)     // a^15
	a30 := gfMul(a15, a15)   // a^30
	a31 := gfMul(a30, a)     // a^31
	a62 := gfMul(a31, a31)   // a^62
	a63 := gfMul(a62, a)     // a^63
	a126 := gfMul(a63, a63)  // a^126
	a127 := gfMul(a126, a)   // a^127
	return gfMul(a127, a127) // a^254
}

// split shares secret among n shares of which threshold reconstruct it;
// share i (0-based) is the polynomials' values at x = i+1. The random
// coefficients come from rand (crypto/rand in production).
func split(secret []byte, n, threshold int, rand io.Reader) ([][]byte, error) {
	if err := checkCounts(n, threshold); err != nil {
		return nil, err
	}
	if len(secret) == 0 {
		return nil, errors.New("escrow: nothing to share")
	}
	// coeffs[j*len(secret)+i] is coefficient j+1 of byte i's polynomial;
	// coefficient 0 is the secret byte.
	coeffs := make([]byte, (threshold-1)*len(secret))
	defer clear(coeffs)
	if _, err := io.ReadFull(rand, coeffs); err != nil {
		return nil, fmt.Errorf("escrow: randomness for the shares: %w", err)
	}
	shares := make([][]byte, n)
	for s := range shares {
		x := byte(s + 1)
		y := make([]byte, len(secret))
		for i := range secret {
			// Horner: ((c_{t-1} x + c_{t-2}) x + ...) x + secret.
			var acc byte
			for j := threshold - 2; j >= 0; j-- {
				acc = gfMul(acc, x) ^ coeffs[j*len(secret)+i]
			}
			y[i] = gfMul(acc, x) ^ secret[i]
		}
		shares[s] = y
	}
	return shares, nil
}

// checkCounts checks 2 <= threshold <= n <= 255.
func checkCounts(n, threshold int) error {
	if threshold < minThreshold || threshold > n || n > maxShares {
		return fmt.Errorf("%w: %d of %d (want 2 <= threshold <= shares <= 255)", ErrCounts, threshold, n)
	}
	return nil
}

// combine interpolates the polynomials through the points (xs[k], ys[k])
// at 0. With at least threshold distinct points of one sharing it returns
// the secret; with fewer it returns a value unrelated to it. The xs are
// the shares' public indices; only the ys are secret.
func combine(xs []byte, ys [][]byte) ([]byte, error) {
	if len(xs) == 0 || len(xs) != len(ys) {
		return nil, errors.New("escrow: combine: no shares, or not one value per share")
	}
	size := len(ys[0])
	for k, x := range xs {
		if x == 0 {
			return nil, errors.New("escrow: combine: share index 0")
		}
		if len(ys[k]) != size {
			return nil, errors.New("escrow: combine: shares of different lengths")
		}
		for _, x2 := range xs[:k] {
			if x == x2 {
				return nil, fmt.Errorf("escrow: combine: share index %d given twice", x)
			}
		}
	}
	secret := make([]byte, size)
	for k, xk := range xs {
		// The Lagrange basis polynomial of point k at 0:
		// prod_{j != k} x_j / (x_j - x_k); subtraction is XOR.
		num, den := byte(1), byte(1)
		for j, xj := range xs {
			if j != k {
				num = gfMul(num, xj)
				den = gfMul(den, xj^xk)
			}
		}
		basis := gfMul(num, gfInv(den))
		for i := range secret {
			secret[i] ^= gfMul(basis, ys[k][i])
		}
	}
	return secret, nil
}
