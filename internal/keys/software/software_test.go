package software_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
)

// testPurpose is the purpose the generic round-trip tests bind keys to.
const testPurpose = keys.Purpose("ca:ca_test")

func newKEK(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, software.KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newProvider(t *testing.T, kek []byte) *software.Provider {
	t.Helper()
	p, err := software.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// secretBytes returns the raw private scalar or seed of a key, which must
// never appear in a blob.
func secretBytes(t *testing.T, s crypto.Signer) [][]byte {
	t.Helper()
	switch k := s.(type) {
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{b}
	case *rsa.PrivateKey:
		return [][]byte{k.D.Bytes(), k.Primes[0].Bytes(), k.Primes[1].Bytes()}
	case ed25519.PrivateKey:
		return [][]byte{k.Seed()}
	}
	t.Fatalf("unexpected key type %T", s)
	return nil
}

func TestRoundTripEveryAlgorithm(t *testing.T) {
	t.Parallel()
	kek := newKEK(t)
	for _, alg := range pki.KeyAlgorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p := newProvider(t, kek)
			ref, signer, err := p.Generate(ctx, alg, testPurpose)
			if err != nil {
				t.Fatal(err)
			}
			if ref.Provider != "software" || ref.Algorithm != alg || !strings.HasPrefix(ref.ID, "k_") || len(ref.ID) != 2+32 {
				t.Fatalf("bad ref %+v", ref)
			}
			if got, _ := pki.AlgorithmOf(signer.Public()); got != alg {
				t.Fatalf("generated %s, want %s", got, alg)
			}

			pkcs8, err := x509.MarshalPKCS8PrivateKey(signer)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(ref.Blob, pkcs8) {
				t.Fatal("blob contains the PKCS#8 key")
			}
			for _, secret := range secretBytes(t, signer) {
				if bytes.Contains(ref.Blob, secret) {
					t.Fatal("blob contains raw private key material")
				}
			}

			// A second provider with the same KEK starts with an empty cache,
			// so this exercises the real unwrap.
			again, err := newProvider(t, kek).Signer(ctx, ref, testPurpose)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface{ Equal(crypto.PrivateKey) bool }
			if !again.(equaler).Equal(signer) {
				t.Fatal("unwrapped key differs from generated key")
			}
			msg := sha256.Sum256([]byte("certwright"))
			opts := crypto.SignerOpts(crypto.SHA256)
			if alg.Family() == pki.FamilyEd25519 {
				opts = crypto.Hash(0)
			}
			sig, err := again.Sign(rand.Reader, msg[:], opts)
			if err != nil {
				t.Fatal(err)
			}
			if !verify(signer.Public(), msg[:], sig) {
				t.Fatal("signature from unwrapped key does not verify")
			}
		})
	}
}

func verify(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, digest, sig)
	}
	return false
}

func TestUnwrapFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := newKEK(t)
	ref, _, err := newProvider(t, kek).Generate(ctx, pki.ECDSAP256, testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := newProvider(t, kek).Generate(ctx, pki.ECDSAP256, testPurpose)
	if err != nil {
		t.Fatal(err)
	}

	flip := func(i int) keys.Ref {
		r := ref
		r.Blob = bytes.Clone(ref.Blob)
		if i < 0 {
			i += len(r.Blob)
		}
		r.Blob[i] ^= 0x01
		return r
	}
	spliced := ref
	spliced.Blob = append(bytes.Clone(other.Blob[:73]), ref.Blob[73:]...)

	tests := []struct {
		name    string
		kek     []byte
		ref     func() keys.Ref
		wantKEK bool
	}{
		{"wrong KEK", newKEK(t), func() keys.Ref { return ref }, true},
		{"swapped ID", kek, func() keys.Ref { r := ref; r.ID = other.ID; return r }, true},
		{"tampered data key nonce", kek, func() keys.Ref { return flip(1) }, true},
		{"tampered wrapped data key", kek, func() keys.Ref { return flip(20) }, true},
		{"tampered key nonce", kek, func() keys.Ref { return flip(65) }, true},
		{"tampered ciphertext", kek, func() keys.Ref { return flip(-1) }, true},
		{"header from another key", kek, func() keys.Ref { return spliced }, true},
		{"unknown version", kek, func() keys.Ref { return flip(0) }, false},
		{"truncated", kek, func() keys.Ref { r := ref; r.Blob = ref.Blob[:40]; return r }, false},
		{"other provider", kek, func() keys.Ref { r := ref; r.Provider = "pkcs11"; return r }, false},
		{"algorithm mismatch", kek, func() keys.Ref { r := ref; r.Algorithm = pki.ECDSAP384; return r }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newProvider(t, tc.kek).Signer(ctx, tc.ref(), testPurpose)
			if err == nil {
				t.Fatal("Signer succeeded")
			}
			if got := errors.Is(err, keys.ErrWrongKEK); got != tc.wantKEK {
				t.Fatalf("errors.Is(err, ErrWrongKEK) = %v, want %v (err: %v)", got, tc.wantKEK, err)
			}
			if !strings.HasPrefix(err.Error(), "software: ") {
				t.Fatalf("error %q lacks package prefix", err)
			}
		})
	}
}

// A cached signer must not be handed out for a blob that differs from the
// one it was cached under.
func TestCacheChecksBlob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProvider(t, newKEK(t))
	ref, _, err := p.Generate(ctx, pki.Ed25519, testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Signer(ctx, ref, testPurpose); err != nil {
		t.Fatal(err)
	}
	bad := ref
	bad.Blob = bytes.Clone(ref.Blob)
	bad.Blob[len(bad.Blob)-1] ^= 0xff
	if _, err := p.Signer(ctx, bad, testPurpose); !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("tampered blob with warm cache: %v", err)
	}
}

func TestWrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := newKEK(t)
	p := newProvider(t, kek)
	key, err := pki.RSA2048.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	managed := keys.ManagedPurpose("0a1b")
	ref, err := p.Wrap(ctx, managed, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref.ID, "k_") || ref.Algorithm != pki.RSA2048 {
		t.Fatalf("bad ref %+v", ref)
	}
	got, err := newProvider(t, kek).Signer(ctx, ref, managed)
	if err != nil {
		t.Fatal(err)
	}
	if !got.(*rsa.PrivateKey).Equal(key) {
		t.Fatal("unwrapped key differs")
	}
	for _, bad := range []keys.Purpose{"", "managed:", "cert:0a1b", "ca"} {
		if _, err := p.Wrap(ctx, bad, key); !errors.Is(err, keys.ErrPurpose) {
			t.Errorf("Wrap for purpose %q: %v, want ErrPurpose", bad, err)
		}
	}
}

func TestNewRejectsBadKEK(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := software.New(make([]byte, n), nil); err == nil {
			t.Errorf("New accepted a %d-byte KEK", n)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := newProvider(t, newKEK(t))
	if _, _, err := p.Generate(ctx, pki.ECDSAP256, testPurpose); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate: %v", err)
	}
}

func TestKEKFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	if err := software.GenerateKEK(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("KEK mode %#o, want 0600", fi.Mode().Perm())
	}
	first, err := software.LoadKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != software.KEKSize {
		t.Fatalf("KEK is %d bytes", len(first))
	}
	if _, err := software.New(first, nil); err != nil {
		t.Fatal(err)
	}

	if err := software.GenerateKEK(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("GenerateKEK over existing file: %v", err)
	}
	again, err := software.LoadKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("existing KEK was overwritten")
	}
}

func TestLoadKEKRejects(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not enforced on Windows")
	}
	tests := []struct {
		name    string
		size    int
		mode    os.FileMode
		wantErr error
		wantMsg string
	}{
		{"world readable", 32, 0o644, software.ErrKEKPermissions, "0644"},
		{"group readable", 32, 0o640, software.ErrKEKPermissions, "0640"},
		{"short", 16, 0o600, nil, "16 bytes"},
		{"long", 33, 0o600, nil, "longer than 32"},
		{"empty", 0, 0o600, nil, "0 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "kek")
			if err := os.WriteFile(path, make([]byte, tc.size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := software.LoadKEK(path)
			if err == nil {
				t.Fatal("LoadKEK succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), "software: ") {
				t.Fatalf("err %q does not mention %q", err, tc.wantMsg)
			}
			if tc.wantErr != nil && !strings.Contains(err.Error(), path) {
				t.Fatalf("err %q does not name the path", err)
			}
		})
	}
	if _, err := software.LoadKEK(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func BenchmarkSignerCold(b *testing.B) {
	ctx := context.Background()
	kek := make([]byte, software.KEKSize)
	p, err := software.New(kek, nil)
	if err != nil {
		b.Fatal(err)
	}
	ref, _, err := p.Generate(ctx, pki.ECDSAP256, testPurpose)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		fresh, _ := software.New(kek, nil)
		if _, err := fresh.Signer(ctx, ref, testPurpose); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	p := newProvider(t, newKEK(t))
	sealed, err := p.Seal([]byte("hmac secret"), []byte("eab_1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hmac secret")) {
		t.Fatal("sealed blob contains the plaintext")
	}
	got, err := p.Open(sealed, []byte("eab_1"))
	if err != nil || string(got) != "hmac secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := p.Open(sealed, []byte("eab_2")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("Open with another record's aad: %v, want ErrWrongKEK", err)
	}
	other := newProvider(t, newKEK(t))
	if _, err := other.Open(sealed, []byte("eab_1")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("Open under another KEK: %v, want ErrWrongKEK", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := p.Open(sealed, []byte("eab_1")); err == nil {
		t.Fatal("Open accepted a tampered blob")
	}
}
