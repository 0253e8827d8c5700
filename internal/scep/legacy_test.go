package scep

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// tSigned is a PKIMessage (PKCSReq) around envelope, signed with digest.
func tSigned(t *testing.T, envelope []byte, digest asn1.ObjectIdentifier) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	sd, err := pkcs7.NewSignedData(envelope)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(digest)
	err = sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: "tx-1"}, {Type: oidMessageType, Value: msgPKCSReq}, {Type: oidSenderNonce, Value: []byte("nonce")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// tEnvelopeHead is an EnvelopedData naming cipher, with no recipient
// and no content: all envelopeAlgorithm reads.
func tEnvelopeHead(t *testing.T, cipher asn1.ObjectIdentifier) []byte {
	t.Helper()
	var ed envelopedDataHead
	ed.RecipientInfos = asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	ed.EncryptedContentInfo.ContentType = pkcs7.OIDData
	ed.EncryptedContentInfo.ContentEncryptionAlgorithm = pkix.AlgorithmIdentifier{Algorithm: cipher}
	ed.EncryptedContentInfo.EncryptedContent = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	inner, err := asn1.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(envelopeContentInfo{ContentType: pkcs7.OIDEnvelopedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLegacyAlgorithm(t *testing.T) {
	t.Parallel()
	aes, err := pkcs7.Encrypt([]byte("csr"), []*x509.Certificate{tRACert(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		envelope []byte
		digest   asn1.ObjectIdentifier
		want     string // "" for none
		// signature replaces the signer's digestEncryptionAlgorithm (the
		// library verifies ECDSA with the hash it names).
		signature asn1.ObjectIdentifier
	}{
		{"AES-256-CBC and SHA-256", aes, pkcs7.OIDDigestAlgorithmSHA256, "", nil},
		{"AES-256-CBC and SHA-512", aes, pkcs7.OIDDigestAlgorithmSHA512, "", nil},
		{"AES-128-GCM", tEnvelopeHead(t, pkcs7.OIDEncryptionAlgorithmAES128GCM), pkcs7.OIDDigestAlgorithmSHA256, "", nil},
		{"SHA-1 digest", aes, pkcs7.OIDDigestAlgorithmSHA1, "signer digest SHA-1", nil},
		{"DES-CBC", tEnvelopeHead(t, pkcs7.OIDEncryptionAlgorithmDESCBC), pkcs7.OIDDigestAlgorithmSHA256, "envelope encryption DES-CBC", nil},
		{"3DES", tEnvelopeHead(t, pkcs7.OIDEncryptionAlgorithmDESEDE3CBC), pkcs7.OIDDigestAlgorithmSHA256, "envelope encryption DES-EDE3-CBC (3DES)", nil},
		{"AES-192-CBC, which the library cannot decrypt", tEnvelopeHead(t, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}), pkcs7.OIDDigestAlgorithmSHA256,
			"envelope encryption AES-192-CBC", nil},
		{"SHA-1 and AES-192: what is refused everywhere comes first", tEnvelopeHead(t, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}), pkcs7.OIDDigestAlgorithmSHA1,
			"envelope encryption AES-192-CBC", nil},
		{"RC2", tEnvelopeHead(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 2}), pkcs7.OIDDigestAlgorithmSHA256,
			"envelope encryption unknown (OID 1.2.840.113549.3.2)", nil},
		{"DES and SHA-1: the digest is named", tEnvelopeHead(t, pkcs7.OIDEncryptionAlgorithmDESCBC), pkcs7.OIDDigestAlgorithmSHA1, "signer digest SHA-1", nil},
		{"ecdsa-with-SHA256", aes, pkcs7.OIDDigestAlgorithmSHA256, "", pkcs7.OIDDigestAlgorithmECDSASHA256},
		{"sha256WithRSA", aes, pkcs7.OIDDigestAlgorithmSHA256, "", pkcs7.OIDEncryptionAlgorithmRSASHA256},
		{"ecdsa-with-SHA1 under a SHA-256 digest", aes, pkcs7.OIDDigestAlgorithmSHA256, "signer signature ECDSA with SHA-1", pkcs7.OIDDigestAlgorithmECDSASHA1},
		{"sha1WithRSA signature", aes, pkcs7.OIDDigestAlgorithmSHA256, "signer signature RSA with SHA-1", pkcs7.OIDEncryptionAlgorithmRSASHA1},
		{"unknown signature", aes, pkcs7.OIDDigestAlgorithmSHA256, "signer signature unknown", pkcs7.OIDDigestAlgorithmDSASHA1},
		{"not an envelope", []byte{0x30, 0x03, 0x02, 0x01, 0x00}, pkcs7.OIDDigestAlgorithmSHA256, "envelope not DER", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := parseMessage(tSigned(t, c.envelope, c.digest))
			if err != nil {
				t.Fatal(err)
			}
			if c.signature != nil {
				m.p7.Signers[0].DigestEncryptionAlgorithm.Algorithm = c.signature
			}
			w := m.legacyAlgorithm()
			switch {
			case c.want == "" && w != nil:
				t.Errorf("legacyAlgorithm = %s, want none", w)
			case c.want != "" && (w == nil || !strings.HasPrefix(w.String(), c.want)):
				t.Errorf("legacyAlgorithm = %v, want %s", w, c.want)
			}
		})
	}
}

func TestEnvelopeAlgorithmRefusesWhatIsNotOneEnvelope(t *testing.T) {
	t.Parallel()
	good := tEnvelopeHead(t, pkcs7.OIDEncryptionAlgorithmAES256CBC)
	if alg, err := envelopeAlgorithm(good); err != nil || !alg.Equal(pkcs7.OIDEncryptionAlgorithmAES256CBC) {
		t.Fatalf("envelopeAlgorithm = %v, %v", alg, err)
	}
	signed, err := asn1.Marshal(envelopeContentInfo{ContentType: pkcs7.OIDSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x30, 0x00}}})
	if err != nil {
		t.Fatal(err)
	}
	// BER (indefinite length) is not read: the check fails closed.
	ber := append([]byte{0x30, 0x80}, good[2:]...)
	ber = append(ber, 0, 0)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"trailing data":  append(append([]byte{}, good...), 0),
		"signedData":     signed,
		"truncated":      good[:len(good)-3],
		"indefinite BER": ber,
	} {
		if alg, err := envelopeAlgorithm(b); err == nil {
			t.Errorf("%s: read algorithm %v, want an error", name, alg)
		}
	}
}

func tRACert(t *testing.T) *x509.Certificate {
	t.Helper()
	_, r := tMessage(t)
	return r.cert
}

// TestEnvelopeNotDERRefusal: an envelope that is not DER is refused as
// badMessageCheck with its own reason, not as a legacy algorithm, and a
// long content type OID the peer chose is cut in it.
func TestEnvelopeNotDERRefusal(t *testing.T) {
	t.Parallel()
	good := tEnvelopeHead(t, pkcs7.OIDEncryptionAlgorithmAES256CBC)
	ber := append(append([]byte{0x30, 0x80}, good[2:]...), 0, 0)
	long := asn1.ObjectIdentifier{1, 2}
	for range 40 {
		long = append(long, 123456)
	}
	other, err := asn1.Marshal(envelopeContentInfo{ContentType: long,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x30, 0x00}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string][]byte{"indefinite BER": ber, "long content type": other} {
		m, err := parseMessage(tSigned(t, env, pkcs7.OIDDigestAlgorithmSHA256))
		if err != nil {
			t.Fatal(err)
		}
		w := m.legacyAlgorithm()
		if w == nil {
			t.Fatalf("%s: admitted", name)
		}
		info, reason := w.refusal("mdm")
		if info != FailBadMessageCheck || !strings.Contains(reason, "the envelope is not DER (RFC 8894 asks for DER)") ||
			!strings.Contains(reason, "--allow-legacy-crypto on provisioner mdm admits it unchecked") || strings.Contains(reason, "AES and SHA-256") {
			t.Errorf("%s: refused %s: %s", name, info, reason)
		}
		if strings.Contains(reason, long.String()[:60]) || len(reason) > 400 {
			t.Errorf("%s: the peer's OID is not cut: %s", name, reason)
		}
	}
}

// TestLegacyCSR: a CSR signed over SHA-1 is legacy.
func TestLegacyCSR(t *testing.T) {
	t.Parallel()
	for alg, legacy := range map[x509.SignatureAlgorithm]bool{
		x509.SHA1WithRSA: true, x509.ECDSAWithSHA1: true, x509.SHA256WithRSA: false, x509.ECDSAWithSHA256: false,
	} {
		if w := legacyCSR(&x509.CertificateRequest{SignatureAlgorithm: alg}); (w != nil) != legacy {
			t.Errorf("%s: legacyCSR = %v, want legacy %v", alg, w, legacy)
		}
	}
}

// TestUnsupportedRefusal: a cipher the library cannot decrypt (AES-192,
// or one it does not know) is refused badAlg whether or not legacy
// crypto is allowed, and the refusal names what to use instead, not the
// legacy switch, which would not help.
func TestUnsupportedRefusal(t *testing.T) {
	t.Parallel()
	for name, oid := range map[string]asn1.ObjectIdentifier{
		"AES-192-CBC": {2, 16, 840, 1, 101, 3, 4, 1, 22}, "RC2": {1, 2, 840, 113549, 3, 2},
	} {
		m, err := parseMessage(tSigned(t, tEnvelopeHead(t, oid), pkcs7.OIDDigestAlgorithmSHA256))
		if err != nil {
			t.Fatal(err)
		}
		w := m.legacyAlgorithm()
		if w == nil || !w.unsupported {
			t.Fatalf("%s: %+v, want an unsupported weakness", name, w)
		}
		info, reason := w.refusal("mdm")
		if info != FailBadAlg || !strings.Contains(reason, "cannot be decrypted by this server; use AES-128 or AES-256") ||
			strings.Contains(reason, "allow-legacy-crypto") {
			t.Errorf("%s: refused %s: %s", name, info, reason)
		}
	}
}
