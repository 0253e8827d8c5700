package lint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"math/big"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"
)

// smallKeyLint is zlint's community lint that reports an ECDSA key whose
// private scalar d is tiny (0 < d <= 2^16, or n-d for such a d), so anyone
// can recover it from the public key. zlint's own implementation walks a
// baby-step giant-step search through crypto/elliptic's generic Add (an
// affine conversion, so a field inversion, per step): about 140 us per
// certificate, more than all other lints together. The Linter runs an
// equivalent check instead (same name, status, details and applicability)
// and keeps zlint's out of its registries so nothing runs twice.
const smallKeyLint = "e_ecdsa_small_private_key"

// smallKeyBits is zlint's default for the lint (Bits: 16), which our
// registries never reconfigure.
const smallKeyBits = 16

// smallKeyMax is the largest d the lint reports: 2^smallKeyBits.
const smallKeyMax = 1 << smallKeyBits

// smallKeyTables holds, for each curve zcrypto parses an ECDSA key on, the
// table of that curve, built on first use. A key on any other curve is
// checked by zlint's own lint (see Linter.smallKey), so nothing is skipped.
//
// The tables are process-wide, not per Linter: each is a constant of its
// curve (deterministic, never written after sync.OnceValue builds it, as Go
// builds its own P-256 base-point tables), and building one costs about
// 100 ms of CPU for P-256 and 200-300 ms for P-384/P-521 — paid once per
// process rather than by every Linter (each test App makes two).
var smallKeyTables = map[elliptic.Curve]func() *smallKeyTable{
	elliptic.P224(): sync.OnceValue(func() *smallKeyTable { return buildSmallKeyTable(elliptic.P224().Params()) }),
	elliptic.P256(): sync.OnceValue(func() *smallKeyTable { return buildSmallKeyTable(elliptic.P256().Params()) }),
	elliptic.P384(): sync.OnceValue(func() *smallKeyTable { return buildSmallKeyTable(elliptic.P384().Params()) }),
	elliptic.P521(): sync.OnceValue(func() *smallKeyTable { return buildSmallKeyTable(elliptic.P521().Params()) }),
}

// smallKeyTable maps the X coordinate of d*G, for d = 1..2^16, to d. The
// points d*G and -d*G = (n-d)*G share their X, so one lookup by X finds a
// key with private scalar d or n-d. It is keyed by the low 64 bits of X,
// so a hit is a candidate that the caller confirms by computing d*G; table
// entries whose low 64 bits collide are all kept, so no small key is
// missed.
type smallKeyTable struct {
	byX   map[uint64]uint32
	extra map[uint64][]uint32 // further d whose X shares low 64 bits with byX's entry
}

func (t *smallKeyTable) add(x *big.Int, d uint32) {
	k := x.Uint64()
	if _, dup := t.byX[k]; dup {
		if t.extra == nil {
			t.extra = map[uint64][]uint32{}
		}
		t.extra[k] = append(t.extra[k], d)
		return
	}
	t.byX[k] = d
}

// candidates returns the d whose d*G may have X coordinate x.
func (t *smallKeyTable) candidates(x *big.Int) []uint32 {
	k := x.Uint64()
	d, ok := t.byX[k]
	if !ok {
		return nil
	}
	return append([]uint32{d}, t.extra[k]...)
}

// smallKeyLanes is how many points are advanced together when the table is
// built, so one field inversion (Montgomery's batch trick) serves that many
// affine additions.
const smallKeyLanes = 256

// build fills the table with the X of d*G for d = 1..2^16 in affine
// coordinates with math/big: lane i holds (i+1+r*L)*G in round r, and each
// round adds L*G to every lane under one batched inversion. About 1 us a
// point, so tens of milliseconds per curve, once per process. The NIST
// curves all have a = -3. A wrong table could only miss keys, never
// invent one (every hit is confirmed), and the tests compare it with
// crypto/elliptic.
func buildSmallKeyTable(p *elliptic.CurveParams) *smallKeyTable {
	t := &smallKeyTable{byX: make(map[uint64]uint32, smallKeyMax)}
	const L = smallKeyLanes
	xs, ys := make([]*big.Int, L), make([]*big.Int, L)
	// Lanes 1*G..L*G, one ordinary addition each.
	xs[0], ys[0] = new(big.Int).Set(p.Gx), new(big.Int).Set(p.Gy)
	for i := 1; i < L; i++ {
		xs[i], ys[i] = affineAdd(p, xs[i-1], ys[i-1], p.Gx, p.Gy)
	}
	for i := range L {
		t.add(xs[i], uint32(i+1))
	}
	sx, sy := new(big.Int).Set(xs[L-1]), new(big.Int).Set(ys[L-1]) // S = L*G
	den, prefix, dbl := make([]*big.Int, L), make([]*big.Int, L), make([]bool, L)
	for i := range L {
		den[i], prefix[i] = new(big.Int), new(big.Int)
	}
	inv, di, lambda, x3, y3 := new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	for r := 1; r < smallKeyMax/L; r++ {
		// Denominators x_S - x_i, or 2*y_i where lane i is S itself (only
		// lane L-1 in round 1: L*G + L*G is a doubling), and their
		// running products.
		for i := range L {
			dbl[i] = xs[i].Cmp(sx) == 0
			if dbl[i] {
				den[i].Lsh(ys[i], 1)
			} else {
				den[i].Sub(sx, xs[i])
			}
			den[i].Mod(den[i], p.P)
			if i == 0 {
				prefix[i].Set(den[i])
			} else {
				prefix[i].Mul(prefix[i-1], den[i])
				prefix[i].Mod(prefix[i], p.P)
			}
		}
		inv.ModInverse(prefix[L-1], p.P) // 1/(den[0]*...*den[L-1])
		for i := L - 1; i >= 0; i-- {
			// Here inv = 1/(den[0]*...*den[i]), so 1/den[i] = inv*prefix[i-1].
			if i == 0 {
				di.Set(inv)
			} else {
				di.Mul(inv, prefix[i-1])
				di.Mod(di, p.P)
				inv.Mul(inv, den[i])
				inv.Mod(inv, p.P)
			}
			if dbl[i] {
				lambda.Mul(xs[i], xs[i]) // λ = 3(x² - 1) / 2y, as a = -3
				lambda.Sub(lambda, one)
				lambda.Mul(lambda, three)
			} else {
				lambda.Sub(sy, ys[i]) // λ = (y_S - y_i) / (x_S - x_i)
			}
			lambda.Mul(lambda, di)
			lambda.Mod(lambda, p.P)
			x3.Mul(lambda, lambda) // x3 = λ² - x_i - x_S
			x3.Sub(x3, xs[i])
			x3.Sub(x3, sx)
			x3.Mod(x3, p.P)
			y3.Sub(xs[i], x3) // y3 = λ(x_i - x3) - y_i
			y3.Mul(y3, lambda)
			y3.Sub(y3, ys[i])
			ys[i].Mod(y3, p.P)
			xs[i].Set(x3)
			t.add(xs[i], uint32(i+1+r*L))
		}
	}
	return t
}

var (
	one   = big.NewInt(1)
	three = big.NewInt(3)
)

// affineAdd returns P1 + P2, neither of them the point at infinity nor the
// negation of the other, on a curve with a = -3, in affine coordinates.
func affineAdd(p *elliptic.CurveParams, x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	var num, den *big.Int
	if x1.Cmp(x2) == 0 { // doubling: λ = 3(x² - 1) / 2y
		num = new(big.Int).Mul(x1, x1)
		num.Sub(num, one).Mul(num, three)
		den = new(big.Int).Lsh(y1, 1)
	} else { // λ = (y2 - y1) / (x2 - x1)
		num = new(big.Int).Sub(y2, y1)
		den = new(big.Int).Sub(x2, x1)
	}
	den.Mod(den, p.P)
	lambda := den.ModInverse(den, p.P)
	lambda.Mul(lambda, num)
	lambda.Mod(lambda, p.P)
	x3 := new(big.Int).Mul(lambda, lambda)
	x3.Sub(x3, x1)
	x3.Sub(x3, x2)
	x3.Mod(x3, p.P)
	y3 := new(big.Int).Sub(x1, x3)
	y3.Mul(y3, lambda)
	y3.Sub(y3, y1)
	y3.Mod(y3, p.P)
	return x3, y3
}

// smallKeyDetails is zlint's wording when the lint fires.
func smallKeyDetails(d uint32) string {
	return fmt.Sprintf("the ECDSA private key is %d, or its negation modulo the group order, and so can be trivially recovered by anyone", d)
}

// smallKey runs the small-private-key check on zc as zlint's lint would
// (it applies to every certificate with a well-formed ECDSA key: root,
// intermediate or leaf). It returns nil when the check passes or does not
// apply, and otherwise the failing result. A key on a curve outside
// smallKeyCurves goes to zlint's own lint.
func (l *Linter) smallKey(zc *zx509.Certificate) *zl.LintResult {
	if l.smallKeyLint == nil {
		return nil
	}
	key := ecdsaKey(zc)
	if key == nil || key.Curve == nil || key.X == nil || key.Y == nil {
		return nil
	}
	table, ok := smallKeyTables[key.Curve]
	if !ok {
		if r := l.smallKeyLint.Execute(zc, zl.NewEmptyConfig()); r.Status == zl.Error || r.Status == zl.Fatal {
			return r
		}
		return nil
	}
	return smallKeyLookup(table(), key)
}

// smallKeyOf checks a public key that is not (yet) in a parsed
// certificate: the subject key of a self-signed certificate, which the
// lint certificate replaces by the throwaway key. Go's x509 encodes
// ECDSA keys on the four curves of smallKeyTables only.
func (l *Linter) smallKeyOf(pub crypto.PublicKey) *zl.LintResult {
	key, ok := pub.(*ecdsa.PublicKey)
	if l.smallKeyLint == nil || !ok || key.Curve == nil || key.X == nil || key.Y == nil {
		return nil
	}
	if table, ok := smallKeyTables[key.Curve]; ok {
		return smallKeyLookup(table(), key)
	}
	return nil
}

// smallKeyLookup looks key up in the curve's table and confirms a hit.
func smallKeyLookup(table *smallKeyTable, key *ecdsa.PublicKey) *zl.LintResult {
	curve := key.Curve
	for _, d := range table.candidates(key.X) {
		// A candidate shares the low 64 bits of X: confirm it. The point
		// must be on the curve (zlint's CheckApplies) and d*G must have
		// exactly its X (d*G is the key or its negation).
		if !curve.IsOnCurve(key.X, key.Y) {
			return nil
		}
		if gx, _ := curve.ScalarBaseMult(big.NewInt(int64(d)).Bytes()); gx.Cmp(key.X) == 0 {
			return &zl.LintResult{Status: zl.Error, Details: smallKeyDetails(d)}
		}
	}
	return nil
}

// ecdsaKey is the ECDSA public key of zc, as zlint's lint reads it.
func ecdsaKey(zc *zx509.Certificate) *ecdsa.PublicKey {
	if zc.PublicKeyAlgorithm != zx509.ECDSA {
		return nil
	}
	switch k := zc.PublicKey.(type) {
	case *zx509.AugmentedECDSA:
		return k.Pub
	case *ecdsa.PublicKey:
		return k
	}
	return nil
}
