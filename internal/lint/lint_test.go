package lint_test

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func mustKey(t testing.TB, alg pki.KeyAlgorithm) crypto.Signer {
	t.Helper()
	k, err := alg.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSKI(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	ski, err := pki.SubjectKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ski
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	s, err := pki.NewSerial(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newChain builds a root and an intermediate of the given key algorithm,
// shaped as Certwright issues them.
func newChain(t testing.TB, alg pki.KeyAlgorithm) (root, inter ca) {
	t.Helper()
	rootKey := mustKey(t, alg)
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"Example Corp"}, CommonName: "Example Root CA"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          mustSKI(t, rootKey.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := x509.ParseCertificate(der)

	interKey := mustKey(t, alg)
	interTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"Example Corp"}, CommonName: "Example Issuing CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          mustSKI(t, interKey.Public()),
		CRLDistributionPoints: []string{"http://pki.example.internal/crl/root.crl"},
		IssuingCertificateURL: []string{"http://pki.example.internal/ca/root.crt"},
	}
	der, err = x509.CreateCertificate(rand.Reader, interTmpl, rootCert, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	interCert, _ := x509.ParseCertificate(der)
	return ca{rootCert, rootKey}, ca{interCert, interKey}
}

// goodLeaf is a TLS server template as a private CA issues it.
func goodLeaf(t testing.TB, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	return &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "app.example.internal"},
		DNSNames:              []string{"app.example.internal", "api.example.internal"},
		IPAddresses:           []net.IP{net.ParseIP("10.0.0.7")},
		NotBefore:             now,
		NotAfter:              now.AddDate(0, 0, 365),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          mustSKI(t, pub),
		CRLDistributionPoints: []string{"http://pki.example.internal/crl/issuing.crl"},
		OCSPServer:            []string{"http://pki.example.internal/ocsp"},
		IssuingCertificateURL: []string{"http://pki.example.internal/ca/issuing.crt"},
	}
}

func newLinter(t testing.TB) *lint.Linter {
	t.Helper()
	l, err := lint.New(lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestGoodLeafPasses(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	for _, alg := range pki.KeyAlgorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			_, inter := newChain(t, alg)
			leafKey := mustKey(t, pki.ECDSAP256)
			if alg.Family() == pki.FamilyRSA {
				leafKey = mustKey(t, pki.RSA2048)
			}
			tmpl := goodLeaf(t, leafKey.Public())
			if alg.Family() == pki.FamilyRSA {
				tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
			}
			warnings, err := l.Check(tmpl, leafKey.Public(), inter.cert, false)
			if err != nil {
				t.Fatalf("private set: %v", err)
			}
			if len(warnings) != 0 {
				t.Errorf("private set warnings: %q", warnings)
			}
		})
	}
}

func TestCABFSet(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	_, inter := newChain(t, pki.ECDSAP256)
	leafKey := mustKey(t, pki.ECDSAP256)

	// A public-TLS leaf: a public DNS name, policies, 90 days.
	tmpl := goodLeaf(t, leafKey.Public())
	tmpl.Subject = pkix.Name{}
	tmpl.DNSNames = []string{"www.example.com"}
	tmpl.IPAddresses = nil
	tmpl.NotAfter = now.AddDate(0, 0, 90)
	tmpl.Policies = []x509.OID{mustOID(t, "2.23.140.1.2.1")}
	if w, err := l.Check(tmpl, leafKey.Public(), inter.cert, true); err != nil {
		t.Fatalf("public-style leaf under CABF set: %v (warnings %q)", err, w)
	}

	// The private leaf is fine privately and fails the BRs: internal name,
	// no policy, a lifetime beyond what the root programs allow.
	priv := goodLeaf(t, leafKey.Public())
	_, err := l.Check(priv, leafKey.Public(), inter.cert, true)
	var lerr *lint.Error
	if !errors.As(err, &lerr) {
		t.Fatalf("private leaf under CABF set: err = %v, want *lint.Error", err)
	}
	if !strings.Contains(err.Error(), "e_dnsname_not_valid_tld") {
		t.Errorf("error does not name the TLD lint: %v", err)
	}
}

func mustOID(t testing.TB, s string) x509.OID {
	t.Helper()
	o, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestBadTemplatesBlocked(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	_, inter := newChain(t, pki.ECDSAP256)
	leafKey := mustKey(t, pki.ECDSAP256)

	tests := []struct {
		name     string
		mutate   func(c *x509.Certificate)
		wantLint string
	}{
		{
			name: "empty subject and no SANs",
			mutate: func(c *x509.Certificate) {
				c.Subject = pkix.Name{}
				c.DNSNames, c.IPAddresses = nil, nil
			},
			wantLint: "e_subject_empty_without_san",
		},
		{
			name:     "certSign on a leaf",
			mutate:   func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign },
			wantLint: "e_ext_key_usage_cert_sign_without_ca",
		},
		{
			name:     "ECDSA leaf with keyEncipherment",
			mutate:   func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageKeyEncipherment },
			wantLint: "e_ecdsa_allowed_ku",
		},
		{
			name:     "wildcard not leftmost",
			mutate:   func(c *x509.Certificate) { c.DNSNames = []string{"app.*.example.internal"} },
			wantLint: "e_san_wildcard_not_first",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := goodLeaf(t, leafKey.Public())
			tc.mutate(tmpl)
			_, err := l.Check(tmpl, leafKey.Public(), inter.cert, false)
			var lerr *lint.Error
			if !errors.As(err, &lerr) {
				t.Fatalf("err = %v, want *lint.Error", err)
			}
			found := false
			for _, f := range lerr.Lints {
				if f.Name == tc.wantLint {
					found = true
				}
				if f.Status != "error" && f.Status != "fatal" {
					t.Errorf("finding %s has status %q", f.Name, f.Status)
				}
			}
			if !found || !strings.Contains(err.Error(), tc.wantLint) {
				t.Fatalf("error does not name %s: %v", tc.wantLint, err)
			}
			if !strings.HasPrefix(err.Error(), "lint: certificate failed ") {
				t.Fatalf("error message %q", err)
			}
		})
	}
}

func TestLintCertificateMatchesIssuer(t *testing.T) {
	t.Parallel()
	// An issuer without an SKI must not give the lint certificate an AKI:
	// e_ext_authority_key_identifier_no_key_identifier must fire as it would for real.
	l := newLinter(t)
	key := mustKey(t, pki.ECDSAP256)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "Legacy CA"},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := x509.ParseCertificate(der)
	legacy.SubjectKeyId = nil // as if the issuer had none

	leafKey := mustKey(t, pki.ECDSAP256)
	_, err = l.Check(goodLeaf(t, leafKey.Public()), leafKey.Public(), legacy, false)
	if err == nil || !strings.Contains(err.Error(), "e_ext_authority_key_identifier_no_key_identifier") {
		t.Fatalf("err = %v, want e_ext_authority_key_identifier_no_key_identifier", err)
	}
}

func TestSelfSignedRoot(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	for _, alg := range []pki.KeyAlgorithm{pki.ECDSAP384, pki.RSA3072, pki.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			root, _ := newChain(t, alg)
			tmpl := *root.cert
			tmpl.Raw = nil
			if _, err := l.Check(&tmpl, root.key.Public(), nil, false); err != nil {
				t.Fatalf("root as self-signed: %v", err)
			}
			if _, err := l.Check(&tmpl, root.key.Public(), root.cert, false); err != nil {
				t.Fatalf("root re-signed by itself: %v", err)
			}
		})
	}
}

func TestIntermediate(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	root, inter := newChain(t, pki.ECDSAP384)
	tmpl := *inter.cert
	if _, err := l.Check(&tmpl, inter.key.Public(), root.cert, false); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownExclude(t *testing.T) {
	t.Parallel()
	if _, err := lint.New(lint.Options{ExcludeNames: []string{"e_no_such_lint"}}); err == nil {
		t.Fatal("unknown lint name accepted")
	}
}

func TestNamesExcludePrivateMisfits(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	private := strings.Join(l.Names(false), " ")
	cabf := strings.Join(l.Names(true), " ")
	for _, name := range []string{"e_dnsname_not_valid_tld", "w_sub_cert_aia_contains_internal_names", "e_sub_cert_aia_does_not_contain_ocsp_url", "e_qcstatem_etsi_present_qcs_critical"} {
		if strings.Contains(private, name) {
			t.Errorf("private set runs %s", name)
		}
	}
	for _, name := range []string{"e_dnsname_not_valid_tld", "e_sub_cert_aia_does_not_contain_ocsp_url", "e_ext_san_missing"} {
		if !strings.Contains(cabf, name) {
			t.Errorf("CABF set lacks %s", name)
		}
	}
}

func TestConcurrentChecks(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	_, inter := newChain(t, pki.ECDSAP256)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			k := mustKey(t, pki.ECDSAP256)
			_, err := l.Check(goodLeaf(t, k.Public()), k.Public(), inter.cert, true)
			var lerr *lint.Error
			if !errors.As(err, &lerr) {
				errs <- err
			}
			_, err = l.Check(goodLeaf(t, k.Public()), k.Public(), inter.cert, false)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func benchCheck(b *testing.B, cabf bool) {
	l := newLinter(b)
	_, inter := newChain(b, pki.ECDSAP256)
	k := mustKey(b, pki.ECDSAP256)
	tmpl := goodLeaf(b, k.Public())
	if cabf {
		tmpl.Subject = pkix.Name{}
		tmpl.DNSNames = []string{"www.example.com"}
		tmpl.IPAddresses = nil
		tmpl.NotAfter = now.AddDate(0, 0, 90)
		tmpl.Policies = []x509.OID{mustOID(b, "2.23.140.1.2.1")}
	}
	if _, err := l.Check(tmpl, k.Public(), inter.cert, cabf); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Check(tmpl, k.Public(), inter.cert, cabf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	b.Run("private", func(b *testing.B) { benchCheck(b, false) })
	b.Run("cabf", func(b *testing.B) { benchCheck(b, true) })
}
