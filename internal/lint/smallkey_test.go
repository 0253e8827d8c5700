package lint_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"

	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

const smallKeyLint = "e_ecdsa_small_private_key"

// keyWithScalar is the public key d*G on curve.
func keyWithScalar(curve elliptic.Curve, d *big.Int) *ecdsa.PublicKey {
	x, y := curve.ScalarBaseMult(d.Bytes())
	return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
}

// zlintSmallKey runs zlint's own e_ecdsa_small_private_key over der.
func zlintSmallKey(t *testing.T, der []byte) *zl.LintResult {
	t.Helper()
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return zl.GlobalRegistry().CertificateLints().ByName(smallKeyLint).Execute(zc, zl.NewEmptyConfig())
}

// smallKeyFinding is what Check reported for the lint, if anything.
func smallKeyFinding(err error) (lint.Finding, bool) {
	var lerr *lint.Error
	if !errors.As(err, &lerr) {
		return lint.Finding{}, false
	}
	i := slices.IndexFunc(lerr.Lints, func(f lint.Finding) bool { return f.Name == smallKeyLint })
	if i < 0 {
		return lint.Finding{}, false
	}
	return lerr.Lints[i], true
}

// TestSmallPrivateKey: keys with private scalar 1, 5, 2^16 and n-7 fail
// exactly as zlint's lint fails them, on a leaf, an intermediate and a
// root; a random key passes.
func TestSmallPrivateKey(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	_, inter := newChain(t, pki.ECDSAP256)
	n := elliptic.P256().Params().N
	nMinus7 := new(big.Int).Sub(n, big.NewInt(7))
	for _, tc := range []struct {
		name string
		d    *big.Int
		want string
	}{
		{"d=1", big.NewInt(1), "the ECDSA private key is 1, or its negation modulo the group order, and so can be trivially recovered by anyone"},
		{"d=5", big.NewInt(5), "the ECDSA private key is 5, or its negation modulo the group order, and so can be trivially recovered by anyone"},
		{"d=65536", big.NewInt(65536), "the ECDSA private key is 65536, or its negation modulo the group order, and so can be trivially recovered by anyone"},
		{"d=n-7", nMinus7, "the ECDSA private key is 7, or its negation modulo the group order, and so can be trivially recovered by anyone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := keyWithScalar(elliptic.P256(), tc.d)
			leaf := goodLeaf(t, pub)
			_, err := l.Check(leaf, pub, inter.cert, false)
			f, ok := smallKeyFinding(err)
			if !ok {
				t.Fatalf("leaf: Check = %v, want %s", err, smallKeyLint)
			}
			if f.Status != "error" || f.Details != tc.want {
				t.Errorf("leaf: finding %+v, want status error and details %q", f, tc.want)
			}
			// zlint's own lint, on the same key, says the same.
			der, err := x509.CreateCertificate(rand.Reader, leaf, inter.cert, pub, inter.key)
			if err != nil {
				t.Fatal(err)
			}
			if z := zlintSmallKey(t, der); z.Status != zl.Error || z.Details != f.Details {
				t.Errorf("zlint says %v %q, we say %s %q", z.Status, z.Details, f.Status, f.Details)
			}
			// Intermediates and roots are checked too.
			it := &x509.Certificate{
				SerialNumber: serial(t), Subject: pkix.Name{CommonName: "Weak CA"},
				NotBefore: now, NotAfter: now.AddDate(1, 0, 0), BasicConstraintsValid: true, IsCA: true,
				KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: mustSKI(t, pub),
			}
			if _, err := l.Check(it, pub, inter.cert, false); !isSmallKey(err) {
				t.Errorf("intermediate: Check = %v, want %s", err, smallKeyLint)
			}
			if _, err := l.Check(it, pub, nil, false); !isSmallKey(err) {
				t.Errorf("root: Check = %v, want %s", err, smallKeyLint)
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Check(goodLeaf(t, k.Public()), k.Public(), inter.cert, false); err != nil {
			t.Errorf("random key: %v", err)
		}
	})
}

func isSmallKey(err error) bool {
	_, ok := smallKeyFinding(err)
	return ok
}

// TestSmallPrivateKeyMatchesZlint compares our verdict with zlint's lint,
// certificate by certificate, on keys in and around the range on every
// curve zcrypto parses.
func TestSmallPrivateKeyMatchesZlint(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuerTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Compare CA"},
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: mustSKI(t, issuerKey.Public()),
	}
	for _, curve := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		t.Run(curve.Params().Name, func(t *testing.T) {
			t.Parallel()
			n := curve.Params().N
			var ds []*big.Int
			for _, d := range []int64{1, 2, 3, 255, 256, 257, 4096, 4097, 8193, 65535, 65536, 65537, 1 << 20} {
				ds = append(ds, big.NewInt(d), new(big.Int).Sub(n, big.NewInt(d)))
			}
			for range 3 {
				d, err := rand.Int(rand.Reader, n)
				if err != nil {
					t.Fatal(err)
				}
				ds = append(ds, d.Add(d, big.NewInt(1)))
			}
			fired := 0
			for _, d := range ds {
				pub := keyWithScalar(curve, d)
				tmpl := &x509.Certificate{
					SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "k.example.internal"},
					DNSNames: []string{"k.example.internal"}, NotBefore: now, NotAfter: now.Add(time.Hour),
				}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerTmpl, pub, issuerKey)
				if err != nil {
					t.Fatal(err)
				}
				res, err := l.CheckExisting(der, false)
				if err != nil {
					t.Fatal(err)
				}
				var ours *lint.Finding
				if i := slices.IndexFunc(res.Failed, func(f lint.Finding) bool { return f.Name == smallKeyLint }); i >= 0 {
					ours = &res.Failed[i]
				}
				z := zlintSmallKey(t, der)
				zFails := z.Status == zl.Error || z.Status == zl.Fatal
				switch {
				case zFails != (ours != nil):
					t.Errorf("d=%v: zlint %v %q, ours %v", d, z.Status, z.Details, ours)
				case ours != nil && (ours.Status != z.Status.String() || ours.Details != z.Details):
					t.Errorf("d=%v: zlint %v %q, ours %s %q", d, z.Status, z.Details, ours.Status, ours.Details)
				}
				if ours != nil {
					fired++
				}
			}
			if want := 2 * 11; fired != want { // 1..65536 and their negations
				t.Errorf("fired on %d keys, want %d", fired, want)
			}
		})
	}
}

// TestSmallKeyRunsOnce: zlint's lint is out of the registries (it is not
// run twice), yet Names lists it, and excluding it by name turns ours off.
func TestSmallKeyRunsOnce(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	for _, cabf := range []bool{false, true} {
		if n := l.Names(cabf); !slices.Contains(n, smallKeyLint) || !slices.IsSorted(n) {
			t.Errorf("Names(%v) lacks %s or is unsorted", cabf, smallKeyLint)
		}
	}
	off, err := lint.New(lint.Options{ExcludeNames: []string{smallKeyLint}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(off.Names(false), smallKeyLint) {
		t.Errorf("excluded, yet Names lists %s", smallKeyLint)
	}
	_, inter := newChain(t, pki.ECDSAP256)
	pub := keyWithScalar(elliptic.P256(), big.NewInt(5))
	if _, err := off.Check(goodLeaf(t, pub), pub, inter.cert, false); err != nil {
		t.Errorf("excluded lint still fired: %v", err)
	}
}
