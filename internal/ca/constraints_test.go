package ca_test

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
)

// ncChain is a root, an intermediate made by ca.Template from spec, and
// the intermediate's key.
type ncChain struct {
	root, inter *x509.Certificate
	interKey    crypto.Signer
}

func newNCChain(t *testing.T, spec ca.Spec) ncChain {
	t.Helper()
	start := time.Now()
	rootT := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "NC Root"},
		NotBefore: start.Add(-time.Hour), NotAfter: start.Add(48 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: -1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	root := selfSigned(t, rootT)
	interKey, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	spec.Subject = pkix.Name{CommonName: "NC Constrained"}
	spec.Validity = 24 * time.Hour
	tmpl, err := ca.Template(&spec, interKey.Public(), big.NewInt(2), start, root.cert, ca.URLs{})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, interKey.Public(), root.key)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ncChain{root: root.cert, inter: inter, interKey: interKey}
}

// leaf hand-signs a leaf with the intermediate's key, bypassing the
// issuance path, as a stolen or misused CA key would.
func (c ncChain) leaf(t *testing.T, san func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: c.inter.NotBefore, NotAfter: c.inter.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	san(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, key.Public(), c.interKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// verifiers reports what Go's crypto/x509 and openssl say about leaf.
func (c ncChain) verify(t *testing.T, leaf *x509.Certificate) (goErr, opensslErr error) {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(c.root)
	inters.AddCert(c.inter)
	_, goErr = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	dir := t.TempDir()
	write := func(name string, cert *x509.Certificate) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", write("root.pem", c.root), "-untrusted", write("inter.pem", c.inter), write("leaf.pem", leaf)).CombinedOutput()
	if err != nil {
		opensslErr = errors.New(string(out))
	}
	return goErr, opensslErr
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestNameConstraintsCloseUnpermittedTypes is issue 13 #14: a CA created
// with only a permitted DNS subtree must not let an IP, URI or email name
// through. A leaf hand-signed with the CA key fails both openssl verify
// and Go's verifier, and the issuance path's check refuses it before
// signing.
func TestNameConstraintsCloseUnpermittedTypes(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	c := newNCChain(t, ca.Spec{MaxPathLen: 0, PermittedDNS: []string{"example.internal"}})
	chain := []*x509.Certificate{c.inter, c.root}
	tests := []struct {
		name string
		san  func(*x509.Certificate)
		ok   bool
	}{
		{"permitted DNS", func(l *x509.Certificate) { l.DNSNames = []string{"app.example.internal"} }, true},
		{"DNS outside", func(l *x509.Certificate) { l.DNSNames = []string{"app.example.com"} }, false},
		{"IPv4", func(l *x509.Certificate) { l.IPAddresses = []net.IP{net.ParseIP("10.9.9.9")} }, false},
		{"IPv6", func(l *x509.Certificate) { l.IPAddresses = []net.IP{net.ParseIP("2001:db8::9")} }, false},
		{"DNS and IP", func(l *x509.Certificate) {
			l.DNSNames = []string{"app.example.internal"}
			l.IPAddresses = []net.IP{net.ParseIP("10.9.9.9")}
		}, false},
		{"URI", func(l *x509.Certificate) { l.URIs = []*url.URL{mustURL(t, "spiffe://example.internal/admin")} }, false},
		{"email", func(l *x509.Certificate) { l.EmailAddresses = []string{"ops@example.internal"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			leaf := c.leaf(t, tt.san)
			goErr, sslErr := c.verify(t, leaf)
			checkErr := ca.CheckNameConstraints(chain, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses, leaf.URIs)
			if tt.ok {
				if goErr != nil || sslErr != nil || checkErr != nil {
					t.Fatalf("want accepted: Go %v; openssl %v; CheckNameConstraints %v", goErr, sslErr, checkErr)
				}
				return
			}
			if goErr == nil {
				t.Errorf("Go's verifier accepted the leaf")
			}
			if sslErr == nil {
				t.Errorf("openssl verify accepted the leaf")
			}
			if !errors.Is(checkErr, ca.ErrNameConstraint) {
				t.Errorf("CheckNameConstraints = %v, want ErrNameConstraint", checkErr)
			}
		})
	}

	// An explicit permission keeps a type open.
	open := newNCChain(t, ca.Spec{MaxPathLen: 0, PermittedDNS: []string{"example.internal"}, PermittedIP: []*net.IPNet{
		{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, {IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}})
	leaf := open.leaf(t, func(l *x509.Certificate) { l.IPAddresses = []net.IP{net.ParseIP("10.9.9.9")} })
	if goErr, sslErr := open.verify(t, leaf); goErr != nil || sslErr != nil {
		t.Errorf("IP under --permit-ip 0.0.0.0/0,::/0: Go %v; openssl %v", goErr, sslErr)
	}
	// An exclusion-only CA is a blacklist: other types stay open.
	_, ten, _ := net.ParseCIDR("10.0.0.0/8")
	black := newNCChain(t, ca.Spec{MaxPathLen: 0, ExcludedIP: []*net.IPNet{ten}})
	leaf = black.leaf(t, func(l *x509.Certificate) { l.URIs = []*url.URL{mustURL(t, "spiffe://example.internal/x")} })
	if goErr, sslErr := black.verify(t, leaf); goErr != nil || sslErr != nil {
		t.Errorf("URI under an exclusion-only CA: Go %v; openssl %v", goErr, sslErr)
	}
}

// TestCheckNameConstraintsClosesLegacyCAs: a CA certificate made before the
// fix (DNS permitted, IP left open in the certificate) still issues no IP
// through the issuance path's check.
func TestCheckNameConstraintsClosesLegacyCAs(t *testing.T) {
	t.Parallel()
	tmpl := caTemplate("Legacy DNS-only", 0, true)
	tmpl.PermittedDNSDomains = []string{"example.internal"}
	legacy := selfSigned(t, tmpl).cert
	if len(legacy.ExcludedIPRanges) != 0 {
		t.Fatal("test CA should leave IP open")
	}
	for _, tt := range []struct {
		name   string
		ips    []net.IP
		emails []string
		uris   []*url.URL
	}{
		{"IP", []net.IP{net.ParseIP("10.9.9.9")}, nil, nil},
		{"email", nil, []string{"a@example.internal"}, nil},
		{"URI", nil, nil, []*url.URL{mustURL(t, "spiffe://example.internal/x")}},
	} {
		err := ca.CheckNameConstraints([]*x509.Certificate{legacy}, []string{"app.example.internal"}, tt.ips, tt.emails, tt.uris)
		if !errors.Is(err, ca.ErrNameConstraint) {
			t.Errorf("%s under a legacy DNS-only CA: %v, want ErrNameConstraint", tt.name, err)
		}
	}
	if err := ca.CheckNameConstraints([]*x509.Certificate{legacy}, []string{"app.example.internal"}, nil, nil, nil); err != nil {
		t.Errorf("permitted DNS name: %v", err)
	}
}
