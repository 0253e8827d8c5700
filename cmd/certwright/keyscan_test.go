package main

import (
	"bytes"
	"crypto/x509"
	"testing"

	"github.com/certwright/certwright/internal/pki"
)

// findPrivateKey reports a private key found in b: a PEM private-key block,
// or a DER PKCS#8, SEC 1 or PKCS#1 private key at any offset.
func findPrivateKey(b []byte) string {
	if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
		return "PEM private key block"
	}
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0x30 {
			continue
		}
		n, hdr := derLen(b[i+1:])
		if n <= 0 || n > 8192 || i+1+hdr+n > len(b) {
			continue
		}
		tlv := b[i : i+1+hdr+n]
		if _, err := x509.ParsePKCS8PrivateKey(tlv); err == nil {
			return "DER PKCS#8 key"
		}
		if _, err := x509.ParseECPrivateKey(tlv); err == nil {
			return "DER EC key"
		}
		if _, err := x509.ParsePKCS1PrivateKey(tlv); err == nil {
			return "DER PKCS#1 key"
		}
	}
	return ""
}

// derLen decodes a DER length; it returns the length and the header size.
func derLen(b []byte) (int, int) {
	if len(b) == 0 {
		return 0, 0
	}
	if b[0] < 0x80 {
		return int(b[0]), 1
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 2 || len(b) < 1+k {
		return 0, 0
	}
	n := 0
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k
}

// TestFindPrivateKeyFindsEmbeddedKeys proves the scanner used by the
// "nokeys" script command detects keys hidden inside other bytes.
func TestFindPrivateKeyFindsEmbeddedKeys(t *testing.T) {
	for _, alg := range []string{"ecdsa-p256", "rsa-2048", "ed25519"} {
		der := testKeyDER(t, alg)
		blob := append(append(bytes.Repeat([]byte{0x30, 0x01}, 100), der...), 0xff, 0x30)
		if findPrivateKey(blob) == "" {
			t.Errorf("%s: embedded PKCS#8 key not found", alg)
		}
	}
	if got := findPrivateKey(bytes.Repeat([]byte{0x30, 0x82, 0x01}, 1000)); got != "" {
		t.Errorf("false positive: %s", got)
	}
}

func testKeyDER(t *testing.T, alg string) []byte {
	t.Helper()
	a, err := pki.ParseKeyAlgorithm(alg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := a.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
