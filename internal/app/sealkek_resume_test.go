//go:build cgo

package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// tSealCrashFixture is an instance with its KEK in DATA/kek and its CA
// keys in a SoftHSM2 token, and the configuration seal-kek switches it
// to; kek is the KEK.
func tSealCrashFixture(t *testing.T) (cfg, sealed *config.Config, kek []byte) {
	t.Helper()
	cfg, _ = tHSMConfig(t, "")
	tInit(t, cfg, clock.Real{})
	kek, err := os.ReadFile(cfg.KEKPath())
	if err != nil {
		t.Fatal(err)
	}
	s := *cfg
	s.Keys.KEKProvider = config.KEKProviderPKCS11
	s.Keys.PKCS11.KEKLabel = config.DefaultKEKLabel
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, &s, kek
}

// tSealAs writes each KEK to its file sealed as sealed keeps it, generating
// the token's KEK first when create is set: what seal-kek does before it
// switches the configuration.
func tSealAs(t *testing.T, sealed *config.Config, create bool, files map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	ks, tok, err := openKEKStore(ctx, sealed, tLogger(), create)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	for path, kek := range files {
		if err := ks.writeNew(ctx, path, kek); err != nil {
			t.Fatal(err)
		}
	}
}

// tSwitchConfig switches DATA/config.yaml to the sealed KEK, as seal-kek
// does once the sealed files are written.
func tSwitchConfig(t *testing.T, sealed *config.Config) {
	t.Helper()
	path := filepath.Join(sealed.DataDir, config.FileName)
	onDisk := &config.Config{}
	if err := onDisk.Load(path); err != nil {
		t.Fatal(err)
	}
	onDisk.KEKFile = ""
	onDisk.Keys.KEKProvider = config.KEKProviderPKCS11
	onDisk.Keys.PKCS11 = sealed.Keys.PKCS11
	if err := onDisk.Replace(path); err != nil {
		t.Fatal(err)
	}
}

// TestSealKEKResumesAfterSwitch: seal-kek stopped after it switched the
// configuration to the sealed KEK but before it recorded the audit event
// and removed the plain files (DATA/kek, and an old KEK a rotation kept).
// serve starts, warning about each plain file left; seal-kek run again
// finishes: it records the event and removes the files, each only after
// checking it holds the KEK sealed beside it. A plain file holding
// another key is never removed.
func TestSealKEKResumesAfterSwitch(t *testing.T) {
	ctx := context.Background()
	cfg, sealed, kek := tSealCrashFixture(t)
	plain := cfg.KEKPath()
	oldPlain := plain + kekOldInfix + "20260101T000000Z"
	oldKEK := make([]byte, 32)
	rand.Read(oldKEK)
	if err := os.WriteFile(oldPlain, oldKEK, 0o600); err != nil {
		t.Fatal(err)
	}
	oldSealed := sealed.KEKPath() + kekOldInfix + "20260101T000000Z"
	tSealAs(t, sealed, true, map[string][]byte{sealed.KEKPath(): kek, oldSealed: oldKEK})
	tSwitchConfig(t, sealed)

	var logs bytes.Buffer
	in := tStartLogged(t, sealed, clock.Real{}, tLogTo(&logs))
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{plain, oldPlain} {
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), f) || !strings.Contains(logs.String(), "keys seal-kek") {
			t.Errorf("serve did not warn about the plain KEK file %s left beside the sealed KEK:\n%s", f, logs.String())
		}
	}

	// A plain DATA/kek that is not the sealed KEK is refused, and nothing
	// is removed.
	if err := os.WriteFile(plain, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SealKEK(ctx, sealed, tLogger(), clock.Real{}, SealKEKOptions{}); err == nil || !strings.Contains(err.Error(), plain) || !strings.Contains(err.Error(), "not the KEK sealed") {
		t.Fatalf("SealKEK with another key in %s: %v, want a refusal naming it", plain, err)
	}
	for _, f := range []string{plain, oldPlain} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("a refused seal-kek removed %s: %v", f, err)
		}
	}
	if err := os.WriteFile(plain, kek, 0o600); err != nil {
		t.Fatal(err)
	}

	res, err := SealKEK(ctx, sealed, tLogger(), clock.Real{}, SealKEKOptions{})
	if err != nil {
		t.Fatalf("SealKEK after the switch: %v", err)
	}
	if !res.Resumed || len(res.NotRemoved) != 0 || strings.Join(res.Removed, " ") != plain+" "+oldPlain {
		t.Fatalf("resumed SealKEK: %+v", res)
	}
	for _, f := range []string{plain, oldPlain} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", f, err)
		}
	}
	in = tStart(t, sealed, clock.Real{})
	ev := tFindEvents(t, tAuditEvents(t, in, 0), actionKEKSeal, 1)
	var d map[string]any
	if err := json.Unmarshal(ev[0].Details, &d); err != nil || d["kek"] != res.Fingerprint || d["resumed"] != true {
		t.Errorf("kek.seal event details %s (%v)", ev[0].Details, err)
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}

	// Again, the same plain file put back: removed, and the event, there
	// already, is not recorded twice.
	if err := os.WriteFile(plain, kek, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SealKEK(ctx, sealed, tLogger(), clock.Real{}, SealKEKOptions{}); err != nil {
		t.Fatalf("SealKEK with the plain KEK put back: %v", err)
	}
	in = tStart(t, sealed, clock.Real{})
	tFindEvents(t, tAuditEvents(t, in, 0), actionKEKSeal, 1)
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := SealKEK(ctx, sealed, tLogger(), clock.Real{}, SealKEKOptions{}); err == nil || !strings.Contains(err.Error(), "already keeps the KEK in the token") {
		t.Fatalf("SealKEK with nothing left to do: %v", err)
	}
}

// TestSealKEKResumesAfterSealing: seal-kek stopped after it generated the
// token's KEK and wrote DATA/kek.p11 but before it switched the
// configuration. Run again (as before, not adopting), it finds the sealed
// file opens under the token's key to this KEK, uses it, and finishes. A
// DATA/kek.p11 that holds another KEK is refused, and left as it is.
func TestSealKEKResumesAfterSealing(t *testing.T) {
	ctx := context.Background()
	cfg, sealed, kek := tSealCrashFixture(t)
	other := bytes.Repeat([]byte{9}, 32)
	tSealAs(t, sealed, true, map[string][]byte{sealed.KEKPath(): other})
	_, err := SealKEK(ctx, cfg, tLogger(), clock.Real{}, SealKEKOptions{})
	if err == nil || !strings.Contains(err.Error(), sealed.KEKPath()) || !strings.Contains(err.Error(), "another KEK") {
		t.Fatalf("SealKEK beside a sealed file of another KEK: %v, want a refusal naming it", err)
	}
	if _, err := os.Stat(cfg.KEKPath()); err != nil {
		t.Fatalf("a refused seal-kek removed the plain KEK: %v", err)
	}
	if err := os.Remove(sealed.KEKPath()); err != nil {
		t.Fatal(err)
	}
	tSealAs(t, sealed, false, map[string][]byte{sealed.KEKPath(): kek})

	res, err := SealKEK(ctx, cfg, tLogger(), clock.Real{}, SealKEKOptions{})
	if err != nil {
		t.Fatalf("SealKEK after an interrupted one: %v", err)
	}
	if !res.Resumed || res.Generated || len(res.Removed) != 1 || res.Removed[0] != cfg.KEKPath() {
		t.Fatalf("resumed SealKEK: %+v", res)
	}
	got := tInstanceKEK(t, tRestoredConfig(t, cfg.DataDir))
	if !bytes.Equal(got, kek) {
		t.Fatal("the sealed KEK is not the instance's")
	}
	in := tStart(t, tRestoredConfig(t, cfg.DataDir), clock.Real{})
	tFindEvents(t, tAuditEvents(t, in, 0), actionKEKSeal, 1)
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRestorePlainKEKIntoToken: restore with a plain KEK file and a token
// named (--kek FILE with the --pkcs11 flags) seals the KEK in that token
// (kek.seal recorded) rather than ignoring the token; the restored
// directory holds only DATA/kek.p11 and serves. Restored without a token,
// the plain KEK is said to be in the clear, with a warning.
func TestRestorePlainKEKIntoToken(t *testing.T) {
	ctx := context.Background()
	cfg, _ := tHSMConfig(t, "")
	tInit(t, cfg, clock.Real{})
	kek, err := os.ReadFile(cfg.KEKPath())
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "backup.tar.gz")
	if _, err := Backup(ctx, cfg, BackupOptions{Out: bundle, Version: "test"}, clock.Real{}); err != nil {
		t.Fatal(err)
	}
	vault := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(vault, kek, 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	plain, err := Restore(ctx, RestoreOptions{Bundle: bundle, DataDir: filepath.Join(t.TempDir(), "plain"), KEKFile: vault}, tLogTo(&logs), clock.Real{})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if plain.KEKSealed || plain.KEKPath != filepath.Join(plain.DataDir, KEKFile) {
		t.Fatalf("restored KEK %s sealed %v, want DATA/kek in the clear", plain.KEKPath, plain.KEKSealed)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), plain.KEKPath) || !strings.Contains(logs.String(), "in the clear") {
		t.Errorf("no warning that the restored KEK is in the clear:\n%s", logs.String())
	}

	token := cfg.Keys.PKCS11
	res, err := Restore(ctx, RestoreOptions{Bundle: bundle, DataDir: filepath.Join(t.TempDir(), "sealed"), KEKFile: vault, Token: &token, AdminTokenFile: filepath.Join(cfg.DataDir, TokenFile)}, tLogger(), clock.Real{})
	if err != nil {
		t.Fatalf("Restore with a token: %v", err)
	}
	restored := tRestoredConfig(t, res.DataDir)
	if !res.KEKSealed || res.KEKPath != filepath.Join(res.DataDir, SealedKEKFile) || !restored.Keys.KEKInToken() {
		t.Fatalf("restored KEK %s sealed %v, config %+v: the token was ignored", res.KEKPath, res.KEKSealed, restored.Keys)
	}
	if _, err := os.Stat(filepath.Join(res.DataDir, KEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a plain KEK is left in the restored directory: %v", err)
	}
	if got := tInstanceKEK(t, restored); !bytes.Equal(got, kek) {
		t.Fatal("the sealed KEK is not the instance's")
	}
	in := tStart(t, restored, clock.Real{})
	tFindEvents(t, tAuditEvents(t, in, 0), actionKEKSeal, 1)
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestPINFileInDataDir: with the KEK sealed in the token, a PIN file in
// the data directory makes a copy of the directory (and access to the
// token) enough to open every key. init refuses it; serve, on a directory
// set up so since, warns at start.
func TestPINFileInDataDir(t *testing.T) {
	cfg, _ := tHSMKEKConfig(t, "", config.KeyProviderSoftware)
	pin, err := os.ReadFile(cfg.Keys.PKCS11.PINFile)
	if err != nil {
		t.Fatal(err)
	}
	inside := *cfg
	inside.Keys.PKCS11.PINFile = "token.pin"
	_, err = Init(context.Background(), &inside, tLogger(), clock.Real{})
	if err == nil || !strings.Contains(err.Error(), "inside the data directory") || !strings.Contains(err.Error(), "keys.pkcs11.pin_file") {
		t.Fatalf("Init with the PIN file in the data directory: %v, want a refusal saying so", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init left %s: %v", cfg.DataDir, err)
	}

	tInit(t, cfg, clock.Real{})
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "token.pin"), pin, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	in := tStartLogged(t, &inside, clock.Real{}, tLogTo(&logs))
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), filepath.Join(cfg.DataDir, "token.pin")) || !strings.Contains(logs.String(), "PIN") {
		t.Errorf("serve did not warn about the PIN file in the data directory:\n%s", logs.String())
	}
}
