package scep

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	smscep "github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
)

// tMessage is a valid PKCSReq encrypted to an RA, and that RA.
func tMessage(t testing.TB) ([]byte, *ra) {
	t.Helper()
	raKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	self := func(k *rsa.PrivateKey, cn string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	raCert := self(raKey, "ra")
	devKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, ChallengePassword: "secret"}, devKey)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	msg, err := smscep.NewCSRRequest(csr, &smscep.PKIMessage{MessageType: smscep.PKCSReq,
		Recipients: []*x509.Certificate{raCert}, SignerKey: devKey, SignerCert: self(devKey, "device")})
	if err != nil {
		t.Fatal(err)
	}
	return msg.Raw, &ra{cert: raCert, key: raKey}
}

func TestParseMessageReadsAValidRequest(t *testing.T) {
	raw, r := tMessage(t)
	m, err := parseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.typ != msgPKCSReq || m.txID == "" || len(m.senderNonce) == 0 {
		t.Fatalf("parsed %+v", m)
	}
	req, err := m.open(r)
	if err != nil || req.challenge != "secret" || req.csr.Subject.CommonName != "device" {
		t.Fatalf("open: %+v, %v", req, err)
	}
	// A flipped byte in the signed part breaks the signature.
	bad := append([]byte{}, raw...)
	bad[len(bad)/2] ^= 0xff
	if _, err := parseMessage(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("tampered message: %v, want ErrMalformed", err)
	}
}

// FuzzParseMessage: whatever a device sends, parsing neither panics nor
// accepts what it should not: every failure is ErrMalformed, and what
// parses has bounded attributes; opening it with the RA key either fails
// or yields a CSR whose signature verifies.
func FuzzParseMessage(f *testing.F) {
	raw, r := tMessage(f)
	f.Add(raw)
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add(raw[:len(raw)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		// The envelope's algorithm is read from untrusted DER too.
		if alg, err := envelopeAlgorithm(b); err == nil && alg == nil {
			t.Fatalf("envelopeAlgorithm returned no algorithm and no error")
		}
		m, err := parseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if m.txID == "" || len(m.txID) > maxTransactionID || len(m.senderNonce) > maxNonce || m.signer == nil {
			t.Fatalf("accepted out-of-bounds message %+v", m)
		}
		if w := m.legacyAlgorithm(); w != nil && (w.part == "" || w.name == "") {
			t.Fatalf("legacyAlgorithm returned an unnamed weakness %+v", w)
		}
		if req, err := m.open(r); err == nil {
			if err := req.csr.CheckSignature(); err != nil {
				t.Fatalf("open returned a CSR whose signature does not verify")
			}
		}
	})
}

// TestUnknownAlgorithmNamedShort: an unknown OID a device sends is named
// in the refusal, cut to a bounded length.
func TestUnknownAlgorithmNamedShort(t *testing.T) {
	oid := asn1.ObjectIdentifier{1, 2}
	for range 500 {
		oid = append(oid, 123456789)
	}
	w := lookupAlgorithm(envelopeCiphers, "envelope encryption", oid, true)
	if w == nil || w.name != "unknown" || len(w.String()) > 100 {
		t.Fatalf("refusal for a %d-arc OID: %v (%d characters), want unknown in at most 100", len(oid), w, len(w.String()))
	}
}
