package compliance_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/pki"
)

// tNow is the fake clock's time in every test.
var tNow = time.Date(2026, time.June, 1, 12, 0, 0, 0, time.UTC)

// tCA is a certificate authority made in the test.
type tCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func tECKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func tSerial(t testing.TB) *big.Int {
	t.Helper()
	s, err := pki.NewSerial(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tSKI(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	ski, err := pki.SubjectKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ski
}

func tSign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tRoot makes a self-signed root CA.
func tRoot(t testing.TB, cn string) tCA {
	t.Helper()
	key := tECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: tSerial(t), Subject: pkix.Name{Organization: []string{"Elsewhere Inc"}, CommonName: cn},
		NotBefore: tNow.AddDate(-1, 0, 0), NotAfter: tNow.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, SubjectKeyId: tSKI(t, key.Public()),
	}
	return tCA{cert: tSign(t, tmpl, tmpl, key.Public(), key), key: key}
}

// sub makes an intermediate CA under c.
func (c tCA) sub(t testing.TB, cn string) tCA {
	t.Helper()
	key := tECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: tSerial(t), Subject: pkix.Name{Organization: []string{"Elsewhere Inc"}, CommonName: cn},
		NotBefore: tNow.AddDate(-1, 0, 0), NotAfter: tNow.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true, SubjectKeyId: tSKI(t, key.Public()),
	}
	return tCA{cert: tSign(t, tmpl, c.cert, key.Public(), c.key), key: key}
}

// leafOpts shape a leaf certificate.
type leafOpts struct {
	key       crypto.Signer // default: a new P-256 key
	notBefore time.Time     // default: a day before tNow
	days      int           // validity; default 90
}

// leaf issues a TLS server certificate for name under c.
func (c tCA) leaf(t testing.TB, name string, o leafOpts) *x509.Certificate {
	t.Helper()
	if o.key == nil {
		o.key = tECKey(t)
	}
	if o.notBefore.IsZero() {
		o.notBefore = tNow.Add(-24 * time.Hour)
	}
	if o.days == 0 {
		o.days = 90
	}
	tmpl := &x509.Certificate{
		SerialNumber: tSerial(t), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: o.notBefore, NotAfter: o.notBefore.Add(time.Duration(o.days) * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, SubjectKeyId: tSKI(t, o.key.Public()),
	}
	if _, ok := o.key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	return tSign(t, tmpl, c.cert, o.key.Public(), c.key)
}

// tPEM concatenates certificates as PEM.
func tPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		b.Write(pki.CertPEM(c.Raw))
	}
	return b.Bytes()
}

// tKeyPEM is key as an "EC PRIVATE KEY" block.
func tKeyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// tImporter is a principal allowed to import anything.
func tImporter() authz.Principal {
	return authz.Principal{ID: "p-ops", Name: "ops", Kind: authz.KindHuman, Bindings: []authz.Binding{{
		Role: authz.Role{Name: "issuer", Permissions: []authz.Permission{authz.PermCertIssue}},
	}}}
}

// tOpenSSL runs openssl in dir, skipping the test when it is missing.
func tOpenSSL(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: install the Debian package openssl to run this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// tLegacyCert makes, with openssl, a self-signed certificate signed with
// SHA-1 (Go refuses to make one) for a key of the given RSA size.
func tLegacyCert(t *testing.T, cn string, bits, days int) *x509.Certificate {
	t.Helper()
	dir := t.TempDir()
	tOpenSSL(t, dir, "req", "-x509", "-sha1", "-newkey", "rsa:"+itoa(bits), "-nodes", "-subj", "/CN="+cn,
		"-days", itoa(days), "-keyout", "legacy.key", "-out", "legacy.pem")
	data, err := os.ReadFile(filepath.Join(dir, "legacy.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
