package validate

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// acmeTLS1 is the ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
const acmeTLS1 = "acme-tls/1"

var (
	// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1).
	oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// GeneralName tags (RFC 5280 §4.2.1.6).
const (
	tagDNSName   = 2
	tagIPAddress = 7
)

// tlsALPN01 connects with ALPN acme-tls/1 and checks the self-signed
// challenge certificate (RFC 8737 §3).
//
// Failures name what was expected, never what the peer sent beyond whether
// it matched: the target may be an internal TLS service.
func (v *Validator) tlsALPN01(ctx context.Context, at *attempt, id identifier, _, keyAuth string) error {
	sni := id.value
	if id.typ == "ip" {
		// RFC 8738 §6: the SNI is the reverse mapping name.
		rev, err := dns.ReverseAddr(id.value)
		if err != nil {
			return newError(typeMalformed, err, "no reverse name for %s", id.value)
		}
		sni = strings.TrimSuffix(rev, ".")
	}
	addrs, err := v.lookup(ctx, id.value)
	if err != nil {
		return err
	}
	conn, err := v.dial(ctx, at, addrs, v.tlsPort)
	if err != nil {
		return err
	}
	defer conn.Close()
	target := conn.RemoteAddr().String()
	tc := tls.Client(conn, &tls.Config{
		ServerName:         sni,
		NextProtos:         []string{acmeTLS1},
		InsecureSkipVerify: true, // the checks below replace path validation
		MinVersion:         tls.VersionTLS12,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return netError(ctx, typeTLS, fmt.Sprintf("TLS handshake with %s (SNI %s)", target, sni), err)
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != acmeTLS1 {
		return newError(typeUnauthorized, nil, "%s (SNI %s) did not negotiate ALPN %q", target, sni, acmeTLS1)
	}
	if len(cs.PeerCertificates) == 0 {
		return newError(typeTLS, nil, "%s (SNI %s) sent no certificate", target, sni)
	}
	if problem := checkChallengeCert(cs.PeerCertificates[0], id, keyAuth); problem != "" {
		return newError(typeUnauthorized, nil, "certificate from %s (SNI %s): %s", target, sni, problem)
	}
	return nil
}

// checkChallengeCert returns what is wrong with cert as a tls-alpn-01
// certificate for id, or "" when it is right.
func checkChallengeCert(cert *x509.Certificate, id identifier, keyAuth string) string {
	var san, acmeID *pkix.Extension
	for i := range cert.Extensions {
		switch ext := &cert.Extensions[i]; {
		case ext.Id.Equal(oidSubjectAltName):
			san = ext
		case ext.Id.Equal(oidACMEIdentifier):
			acmeID = ext
		}
	}

	// Parse the SAN extension ourselves: x509 drops name types it does not
	// model, and RFC 8737 §3 allows no entry but the identifier.
	if san == nil {
		return "no subjectAltName extension"
	}
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(san.Value, &names); err != nil || len(rest) != 0 {
		return "malformed subjectAltName extension"
	}
	if len(names) != 1 {
		return fmt.Sprintf("subjectAltName has %d entries, expected exactly 1", len(names))
	}
	name := names[0]
	switch id.typ {
	case "dns":
		if name.Class != asn1.ClassContextSpecific || name.Tag != tagDNSName || !strings.EqualFold(string(name.Bytes), id.value) {
			return fmt.Sprintf("subjectAltName is not the single dNSName %s", id.value)
		}
	case "ip":
		if name.Class != asn1.ClassContextSpecific || name.Tag != tagIPAddress || !bytes.Equal(name.Bytes, id.ip.AsSlice()) {
			return fmt.Sprintf("subjectAltName is not the single iPAddress %s", id.value)
		}
	}

	if acmeID == nil {
		return "no acmeIdentifier extension"
	}
	if !acmeID.Critical {
		return "acmeIdentifier extension is not critical"
	}
	var got []byte
	if rest, err := asn1.Unmarshal(acmeID.Value, &got); err != nil || len(rest) != 0 || len(got) != sha256.Size {
		return "acmeIdentifier extension is not an OCTET STRING of 32 bytes"
	}
	want := sha256.Sum256([]byte(keyAuth))
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return fmt.Sprintf("acmeIdentifier is not the SHA-256 of the key authorization (expected %x)", want)
	}
	return ""
}

// challengeCertValidity is how long a ChallengeCert is valid. Validators do
// not check it; it only has to look sane.
const challengeCertValidity = 7 * 24 * time.Hour

// ChallengeCert returns a self-signed ECDSA P-256 tls-alpn-01 certificate
// (RFC 8737 §3) for the identifier: its only subjectAltName is the identifier
// and it carries the critical acmeIdentifier extension holding
// SHA-256(keyAuth). Serve it to connections that negotiate "acme-tls/1".
func ChallengeCert(identType, value, keyAuth string) (tls.Certificate, error) {
	id, err := parseIdentifier(identType, value)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validate: generating challenge key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validate: generating serial: %w", err)
	}
	digest := sha256.Sum256([]byte(keyAuth))
	extValue, err := asn1.Marshal(digest[:])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validate: encoding acmeIdentifier: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: "ACME tls-alpn-01 challenge"},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(challengeCertValidity),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ExtraExtensions: []pkix.Extension{{Id: oidACMEIdentifier, Critical: true, Value: extValue}},
	}
	if id.typ == "ip" {
		tmpl.IPAddresses = []net.IP{id.ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{id.value}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validate: creating challenge certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("validate: parsing challenge certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
