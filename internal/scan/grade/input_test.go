package grade

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"
)

func TestCheckChain(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(tmpl, parent *x509.Certificate) *x509.Certificate {
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := mk(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "grade CA"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"www.example"},
		NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(0, 1, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf := mk(leafTmpl, ca)
	selfSigned := mk(leafTmpl, leafTmpl)
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		opts  CheckOptions
		want  []CertProblem
	}{
		{"trusted", []*x509.Certificate{leaf, ca}, CheckOptions{ServerName: "www.example", Roots: roots, Now: now}, nil},
		{"mismatch", []*x509.Certificate{leaf, ca}, CheckOptions{ServerName: "other.example", Roots: roots, Now: now}, []CertProblem{CertNameMismatch}},
		{"expired", []*x509.Certificate{leaf, ca}, CheckOptions{ServerName: "www.example", Roots: roots, Now: now.AddDate(0, 2, 0)}, []CertProblem{CertExpired}},
		{"untrusted", []*x509.Certificate{leaf, ca}, CheckOptions{ServerName: "www.example", Roots: x509.NewCertPool(), Now: now}, []CertProblem{CertUntrusted}},
		{"self-signed", []*x509.Certificate{selfSigned}, CheckOptions{ServerName: "www.example", Roots: roots, Now: now}, []CertProblem{CertSelfSigned}},
	} {
		var ders [][]byte
		for _, c := range tc.chain {
			ders = append(ders, c.Raw)
		}
		got, err := CheckChain(ders, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got.Problems, tc.want) {
			t.Errorf("%s: problems = %v, want %v", tc.name, got.Problems, tc.want)
		}
		if got.KeyType != "ECDSA" || got.KeyBits != 384 || got.KeyStrength != 7680 {
			t.Errorf("%s: key = %s %d (%d), want ECDSA 384 (7680)", tc.name, got.KeyType, got.KeyBits, got.KeyStrength)
		}
	}
	if _, err := CheckChain(nil, CheckOptions{}); err == nil {
		t.Error("CheckChain(no certificates) succeeded")
	}
	if _, err := CheckChain([][]byte{[]byte("junk")}, CheckOptions{}); err == nil {
		t.Error("CheckChain(junk) succeeded")
	}
}
