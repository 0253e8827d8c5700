package lint

import (
	"crypto/elliptic"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSmallKeyTableMatchesElliptic checks the batched table build against
// crypto/elliptic: the lane boundaries, the doubling in the first round,
// both ends and a random sample, on every curve.
func TestSmallKeyTableMatchesElliptic(t *testing.T) {
	t.Parallel()
	for curve, table := range smallKeyTables {
		t.Run(curve.Params().Name, func(t *testing.T) {
			t.Parallel()
			tab := table()
			if n := len(tab.byX); n < smallKeyMax-len(tab.extra) || n > smallKeyMax {
				t.Fatalf("table has %d entries, want %d", n, smallKeyMax)
			}
			ds := []uint32{1, 2, 3, smallKeyLanes - 1, smallKeyLanes, smallKeyLanes + 1, 2 * smallKeyLanes,
				2*smallKeyLanes + 1, 4095, 4096, 4097, smallKeyMax - 1, smallKeyMax}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 200 {
				ds = append(ds, 1+rng.Uint32N(smallKeyMax))
			}
			for _, d := range ds {
				x, _ := curve.ScalarBaseMult(big.NewInt(int64(d)).Bytes())
				if !slices.Contains(tab.candidates(x), d) {
					t.Errorf("X of %d*G is not in the table", d)
				}
			}
			x, _ := curve.ScalarBaseMult(big.NewInt(smallKeyMax + 1).Bytes())
			if c := tab.candidates(x); slices.Contains(c, smallKeyMax+1) {
				t.Errorf("the table holds d = 2^16+1")
			}
		})
	}
}

func BenchmarkSmallKeyTableBuild(b *testing.B) {
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		b.Run(curve.Params().Name, func(b *testing.B) {
			for range b.N {
				buildSmallKeyTable(curve.Params())
			}
		})
	}
}
