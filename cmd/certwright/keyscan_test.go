package main

import (
	"bytes"
	"crypto/x509"
	"testing"

	"github.com/certwright/certwright/internal/keys/keyscan"
	"github.com/certwright/certwright/internal/pki"
)

func findPrivateKey(b []byte) string { return keyscan.Find(b, nil) }

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
