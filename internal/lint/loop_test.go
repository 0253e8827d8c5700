package lint

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"maps"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	zlint "github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"
)

// linterWithIssuer is a default Linter, the encoder tests' keys and a P-256
// issuer under the first of them.
func linterWithIssuer(t *testing.T) (*Linter, map[string]crypto.Signer, *x509.Certificate) {
	t.Helper()
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys := encTestKeys(t)
	return l, keys, encTestIssuer(t, keys["P-256"], pkix.Name{CommonName: "Issuing CA"})
}

// TestLintLoopMatchesLintCertificateEx: over a clean leaf and leaves that
// warn and fail, in both sets, the Linter's own loop over the registry
// reports exactly the warnings and failures (name, status, details) that
// zlint.LintCertificateEx reports over the same registry.
func TestLintLoopMatchesLintCertificateEx(t *testing.T) {
	t.Parallel()
	l, keys, issuer := linterWithIssuer(t)
	leaf := func(cn string, names ...string) *zx509.Certificate {
		t.Helper()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: names,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, keys["P-256"].Public(), keys["P-256"])
		if err != nil {
			t.Fatal(err)
		}
		zc, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return zc
	}
	certs := map[string]*zx509.Certificate{
		"clean":               leaf("a.example.internal", "a.example.internal"),
		"trailing whitespace": leaf("a.example.internal ", "a.example.internal"),
		"long common name":    leaf(strings.Repeat("a", 65), "a.example.internal"),
		"bad name":            leaf("a..example", "a..example"),
	}
	own := []string{smallKeyLint, fermatLint, extDERLint}
	var warned, failed bool
	for name, zc := range certs {
		for _, cabf := range []bool{false, true} {
			want := map[string]zl.LintResult{}
			for n, r := range zlint.LintCertificateEx(zc, l.registry(cabf)).Results {
				if r.Status == zl.Warn || r.Status == zl.Error || r.Status == zl.Fatal {
					want[n] = zl.LintResult{Status: r.Status, Details: r.Details}
					warned = warned || r.Status == zl.Warn
					failed = failed || r.Status != zl.Warn
				}
			}
			got := map[string]zl.LintResult{}
			for n, r := range l.lint(zc, cabf) {
				if !slices.Contains(own, n) {
					got[n] = zl.LintResult{Status: r.Status, Details: r.Details}
				}
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s (cabf=%v): the loop reports %v, LintCertificateEx %v", name, cabf, got, want)
			}
		}
	}
	if !warned || !failed {
		t.Fatalf("the certificates raised warnings %v, failures %v: the comparison needs both", warned, failed)
	}
}
