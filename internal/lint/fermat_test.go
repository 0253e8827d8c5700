package lint

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"
)

// TestFermatMatchesZlint: for moduli whose primes are close enough that
// Fermat's method needs from 0 to about 200 steps (the lint's limit is
// 100), and for ordinary keys, the Linter's check fires exactly when
// zlint's e_rsa_fermat_factorization does.
func TestFermatMatchesZlint(t *testing.T) {
	t.Parallel()
	zlintFermat := zl.GlobalRegistry().CertificateLints().ByName(fermatLint)
	if zlintFermat == nil {
		t.Fatal("zlint has no " + fermatLint)
	}
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys := encTestKeys(t)
	issuer := encTestIssuer(t, keys["P-256"], pkix.Name{CommonName: "Issuing CA"})
	check := func(n *big.Int) (ours, theirs bool) {
		t.Helper()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "k"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &rsa.PublicKey{N: n, E: 65537}, keys["P-256"])
		if err != nil {
			t.Fatal(err)
		}
		zc, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		r := zlintFermat.Execute(zc, zl.NewEmptyConfig())
		return l.fermat(zc) != nil, r.Status == zl.Error
	}
	p, err := rand.Prime(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	// q = the next prime after p + delta, delta = sqrt(8 k p), needs about
	// k steps.
	fired, passed := 0, 0
	for k := int64(0); k <= 200; k += 8 {
		delta := new(big.Int).Mul(p, big.NewInt(8*k))
		delta.Sqrt(delta)
		q := new(big.Int).Add(p, delta)
		q.SetBit(q, 0, 1)
		for !q.ProbablyPrime(0) || q.Cmp(p) == 0 {
			q.Add(q, big.NewInt(2))
		}
		n := new(big.Int).Mul(p, q)
		ours, theirs := check(n)
		if ours != theirs {
			t.Fatalf("k≈%d: ours %v, zlint %v", k, ours, theirs)
		}
		if theirs {
			fired++
		} else {
			passed++
		}
	}
	if fired == 0 || passed == 0 {
		t.Fatalf("the moduli did not straddle the limit (%d fired, %d passed): the comparison proves little", fired, passed)
	}
	// Ordinary keys: neither fires.
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if ours, theirs := check(k.N); ours || theirs {
			t.Fatalf("an ordinary key: ours %v, zlint %v", ours, theirs)
		}
	}
}

// TestFermatRefusesCloseKey: a leaf for a key whose primes are adjacent
// fails lint under the lint's name, and the details do not print the
// primes.
func TestFermatRefusesCloseKey(t *testing.T) {
	t.Parallel()
	l, _, issuer := linterWithIssuer(t)
	p, err := rand.Prime(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	q := new(big.Int).Add(p, big.NewInt(2))
	for !q.ProbablyPrime(0) {
		q.Add(q, big.NewInt(2))
	}
	pub := &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "weak.example.internal"},
		DNSNames: []string{"weak.example.internal"}, NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, AuthorityKeyId: issuer.SubjectKeyId}
	tbs, err := NewTBS(tmpl, issuer, pub)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.CheckTBS(tbs, false)
	lerr, ok := err.(*Error)
	if !ok {
		t.Fatalf("CheckTBS = %v, want a lint error", err)
	}
	found := false
	for _, f := range lerr.Lints {
		if f.Name == fermatLint {
			found = true
			if strings.Contains(f.Details, p.String()[:20]) || strings.Contains(f.Details, q.String()[:20]) {
				t.Errorf("details print a prime: %s", f.Details)
			}
		}
	}
	if !found {
		t.Fatalf("lint failures %v lack %s", lerr.Lints, fermatLint)
	}
}
