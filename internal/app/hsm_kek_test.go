//go:build cgo

package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/backup"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/pkcs11"
	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tHSMKEKConfig is tHSMConfig with the KEK sealed by the token too and new
// CA keys made by caProvider.
func tHSMKEKConfig(t *testing.T, dbURL, caProvider string) (*config.Config, *softhsmtest.Token) {
	t.Helper()
	cfg, tk := tHSMConfig(t, dbURL)
	cfg.Keys.CAKeyProvider = caProvider
	cfg.Keys.KEKProvider = config.KEKProviderPKCS11
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, tk
}

// tInstanceKEK reads cfg's KEK as serve does (from the token when it is
// sealed there: no instance of cfg may be open in this process).
func tInstanceKEK(t *testing.T, cfg *config.Config) []byte {
	t.Helper()
	ctx := context.Background()
	ks, tok, err := openKEKStore(ctx, cfg, tLogger(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	kek, err := ks.load(ctx, cfg.KEKPath())
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// tCAs returns the instance's root and issuing CAs (API records and
// certificates).
func tCAs(t *testing.T, in *tInstance) (ids map[string]string, root, issuing *x509.Certificate) {
	t.Helper()
	var list apitypes.CAList
	in.must(http.StatusOK, "GET", "/api/v1/cas", nil, &list)
	ids = map[string]string{}
	for _, c := range list.CAs {
		ids[c.Name] = c.ID
	}
	var rootCA, issuingCA apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/root", nil, &rootCA)
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuingCA)
	return ids, tPEMCert(t, rootCA.CertificatePEM), tPEMCert(t, issuingCA.CertificatePEM)
}

// tIssueRevokeCheck issues a certificate, revokes it, and checks the CRL
// and OCSP say so, signed by the issuing CA.
func tIssueRevokeCheck(t *testing.T, in *tInstance, name string) {
	t.Helper()
	ids, root, issuing := tCAs(t, in)
	leaf := tIssueVerified(t, in, root, issuing, name)
	serial := pki.SerialHex(leaf.SerialNumber)
	in.must(http.StatusOK, "POST", "/api/v1/certificates/"+serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
	tCRLSignedListing(t, in, ids["issuing"], issuing, serial)
	if r := tOCSPResponse(t, in, leaf, issuing); r.Status != ocsp.Revoked {
		t.Fatalf("OCSP status %d, want revoked", r.Status)
	}
}

// TestHSMKEKInToken is the acceptance of the KEK in the token: init with
// keys.kek_provider pkcs11 leaves no DATA/kek, only DATA/kek.p11 sealed
// by a safe AES key in the token; serve opens it, issues, revokes, and
// answers CRL and OCSP. Then every file of the data directory and every
// value of every table is scanned for any private key and for the raw
// instance KEK, CA keys and server TLS key: nothing is found. The same
// scan of an instance with its KEK in a file finds the KEK, so the scan
// can fail.
func TestHSMKEKInToken(t *testing.T) {
	for _, b := range tBackends {
		for _, tt := range []struct {
			name       string
			caProvider string
			// file: the control, with the KEK in DATA/kek.
			file bool
		}{
			{"CA keys in the token", config.KeyProviderPKCS11, false},
			{"software CA keys", config.KeyProviderSoftware, false},
			{"KEK file (control)", config.KeyProviderSoftware, true},
		} {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				cfg, tk := tHSMKEKConfig(t, b.dbURL(t), tt.caProvider)
				if tt.file {
					cfg.Keys.KEKProvider = ""
				}
				tInit(t, cfg, clock.Real{})
				if !tt.file {
					if _, err := os.Stat(filepath.Join(cfg.DataDir, KEKFile)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("init left a plain KEK file: %v", err)
					}
					sealed := filepath.Join(cfg.DataDir, SealedKEKFile)
					if fi, err := os.Stat(sealed); err != nil || fi.Mode().Perm() != 0o600 {
						t.Fatalf("sealed KEK %s: %v (mode %v), want mode 0600", sealed, err, fi)
					}
					if !isSealedKEK(sealed) {
						t.Fatalf("%s is not a sealed KEK file", sealed)
					}
					access, ok := tk.Objects(t)["Secret Key Object/"+config.DefaultKEKLabel]
					if !ok || !softhsmtest.Safe(access) {
						t.Fatalf("token KEK %q: found %v, Access %v; want sensitive, never extractable", config.DefaultKEKLabel, ok, access)
					}
					saved, err := config.ReadFile(filepath.Join(cfg.DataDir, config.FileName), cfg.DataDir)
					if err != nil {
						t.Fatal(err)
					}
					if saved.Keys.KEKProvider != config.KEKProviderPKCS11 || saved.Keys.PKCS11.KEKLabel != config.DefaultKEKLabel {
						t.Fatalf("config.yaml keys %+v, want the KEK sealed under %q", saved.Keys, config.DefaultKEKLabel)
					}
				}

				in := tStart(t, cfg, clock.Real{})
				tIssueRevokeCheck(t, in, "kek-token.example.internal")
				secrets := map[string][]byte{"the server TLS key": tSecret(t, in.app.tls.cert.Load().PrivateKey)}
				cas, err := in.app.store.ListCAs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cas {
					if c.Key.Provider != software.Name {
						continue
					}
					s, err := in.app.keys.Signer(ctx, c.Key, keys.CAPurpose(c.ID))
					if err != nil {
						t.Fatal(err)
					}
					secrets["CA "+c.Name] = tSecret(t, s)
				}
				if err := in.stop(); err != nil {
					t.Fatal(err)
				}
				kek := tInstanceKEK(t, cfg)
				secrets["the instance KEK"] = kek
				if tt.caProvider == config.KeyProviderSoftware && len(secrets) != 4 {
					t.Fatalf("secrets %d, want the KEK, the TLS key and 2 software CA keys", len(secrets))
				}

				found := tKeysInDir(t, cfg.DataDir, secrets)
				counts, inTables := tKeysInTables(t, cfg, secrets)
				found = append(found, inTables...)
				if counts["cas"] < 2 || counts["certificates"] < 2 {
					t.Fatalf("read %d CA rows and %d certificate rows: the scan missed the database", counts["cas"], counts["certificates"])
				}
				if tt.file {
					want := filepath.Join(cfg.DataDir, KEKFile) + " holds an unencrypted private key (raw secret of the instance KEK)"
					if len(found) != 1 || found[0] != want {
						t.Fatalf("the scan of an instance with a KEK file found %q, want only %q", found, want)
					}
					return
				}
				for _, f := range found {
					t.Error(f)
				}
				// The server starts again from what the scan saw.
				in = tStart(t, cfg, clock.Real{})
				tIssueRevokeCheck(t, in, "again.example.internal")
			})
		}
	}
}

// TestHSMKEKRefusals: with the KEK sealed by the token, a wrong PIN, a
// missing token, a kek_label the token lacks, a sealed file altered,
// relabelled or sealed by another token key each refuse to start, saying
// what to check; a second init under a label taken is refused (and leaves
// nothing) unless adopting is asked; a failed init destroys the token key
// it generated.
func TestHSMKEKRefusals(t *testing.T) {
	ctx := context.Background()
	cfg, tk := tHSMKEKConfig(t, "", config.KeyProviderPKCS11)
	tInit(t, cfg, clock.Real{})
	sealedPath := cfg.KEKPath()
	good, err := os.ReadFile(sealedPath)
	if err != nil {
		t.Fatal(err)
	}
	var f sealedKEKFile
	if err := json.Unmarshal(good, &f); err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, mutate func(*sealedKEKFile)) {
		t.Helper()
		c := f
		c.Sealed = bytes.Clone(f.Sealed)
		mutate(&c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sealedPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := os.WriteFile(sealedPath, good, 0o600); err != nil {
				t.Fatal(err)
			}
		})
	}

	wrongPIN, noToken, noKEK := *cfg, *cfg, *cfg
	wrongPIN.Keys.PKCS11.PINFile = softhsmtest.WritePIN(t, "9999\n", 0o600)
	noToken.Keys.PKCS11.TokenLabel = "absent"
	noKEK.Keys.PKCS11.KEKLabel = "absent-kek"
	for _, tt := range []struct {
		name   string
		cfg    *config.Config
		mutate func(*sealedKEKFile)
		target error
		says   string
	}{
		{"wrong PIN", &wrongPIN, nil, pkcs11.ErrPIN, "keys.pkcs11.pin_file"},
		{"token missing", &noToken, nil, pkcs11.ErrTokenNotFound, "keys.pkcs11.token_label"},
		{"no token KEK under the label", &noKEK, nil, ErrTokenKEKMissing, `no KEK labelled "absent-kek"`},
		{"sealed bytes altered", cfg, func(s *sealedKEKFile) { s.Sealed[len(s.Sealed)-1] ^= 1 }, ErrSealedKEK, "the file was altered"},
		{"sealed file relabelled", cfg, func(s *sealedKEKFile) { s.TokenKEK = "other" }, ErrSealedKEK, `set kek_label to "other"`},
		{"sealed file truncated", cfg, func(s *sealedKEKFile) { s.Sealed = s.Sealed[:8] }, ErrSealedKEK, "does not open under the token key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mutate != nil {
				write(t, tt.mutate)
			}
			tHSMRefused(t, tt.cfg, tt.target, tt.says)
		})
	}

	t.Run("sealed by another token key", func(t *testing.T) {
		tok, err := openHSM(ctx, cfg, tLogger())
		if err != nil {
			t.Fatal(err)
		}
		other, err := tok.kek(ctx, "other-kek", true)
		if err != nil {
			tok.Close()
			t.Fatal(err)
		}
		// Claiming the instance's label, as a file copied from another
		// instance sealing under a key of the same name would.
		forged := &kekStore{label: f.TokenKEK, tk: other}
		b, err := forged.seal(ctx, make([]byte, 32), "")
		tok.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sealedPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(sealedPath, good, 0o600) })
		tHSMRefused(t, cfg, ErrSealedKEK, "sealed by another key")
	})

	t.Run("init under a taken label", func(t *testing.T) {
		again := *cfg
		again.DataDir = filepath.Join(t.TempDir(), "data")
		if _, err := Init(ctx, &again, tLogger(), clock.Real{}); !errors.Is(err, ErrTokenKEKExists) || !strings.Contains(err.Error(), "--pkcs11-kek-adopt") {
			t.Fatalf("Init under a taken label: %v, want ErrTokenKEKExists naming --pkcs11-kek-adopt", err)
		}
		if Exists(again.DataDir) {
			t.Fatal("the refused init left its data directory")
		}
		// A failed init destroys the token key it generated: the
		// label is free for the next attempt.
		failing := again
		failing.Keys.PKCS11.KEKLabel = "fresh-kek"
		failing.DB = "sqlite:" + filepath.Join(t.TempDir(), "no-such-dir", "x.db")
		if _, err := Init(ctx, &failing, tLogger(), clock.Real{}); err == nil {
			t.Fatal("Init on an unopenable database succeeded")
		}
		if _, ok := tk.Objects(t)["Secret Key Object/fresh-kek"]; ok {
			t.Fatal("a failed init left the token KEK it generated")
		}
	})
	// The instance still starts with everything put back.
	in := tStart(t, cfg, clock.Real{})
	tIssueRevokeCheck(t, in, "after-refusals.example.internal")
}

// TestHSMKEKLifecycle runs the KEK's life with the KEK in the token:
// backup (no KEK in the bundle), escrow and its drill, rotate-kek (the new
// KEK and the kept old one both sealed, no plain KEK written), restore of
// the pre-rotation backup with the old sealed KEK and the token, keys
// recover (which restores a plain KEK) and keys seal-kek, which moves it
// back into the token and removes the plain file.
func TestHSMKEKLifecycle(t *testing.T) {
	ctx := context.Background()
	cfg, _ := tHSMKEKConfig(t, "", config.KeyProviderSoftware)
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	tIssueRevokeCheck(t, in, "before.example.internal")
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	oldKEK := tInstanceKEK(t, cfg)

	// Backup: the bundle authenticates under the KEK and holds neither
	// KEK file.
	bundle := filepath.Join(t.TempDir(), "backup.tar.gz")
	bres, err := Backup(ctx, cfg, BackupOptions{Out: bundle, Version: "test"}, clock.Real{})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if !bres.KEKSealed || bres.KEKPath != cfg.KEKPath() {
		t.Errorf("Backup says KEK %s sealed %v, want %s sealed", bres.KEKPath, bres.KEKSealed, cfg.KEKPath())
	}
	m, err := backup.Verify(ctx, bundle, oldKEK)
	if err != nil {
		t.Fatalf("the bundle does not verify under the instance KEK: %v", err)
	}
	for _, e := range m.Entries {
		if e.Name == KEKFile || e.Name == SealedKEKFile {
			t.Errorf("the bundle holds %s", e.Name)
		}
	}

	// Escrow and its drill.
	esc, err := KeysBackup(ctx, cfg, KeysBackupOptions{OutDir: filepath.Join(t.TempDir(), "escrow"), Shares: 3, Threshold: 2, Version: "test"}, clock.Real{})
	if err != nil {
		t.Fatalf("KeysBackup: %v", err)
	}
	if _, err := KeysVerify(ctx, cfg, KeysVerifyOptions{Bundle: esc.Bundle, Shares: esc.ShareFiles[:2]}, clock.Real{}); err != nil {
		t.Fatalf("KeysVerify: %v", err)
	}

	// Rotation: new KEK sealed in place, the old one sealed beside it.
	rot, err := RotateKEK(ctx, cfg, tLogger(), clock.Real{}, RotateKEKOptions{})
	if err != nil {
		t.Fatalf("RotateKEK: %v", err)
	}
	if rot.KEKFile != cfg.KEKPath() || !strings.HasPrefix(rot.OldKEKFile, cfg.KEKPath()+kekOldInfix) {
		t.Fatalf("rotation files %s, %s", rot.KEKFile, rot.OldKEKFile)
	}
	newKEK := tInstanceKEK(t, cfg)
	if bytes.Equal(newKEK, oldKEK) {
		t.Fatal("the KEK did not change")
	}
	for path, want := range map[string][]byte{rot.KEKFile: newKEK, rot.OldKEKFile: oldKEK} {
		if !isSealedKEK(path) {
			t.Errorf("%s is not sealed", path)
		}
		ks, tok, err := openKEKStore(ctx, cfg, tLogger(), false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ks.load(ctx, path)
		tok.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s opens to another KEK (%v)", path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, KEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rotation wrote a plain KEK file: %v", err)
	}
	in = tStart(t, cfg, clock.Real{})
	tIssueRevokeCheck(t, in, "rotated.example.internal")
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	found := tKeysInDir(t, cfg.DataDir, map[string][]byte{"the old KEK": oldKEK, "the new KEK": newKEK})
	for _, f := range found {
		t.Error(f)
	}

	// Restore the pre-rotation backup with the old sealed KEK: the
	// token is named, and the restored directory keeps it sealed.
	token := cfg.Keys.PKCS11
	if _, err := Restore(ctx, RestoreOptions{Bundle: bundle, DataDir: filepath.Join(t.TempDir(), "r0"), KEKFile: rot.OldKEKFile}, tLogger(), clock.Real{}); err == nil || !strings.Contains(err.Error(), "--pkcs11-module") {
		t.Fatalf("Restore of a sealed KEK without the token: %v, want a refusal naming --pkcs11-module", err)
	}
	rres, err := Restore(ctx, RestoreOptions{Bundle: bundle, DataDir: filepath.Join(t.TempDir(), "r1"), KEKFile: rot.OldKEKFile, Token: &token, AdminTokenFile: filepath.Join(cfg.DataDir, TokenFile)}, tLogger(), clock.Real{})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	restored := tRestoredConfig(t, rres.DataDir)
	if !rres.KEKSealed || !restored.Keys.KEKInToken() || rres.KEKPath != filepath.Join(rres.DataDir, SealedKEKFile) {
		t.Fatalf("restored KEK %s sealed %v, config %+v; want DATA/kek.p11 sealed", rres.KEKPath, rres.KEKSealed, restored.Keys)
	}
	if _, err := os.Stat(filepath.Join(rres.DataDir, KEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the restore wrote a plain KEK file: %v", err)
	}
	in = tStart(t, restored, clock.Real{})
	tIssueRevokeCheck(t, in, "restored.example.internal")
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}

	// keys recover restores a plain KEK; seal-kek puts it back.
	rec, err := KeysRecover(ctx, KeysRecoverOptions{Bundle: esc.Bundle, Shares: esc.ShareFiles[1:], Backup: bundle, DataDir: filepath.Join(t.TempDir(), "r2"), AdminTokenFile: filepath.Join(cfg.DataDir, TokenFile)}, tLogger(), clock.Real{})
	if err != nil {
		t.Fatalf("KeysRecover: %v", err)
	}
	rr := rec.Restore
	recovered := tRestoredConfig(t, rr.DataDir)
	if !rr.KEKLeftToken || rr.KEKSealed || recovered.Keys.KEKInToken() || rr.KEKPath != filepath.Join(rr.DataDir, KEKFile) {
		t.Fatalf("recovered KEK %s (left token %v, sealed %v), config %+v; want a plain DATA/kek, said so", rr.KEKPath, rr.KEKLeftToken, rr.KEKSealed, recovered.Keys)
	}
	if _, err := SealKEK(ctx, recovered, tLogger(), clock.Real{}, SealKEKOptions{}); !errors.Is(err, ErrTokenKEKExists) {
		t.Fatalf("SealKEK under the taken label: %v, want ErrTokenKEKExists", err)
	}
	if _, err := os.Stat(filepath.Join(rr.DataDir, SealedKEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused seal-kek left a sealed KEK: %v", err)
	}
	sres, err := SealKEK(ctx, recovered, tLogger(), clock.Real{}, SealKEKOptions{Adopt: true})
	if err != nil {
		t.Fatalf("SealKEK: %v", err)
	}
	if sres.SealedFile != filepath.Join(rr.DataDir, SealedKEKFile) || len(sres.Removed) != 1 || sres.Removed[0] != filepath.Join(rr.DataDir, KEKFile) || len(sres.NotRemoved) != 0 {
		t.Fatalf("SealKEK: %+v", sres)
	}
	sealedCfg := tRestoredConfig(t, rr.DataDir)
	if !sealedCfg.Keys.KEKInToken() || sealedCfg.Keys.PKCS11.KEKLabel != config.DefaultKEKLabel {
		t.Fatalf("config after seal-kek: %+v", sealedCfg.Keys)
	}
	if got := tInstanceKEK(t, sealedCfg); !bytes.Equal(got, oldKEK) {
		t.Fatal("the sealed KEK is not the recovered one")
	}
	in = tStart(t, sealedCfg, clock.Real{})
	tIssueRevokeCheck(t, in, "sealed.example.internal")
	ev := tFindEvents(t, tAuditEvents(t, in, 0), actionKEKSeal, 1)
	tNoKeyMaterial(t, ev[0], oldKEK)
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	for _, f := range tKeysInDir(t, rr.DataDir, map[string][]byte{"the KEK": oldKEK}) {
		t.Error(f)
	}
	if _, err := SealKEK(ctx, sealedCfg, tLogger(), clock.Real{}, SealKEKOptions{}); err == nil || !strings.Contains(err.Error(), "already keeps the KEK in the token") {
		t.Fatalf("SealKEK of a sealed KEK: %v", err)
	}
}
