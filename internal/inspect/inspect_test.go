package inspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	root, inter, leaf *x509.Certificate
	rootKey, interKey crypto.Signer
	csrDER, crlDER    []byte
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newFixture builds a root, a name-constrained intermediate, a leaf, a CSR
// and a CRL with three entries.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{}
	rootKey, interKey, leafKey := mustKey(t), mustKey(t), mustKey(t)
	f.rootKey, f.interKey = rootKey, interKey
	f.root = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root", Organization: []string{"Example"}},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4},
	}, nil, rootKey.Public(), rootKey)
	_, permitted, _ := net.ParseCIDR("10.0.0.0/8")
	f.inter = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing CA"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		PermittedDNSDomainsCritical: true, PermittedDNSDomains: []string{"example.internal"},
		PermittedIPRanges: []*net.IPNet{permitted}, SubjectKeyId: []byte{5, 6, 7, 8},
	}, f.root, interKey.Public(), rootKey)
	f.leaf = mustCert(t, &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte{0x01, 0xab, 0xcd}), Subject: pkix.Name{CommonName: "app.example.internal"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(30*24*time.Hour + time.Hour),
		DNSNames: []string{"app.example.internal"}, IPAddresses: []net.IP{net.ParseIP("10.1.2.3")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		CRLDistributionPoints: []string{"http://pki.example.internal/crl/ca1.crl"},
		OCSPServer:            []string{"http://pki.example.internal/ocsp/ca1"},
		IssuingCertificateURL: []string{"http://pki.example.internal/ca/ca1.crt"},
	}, f.inter, leafKey.Public(), interKey)
	csrPEM, err := pki.NewCSR(rand.Reader, leafKey, "app.example.internal", pki.Names{DNS: []string{"app.example.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(csrPEM)
	f.csrDER = b.Bytes
	inv, _ := asn1.MarshalWithParams(testNow.Add(-48*time.Hour), "generalized")
	f.crlDER, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(42), ThisUpdate: testNow.Add(-time.Hour), NextUpdate: testNow.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: big.NewInt(0x1001), RevocationTime: testNow.Add(-24 * time.Hour), ReasonCode: 1,
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 24}, Value: inv}}},
			{SerialNumber: big.NewInt(0x1002), RevocationTime: testNow.Add(-2 * time.Hour), ReasonCode: 4},
			{SerialNumber: big.NewInt(0x1003), RevocationTime: testNow.Add(-time.Hour)},
		},
	}, f.inter, interKey)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func pemOf(typ string, ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	return out
}

func TestInspectCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, data := range map[string][]byte{"pem": pemOf("CERTIFICATE", f.leaf.Raw), "der": f.leaf.Raw} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := Inspect(data, Options{Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Kind != KindCertificate || rep.Certificate == nil {
				t.Fatalf("kind %q, want certificate", rep.Kind)
			}
			c := rep.Certificate
			if c.DaysLeft != 30 || c.Validity != "valid" || c.Serial != "01abcd" || c.Key != "ECDSA P-256" {
				t.Errorf("days %d validity %s serial %s key %s", c.DaysLeft, c.Validity, c.Serial, c.Key)
			}
			text := rep.Text()
			for _, want := range []string{
				"Subject:", "CN=app.example.internal", "Issuer:", "CN=Test Issuing CA", "30 days left",
				"app.example.internal, 10.1.2.3", "digitalSignature", "serverAuth", "CA: false",
				"http://pki.example.internal/crl/ca1.crl", "http://pki.example.internal/ocsp/ca1",
				"http://pki.example.internal/ca/ca1.crt", pki.FingerprintColons(f.leaf.Raw), "05:06:07:08",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("text lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

func TestInspectExpiredAndCA(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep, err := Inspect(pemOf("CERTIFICATE", f.inter.Raw), Options{Now: testNow.AddDate(6, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Certificate
	if c.Validity != "expired" || c.DaysLeft >= 0 {
		t.Errorf("validity %s days %d, want expired and negative", c.Validity, c.DaysLeft)
	}
	text := rep.Text()
	for _, want := range []string{"EXPIRED", "CA: true, path length 0", "Name constraints:", "(critical)", "example.internal", "10.0.0.0/8", "keyCertSign"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestInspectChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep, err := Inspect(pemOf("CERTIFICATE", f.leaf.Raw, f.inter.Raw, f.root.Raw), Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != KindChain || len(rep.Certificates) != 3 {
		t.Fatalf("kind %s with %d certificates", rep.Kind, len(rep.Certificates))
	}
	for i, c := range rep.Certificates[:2] {
		if c.SignedByNext == nil || !*c.SignedByNext {
			t.Errorf("certificate %d: signed by next %v (%s), want true", i+1, c.SignedByNext, c.SignatureProblem)
		}
	}
	if rep.Certificates[2].SignedByNext != nil || !rep.Certificates[2].SelfSigned {
		t.Errorf("root: signed by next %v, self-signed %v", rep.Certificates[2].SignedByNext, rep.Certificates[2].SelfSigned)
	}
	// Out of order: the leaf is not signed by the root.
	rep, err = Inspect(pemOf("CERTIFICATE", f.leaf.Raw, f.root.Raw), Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Certificates[0]; c.SignedByNext == nil || *c.SignedByNext || c.SignatureProblem == "" {
		t.Errorf("leaf then root: signed by next %v problem %q, want false with a reason", c.SignedByNext, c.SignatureProblem)
	}
	if !strings.Contains(rep.Text(), "Signed by next:      NO") {
		t.Errorf("text does not say the chain is broken:\n%s", rep.Text())
	}
}

func TestInspectCSR(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep, err := Inspect(pemOf("CERTIFICATE REQUEST", f.csrDER), Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != KindCSR || !rep.CSR.SignatureValid || rep.CSR.Key != "ECDSA P-256" || len(rep.CSR.SANs) != 1 {
		t.Fatalf("report %+v", rep.CSR)
	}
	// A CSR whose signature was altered still parses but is called invalid.
	bad := append([]byte(nil), f.csrDER...)
	bad[len(bad)-3] ^= 0xff
	rep, err = Inspect(bad, Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != KindCSR || rep.CSR.SignatureValid || !strings.Contains(rep.Text(), "Signature valid: NO") {
		t.Errorf("tampered CSR: valid %v\n%s", rep.CSR.SignatureValid, rep.Text())
	}
}

func TestInspectCRL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep, err := Inspect(pemOf("X509 CRL", f.crlDER), Options{Now: testNow, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.CRL
	if rep.Kind != KindCRL || c.Number != "42" || c.RevokedCount != 3 || len(c.Revoked) != 2 || c.Stale {
		t.Fatalf("report %+v", c)
	}
	if c.Revoked[0].Serial != "1001" || c.Revoked[0].Reason != "key_compromise" || c.Revoked[0].InvalidityDate == nil ||
		!c.Revoked[0].InvalidityDate.Equal(testNow.Add(-48*time.Hour)) || c.Revoked[1].Reason != "superseded" {
		t.Errorf("entries %+v", c.Revoked)
	}
	text := rep.Text()
	for _, want := range []string{"CRL number:", "42", "3 certificate(s)", "key_compromise", "and 1 more"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	rep, err = Inspect(f.crlDER, Options{Now: testNow.AddDate(0, 1, 0)})
	if err != nil || !rep.CRL.Stale || !strings.Contains(rep.Text(), "STALE") {
		t.Errorf("a CRL past its next update is not called stale: %v", err)
	}
}

func TestInspectJSONShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep, err := Inspect(pemOf("CERTIFICATE", f.leaf.Raw, f.inter.Raw), Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["kind"] != "chain" {
		t.Errorf("kind %v", got["kind"])
	}
	list, ok := got["certificates"].([]any)
	if !ok || len(list) != 2 {
		t.Fatalf("certificates: %v", got["certificates"])
	}
	if first := list[0].(map[string]any); first["signed_by_next"] != true || first["days_left"] != float64(30) {
		t.Errorf("first certificate %v", first)
	}
}

func TestInspectBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.PrivateKeyPEM(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	truncated := pemOf("CERTIFICATE", f.leaf.Raw)
	truncated = truncated[:len(truncated)/2]
	for _, tc := range []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"empty", []byte("  \n"), "empty", ErrUnreadable},
		{"garbage", []byte("hello, world"), "neither PEM nor DER", ErrUnreadable},
		{"truncated PEM", truncated, "malformed or truncated", ErrUnreadable},
		{"only a key", keyPEM, "PRIVATE KEY", ErrUnreadable},
		{"bad certificate block", pemOf("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), "PEM block 1 (CERTIFICATE)", nil},
		{"mixed", append(pemOf("CERTIFICATE", f.leaf.Raw), pemOf("X509 CRL", f.crlDER)...), "one CSR or CRL, or certificates", nil},
		{"too large", make([]byte, MaxInput+1), "exceeds the limit", nil},
		{"too many blocks", pemOf("CERTIFICATE", repeat(f.root.Raw, maxBlocks+1)...), "more than 100 PEM blocks", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Inspect(tc.data, Options{Now: testNow})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err %v is not %v", err, tc.is)
			}
		})
	}
	// A key in a bundle is skipped and named, not parsed.
	rep, err := Inspect(append(pemOf("CERTIFICATE", f.leaf.Raw), keyPEM...), Options{Now: testNow})
	if err != nil || rep.Kind != KindCertificate || len(rep.Ignored) != 1 || !strings.Contains(rep.Text(), "Ignored PEM blocks: PRIVATE KEY") {
		t.Errorf("bundle: %v %+v", err, rep)
	}
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// FuzzInspect feeds arbitrary bytes to the parser of untrusted files: it
// must return a report or an error, never panic, and every report must
// render as text and JSON.
func FuzzInspect(f *testing.F) {
	fx := newFixture(f)
	for _, seed := range [][]byte{
		fx.leaf.Raw, fx.csrDER, fx.crlDER,
		pemOf("CERTIFICATE", fx.leaf.Raw, fx.inter.Raw, fx.root.Raw),
		pemOf("CERTIFICATE REQUEST", fx.csrDER),
		pemOf("X509 CRL", fx.crlDER),
		[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		[]byte("not a certificate"),
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Inspect(data, Options{Now: testNow, MaxEntries: 5})
		if err != nil {
			if rep != nil {
				t.Fatalf("a report with an error: %v", err)
			}
			return
		}
		_ = rep.Text()
		if _, err := json.Marshal(rep); err != nil {
			t.Fatalf("report does not marshal: %v", err)
		}
	})
}

// TestNameConstraintLines: every kind of name constraint, permitted and
// excluded, is said, sorted; a certificate without any says nothing.
func TestNameConstraintLines(t *testing.T) {
	_, ipnet, _ := net.ParseCIDR("10.0.0.0/8")
	_, ipnet2, _ := net.ParseCIDR("192.168.0.0/16")
	c := &x509.Certificate{
		PermittedDNSDomains: []string{"example.com"}, ExcludedDNSDomains: []string{"bad.example.com"},
		PermittedIPRanges: []*net.IPNet{ipnet}, ExcludedIPRanges: []*net.IPNet{ipnet2},
		PermittedEmailAddresses: []string{"example.com"}, ExcludedEmailAddresses: []string{"x@example.com"},
		PermittedURIDomains: []string{".example.com"}, ExcludedURIDomains: []string{"bad.example.com"},
	}
	want := []string{"exclude DNS bad.example.com", "exclude IP 192.168.0.0/16", "exclude URI bad.example.com", "exclude e-mail x@example.com",
		"permit DNS example.com", "permit IP 10.0.0.0/8", "permit URI .example.com", "permit e-mail example.com"}
	if got := NameConstraintsOf(c).Lines(); !slices.Equal(got, want) {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
	if got := NameConstraintsOf(&x509.Certificate{}).Lines(); got != nil {
		t.Errorf("no constraints: Lines() = %q", got)
	}
}
