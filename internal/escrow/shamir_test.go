package escrow

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
)

// slowMul is the textbook shift-and-add multiplication with branches, the
// reference the constant-time gfMul must agree with.
func slowMul(a, b byte) byte {
	var r byte
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return r
}

func TestFieldArithmetic(t *testing.T) {
	t.Parallel()
	for a := range 256 {
		for b := range 256 {
			if got, want := gfMul(byte(a), byte(b)), slowMul(byte(a), byte(b)); got != want {
				t.Fatalf("gfMul(%#x, %#x) = %#x, want %#x", a, b, got, want)
			}
		}
		if a == 0 {
			if gfInv(0) != 0 {
				t.Fatal("gfInv(0) != 0")
			}
			continue
		}
		if p := gfMul(byte(a), gfInv(byte(a))); p != 1 {
			t.Fatalf("%#x * gfInv(%#x) = %#x, want 1", a, a, p)
		}
	}
	// A known product of the AES field (FIPS 197, section 4.2).
	if gfMul(0x57, 0x83) != 0xc1 {
		t.Fatalf("0x57 * 0x83 = %#x, want 0xc1", gfMul(0x57, 0x83))
	}
}

// subsets calls fn with every k-element subset of 0..n-1, at most limit
// of them (in order), so the loop is bounded.
func subsets(n, k, limit int, fn func([]int)) {
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i
	}
	for count := 0; count < limit; count++ {
		fn(idx)
		i := k - 1
		for i >= 0 && idx[i] == n-k+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

func pick(shares [][]byte, idx []int) ([]byte, [][]byte) {
	xs := make([]byte, len(idx))
	ys := make([][]byte, len(idx))
	for i, j := range idx {
		xs[i], ys[i] = byte(j+1), shares[j]
	}
	return xs, ys
}

// TestSplitCombine: any threshold of the shares give the secret back, in
// any order, and so do more than threshold; any threshold-1 give
// something else (for a 32-byte secret the chance they give the secret
// is 2^-256).
func TestSplitCombine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, m int }{{2, 2}, {3, 2}, {5, 3}, {5, 5}, {7, 4}, {10, 10}, {255, 2}, {255, 3}, {255, 255}} {
		secret := make([]byte, 32)
		rand.Read(secret)
		shares, err := split(secret, tc.n, tc.m, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(shares) != tc.n {
			t.Fatalf("%d of %d: %d shares", tc.m, tc.n, len(shares))
		}
		subsets(tc.n, tc.m, 2000, func(idx []int) {
			xs, ys := pick(shares, idx)
			got, err := combine(xs, ys)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("%d of %d, shares %v: %x, %v; want the secret", tc.m, tc.n, idx, got, err)
			}
			// Reversed order.
			rx, ry := append([]byte(nil), xs...), append([][]byte(nil), ys...)
			for i, j := 0, len(rx)-1; i < j; i, j = i+1, j-1 {
				rx[i], rx[j], ry[i], ry[j] = rx[j], rx[i], ry[j], ry[i]
			}
			if got, _ := combine(rx, ry); !bytes.Equal(got, secret) {
				t.Fatalf("%d of %d, shares %v reversed: not the secret", tc.m, tc.n, idx)
			}
		})
		subsets(tc.n, tc.m-1, 2000, func(idx []int) {
			xs, ys := pick(shares, idx)
			got, err := combine(xs, ys)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(got, secret) {
				t.Fatalf("%d of %d: %d shares %v gave the secret", tc.m, tc.n, tc.m-1, idx)
			}
		})
		if tc.n > tc.m {
			all := make([]int, tc.n)
			for i := range all {
				all[i] = i
			}
			xs, ys := pick(shares, all)
			if got, _ := combine(xs, ys); !bytes.Equal(got, secret) {
				t.Fatalf("%d of %d: all %d shares do not give the secret", tc.m, tc.n, tc.n)
			}
		}
	}
}

// TestFewerSharesSayNothing: with threshold-1 shares fixed, every value
// of a secret byte is equally consistent with them. Split with threshold
// 2 a one-byte secret s and look at share 1's value over every choice of
// coefficient: it takes each of the 256 values once, whatever s is, so
// one share alone says nothing about s.
func TestFewerSharesSayNothing(t *testing.T) {
	t.Parallel()
	for _, s := range []byte{0, 1, 0x5a, 0xff} {
		seen := make(map[byte]bool)
		for c := range 256 {
			shares, err := split([]byte{s}, 2, 2, bytes.NewReader([]byte{byte(c)}))
			if err != nil {
				t.Fatal(err)
			}
			seen[shares[0][0]] = true
		}
		if len(seen) != 256 {
			t.Fatalf("secret %#x: share 1 takes %d distinct values over the 256 coefficients, want 256", s, len(seen))
		}
	}
}

func TestSplitRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, m int }{{1, 1}, {3, 1}, {2, 3}, {256, 2}, {0, 0}, {5, -1}} {
		if _, err := split([]byte("secret"), tc.n, tc.m, rand.Reader); err == nil {
			t.Errorf("split %d of %d succeeded", tc.m, tc.n)
		}
	}
	if _, err := split(nil, 3, 2, rand.Reader); err == nil {
		t.Error("split of an empty secret succeeded")
	}
	if _, err := split([]byte("secret"), 3, 2, bytes.NewReader(nil)); err == nil {
		t.Error("split without randomness succeeded")
	}
	for _, tc := range []struct {
		xs []byte
		ys [][]byte
	}{
		{nil, nil},
		{[]byte{1, 1}, [][]byte{{1}, {2}}},
		{[]byte{0, 1}, [][]byte{{1}, {2}}},
		{[]byte{1, 2}, [][]byte{{1}, {2, 3}}},
		{[]byte{1, 2}, [][]byte{{1}}},
	} {
		if _, err := combine(tc.xs, tc.ys); err == nil {
			t.Errorf("combine(%v, %v) succeeded", tc.xs, tc.ys)
		}
	}
}

// FuzzCombine: combine never panics on any input, and a sharing made
// from the fuzzed secret and counts combines back from any threshold of
// its shares.
func FuzzCombine(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"), uint8(5), uint8(3), uint64(1), []byte{1, 2, 3}, []byte{9, 9, 9})
	f.Add([]byte{0}, uint8(2), uint8(2), uint64(7), []byte{1, 1}, []byte{})
	f.Fuzz(func(t *testing.T, secret []byte, n, m uint8, seed uint64, xs, raw []byte) {
		// Arbitrary points: no panic, an error or a value of the right size.
		if len(xs) > 0 && len(raw) >= len(xs) {
			size := len(raw) / len(xs)
			ys := make([][]byte, len(xs))
			for i := range ys {
				ys[i] = raw[i*size : (i+1)*size]
			}
			if got, err := combine(xs, ys); err == nil && len(got) != size {
				t.Fatalf("combine gave %d bytes from %d-byte shares", len(got), size)
			}
		}
		if len(secret) == 0 || len(secret) > 64 || int(m) < 2 || m > n {
			return
		}
		shares, err := split(secret, int(n), int(m), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r := mrand.New(mrand.NewPCG(seed, seed))
		idx := r.Perm(int(n))[:m]
		x, y := pick(shares, idx)
		got, err := combine(x, y)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%d of %d, shares %v: %x, %v", m, n, idx, got, err)
		}
	})
}
