package software_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
)

// Once CloseLegacy was called, MigrateLegacy opens no version-1 blob, not
// even one that is exactly the key of the record it is offered for.
func TestCloseLegacy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProvider(t, newKEK(t))
	key, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := software.WrapLegacyForTest(p, "k_legacy", key)
	if err != nil {
		t.Fatal(err)
	}
	purpose := keys.ManagedPurpose("01")
	if p.LegacyClosed() {
		t.Fatal("a new provider is closed to legacy keys")
	}
	if _, err := p.MigrateLegacy(ctx, legacy, purpose, key.Public()); err != nil {
		t.Fatalf("MigrateLegacy before CloseLegacy: %v", err)
	}
	p.CloseLegacy()
	if !p.LegacyClosed() {
		t.Fatal("LegacyClosed = false after CloseLegacy")
	}
	_, err = p.MigrateLegacy(ctx, legacy, purpose, key.Public())
	if !errors.Is(err, software.ErrLegacyClosed) || !errors.Is(err, keys.ErrLegacyFormat) {
		t.Fatalf("MigrateLegacy after CloseLegacy: %v, want ErrLegacyClosed (a keys.ErrLegacyFormat)", err)
	}
	if _, err := p.ExportPKCS8(ctx, legacy, purpose); !errors.Is(err, keys.ErrLegacyFormat) {
		t.Fatalf("ExportPKCS8 of a legacy blob: %v, want ErrLegacyFormat", err)
	}
}

// The marker file is created 0600, atomically, once; an existing one (or
// anything at its path) counts as present and is left alone.
func TestLegacyMarker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys-purpose-bound")
	if ok, err := software.LegacyMarkerExists(path); err != nil || ok {
		t.Fatalf("LegacyMarkerExists before writing: %v, %v", ok, err)
	}
	if err := software.WriteLegacyMarker(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("marker mode %#o size %d, want 0600 and an explanation", fi.Mode().Perm(), fi.Size())
	}
	if err := os.WriteFile(path, []byte("edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := software.WriteLegacyMarker(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "edited\n" {
		t.Errorf("an existing marker was rewritten: %q", b)
	}
	if ok, err := software.LegacyMarkerExists(path); err != nil || !ok {
		t.Fatalf("LegacyMarkerExists after writing: %v, %v", ok, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Errorf("directory holds %d entries (%v), want only the marker (no temporary file left)", len(ents), err)
	}
	sub := filepath.Join(dir, "dir-marker")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if ok, err := software.LegacyMarkerExists(sub); err != nil || !ok {
		t.Errorf("a directory at the marker's path: %v, %v; want present (fail safe)", ok, err)
	}
}
