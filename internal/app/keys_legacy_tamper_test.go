package app

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
)

// A database writer (no KEK, no access to the data directory) who also
// replaces the certificate of the row holding a copied legacy key — with
// the CA's own certificate, so the key matches "the row's public key" — or
// who puts a legacy blob back after the upgrade and deletes the marker
// setting, must still not get a CA's key re-wrapped as a managed key.

// tExecArgs runs one statement with ? placeholders (rewritten to $n on
// PostgreSQL) and fails unless it changed exactly want rows.
func tExecArgs(t *testing.T, db *sql.DB, cfg *config.Config, want int64, query string, args ...any) {
	t.Helper()
	if cfg.DB != "" {
		var b strings.Builder
		n := 0
		for _, r := range query {
			if r == '?' {
				n++
				fmt.Fprintf(&b, "$%d", n)
				continue
			}
			b.WriteRune(r)
		}
		query = b.String()
	}
	res, err := db.ExecContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != want {
		t.Fatalf("%s: %d rows changed (%v), want %d", query, n, err, want)
	}
}

// tLegacyCAKey is the issuing CA's wrapped key and certificate as the
// fixture (made by 5e5a77d) holds them: a legacy blob.
type tLegacyCAKey struct {
	id      string
	blob    []byte
	certDER []byte
}

func tReadLegacyCAKey(t *testing.T, db *sql.DB, name string) tLegacyCAKey {
	t.Helper()
	var k tLegacyCAKey
	if err := db.QueryRowContext(context.Background(), "SELECT key_id, key_blob, cert_der FROM cas WHERE name = '"+name+"'").
		Scan(&k.id, &k.blob, &k.certDER); err != nil {
		t.Fatal(err)
	}
	if k.blob[0] != 1 {
		t.Fatalf("fixture key of CA %s has format %d, want the legacy 1", name, k.blob[0])
	}
	return k
}

// tPlantCAKey puts k (key id, blob) onto certificate serial's managed key
// columns and the CA's certificate as that row's certificate.
func tPlantCAKey(t *testing.T, db *sql.DB, cfg *config.Config, k tLegacyCAKey, serial string) {
	t.Helper()
	tExecArgs(t, db, cfg, 1, "UPDATE certificates SET managed_key_id = ?, managed_key_blob = ?, der = ? WHERE serial = ?",
		k.id, k.blob, k.certDER, serial)
}

// tManagedBlob is the managed key blob of certificate serial.
func tManagedBlob(t *testing.T, db *sql.DB, serial string) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRowContext(context.Background(), "SELECT managed_key_blob FROM certificates WHERE serial = '"+serial+"'").Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// tExportRefused asks for certificate serial's key with the fixture's
// key:export token and fails unless the answer is 409 without any key,
// certainly not the issuing CA's, and the refusal was audited as a failed
// key.export for serial.
func tExportRefused(t *testing.T, in *tInstance, fxDir, serial string) {
	t.Helper()
	caPub := tCAPublicKey(t, in, "issuing")
	deployer := "Bearer " + strings.TrimSpace(string(tReadFixture(t, fxDir, "deployer.token")))
	r := in.raw("GET", "/api/v1/certificates/"+serial+"/key", deployer, nil)
	if r.status == http.StatusOK && tSamePublic(tPEMKeyPublic(t, r.body), caPub) {
		t.Fatal("the issuing CA's private key was handed out to a key:export token")
	}
	if r.status != http.StatusConflict || strings.Contains(string(r.body), "PRIVATE KEY") {
		t.Fatalf("export of the tampered row: %d %s, want 409 without a key", r.status, tTrim(r.body))
	}
	evs := tAuditEventsOf(t, in, "key.export")
	if len(evs) == 0 || evs[len(evs)-1].Outcome != audit.Failed || evs[len(evs)-1].Target != serial {
		t.Errorf("key.export events = %+v, want the last a failure for %s", evs, serial)
	}
}

// tRewrapRefused fails unless in's audit log holds n key.rewrap events,
// the last a failure that found found keys, re-wrapped rewrapped and
// refused certificate serial.
func tRewrapRefused(t *testing.T, in *tInstance, n int, found, rewrapped float64, serial string) {
	t.Helper()
	evs := tAuditEventsOf(t, in, "key.rewrap")
	if len(evs) != n || evs[n-1].Outcome != audit.Failed {
		t.Errorf("key.rewrap events = %d, outcomes %v; want %d, the last a failure", len(evs), tOutcomes(evs), n)
	} else if d := tDetails(t, evs[n-1]); d["found"] != found || d["rewrapped"] != rewrapped || !strings.Contains(tJSON(t, d["refused"]), "certificate "+serial) {
		t.Errorf("key.rewrap details = %v, want %v found, %v re-wrapped, certificate %s refused", d, found, rewrapped, serial)
	}
}

// tMarkerExists reports whether cfg's data directory holds the keys marker
// file (and fails when it exists with a mode other than 0600).
func tMarkerExists(t *testing.T, cfg *config.Config) bool {
	t.Helper()
	fi, err := os.Stat(filepath.Join(cfg.DataDir, KeysMarkerFile))
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", KeysMarkerFile, fi.Mode().Perm())
	}
	return true
}

// TestLegacyCAKeyWithCADERNotMigrated: before the upgrade, the database
// writer copies the issuing CA's legacy key onto a managed certificate's
// row AND replaces that row's certificate with the CA's own, so the key's
// public half equals the row's public key. The re-wrap refuses it all the
// same (the row's certificate is a CA certificate, not an end-entity
// certificate issued by its CA), the key stays legacy, its export is
// refused (409, audited) and the issuing CA keeps signing.
func TestLegacyCAKeyWithCADERNotMigrated(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		db := tDBWriter(t, cfg)
		serial := tStoredSerial(t, cfg, tPEMCert(t, string(tReadFixture(t, fx.dir, "svc.pem"))))
		tPlantCAKey(t, db, cfg, tReadLegacyCAKey(t, db, "issuing"), serial)

		in := tStart(t, cfg, clock.NewFake(tLegacyTime))
		tRewrapRefused(t, in, 1, 8, 7, serial)
		if b := tManagedBlob(t, db, serial); b[0] != 1 {
			t.Errorf("the CA key on certificate %s was re-wrapped (format %d)", serial, b[0])
		}
		tExportRefused(t, in, fx.dir, serial)
		if r := tSignWith(t, in, "issuing", "after-upgrade.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("issuing CA after the attack: %d %s", r.status, tTrim(r.body))
		}
	})
}

// TestLegacyKeyRestoredAfterUpgradeNotOpened: after a clean upgrade, the
// database writer puts the issuing CA's legacy blob (from a backup made
// before it) onto a managed certificate's row with the CA's certificate,
// and deletes the marker setting keys_purpose_bound so the next start
// scans again. The data directory's marker file says the migration
// finished, so that start opens no legacy blob: the row is refused (audited
// key.rewrap failure), stays legacy, its export is refused, and the CA
// keeps signing.
func TestLegacyKeyRestoredAfterUpgradeNotOpened(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		db := tDBWriter(t, cfg)
		backup := tReadLegacyCAKey(t, db, "issuing")
		if tMarkerExists(t, cfg) {
			t.Fatal("the fixture's data directory already has the marker file")
		}
		clk := clock.NewFake(tLegacyTime)
		in := tStart(t, cfg, clk)
		if !tMarkerExists(t, cfg) {
			t.Errorf("no %s after the migration", KeysMarkerFile)
		}
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}

		serial := tStoredSerial(t, cfg, tPEMCert(t, string(tReadFixture(t, fx.dir, "svc.pem"))))
		tPlantCAKey(t, db, cfg, backup, serial)
		tExec(t, db, 1, "DELETE FROM settings WHERE name = '"+settingKeyFormat+"'")

		again := tStart(t, cfg, clk)
		if !again.app.soft.LegacyClosed() {
			t.Error("the provider still opens legacy keys")
		}
		tRewrapRefused(t, again, 2, 1, 0, serial) // the upgrade's, then the failure
		if b := tManagedBlob(t, db, serial); !bytes.Equal(b, backup.blob) {
			t.Errorf("the restored CA key on certificate %s was changed (format %d)", serial, b[0])
		}
		tExportRefused(t, again, fx.dir, serial)
		if r := tSignWith(t, again, "issuing", "after-restore.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("issuing CA after the attack: %d %s", r.status, tTrim(r.body))
		}
	})
}

// TestKeysMarkerReplica: two data directories (replicas) share one
// database. The first start migrates and writes its own marker file; the
// second replica, upgraded later without the file, finds the database's
// marker, re-wraps nothing, and writes its file; from then on it opens no
// legacy blob either, even when the database's marker is deleted.
func TestKeysMarkerReplica(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		db := tDBWriter(t, cfg)
		backup := tReadLegacyCAKey(t, db, "issuing")
		clk := clock.NewFake(tLegacyTime)
		in := tStart(t, cfg, clk)
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
		migrated := tKeyRows(t, cfg)

		replica := *cfg
		replica.DataDir = filepath.Join(t.TempDir(), "replica")
		replica.DB = DBURL(cfg)
		replica.HTTPSListen, replica.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
		tLegacyFiles(t, fx.dir, &replica)
		if tMarkerExists(t, &replica) {
			t.Fatal("the replica's data directory already has the marker file")
		}
		in2 := tStart(t, &replica, clk)
		if !tMarkerExists(t, &replica) || !in2.app.soft.LegacyClosed() {
			t.Error("the replica did not record that its keys are purpose-bound")
		}
		for i, r := range tKeyRows(t, cfg) {
			if !bytes.Equal(r.blob, migrated[i].blob) {
				t.Errorf("the replica re-wrapped the key of %s again", r.where)
			}
		}
		if evs := tAuditEventsOf(t, in2, "key.rewrap"); len(evs) != 1 {
			t.Errorf("%d key.rewrap events after the replica's start, want 1", len(evs))
		}
		if err := in2.stop(); err != nil {
			t.Fatal(err)
		}

		serial := tStoredSerial(t, cfg, tPEMCert(t, string(tReadFixture(t, fx.dir, "svc.pem"))))
		tPlantCAKey(t, db, cfg, backup, serial)
		tExec(t, db, 1, "DELETE FROM settings WHERE name = '"+settingKeyFormat+"'")
		in3 := tStart(t, &replica, clk)
		if b := tManagedBlob(t, db, serial); !bytes.Equal(b, backup.blob) {
			t.Errorf("the replica re-wrapped the restored CA key on certificate %s (format %d)", serial, b[0])
		}
		tExportRefused(t, in3, fx.dir, serial)
	})
}

// TestInitWritesKeysMarker: a new data directory has the marker file from
// the start (no legacy key ever existed there), so the server never opens
// a legacy blob.
func TestInitWritesKeysMarker(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	if !tMarkerExists(t, in.cfg) {
		t.Fatalf("init wrote no %s", KeysMarkerFile)
	}
	if !in.app.soft.LegacyClosed() {
		t.Error("a fresh server still opens legacy keys")
	}
	if evs := tAuditEventsOf(t, in, "key.rewrap"); len(evs) != 0 {
		t.Errorf("key.rewrap events on a fresh server: %+v", evs)
	}
}

func tOutcomes(evs []audit.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Outcome))
	}
	return out
}

// TestLegacyOwnKeyRestoredAfterUpgradeNotOpened isolates the marker file:
// after the upgrade, a managed certificate's own legacy blob (consistent
// with its row in every way: its key, its end-entity certificate, issued
// by its CA) is put back from a backup and the marker setting deleted. The
// data directory's marker file says the migration finished, so no legacy
// blob is opened, whatever the row: it is not re-wrapped (audited), and its
// export is refused.
func TestLegacyOwnKeyRestoredAfterUpgradeNotOpened(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		db := tDBWriter(t, cfg)
		serial := tStoredSerial(t, cfg, tPEMCert(t, string(tReadFixture(t, fx.dir, "svc.pem"))))
		backup := tManagedBlob(t, db, serial)
		clk := clock.NewFake(tLegacyTime)
		in := tStart(t, cfg, clk)
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
		tExecArgs(t, db, cfg, 1, "UPDATE certificates SET managed_key_blob = ? WHERE serial = ?", backup, serial)
		tExec(t, db, 1, "DELETE FROM settings WHERE name = '"+settingKeyFormat+"'")

		again := tStart(t, cfg, clk)
		if b := tManagedBlob(t, db, serial); !bytes.Equal(b, backup) {
			t.Errorf("the restored legacy key of certificate %s was re-wrapped (format %d)", serial, b[0])
		}
		evs := tAuditEventsOf(t, again, "key.rewrap")
		if len(evs) != 2 || evs[1].Outcome != audit.Failed {
			t.Errorf("key.rewrap events = %d, outcomes %v; want the upgrade's and a failure", len(evs), tOutcomes(evs))
		}
		deployer := "Bearer " + strings.TrimSpace(string(tReadFixture(t, fx.dir, "deployer.token")))
		r := again.raw("GET", "/api/v1/certificates/"+serial+"/key", deployer, nil)
		if r.status != http.StatusConflict || strings.Contains(string(r.body), "PRIVATE KEY") {
			t.Fatalf("export of a legacy key restored after the upgrade: %d %s, want 409 without a key", r.status, tTrim(r.body))
		}
	})
}

// TestLegacyCAKeyAfterUpgradeRefusesStart: a CA's legacy blob back in the
// database after the upgrade (here: the issuing CA's own, as when a whole
// database backup made before the upgrade is restored) is not opened, so
// the start is refused with a message naming the marker file. Deleting
// that file, as the message says to do only for such a restore, lets the
// next start migrate the restored key again.
func TestLegacyCAKeyAfterUpgradeRefusesStart(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		db := tDBWriter(t, cfg)
		backup := tReadLegacyCAKey(t, db, "issuing")
		clk := clock.NewFake(tLegacyTime)
		in := tStart(t, cfg, clk)
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
		tExecArgs(t, db, cfg, 1, "UPDATE cas SET key_blob = ? WHERE name = 'issuing'", backup.blob)
		tExec(t, db, 1, "DELETE FROM settings WHERE name = '"+settingKeyFormat+"'")

		for range 2 { // the refusal holds at every start
			a, err := Open(context.Background(), cfg, tLogger(), clk)
			if err == nil {
				a.Close()
				t.Fatal("Open succeeded with a legacy CA key after the upgrade")
			}
			if !errors.Is(err, keys.ErrLegacyFormat) || !strings.Contains(err.Error(), KeysMarkerFile) {
				t.Fatalf("Open: %v; want a refusal wrapping ErrLegacyFormat that names %s", err, KeysMarkerFile)
			}
		}
		var blob []byte
		if err := db.QueryRowContext(context.Background(), "SELECT key_blob FROM cas WHERE name = 'issuing'").Scan(&blob); err != nil || !bytes.Equal(blob, backup.blob) {
			t.Fatalf("the restored CA key changed (%v) although the marker file was there", err)
		}

		if err := os.Remove(filepath.Join(cfg.DataDir, KeysMarkerFile)); err != nil {
			t.Fatal(err)
		}
		again := tStart(t, cfg, clk)
		if err := db.QueryRowContext(context.Background(), "SELECT key_blob FROM cas WHERE name = 'issuing'").Scan(&blob); err != nil || blob[0] != 2 {
			t.Fatalf("the restored CA key was not re-wrapped after the marker file was deleted (%v)", err)
		}
		if !tMarkerExists(t, cfg) {
			t.Errorf("no %s after the second migration", KeysMarkerFile)
		}
		if r := tSignWith(t, again, "issuing", "after-restore.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("issuing CA after the restore: %d %s", r.status, tTrim(r.body))
		}
	})
}
