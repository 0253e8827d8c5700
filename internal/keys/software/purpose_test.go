package software_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
)

// A wrapped key opens only for the purpose and owner it was wrapped for:
// a CA's key copied onto a managed certificate, the server's TLS row or
// another CA does not unwrap there, whatever ID it carries.
func TestWrappedKeyBoundToPurpose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := newKEK(t)
	caA := keys.CAPurpose("ca_aaaa")
	ref, _, err := newProvider(t, kek).Generate(ctx, pki.ECDSAP256, caA)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Blob[0] != 2 {
		t.Fatalf("new blob has version %d, want 2", ref.Blob[0])
	}
	if _, err := newProvider(t, kek).Signer(ctx, ref, caA); err != nil {
		t.Fatalf("own purpose: %v", err)
	}
	for _, other := range []keys.Purpose{
		keys.CAPurpose("ca_bbbb"), keys.ManagedPurpose("0a1b2c"), keys.ServerTLSPurpose("0a1b2c"),
		keys.AuditPurpose("ca_aaaa"), keys.OCSPPurpose("ca_aaaa"),
	} {
		p := newProvider(t, kek)
		if _, err := p.Signer(ctx, ref, other); !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("Signer for %s: %v, want ErrWrongKEK", other, err)
		}
		if der, err := p.ExportPKCS8(ctx, ref, other); !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("ExportPKCS8 for %s: %d bytes, %v, want ErrWrongKEK", other, len(der), err)
		}
	}
	// A warm cache must not hand the CA's signer to another purpose.
	p := newProvider(t, kek)
	if _, err := p.Signer(ctx, ref, caA); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Signer(ctx, ref, keys.ManagedPurpose("0a1b2c")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("warm cache, other purpose: %v, want ErrWrongKEK", err)
	}
	for _, bad := range []keys.Purpose{"", "ca:", "nonsense:1", "ca:x\x00y"} {
		if _, err := p.Signer(ctx, ref, bad); !errors.Is(err, keys.ErrPurpose) {
			t.Errorf("Signer for purpose %q: %v, want ErrPurpose", bad, err)
		}
	}
}

// ExportPKCS8 hands out the key without leaving it in the signer cache.
func TestExportPKCS8DoesNotCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProvider(t, newKEK(t))
	purpose := keys.ManagedPurpose("0a1b")
	ref, signer, err := p.Generate(ctx, pki.ECDSAP256, purpose)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.CachedSigners(); n != 0 {
		t.Fatalf("cache holds %d signers after Generate, want 0", n)
	}
	der, err := p.ExportPKCS8(ctx, ref, purpose)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.CachedSigners(); n != 0 {
		t.Fatalf("cache holds %d signers after ExportPKCS8, want 0", n)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.CheckPublic(k.(crypto.Signer), signer.Public()); err != nil {
		t.Fatalf("exported key: %v", err)
	}
	// Signer does cache; the count is what the test above relies on.
	if _, err := p.Signer(ctx, ref, purpose); err != nil {
		t.Fatal(err)
	}
	if n := p.CachedSigners(); n != 1 {
		t.Fatalf("cache holds %d signers after Signer, want 1", n)
	}
}

// MigrateLegacy re-wraps a version-1 blob (ID-only AAD) for the purpose of
// the row it sits in, keeping its ID, but only when the key is the row's
// key; legacy blobs never open through Signer or ExportPKCS8.
func TestMigrateLegacy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := newKEK(t)
	p := newProvider(t, kek)
	caKey, err := pki.ECDSAP384.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := software.WrapLegacyForTest(p, "k_legacy", caKey)
	if err != nil {
		t.Fatal(err)
	}
	if !software.IsLegacy(legacy) {
		t.Fatal("IsLegacy = false for a version-1 blob")
	}
	caP := keys.CAPurpose("ca_1")
	if _, err := p.Signer(ctx, legacy, caP); !errors.Is(err, software.ErrLegacyBlob) {
		t.Fatalf("Signer on legacy blob: %v, want ErrLegacyBlob", err)
	}
	if _, err := p.ExportPKCS8(ctx, legacy, keys.ManagedPurpose("01")); !errors.Is(err, software.ErrLegacyBlob) {
		t.Fatalf("ExportPKCS8 on legacy blob: %v, want ErrLegacyBlob", err)
	}
	// The CA key copied onto a managed row before the upgrade: the row's
	// certificate has another key, so it is not re-wrapped.
	if _, err := p.MigrateLegacy(ctx, legacy, keys.ManagedPurpose("01"), leafKey.Public()); !errors.Is(err, keys.ErrKeyMismatch) {
		t.Fatalf("MigrateLegacy onto a row with another public key: %v, want ErrKeyMismatch", err)
	}
	wrongKEK := newProvider(t, newKEK(t))
	if _, err := wrongKEK.MigrateLegacy(ctx, legacy, caP, caKey.Public()); !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("MigrateLegacy under another KEK: %v, want ErrWrongKEK", err)
	}
	moved := legacy
	moved.ID = "k_other"
	if _, err := p.MigrateLegacy(ctx, moved, caP, caKey.Public()); !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("MigrateLegacy with another ID: %v, want ErrWrongKEK", err)
	}
	up, err := p.MigrateLegacy(ctx, legacy, caP, caKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != legacy.ID || up.Algorithm != pki.ECDSAP384 || software.IsLegacy(up) {
		t.Fatalf("migrated ref %+v", up)
	}
	got, err := newProvider(t, kek).Signer(ctx, up, caP)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.CheckPublic(got, caKey.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := newProvider(t, kek).Signer(ctx, up, keys.CAPurpose("ca_2")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Fatalf("migrated key for another CA: %v, want ErrWrongKEK", err)
	}
	if _, err := p.MigrateLegacy(ctx, up, caP, caKey.Public()); !errors.Is(err, software.ErrMalformedBlob) {
		t.Fatalf("MigrateLegacy on a version-2 blob: %v, want ErrMalformedBlob", err)
	}
	if n := p.CachedSigners(); n != 0 {
		t.Fatalf("migration left %d signers cached", n)
	}
}

// Check opens a key for its own purpose only, under its own KEK only, and
// keeps nothing: escrow proves with it that a KEK opens every key.
func TestCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := newKEK(t)
	purpose := keys.AuditPurpose("a_1")
	ref, _, err := newProvider(t, kek).Generate(ctx, pki.Ed25519, purpose)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, kek)
	if err := p.Check(ctx, ref, purpose); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if n := p.CachedSigners(); n != 0 {
		t.Errorf("Check left %d signers in the cache", n)
	}
	if err := p.Check(ctx, ref, keys.CAPurpose("a_1")); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("Check for another purpose: %v, want ErrWrongKEK", err)
	}
	if err := newProvider(t, newKEK(t)).Check(ctx, ref, purpose); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("Check under another KEK: %v, want ErrWrongKEK", err)
	}
	bad := ref
	bad.Algorithm = pki.ECDSAP256
	if err := p.Check(ctx, bad, purpose); err == nil {
		t.Error("Check of a Ref naming the wrong algorithm succeeded")
	}
}
