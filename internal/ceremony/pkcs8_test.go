package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

func equalKeys(t *testing.T, a, b crypto.PublicKey) bool {
	t.Helper()
	return samePublic(a, b) == nil
}

func TestKeyFileRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range RootKeyAlgorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			key, err := alg.Generate(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			data, err := encryptKey(rand.Reader, key, []byte("a long passphrase"), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(data); b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
				t.Fatalf("key file is not an ENCRYPTED PRIVATE KEY PEM block:\n%s", data)
			}
			plain, _ := x509.MarshalPKCS8PrivateKey(key)
			if bytes.Contains(data, plain) {
				t.Fatal("the key file holds the plain PKCS#8 key")
			}
			got, err := decryptKey(data, []byte("a long passphrase"))
			if err != nil {
				t.Fatal(err)
			}
			if !equalKeys(t, got.Public(), key.Public()) {
				t.Fatal("decrypted key differs")
			}
			if _, err := decryptKey(data, []byte("a long passphrasE")); !errors.Is(err, ErrPassphrase) {
				t.Errorf("wrong passphrase: %v, want ErrPassphrase", err)
			}
		})
	}
}

func TestKeyFileRefusals(t *testing.T) {
	t.Parallel()
	key, _ := pki.ECDSAP256.Generate(rand.Reader)
	good, err := encryptKey(rand.Reader, key, []byte("passphrase-passphrase"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := pki.PrivateKeyPEM(key)
	b, _ := pem.Decode(good)
	truncated := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes[:len(b.Bytes)-7]})
	trailing := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: append(append([]byte{}, b.Bytes...), 0)})
	huge, err := encryptKey(rand.Reader, key, []byte("x"), maxIterations+1)
	if err == nil || huge != nil {
		t.Fatalf("encryptKey with %d iterations: %v", maxIterations+1, err)
	}
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"unencrypted key", plain},
		{"not PEM", []byte("hello")},
		{"truncated", truncated},
		{"trailing bytes", trailing},
		{"too large", bytes.Repeat([]byte("A"), maxKeyFile+1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := decryptKey(tt.data, []byte("passphrase-passphrase")); !errors.Is(err, ErrKeyFile) {
				t.Errorf("decryptKey = %v, want ErrKeyFile", err)
			}
		})
	}
}

// TestKeyFileOpenSSL: openssl reads the key file Certwright writes, and
// Certwright reads one openssl writes with the same algorithms, so the
// root key stays usable with standard tools.
func TestKeyFileOpenSSL(t *testing.T) {
	t.Parallel()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found: install it (apt-get install openssl) to check the key file against it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("openssl interop passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := pki.ECDSAP384.Generate(rand.Reader)
	data, err := encryptKey(rand.Reader, key, []byte("openssl interop passphrase"), 2000)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.pem")
	if err := os.WriteFile(ours, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, openssl, "pkey", "-in", ours, "-passin", "file:"+pass, "-pubout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
	want, _ := x509.MarshalPKIXPublicKey(key.Public())
	if b, _ := pem.Decode(out); b == nil || !bytes.Equal(b.Bytes, want) {
		t.Fatalf("openssl read another public key:\n%s", out)
	}

	plain := filepath.Join(dir, "plain.pem")
	p, _ := pki.PrivateKeyPEM(key)
	if err := os.WriteFile(plain, p, 0o600); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "theirs.pem")
	out, err = exec.CommandContext(ctx, openssl, "pkcs8", "-topk8", "-in", plain, "-out", theirs, "-passout", "file:"+pass,
		"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter", "3000").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs8: %v\n%s", err, out)
	}
	enc, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decryptKey(enc, []byte("openssl interop passphrase"))
	if err != nil {
		t.Fatalf("read openssl's key file: %v\n%s", err, enc)
	}
	if !equalKeys(t, got.Public(), key.Public()) {
		t.Fatal("openssl's key file decrypted to another key")
	}
	// openssl's default PRF, HMAC-SHA-1, is refused.
	out, err = exec.CommandContext(ctx, openssl, "pkcs8", "-topk8", "-in", plain, "-out", theirs, "-passout", "file:"+pass,
		"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1", "-iter", "3000").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs8: %v\n%s", err, out)
	}
	enc, _ = os.ReadFile(theirs)
	if _, err := decryptKey(enc, []byte("openssl interop passphrase")); !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), "HMAC-SHA-256") {
		t.Errorf("a key under PBKDF2-HMAC-SHA-1: %v, want ErrKeyFile naming HMAC-SHA-256", err)
	}
}

// FuzzKeyFile: a damaged or hostile key file is refused, never a panic,
// and a passphrase is asked for only after its form checked out.
func FuzzKeyFile(f *testing.F) {
	key, _ := pki.ECDSAP256.Generate(rand.Reader)
	good, err := encryptKey(rand.Reader, key, []byte("fuzz passphrase"), 10)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	b, _ := pem.Decode(good)
	f.Add(b.Bytes)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, _, err := kdfParams(data); err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("kdfParams error %v is not ErrKeyFile", err)
			}
			return
		}
		if sg, err := decryptKey(data, []byte("fuzz passphrase")); err == nil && sg == nil {
			t.Fatal("no key and no error")
		}
	})
}
