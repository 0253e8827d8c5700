package scep

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

func tSelfSigned(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// tSignedMessage wraps content in a SignedData over digest, signed by a
// new device key, with the SCEP attributes of a PKCSReq.
func tSignedMessage(t *testing.T, content []byte, digest []int) *message {
	t.Helper()
	dev, key := tSelfSigned(t, "device")
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(digest)
	err = sd.AddSigner(dev, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: "tx"}, {Type: oidMessageType, Value: msgPKCSReq}, {Type: oidSenderNonce, Value: []byte("nonce")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(der)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEnvelopeAndDigestAlgorithms: a pkcsPKIEnvelope encrypted with DES
// (pkcs7 cannot make 3DES; the check is an allow-list of AES OIDs) is
// refused as badAlg before decryption, AES is read; a
// message signed over SHA-1 is refused, over SHA-256 accepted. Not
// parallel: pkcs7 takes the cipher from a package variable (see the
// init in message.go), which this test changes and restores.
func TestEnvelopeAndDigestAlgorithms(t *testing.T) {
	raCert, raKey := tSelfSigned(t, "ra")
	r := &ra{cert: raCert, key: raKey}
	defer func(a int) { pkcs7.ContentEncryptionAlgorithm = a }(pkcs7.ContentEncryptionAlgorithm)
	for _, c := range []struct {
		name string
		alg  int
		ok   bool
	}{
		{"DES-CBC", pkcs7.EncryptionAlgorithmDESCBC, false},
		{"AES-128-CBC", pkcs7.EncryptionAlgorithmAES128CBC, true},
		{"AES-256-GCM", pkcs7.EncryptionAlgorithmAES256GCM, true},
	} {
		pkcs7.ContentEncryptionAlgorithm = c.alg
		env, err := pkcs7.Encrypt([]byte("not a CSR"), []*x509.Certificate{raCert})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tSignedMessage(t, env, pkcs7.OIDDigestAlgorithmSHA256).open(r)
		if got := errors.Is(err, errBadAlg); got == c.ok {
			t.Errorf("%s: %v, want refused as badAlg: %t", c.name, err, !c.ok)
		}
		if c.ok && (err == nil || !strings.Contains(err.Error(), "no PKCS#10 CSR")) {
			t.Errorf("%s: %v, want the envelope opened (and its content refused)", c.name, err)
		}
	}
	if err := tSignedMessage(t, []byte("x"), pkcs7.OIDDigestAlgorithmSHA1).checkDigest(); !errors.Is(err, errBadAlg) {
		t.Errorf("SHA-1 signed message: %v, want badAlg", err)
	}
	if err := tSignedMessage(t, []byte("x"), pkcs7.OIDDigestAlgorithmSHA256).checkDigest(); err != nil {
		t.Errorf("SHA-256 signed message: %v", err)
	}
}
