package ocsp_test

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

// testPKI is root → intermediate → leaf, with a delegated responder
// certificate for the intermediate built by ResponderTemplate.
type testPKI struct {
	root, inter, leaf, resp         *x509.Certificate
	rootKey, interKey, leafKey, key crypto.Signer
	responder                       *ocsp.Responder
	issuer                          *ocsp.Issuer // of inter
}

func mustKey(t testing.TB, alg pki.KeyAlgorithm) crypto.Signer {
	t.Helper()
	k, err := alg.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSerial(t testing.TB) *big.Int {
	t.Helper()
	s, err := pki.NewSerial(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
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

func caTemplate(t testing.TB, cn string, pub crypto.PublicKey, now time.Time) *x509.Certificate {
	t.Helper()
	ski, err := pki.SubjectKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return &x509.Certificate{
		SerialNumber:          mustSerial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Certwright Test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    pki.SignatureAlgorithmFor(pub),
	}
}

// newPKI builds the chain at now; respAlg is the responder key type.
func newPKI(t testing.TB, now time.Time, respAlg pki.KeyAlgorithm) *testPKI {
	t.Helper()
	p := &testPKI{
		rootKey:  mustKey(t, pki.ECDSAP384),
		interKey: mustKey(t, pki.ECDSAP256),
		leafKey:  mustKey(t, pki.ECDSAP256),
		key:      mustKey(t, respAlg),
	}
	rt := caTemplate(t, "Test Root", p.rootKey.Public(), now)
	rt.SignatureAlgorithm = pki.SignatureAlgorithmFor(p.rootKey.Public())
	p.root = mustSign(t, rt, rt, p.rootKey.Public(), p.rootKey)
	it := caTemplate(t, "Test Issuing CA", p.interKey.Public(), now)
	it.SignatureAlgorithm = pki.SignatureAlgorithmFor(p.rootKey.Public())
	p.inter = mustSign(t, it, p.root, p.interKey.Public(), p.rootKey)
	lt := &x509.Certificate{
		SerialNumber: mustSerial(t),
		Subject:      pkix.Name{CommonName: "leaf.example"},
		DNSNames:     []string{"leaf.example"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(12 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer:   []string{"http://pki.example/ocsp/ca_0123456789abcdef"},
	}
	p.leaf = mustSign(t, lt, p.inter, p.leafKey.Public(), p.interKey)
	tmpl, err := ocsp.ResponderTemplate(p.inter, p.key.Public(), mustSerial(t), now.Add(-time.Minute), now.Add(6*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.resp = mustSign(t, tmpl, p.inter, p.key.Public(), p.interKey)
	p.responder, err = ocsp.NewResponder(p.inter, p.resp, p.key)
	if err != nil {
		t.Fatal(err)
	}
	if p.issuer, err = ocsp.NewIssuer(p.inter); err != nil {
		t.Fatal(err)
	}
	return p
}

// files writes the PKI as PEM files for openssl and returns their paths.
func (p *testPKI) files(t testing.TB) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	write := func(name string, data []byte) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out[name] = path
	}
	write("root.pem", pki.CertPEM(p.root.Raw))
	write("ca.pem", pki.CertPEM(p.inter.Raw))
	write("leaf.pem", pki.CertPEM(p.leaf.Raw))
	write("responder.pem", pki.CertPEM(p.resp.Raw))
	k, err := x509.MarshalPKCS8PrivateKey(p.leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write("leaf.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
	out["dir"] = dir
	return out
}

// openssl runs the openssl binary, skipping the test when it is missing.
func openssl(t testing.TB, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found: install the openssl package")
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
