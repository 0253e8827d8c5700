package tlsprobe

// Test servers on 127.0.0.1, shared with the external tests (package
// tlsprobe_test sees the exported names of this file).

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/scan/scantest"
)

// TestPKI is a throwaway CA and a localhost leaf signed by it.
type TestPKI struct {
	Roots   *x509.CertPool
	Leaf    tls.Certificate
	CertPEM []byte // leaf then CA
	KeyPEM  []byte
}

// NewTestPKI makes a CA and a leaf for localhost and 127.0.0.1 with an
// RSA 2048 key (rsa true: RSA key transport needs it) or ECDSA P-256.
func NewTestPKI(t testing.TB, useRSA bool) *TestPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsprobe test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	var key crypto.Signer
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &TestPKI{Roots: x509.NewCertPool(), Leaf: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}}
	p.Roots.AddCert(ca)
	p.CertPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	p.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return p
}

// TCPDialer dials addr over TCP.
func TCPDialer(addr string) Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// StartGoServer serves cfg on 127.0.0.1 until the test ends and returns
// its address. Each connection does a handshake and closes.
func StartGoServer(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	return ServeLoopback(t, func(c net.Conn) { _ = tls.Server(c, cfg).Handshake() })
}

// ServeLoopback listens on 127.0.0.1 until the test ends, runs handle on
// each connection (5 s deadline) and closes it; it returns the address.
func ServeLoopback(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	addr, _ := scantest.ServeLoopback(t, handle)
	return addr
}

// StartOpenSSL runs `openssl s_server` on 127.0.0.1 with the PKI's
// certificate and extra arguments, and returns its address. It skips the
// test when openssl is not installed.
func StartOpenSSL(t testing.TB, pki *TestPKI, args ...string) string {
	t.Helper()
	return scantest.StartOpenSSL(t, pki.CertPEM, pki.KeyPEM, args...)
}
