package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
	"github.com/certwright/certwright/internal/web/apitypes"
	"golang.org/x/crypto/ocsp"
)

// The fixtures in testdata/legacy-5e5a77d* were made by the certwright
// binary built from commit 5e5a77d (keys wrapped with the key ID as their
// only additional data): init, serve, a custom profile with key_export:
// retain, a machine principal "deployer" (role issuer, token
// deployer.token), one certificate with a retained key (svc.pem/svc.key)
// and one pending external CA. See testdata/legacy-5e5a77d/README.

// tLegacyTime is shortly after the fixtures were made: every certificate
// in them is valid then.
var tLegacyTime = time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)

// tLegacyFixture is one backend's fixture.
type tLegacyFixture struct {
	name string
	dir  string
	// setup fills cfg.DataDir (and the database) from dir; it returns the
	// config, or skips when the backend is unavailable.
	setup func(t *testing.T, dir string) *config.Config
}

// tEachLegacyFixture runs test in parallel on every legacy fixture, with
// the configuration fx.setup made for it.
func tEachLegacyFixture(t *testing.T, test func(t *testing.T, fx tLegacyFixture, cfg *config.Config)) {
	t.Parallel()
	for _, fx := range tLegacyFixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			test(t, fx, fx.setup(t, fx.dir))
		})
	}
}

var tLegacyFixtures = []tLegacyFixture{
	{"sqlite", "testdata/legacy-5e5a77d", func(t *testing.T, dir string) *config.Config {
		cfg := tConfig(t, "")
		tLegacyFiles(t, dir, cfg)
		tCopyFile(t, filepath.Join(dir, "certwright.db"), filepath.Join(cfg.DataDir, DBFile), 0o600)
		return cfg
	}},
	{"postgres", "testdata/legacy-5e5a77d-postgres", func(t *testing.T, dir string) *config.Config {
		base := os.Getenv(tEnvPostgres)
		if base == "" {
			t.Skip("set " + tEnvPostgres + "=postgres://... to run this test on PostgreSQL")
		}
		dbURL := storetest.PostgresSchema(t, base)
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		dump, err := os.ReadFile(filepath.Join(dir, "dump.sql"))
		if err != nil {
			t.Fatal(err)
		}
		// pg_dump of schema cw_legacy_5e5a77d, its qualifier replaced
		// by __SCHEMA__. (row contents are untouched: the audit chain
		// hashes them).
		sqlText := strings.ReplaceAll(string(dump), "__SCHEMA__.", u.Query().Get("search_path")+".")
		db, err := postgres.Open(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), sqlText); err != nil {
			t.Fatalf("load %s/dump.sql: %v", dir, err)
		}
		cfg := tConfig(t, dbURL)
		tLegacyFiles(t, dir, cfg)
		return cfg
	}},
}

// tLegacyFiles makes cfg.DataDir a data directory holding the fixture's
// KEK, admin token and root certificate. tls_names are the fixture's
// server certificate's names (the default before it took in the public
// URL's host), so a start does not re-issue that certificate with a new key.
func tLegacyFiles(t *testing.T, dir string, cfg *config.Config) {
	t.Helper()
	cfg.TLSNames = []string{"localhost", "127.0.0.1", "::1"}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	tCopyFile(t, filepath.Join(dir, "TEST-FIXTURE-ONLY.kek"), filepath.Join(cfg.DataDir, KEKFile), 0o600)
	tCopyFile(t, filepath.Join(dir, "admin.token"), filepath.Join(cfg.DataDir, TokenFile), 0o600)
	tCopyFile(t, filepath.Join(dir, "root.pem"), filepath.Join(cfg.DataDir, RootFile), 0o644)
}

func tCopyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func tReadFixture(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tKeyRow is one wrapped key as the database holds it.
type tKeyRow struct {
	where, id string
	blob      []byte
}

// tKeyRows reads every software-wrapped key of the four tables that hold
// them, in a fixed order.
func tKeyRows(t *testing.T, cfg *config.Config) []tKeyRow {
	t.Helper()
	db := tDBWriter(t, cfg)
	var out []tKeyRow
	for _, q := range []string{
		`SELECT 'ca ' || id, key_id, key_blob FROM cas WHERE key_blob IS NOT NULL ORDER BY id`,
		`SELECT 'certificate ' || serial, managed_key_id, managed_key_blob FROM certificates WHERE managed_key_blob IS NOT NULL ORDER BY serial`,
		`SELECT 'ocsp ' || ca_id, key_id, key_blob FROM ocsp_responders WHERE key_blob IS NOT NULL ORDER BY ca_id`,
		`SELECT 'audit ' || id, key_id, key_blob FROM audit_keys WHERE key_blob IS NOT NULL ORDER BY id`,
	} {
		rows, err := db.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var r tKeyRow
			if err := rows.Scan(&r.where, &r.id, &r.blob); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// tDetails decodes an audit event's details.
func tDetails(t *testing.T, ev audit.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Details, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLegacyKeysMigrate starts the new code on a data directory made by
// the 5e5a77d binary, on SQLite and PostgreSQL: every key (3 CAs, the
// server's TLS key, a retained managed key, 2 OCSP responders, the audit
// key) is re-wrapped in the purpose-bound format under its old ID, once,
// in one audited step; afterwards every key still does its job, and a
// second start changes nothing.
func TestLegacyKeysMigrate(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		before := tKeyRows(t, cfg)
		if len(before) != 8 {
			t.Fatalf("fixture holds %d wrapped keys, want 8", len(before))
		}
		for _, r := range before {
			if r.blob[0] != 1 {
				t.Fatalf("fixture key of %s has format %d, want the legacy 1", r.where, r.blob[0])
			}
		}

		clk := clock.NewFake(tLegacyTime)
		in := tStart(t, cfg, clk)
		after := tKeyRows(t, cfg)
		if len(after) != len(before) {
			t.Fatalf("%d wrapped keys after the migration, want %d", len(after), len(before))
		}
		for i, r := range after {
			if r.where != before[i].where || r.id != before[i].id {
				t.Errorf("key %d: %s %s, was %s %s", i, r.where, r.id, before[i].where, before[i].id)
			}
			if r.blob[0] != 2 {
				t.Errorf("key of %s has format %d after the migration, want 2", r.where, r.blob[0])
			}
		}
		evs := tAuditEventsOf(t, in, "key.rewrap")
		if len(evs) != 1 || evs[0].Outcome != audit.Success {
			t.Fatalf("key.rewrap events = %+v, want one success", evs)
		}
		if d := tDetails(t, evs[0]); d["found"] != 8.0 || d["rewrapped"] != 8.0 || d["refused"] != nil {
			t.Errorf("key.rewrap details = %v, want 8 found and re-wrapped", d)
		}
		if m, err := in.app.store.GetSetting(context.Background(), settingKeyFormat); err != nil || string(m) != "done" {
			t.Errorf("setting %s = %q, %v; want done", settingKeyFormat, m, err)
		}

		// The server's TLS key: the listener serves the fixture's
		// certificate with it.
		serial := strings.TrimSpace(string(tServerTLSSerial(t, in)))
		if got := in.servedLeaf(); got == nil || strings.TrimLeft(got.SerialNumber.Text(16), "0") != strings.TrimLeft(serial, "0") {
			t.Errorf("served certificate %v, want the fixture's %s", got, serial)
		}
		// The managed key: the fixture's machine gets the very key
		// the old server generated.
		deployer := "Bearer " + strings.TrimSpace(string(tReadFixture(t, fx.dir, "deployer.token")))
		svc := tPEMCert(t, string(tReadFixture(t, fx.dir, "svc.pem")))
		r := in.raw("GET", "/api/v1/certificates/"+tStoredSerial(t, cfg, svc)+"/key", deployer, nil)
		if r.status != http.StatusOK {
			t.Fatalf("export of the fixture's managed key: %d %s", r.status, tTrim(r.body))
		}
		if !tSamePublic(tPEMKeyPublic(t, r.body), svc.PublicKey) ||
			!tSamePublic(tPEMKeyPublic(t, tReadFixture(t, fx.dir, "svc.key")), svc.PublicKey) {
			t.Fatal("exported key is not the fixture's svc.key")
		}
		// The CA keys: the issuing CA signs, the root's key made the
		// issuing CA's certificate, and the pending external CA still
		// has the key of its CSR.
		if r := tSignWith(t, in, "issuing", "after-upgrade.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("issuing CA after the upgrade: %d %s", r.status, tTrim(r.body))
		}
		var pending apitypes.CA
		in.must(http.StatusOK, "GET", "/api/v1/cas/corp-pending", nil, &pending)
		if pending.Status != "pending" || pending.CSRPEM == "" {
			t.Errorf("pending external CA = %+v", pending)
		}
		// The OCSP responder keys sign answers.
		tOCSPGood(t, in, svc, tResponderSerial(t, cfg, "issuing"))
		// The audit key signs a checkpoint over the new events, and
		// the whole log (made by both versions) verifies.
		if _, err := in.app.audit.Checkpoint(context.Background()); err != nil {
			t.Fatalf("checkpoint with the migrated audit key: %v", err)
		}
		rep, err := audit.Verify(context.Background(), in.app.store, in.app.keys)
		if err != nil || !rep.Intact {
			t.Fatalf("audit verify after the upgrade: %+v, %v", rep, err)
		}

		// A second start finds nothing to do.
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
		again := tStart(t, cfg, clk)
		for i, r := range tKeyRows(t, cfg) {
			if string(r.blob) != string(after[i].blob) {
				t.Errorf("second start re-wrapped the key of %s again", r.where)
			}
		}
		if evs := tAuditEventsOf(t, again, "key.rewrap"); len(evs) != 1 {
			t.Errorf("%d key.rewrap events after the second start, want 1", len(evs))
		}
	})
}

// TestLegacyCopiedCAKeyNotMigrated: the attacker of issue 13 #4 copied
// the issuing CA's (legacy) wrapped key onto the managed certificate's row
// before the upgrade. The migration re-wraps by where a key sits, so it
// checks the key against that row's certificate first: the copied key is
// not re-wrapped (logged, audited as a failed key.rewrap), its export is
// refused and is not the CA's key, and everything else migrates and works.
func TestLegacyCopiedCAKeyNotMigrated(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		svc := tPEMCert(t, string(tReadFixture(t, fx.dir, "svc.pem")))
		serial := tStoredSerial(t, cfg, svc)
		tCopyCAKeyToCert(t, tDBWriter(t, cfg), "issuing", serial)

		in := tStart(t, cfg, clock.NewFake(tLegacyTime))
		evs := tAuditEventsOf(t, in, "key.rewrap")
		if len(evs) != 1 || evs[0].Outcome != audit.Failed {
			t.Fatalf("key.rewrap events = %+v, want one failure", evs)
		}
		d := tDetails(t, evs[0])
		if d["found"] != 8.0 || d["rewrapped"] != 7.0 || !strings.Contains(tJSON(t, d["refused"]), "certificate "+serial) {
			t.Errorf("key.rewrap details = %v, want 8 found, 7 re-wrapped, certificate %s refused", d, serial)
		}
		caPub := tCAPublicKey(t, in, "issuing")
		deployer := "Bearer " + strings.TrimSpace(string(tReadFixture(t, fx.dir, "deployer.token")))
		r := in.raw("GET", "/api/v1/certificates/"+serial+"/key", deployer, nil)
		if r.status == http.StatusOK && tSamePublic(tPEMKeyPublic(t, r.body), caPub) {
			t.Fatal("the issuing CA's private key was handed out")
		}
		if r.status != http.StatusConflict || strings.Contains(string(r.body), "PRIVATE KEY") {
			t.Fatalf("export of the tampered row: %d %s, want 409 without a key", r.status, tTrim(r.body))
		}
		if r := tSignWith(t, in, "issuing", "after-upgrade.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("issuing CA after the upgrade: %d %s", r.status, tTrim(r.body))
		}
	})
}

// tStoredSerial is the serial of c as the store writes it.
func tStoredSerial(t *testing.T, cfg *config.Config, c *x509.Certificate) string {
	t.Helper()
	fp := tDBWriter(t, cfg)
	var serial string
	want := strings.ToLower(c.SerialNumber.Text(16))
	for _, s := range []string{want, "0" + want} {
		if err := fp.QueryRowContext(context.Background(), "SELECT serial FROM certificates WHERE serial = '"+s+"'").Scan(&serial); err == nil {
			return serial
		}
	}
	t.Fatalf("no certificate row for serial %s", want)
	return ""
}

// tResponderSerial is the serial of CA name's stored OCSP responder.
func tResponderSerial(t *testing.T, cfg *config.Config, name string) string {
	t.Helper()
	var der []byte
	err := tDBWriter(t, cfg).QueryRowContext(context.Background(),
		"SELECT r.cert_der FROM ocsp_responders r JOIN cas c ON c.id = r.ca_id WHERE c.name = '"+name+"'").Scan(&der)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", c.SerialNumber)
}

func tServerTLSSerial(t *testing.T, in *tInstance) []byte {
	t.Helper()
	b, err := in.app.store.GetSetting(context.Background(), settingServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tOCSPGood asks the instance's OCSP responder, at the path c names, about
// c (issued by the issuing CA) and fails unless the answer is good and
// signed by the responder stored before the upgrade (loaded with its
// migrated key, not replaced).
func tOCSPGood(t *testing.T, in *tInstance, c *x509.Certificate, responderSerial string) {
	t.Helper()
	var ca apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &ca)
	issuer := tPEMCert(t, ca.CertificatePEM)
	r := tOCSPResponse(t, in, c, issuer)
	if r.Status != ocsp.Good || r.Certificate == nil {
		t.Fatalf("OCSP status %d, responder %v; want good from a delegated responder", r.Status, r.Certificate)
	}
	if got := fmt.Sprintf("%x", r.Certificate.SerialNumber); strings.TrimLeft(got, "0") != strings.TrimLeft(responderSerial, "0") {
		t.Errorf("OCSP answered by responder %s, want the one stored before the upgrade, %s", got, responderSerial)
	}
}

// TestLegacyMigrationIsAtomic: the re-wrap runs in one transaction. When
// the last CA's key does not open (here: another CA's legacy blob copied
// onto it, so its ID no longer matches), the start is refused and nothing
// is changed: the keys re-wrapped before it are rolled back, no marker and
// no audit event are written, and the next start tries again.
func TestLegacyMigrationIsAtomic(t *testing.T) {
	tEachLegacyFixture(t, func(t *testing.T, fx tLegacyFixture, cfg *config.Config) {
		db := tDBWriter(t, cfg)
		tExec(t, db, 1, `UPDATE cas SET key_blob = (SELECT key_blob FROM cas ORDER BY id LIMIT 1)
			WHERE id = (SELECT id FROM cas ORDER BY id DESC LIMIT 1)`)
		before := tKeyRows(t, cfg)

		a, err := Open(context.Background(), cfg, tLogger(), clock.NewFake(tLegacyTime))
		if err == nil {
			a.Close()
			t.Fatal("Open succeeded with a CA key that does not open")
		}
		if !errors.Is(err, keys.ErrWrongKEK) || !strings.Contains(err.Error(), "refusing to start") {
			t.Errorf("Open: %v, want a refusal wrapping ErrWrongKEK", err)
		}
		for i, r := range tKeyRows(t, cfg) {
			if !bytes.Equal(r.blob, before[i].blob) {
				t.Errorf("the key of %s changed although the migration failed", r.where)
			}
		}
		var n int
		if err := db.QueryRowContext(context.Background(),
			"SELECT count(*) FROM settings WHERE name = '"+settingKeyFormat+"'").Scan(&n); err != nil || n != 0 {
			t.Errorf("marker rows after the failed migration: %d (%v), want 0", n, err)
		}
		if err := db.QueryRowContext(context.Background(),
			"SELECT count(*) FROM audit_events WHERE action = 'key.rewrap'").Scan(&n); err != nil || n != 0 {
			t.Errorf("key.rewrap events after the failed migration: %d (%v), want 0", n, err)
		}
		if tMarkerExists(t, cfg) {
			t.Errorf("%s written although the migration failed", KeysMarkerFile)
		}
	})
}
