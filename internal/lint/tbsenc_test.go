package lint

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"testing"
	"time"
)

// encTestKeys are the issuer and subject keys the encoder is compared on.
func encTestKeys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	keys := map[string]crypto.Signer{}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys["RSA-2048"] = rk
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys["Ed25519"] = ek
	return keys
}

// encTestIssuer makes a CA certificate for key.
func encTestIssuer(t *testing.T, key crypto.Signer, subject pkix.Name) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// randomLeaf draws an end-entity template from everything encodeTBS
// covers, edge cases included: long and high-bit serials, years either
// side of UTCTime's range, empty and multi-valued subjects with strings
// that are not PrintableString, every key usage bit, unknown extended key
// usages, both IP families, critical subject alternative names.
func randomLeaf(r *mrand.Rand, issuer *x509.Certificate) *x509.Certificate {
	pick := func(n int) int { return r.IntN(n) }
	serial := make([]byte, 1+pick(20))
	for i := range serial {
		serial[i] = byte(r.Uint32())
	}
	serial[0] |= 1
	t := &x509.Certificate{SerialNumber: new(big.Int).SetBytes(serial)}
	years := []int{1949, 1950, 2026, 2049, 2050, 2100}
	nb := time.Date(years[pick(len(years))], time.Month(1+pick(12)), 1+pick(28), pick(24), pick(60), pick(60), pick(1e9), time.FixedZone("x", 3600*(pick(5)-2)))
	t.NotBefore, t.NotAfter = nb, nb.Add(time.Duration(pick(1e6))*time.Hour)
	strs := []string{"host.example.internal", "Team *", "R&D", "Grüße", "a_b", "x"}
	if pick(4) > 0 {
		t.Subject.CommonName = strs[pick(len(strs))]
	}
	for range pick(3) {
		t.Subject.Organization = append(t.Subject.Organization, strs[pick(len(strs))])
	}
	if pick(3) == 0 {
		t.Subject.OrganizationalUnit = []string{strs[pick(len(strs))]}
		t.Subject.Country = []string{"DE"}
	}
	if pick(6) == 0 {
		t.RawSubject, _ = asn1.Marshal(pkix.Name{CommonName: "raw"}.ToRDNSequence())
	}
	t.KeyUsage = x509.KeyUsage(pick(512))
	ekus := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning,
		x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageOCSPSigning, x509.ExtKeyUsageAny, x509.ExtKeyUsageMicrosoftKernelCodeSigning}
	for range pick(3) {
		t.ExtKeyUsage = append(t.ExtKeyUsage, ekus[pick(len(ekus))])
	}
	if pick(4) == 0 {
		t.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, pick(300)}}
	}
	t.BasicConstraintsValid = pick(2) == 0
	if t.BasicConstraintsValid && pick(2) == 0 {
		t.MaxPathLen = -1
	}
	if pick(3) > 0 {
		t.SubjectKeyId = serial[:min(len(serial), 20)]
	}
	if pick(3) == 0 {
		t.AuthorityKeyId = []byte{9, 9, 9}
	} else {
		t.AuthorityKeyId = issuer.SubjectKeyId
	}
	for range pick(3) {
		t.OCSPServer = append(t.OCSPServer, fmt.Sprintf("http://ocsp%d.example.internal/ocsp", pick(9)))
	}
	for range pick(2) {
		t.IssuingCertificateURL = append(t.IssuingCertificateURL, "http://pki.example.internal/ca.crt")
	}
	for range pick(4) {
		t.DNSNames = append(t.DNSNames, fmt.Sprintf("n%d.example.internal", pick(1000)))
	}
	if pick(4) == 0 {
		t.EmailAddresses = []string{"ops@example.internal"}
	}
	if pick(3) == 0 {
		t.IPAddresses = []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")}[:1+pick(2)]
	}
	if pick(4) == 0 {
		u, _ := url.Parse("spiffe://example.internal/ns/a/sa/b")
		t.URIs = []*url.URL{u}
	}
	for range pick(3) {
		t.CRLDistributionPoints = append(t.CRLDistributionPoints, "http://pki.example.internal/crl/x.crl")
	}
	return t
}

// TestEncodeTBSMatchesX509: for thousands of drawn end-entity templates,
// under every issuer key type, the encoder's TBS, signer options and
// signature AlgorithmIdentifier are byte for byte what
// x509.CreateCertificate makes of the same template.
func TestEncodeTBSMatchesX509(t *testing.T) {
	t.Parallel()
	keys := encTestKeys(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	subjects := []string{"P-256", "RSA-2048", "Ed25519", "P-384"}
	for _, in := range []string{"P-256", "P-384", "P-521", "RSA-2048", "Ed25519"} {
		issuer := encTestIssuer(t, keys[in], pkix.Name{CommonName: "Issuing CA " + in, Organization: []string{"Example"}})
		for i := range 600 {
			tmpl := randomLeaf(r, issuer)
			pub := keys[subjects[i%len(subjects)]].Public()
			if i%5 == 0 {
				tmpl.SignatureAlgorithm = defaultSigAlg(issuer.PublicKey)
			}
			want, err := newTBSByX509(tmpl, issuer, pub)
			if err != nil {
				t.Fatalf("%s #%d: x509: %v", in, i, err)
			}
			raw, opts, alg, ok := encodeTBS(tmpl, issuer, pub)
			if !ok {
				t.Fatalf("%s #%d: the encoder declined a template it covers: %+v", in, i, tmpl)
			}
			if !bytes.Equal(raw, want.Raw) {
				t.Fatalf("%s #%d: TBS differs from x509's\n got %x\nwant %x\ntemplate %+v", in, i, raw, want.Raw, tmpl)
			}
			if opts != want.Opts || !bytes.Equal(alg, want.sigAlg) {
				t.Fatalf("%s #%d: options %v / algorithm %x, x509 %v / %x", in, i, opts, alg, want.Opts, want.sigAlg)
			}
		}
	}
}

// defaultSigAlg is the algorithm x509 picks for an issuer key.
func defaultSigAlg(pub crypto.PublicKey) x509.SignatureAlgorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return map[int]x509.SignatureAlgorithm{256: x509.ECDSAWithSHA256, 384: x509.ECDSAWithSHA384, 521: x509.ECDSAWithSHA512}[k.Curve.Params().BitSize]
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	}
	return x509.PureEd25519
}

// TestEncodeTBSDeclines: a template the encoder does not cover goes to
// x509 (which builds or refuses it), and NewTBS still gives x509's bytes.
func TestEncodeTBSDeclines(t *testing.T) {
	t.Parallel()
	keys := encTestKeys(t)
	issuer := encTestIssuer(t, keys["P-256"], pkix.Name{CommonName: "Issuing CA"})
	rsaIssuer := encTestIssuer(t, keys["RSA-2048"], pkix.Name{CommonName: "RSA CA"})
	base := func() *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1000), Subject: pkix.Name{CommonName: "x"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"x.example.internal"}}
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Issuers x509 cannot sign for: a P-256 look-alike that is not the
	// named curve, and a key with no curve at all.
	look := *elliptic.P256().Params()
	look.Name = "custom"
	p256 := keys["P-256"].Public().(*ecdsa.PublicKey)
	oddCurve := *issuer
	oddCurve.PublicKey = &ecdsa.PublicKey{Curve: &look, X: p256.X, Y: p256.Y}
	noCurve := *issuer
	noCurve.PublicKey = &ecdsa.PublicKey{}
	for _, tc := range []struct {
		name   string
		issuer *x509.Certificate
		edit   func(*x509.Certificate)
	}{
		{"X25519 subject key", issuer, func(*x509.Certificate) {}},
		{"issuer curve not a named one", &oddCurve, func(*x509.Certificate) {}},
		{"issuer key without a curve", &noCurve, func(*x509.Certificate) {}},
		{"CA", issuer, func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = true, true }},
		{"path length on a leaf", issuer, func(c *x509.Certificate) { c.BasicConstraintsValid, c.MaxPathLen = true, 2 }},
		{"extra extension", issuer, func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}}
		}},
		{"policies", issuer, func(c *x509.Certificate) {
			c.Policies = []x509.OID{mustOID(t, "2.23.140.1.2.1")}
			c.PolicyIdentifiers = []asn1.ObjectIdentifier{{2, 23, 140, 1, 2, 1}}
		}},
		{"name constraints", issuer, func(c *x509.Certificate) { c.PermittedDNSDomains = []string{".example.internal"} }},
		{"RSA-PSS", rsaIssuer, func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA256WithRSAPSS }},
		{"algorithm of another key type", issuer, func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA256WithRSA }},
		{"non-ASCII DNS name", issuer, func(c *x509.Certificate) { c.DNSNames = []string{"grüße.example"} }},
		{"unknown extended key usage constant", issuer, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{99} }},
		{"no serial", issuer, func(c *x509.Certificate) { c.SerialNumber = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := base()
			tc.edit(tmpl)
			pub := keys["P-256"].Public()
			if tc.name == "X25519 subject key" {
				pub = x25519.PublicKey()
			}
			if _, _, _, ok := encodeTBS(tmpl, tc.issuer, pub); ok {
				t.Fatal("the encoder took a template it does not cover")
			}
			got, gotErr := NewTBS(tmpl, tc.issuer, pub)
			want, wantErr := newTBSByX509(tmpl, tc.issuer, pub)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("NewTBS err %v, x509 err %v", gotErr, wantErr)
			}
			if gotErr == nil && !bytes.Equal(got.Raw, want.Raw) {
				// A nil serial is random in x509: compare the rest only
				// where the template fixes everything.
				if tmpl.SerialNumber != nil {
					t.Fatal("NewTBS differs from x509 on a declined template")
				}
			}
		})
	}
}

func mustOID(t *testing.T, s string) x509.OID {
	t.Helper()
	o, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// BenchmarkNewTBS compares building a leaf's TBS with the encoder and with
// x509.CreateCertificate.
func BenchmarkNewTBS(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tb := &testing.T{}
	issuer := encTestIssuer(tb, k, pkix.Name{CommonName: "Issuing CA", Organization: []string{"Example"}})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1).Lsh(big.NewInt(1), 150), Subject: pkix.Name{CommonName: "host.example.internal"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, SubjectKeyId: make([]byte, 20), AuthorityKeyId: issuer.SubjectKeyId,
		DNSNames: []string{"host.example.internal"}, OCSPServer: []string{"http://pki.example.internal/ocsp/x"},
		IssuingCertificateURL: []string{"http://pki.example.internal/ca/x.crt"}, CRLDistributionPoints: []string{"http://pki.example.internal/crl/x.crl"},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	b.Run("encoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, ok := encodeTBS(tmpl, issuer, leafKey.Public()); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("x509", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := newTBSByX509(tmpl, issuer, leafKey.Public()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
