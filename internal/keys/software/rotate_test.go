package software_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// TestRewrapTo moves a key to a new KEK: the new provider opens it for
// the same purpose and ID as the same key, the old one no longer does,
// the private key's ciphertext is carried over unchanged (only the data
// key is re-sealed), and a blob that does not open under the old KEK for
// its purpose, or whose private key was damaged, is refused.
func TestRewrapTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldP, newP := newProvider(t, newKEK(t)), newProvider(t, newKEK(t))
	ref, signer, err := oldP.Generate(ctx, pki.ECDSAP256, testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := oldP.RewrapTo(newP, ref, testPurpose)
	if err != nil {
		t.Fatalf("RewrapTo: %v", err)
	}
	moved := ref
	moved.Blob = blob
	got, err := newP.Signer(ctx, moved, testPurpose)
	if err != nil {
		t.Fatalf("new KEK does not open the re-wrapped key: %v", err)
	}
	if err := keys.CheckPublic(got, signer.Public()); err != nil {
		t.Errorf("re-wrapped key is another key: %v", err)
	}
	if _, err := oldP.Signer(ctx, moved, testPurpose); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("old KEK on the re-wrapped key: %v, want ErrWrongKEK", err)
	}
	if _, err := newP.Signer(ctx, moved, keys.CAPurpose("ca_other")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("re-wrapped key opened for another purpose: %v", err)
	}
	const offCTNonce = 1 + 12 + 48
	if !bytes.Equal(blob[offCTNonce:], ref.Blob[offCTNonce:]) {
		t.Error("the private key's ciphertext changed: only the data key should be re-sealed")
	}
	if bytes.Equal(blob[:offCTNonce], ref.Blob[:offCTNonce]) {
		t.Error("the sealed data key did not change")
	}

	if _, err := oldP.RewrapTo(newP, ref, keys.CAPurpose("ca_other")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("RewrapTo for another purpose: %v, want ErrWrongKEK", err)
	}
	if _, err := newP.RewrapTo(oldP, ref, testPurpose); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("RewrapTo from a KEK the key is not under: %v, want ErrWrongKEK", err)
	}
	damaged := ref
	damaged.Blob = bytes.Clone(ref.Blob)
	damaged.Blob[len(damaged.Blob)-1] ^= 1
	if _, err := oldP.RewrapTo(newP, damaged, testPurpose); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("RewrapTo of a damaged private key: %v, want ErrWrongKEK", err)
	}
	if _, err := oldP.RewrapTo(nil, ref, testPurpose); err == nil {
		t.Error("RewrapTo without a target succeeded")
	}
}

// TestResealTo moves a sealed secret to a new KEK, bound to the same
// additional data.
func TestResealTo(t *testing.T) {
	t.Parallel()
	oldP, newP := newProvider(t, newKEK(t)), newProvider(t, newKEK(t))
	secret, aad := []byte("eab hmac key"), []byte("acme-eab:kid_1")
	sealed, err := oldP.Seal(secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := oldP.ResealTo(newP, sealed, aad)
	if err != nil {
		t.Fatalf("ResealTo: %v", err)
	}
	if pt, err := newP.Open(moved, aad); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("new KEK opens %q, %v; want %q", pt, err, secret)
	}
	if _, err := oldP.Open(moved, aad); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("old KEK on the resealed secret: %v, want ErrWrongKEK", err)
	}
	if _, err := newP.Open(moved, []byte("acme-eab:kid_2")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("resealed secret opened with other additional data: %v", err)
	}
	if _, err := oldP.ResealTo(newP, sealed, []byte("acme-eab:kid_2")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("ResealTo with other additional data: %v, want ErrWrongKEK", err)
	}
}
