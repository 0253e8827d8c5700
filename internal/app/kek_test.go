package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/registration"
	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tReadKEK reads a KEK file, failing t unless it is mode 0600.
func tReadKEK(t *testing.T, path string) []byte {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tKEKRotated is what a rotation test sets up before rotating: an
// instance with a retained managed key, an ACME EAB key and audit
// checkpoints, stopped.
type tKEKRotated struct {
	cfg        *config.Config
	oldKEK     []byte
	managed    apitypes.IssuedCertificate
	exporter   string // Authorization of a principal that may export managed
	eab        apitypes.NewEABKey
	serverTLS  string
	issuedLeaf *x509.Certificate
	issuer     *x509.Certificate
}

// tKEKInstance initialises and runs an instance on dbURL, fills it with
// every kind of key and sealed secret, and stops it.
func tKEKInstance(t *testing.T, dbURL string) *tKEKRotated {
	t.Helper()
	ctx := context.Background()
	cfg := tConfig(t, dbURL)
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	s := &tKEKRotated{cfg: cfg}
	s.exporter = tKeyExporter(t, in, "deployer")
	s.managed = tIssueRetained(t, in, s.exporter, "svc.example.internal")
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "teams", CA: "issuing", Profile: "web_server", RequireEAB: true,
	}, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "team-bot", Kind: "machine", Role: "issuer", Scope: apitypes.Scope{Names: []string{"*.team.acme.test"}},
	}, nil)
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners/teams/eab",
		apitypes.CreateEABKeyRequest{Principal: "team-bot", Description: "team CI"}, &s.eab)
	s.issuedLeaf, s.issuer = tIssued(t, in, "web.example.internal")
	// An OCSP answer needs the issuing CA's responder: asking for one
	// makes sure it exists (and is wrapped under the old KEK) before the
	// rotation, whether or not the start-up pass got to it.
	if st := tOCSPStatus(t, in, s.issuedLeaf, s.issuer); st != ocsp.Good {
		t.Fatalf("OCSP status before the rotation: %d, want good", st)
	}
	if c, err := in.app.audit.Checkpoint(ctx); err != nil || c == nil {
		t.Fatalf("Checkpoint: %+v, %v", c, err)
	}
	s.serverTLS = strings.TrimSpace(string(tServerTLSSerial(t, in)))
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	s.oldKEK = tReadKEK(t, cfg.KEKPath())
	return s
}

// tEAB reads the sealed EAB keys, by key ID.
func tEAB(t *testing.T, cfg *config.Config) map[string][]byte {
	t.Helper()
	rows, err := tDBWriter(t, cfg).QueryContext(context.Background(), `SELECT id, sealed FROM acme_eab_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var sealed []byte
		if err := rows.Scan(&id, &sealed); err != nil {
			t.Fatal(err)
		}
		out[id] = sealed
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tKeysUnder checks that every wrapped key and sealed secret in cfg's
// database opens under kek and none under other.
func tKeysUnder(t *testing.T, cfg *config.Config, kek, other []byte) {
	t.Helper()
	p, q := newTestProvider(t, kek), newTestProvider(t, other)
	rows := tKeyRows(t, cfg)
	if len(rows) < 6 {
		t.Fatalf("%d wrapped keys in the database, want at least 6 (2 CAs, 2 OCSP responders, server TLS, managed, audit)", len(rows))
	}
	for _, r := range rows {
		kind, owner, _ := strings.Cut(r.where, " ")
		k := &store.WrappedKey{Kind: kind, Owner: owner, Ref: keys.Ref{Provider: software.Name, ID: r.id, Blob: r.blob}}
		if _, err := rewrapUnder(p, p, k, ""); err != nil {
			t.Errorf("the key of %s does not open under the KEK it should be under: %v", r.where, err)
		}
		if _, err := rewrapUnder(q, q, k, ""); !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("the key of %s: other KEK gives %v, want ErrWrongKEK", r.where, err)
		}
	}
	eab := tEAB(t, cfg)
	if len(eab) == 0 {
		t.Fatal("no sealed EAB key in the database")
	}
	for id, sealed := range eab {
		if _, err := p.Open(sealed, acme.EABSealAAD(id)); err != nil {
			t.Errorf("EAB key %s does not open under the KEK it should be under: %v", id, err)
		}
		if _, err := q.Open(sealed, acme.EABSealAAD(id)); !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("EAB key %s: other KEK gives %v, want ErrWrongKEK", id, err)
		}
	}
}

func newTestProvider(t *testing.T, kek []byte) *software.Provider {
	t.Helper()
	p, err := software.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tFingerprint(t *testing.T, kek []byte) string {
	t.Helper()
	fp, err := keys.KEKFingerprint(newTestProvider(t, kek))
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// tOldKEKFiles lists the kept old KEKs beside cfg's KEK.
func tOldKEKFiles(t *testing.T, cfg *config.Config) []string {
	t.Helper()
	m, err := filepath.Glob(cfg.KEKPath() + kekOldInfix + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tCheckServes starts cfg's instance and checks that every key does its
// job under the rotated KEK: the server's TLS key (the same certificate
// served), the root (signs a new intermediate) and issuing CA (signs), the
// OCSP responder and CRL after a revocation, the managed key (exported,
// the certificate's), the EAB key (an account registers with it) and the
// audit key (a checkpoint; the log verifies intact).
func tCheckServes(t *testing.T, s *tKEKRotated) *tInstance {
	t.Helper()
	ctx := context.Background()
	in := tStart(t, s.cfg, clock.Real{})
	if got := in.servedLeaf(); !strings.EqualFold(strings.TrimLeft(pki.SerialHex(got.SerialNumber), "0"), strings.TrimLeft(s.serverTLS, "0")) {
		t.Errorf("serves certificate %s, want the one from before the rotation, %s", pki.SerialHex(got.SerialNumber), s.serverTLS)
	}
	in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
		Name: "sub", Type: "intermediate", Parent: "root", CommonName: "Sub CA After Rotation",
	}, nil)
	for _, ca := range []string{"issuing", "sub"} {
		if r := tSignWith(t, in, ca, "after-"+ca+".example.internal"); r.status != http.StatusCreated {
			t.Errorf("CA %s after the rotation: %d %s", ca, r.status, tTrim(r.body))
		}
	}
	if st := tOCSPStatus(t, in, s.issuedLeaf, s.issuer); st != ocsp.Good {
		t.Errorf("OCSP status %d before the revocation, want good", st)
	}
	tRevokeThrough(t, in, s.issuedLeaf)
	if st := tOCSPStatus(t, in, s.issuedLeaf, s.issuer); st != ocsp.Revoked {
		t.Errorf("OCSP status %d after the revocation, want revoked", st)
	}
	var issuing apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuing)
	// The CRL is rebuilt after the revocation, in the background.
	for at := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		crl := tCRL(t, in, issuing.ID)
		if tCRLLists(crl, pki.SerialHex(s.issuedLeaf.SerialNumber)) {
			if err := crl.CheckSignatureFrom(s.issuer); err != nil {
				t.Errorf("CRL signature: %v", err)
			}
			break
		}
		if time.Since(at) > 5*time.Second {
			t.Fatal("5s after the revocation the CRL does not list the revoked certificate")
		}
	}
	key := tExportKey(t, in, s.exporter, s.managed.Serial)
	if signer, ok := key.(crypto.Signer); !ok || !tSamePublic(signer.Public(), tPEMCert(t, s.managed.CertificatePEM).PublicKey) {
		t.Error("the exported managed key is not the certificate's")
	}
	e := &tLegoEnv{tInstance: in}
	acct := e.newClient(t, "teams", tECKey(t, elliptic.P256()))
	if _, err := acct.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: s.eab.KeyID, HmacEncoded: s.eab.HMACKey,
	}); err != nil {
		t.Errorf("register with the EAB key made before the rotation: %v", err)
	}
	if c, err := in.app.audit.Checkpoint(ctx); err != nil || c == nil {
		t.Errorf("checkpoint after the rotation: %+v, %v", c, err)
	}
	var res apitypes.AuditVerifyResult
	in.must(http.StatusOK, "GET", "/api/v1/audit/verify", nil, &res)
	if !res.Intact || res.Checkpoints < 2 {
		t.Errorf("audit verify after the rotation: intact %v, %d checkpoints, problem %+v", res.Intact, res.Checkpoints, res.Problem)
	}
	return in
}

// TestRotateKEK rotates the KEK of an instance holding every kind of key
// and sealed secret, on SQLite and PostgreSQL: every one is re-wrapped in
// one audited step, the old KEK opens none of them and is kept beside the
// new one, and the instance starts and works with the new KEK.
func TestRotateKEK(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := tKEKInstance(t, be.dbURL(t))
			res, err := RotateKEK(context.Background(), s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{})
			if err != nil {
				t.Fatalf("RotateKEK: %v", err)
			}
			newKEK := tReadKEK(t, s.cfg.KEKPath())
			if bytes.Equal(newKEK, s.oldKEK) {
				t.Fatal("the KEK file did not change")
			}
			if res.From != tFingerprint(t, s.oldKEK) || res.To != tFingerprint(t, newKEK) || res.Resumed || res.FilesOnly {
				t.Errorf("result %+v: want the old and new KEK's fingerprints, not resumed", res)
			}
			for kind, least := range map[string]int{store.KeyKindCA: 2, store.KeyKindOCSP: 1, store.KeyKindAudit: 1, store.KeyKindManaged: 2, store.SecretKindEAB: 1} {
				if res.Found[kind] < least || res.Rewrapped[kind] != res.Found[kind] {
					t.Errorf("%s: %d of %d re-wrapped, want all of at least %d", kind, res.Rewrapped[kind], res.Found[kind], least)
				}
			}
			if len(res.Left) > 0 {
				t.Errorf("left %v", res.Left)
			}
			old := tOldKEKFiles(t, s.cfg)
			if len(old) != 1 || old[0] != res.OldKEKFile || !bytes.Equal(tReadKEK(t, old[0]), s.oldKEK) {
				t.Errorf("kept old KEKs %v (result says %s), want one holding the old KEK", old, res.OldKEKFile)
			}
			if _, err := os.Stat(s.cfg.KEKPath() + kekNewSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind: %v", kekNewSuffix, err)
			}
			tKeysUnder(t, s.cfg, newKEK, s.oldKEK)

			in := tCheckServes(t, s)
			evs := tAuditEventsOf(t, in, "kek.rotate")
			if len(evs) != 1 || evs[0].Outcome != audit.Success {
				t.Fatalf("kek.rotate events %+v, want one success", evs)
			}
			d := tDetails(t, evs[0])
			if d["old_kek"] != res.From || d["new_kek"] != res.To {
				t.Errorf("kek.rotate details %v, want old_kek %s and new_kek %s", d, res.From, res.To)
			}
			if rw, _ := d["rewrapped"].(map[string]any); rw[store.KeyKindCA] != float64(res.Rewrapped[store.KeyKindCA]) || rw[store.SecretKindEAB] != 1.0 {
				t.Errorf("kek.rotate counts %v, want %v", d["rewrapped"], res.Rewrapped)
			}
			for _, k := range [][]byte{s.oldKEK, newKEK} {
				if bytes.Contains(evs[0].Details, []byte(hex.EncodeToString(k))) {
					t.Error("the audit event holds a KEK")
				}
			}
			if got, err := in.app.store.GetSetting(context.Background(), settingKEK); err != nil || string(got) != res.To {
				t.Errorf("recorded KEK %q, %v; want %s", got, err, res.To)
			}
		})
	}
}

// tFailAt is a Hook that fails at step, as a crash there would end the
// run.
func tFailAt(step string) RotateKEKOptions {
	return RotateKEKOptions{Hook: func(s string) error {
		if s == step {
			return fmt.Errorf("crash at %s", s)
		}
		return nil
	}}
}

// TestRotateKEKInterruptedAfterCommit: a run that stops after the
// database moved to the new KEK, before the files were swapped, leaves a
// server that refuses to start saying how to finish; the next run finishes
// with the same new KEK, keeping the old one once (also when it stops
// again after keeping it), and the instance works.
func TestRotateKEKInterruptedAfterCommit(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := tKEKInstance(t, be.dbURL(t))
			if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, tFailAt(kekStepCommitted)); err == nil {
				t.Fatal("RotateKEK did not stop at the fault")
			}
			if !bytes.Equal(tReadKEK(t, s.cfg.KEKPath()), s.oldKEK) {
				t.Fatal("the KEK file changed before the swap")
			}
			newKEK := tReadKEK(t, s.cfg.KEKPath()+kekNewSuffix)
			tKeysUnder(t, s.cfg, newKEK, s.oldKEK)

			a, err := Open(ctx, s.cfg, tLogger(), clock.Real{})
			if err == nil {
				a.Close()
				t.Fatal("Open succeeded with the old KEK on a database under the new one")
			}
			if !errors.Is(err, ErrKEKRotationUnfinished) || !strings.Contains(err.Error(), "certwright keys rotate-kek") {
				t.Errorf("Open: %v, want a refusal naming rotate-kek", err)
			}

			if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, tFailAt(kekStepOldKept)); err == nil {
				t.Fatal("RotateKEK did not stop at the second fault")
			}
			res, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{})
			if err != nil {
				t.Fatalf("RotateKEK to finish: %v", err)
			}
			if !res.Resumed || !res.FilesOnly || res.Rewrapped[store.KeyKindCA] != 0 {
				t.Errorf("finishing run %+v, want resumed and files only", res)
			}
			if !bytes.Equal(tReadKEK(t, s.cfg.KEKPath()), newKEK) {
				t.Error("the KEK file is not the new KEK the interrupted run had written")
			}
			if old := tOldKEKFiles(t, s.cfg); len(old) != 1 || !bytes.Equal(tReadKEK(t, old[0]), s.oldKEK) {
				t.Errorf("kept old KEKs %v, want one holding the old KEK", old)
			}
			in := tCheckServes(t, s)
			if evs := tAuditEventsOf(t, in, "kek.rotate"); len(evs) != 1 {
				t.Errorf("%d kek.rotate events, want 1", len(evs))
			}
		})
	}
}

// TestRotateKEKInterruptedBeforeCommit: runs that stop after writing the
// new KEK, or with everything written in the transaction but not
// committed, change nothing in the database: the old KEK still starts the
// instance, and the next run completes with the new KEK first written.
func TestRotateKEKInterruptedBeforeCommit(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := tKEKInstance(t, be.dbURL(t))
			before := tKeyRows(t, s.cfg)
			if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, tFailAt(kekStepGenerated)); err == nil {
				t.Fatal("RotateKEK did not stop at the fault")
			}
			newKEK := tReadKEK(t, s.cfg.KEKPath()+kekNewSuffix)
			if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, tFailAt(kekStepBeforeCommit)); err == nil {
				t.Fatal("RotateKEK did not stop at the second fault")
			}
			for i, r := range tKeyRows(t, s.cfg) {
				if !bytes.Equal(r.blob, before[i].blob) {
					t.Errorf("the key of %s changed although the rotation did not commit", r.where)
				}
			}
			tKeysUnder(t, s.cfg, s.oldKEK, newKEK)
			if !bytes.Equal(tReadKEK(t, s.cfg.KEKPath()), s.oldKEK) || len(tOldKEKFiles(t, s.cfg)) != 0 {
				t.Fatal("the KEK files changed although the rotation did not commit")
			}
			in := tStart(t, s.cfg, clock.Real{})
			if r := tSignWith(t, in, "issuing", "between.example.internal"); r.status != http.StatusCreated {
				t.Errorf("issuing CA with the old KEK after the failed rotation: %d %s", r.status, tTrim(r.body))
			}
			if evs := tAuditEventsOf(t, in, "kek.rotate"); len(evs) != 0 {
				t.Errorf("%d kek.rotate events after rotations that did not commit", len(evs))
			}
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}

			res, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{})
			if err != nil {
				t.Fatalf("RotateKEK: %v", err)
			}
			if !res.Resumed || res.FilesOnly || res.Rewrapped[store.KeyKindCA] < 2 {
				t.Errorf("completing run %+v, want resumed, re-wrapping", res)
			}
			if !bytes.Equal(tReadKEK(t, s.cfg.KEKPath()), newKEK) {
				t.Error("the KEK is not the one the interrupted runs had written")
			}
			tCheckServes(t, s)
		})
	}
}

// TestRotateKEKRefusedWhileServing: a server on the data directory keeps
// the rotation out (and a rotation keeps a server from starting), and on
// PostgreSQL a replica running from another data directory does too,
// named in the refusal. Once stopped, the rotation runs; the other
// replica's directory, still holding the old KEK, is then refused at
// start with what to copy.
func TestRotateKEKRefusedWhileServing(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := tKEKInstance(t, be.dbURL(t))
			in := tStart(t, s.cfg, clock.Real{})
			if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{}); !errors.Is(err, ErrServerRunning) {
				t.Fatalf("RotateKEK beside a running server: %v, want ErrServerRunning", err)
			}
			if _, err := os.Stat(s.cfg.KEKPath() + kekNewSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused rotation wrote %s: %v", kekNewSuffix, err)
			}
			if be.name != "postgres" {
				if err := in.stop(); err != nil {
					t.Fatal(err)
				}
				if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{}); err != nil {
					t.Fatalf("RotateKEK once the server stopped: %v", err)
				}
				return
			}

			// A second replica's data directory: a copy, as the README's
			// replicas set-up makes it.
			other := *s.cfg
			other.DataDir = filepath.Join(t.TempDir(), "replica2")
			tCopyDataDir(t, s.cfg.DataDir, other.DataDir)
			_, err := RotateKEK(ctx, &other, tLogger(), clock.Real{}, RotateKEKOptions{})
			var live *store.LiveReplicasError
			if !errors.Is(err, ErrServerRunning) || !errors.As(err, &live) || !strings.Contains(err.Error(), in.app.self.name) {
				t.Fatalf("RotateKEK with a replica running: %v, want a refusal naming %s", err, in.app.self.name)
			}
			if got := tKeyRows(t, s.cfg); got[0].blob[0] != 2 {
				t.Fatal("keys changed")
			}
			tKeysUnder(t, s.cfg, s.oldKEK, tReadKEK(t, other.KEKPath()+kekNewSuffix))
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := RotateKEK(ctx, &other, tLogger(), clock.Real{}, RotateKEKOptions{}); err != nil {
				t.Fatalf("RotateKEK once the replica stopped: %v", err)
			}
			if _, err := RotateKEK(ctx, s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{}); !errors.Is(err, store.ErrOtherKEK) {
				t.Errorf("RotateKEK on the replica with the old KEK: %v, want ErrOtherKEK", err)
			}
			if _, err := os.Stat(s.cfg.KEKPath() + kekNewSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused rotation wrote %s: %v", kekNewSuffix, err)
			}
			a, err := Open(ctx, s.cfg, tLogger(), clock.Real{})
			if err == nil {
				a.Close()
				t.Fatal("the replica with the old KEK started")
			}
			if !errors.Is(err, ErrKEKMismatch) || !errors.Is(err, keys.ErrWrongKEK) || !strings.Contains(err.Error(), "copy that directory's KEK file") {
				t.Errorf("Open with the old KEK: %v, want ErrKEKMismatch saying to copy the new KEK", err)
			}
			tCopyFile(t, other.KEKPath(), s.cfg.KEKPath(), 0o600)
			tCheckServes(t, s)
		})
	}
}

// TestOpenRefusedDuringRotation: while a rotation holds the data
// directory, serve does not start and backup does not run (its bundle
// would open under neither KEK).
func TestOpenRefusedDuringRotation(t *testing.T) {
	t.Parallel()
	s := tKEKInstance(t, "")
	var openErr, backupErr error
	out := filepath.Join(t.TempDir(), "during.tar.gz")
	_, err := RotateKEK(context.Background(), s.cfg, tLogger(), clock.Real{}, RotateKEKOptions{Hook: func(step string) error {
		if step == kekStepBeforeCommit {
			a, err := Open(context.Background(), s.cfg, tLogger(), clock.Real{})
			if err == nil {
				a.Close()
			}
			openErr = err
			_, backupErr = Backup(context.Background(), s.cfg, BackupOptions{Out: out}, clock.Real{})
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("RotateKEK: %v", err)
	}
	if !errors.Is(openErr, ErrRotationRunning) || !strings.Contains(openErr.Error(), "refusing to start") {
		t.Errorf("Open during the rotation: %v, want a refusal naming the rotation", openErr)
	}
	if !errors.Is(backupErr, ErrRotationRunning) || Exists(out) {
		t.Errorf("Backup during the rotation: %v, want a refusal naming the rotation and no bundle", backupErr)
	}
	// Afterwards both work.
	if _, err := Backup(context.Background(), s.cfg, BackupOptions{Out: out}, clock.Real{}); err != nil {
		t.Errorf("Backup after the rotation: %v", err)
	}
	tCheckServes(t, s)
}

// tCopyDataDir copies the files of a data directory (not its
// subdirectories) into a new one, as cp -a would.
func tCopyDataDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		tCopyFile(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()), fi.Mode().Perm())
	}
}
