package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/backup"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tAck is a certificate the API acknowledged: issued, and revoked when
// revoked is set.
type tAck struct {
	serial  string
	revoked bool
}

// tPost sends v as JSON with the admin token from any goroutine (no
// t.Fatal) and decodes a 2xx answer into out.
func (in *tInstance) tPost(path string, v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", in.l.HTTPSURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", in.bearer())
	req.Header.Set("Content-Type", "application/json")
	resp, err := in.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, tTrim(body))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// tRestoredConfig is the configuration serve reads from a restored
// directory.
func tRestoredConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg := &config.Config{}
	if err := cfg.Load(filepath.Join(dir, config.FileName)); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tCheckRestored checks that the restored instance holds every
// acknowledged certificate and revocation, and the audit log up to the
// head seen before the backup, and that audit verify says intact.
func tCheckRestored(t *testing.T, out *tInstance, acked []tAck, want []audit.Event) {
	t.Helper()
	for _, a := range acked {
		var c apitypes.Certificate
		out.must(http.StatusOK, "GET", "/api/v1/certificates/"+a.serial, nil, &c)
		if a.revoked && c.Status != "revoked" {
			t.Errorf("certificate %s: status %q after the restore, but its revocation was acknowledged before the backup", a.serial, c.Status)
		}
	}
	got := tAuditEvents(t, out, 0)
	if len(got) < len(want) {
		t.Fatalf("restored audit log ends at event %d, the head before the backup was %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Hash, want[i].Hash) {
			t.Fatalf("restored audit event %d differs from the original (%s vs %s)", i+1, got[i].Action, want[i].Action)
		}
	}
	var res apitypes.AuditVerifyResult
	out.must(http.StatusOK, "GET", "/api/v1/audit/verify", nil, &res)
	if !res.Intact {
		t.Fatalf("audit verify on the restored instance: %+v", res.Problem)
	}
	t.Logf("restored audit log: %d events, %d checkpoints, anchors %v", res.Events, res.Checkpoints, res.Anchors)
	if res.Checkpoints < 2 {
		t.Errorf("restored log has %d checkpoints; the test meant to back up while checkpoints were written", res.Checkpoints)
	}
}

// TestBackupUnderLoad backs up a running SQLite instance while four
// clients issue and revoke certificates, restores the bundle into a new
// directory, serves it, and finds everything acknowledged before the
// backup began, with the audit log intact.
func TestBackupUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := tConfig(t, "")
	cfg.Audit.AnchorLog = "anchors.jsonl" // in the data directory: bundled
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	// Checkpoints (and with them anchor-file writes) race the snapshot, as
	// the server's checkpointer would under a small checkpoint_events.
	loadDone := make(chan struct{})
	cpDone := make(chan error, 1)
	go func() {
		defer close(cpDone)
		for range 3000 {
			select {
			case <-loadDone:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := in.app.audit.Checkpoint(ctx); err != nil {
				cpDone <- err
				return
			}
		}
	}()

	const workers, perWorker = 4, 25
	var (
		mu      sync.Mutex
		acked   []tAck
		started = make(chan struct{}) // closed once enough is acknowledged
		once    sync.Once
	)
	key := tECKey(t, elliptic.P256())
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				name := fmt.Sprintf("w%d-%d.example.test", w, i)
				var iss apitypes.IssuedCertificate
				if err := in.tPost("/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: string(tCSR(t, key, name)), Profile: "web_server"}, &iss); err != nil {
					errs <- err
					return
				}
				a := tAck{serial: iss.Certificate.Serial}
				if i%5 == 0 {
					if err := in.tPost("/api/v1/certificates/"+a.serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil); err != nil {
						errs <- err
						return
					}
					a.revoked = true
				}
				mu.Lock()
				acked = append(acked, a)
				if len(acked) >= workers*perWorker/3 {
					once.Do(func() { close(started) })
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the load did not reach a third of its certificates within 60s")
	}
	mu.Lock()
	before := append([]tAck(nil), acked...)
	mu.Unlock()
	headSeq := tAuditHead(t, in)
	out := filepath.Join(t.TempDir(), "backup.tar.gz")
	res, err := Backup(ctx, in.cfg, BackupOptions{Out: out, Version: "test"}, clock.Real{})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	wg.Wait()
	close(loadDone)
	if err := <-cpDone; err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("load: %v", err)
	}
	t.Logf("backup began after %d acknowledged certificates; %d more were acknowledged while it ran", len(before), during)
	if res.KEKPath != filepath.Join(cfg.DataDir, KEKFile) || !res.Manifest.DatabaseIncluded || res.PGDump != "" {
		t.Errorf("result %+v", res)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle: %v, %v; want mode 0600", fi, err)
	}
	tCheckBundleContents(t, out, res.KEKPath)
	if !slices.ContainsFunc(res.Manifest.Entries, func(e backup.Entry) bool { return e.Name == "anchors.jsonl" }) {
		t.Errorf("the bundle lacks the anchor log kept in the data directory")
	}

	dir := filepath.Join(t.TempDir(), "restored")
	rr, err := Restore(ctx, RestoreOptions{
		Bundle: out, DataDir: dir, KEKFile: res.KEKPath, AdminTokenFile: filepath.Join(cfg.DataDir, TokenFile),
	}, tLogger(), clock.Real{})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("restored directory: %v, %v; want mode 0700", fi, err)
	}
	for _, f := range []string{KEKFile, TokenFile, DBFile, AnchorFile, KeysMarkerFile, config.FileName} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: %v, %v; want mode 0600", f, fi, err)
		}
	}
	if fp, _ := in.app.RootFingerprint(ctx); rr.RootFingerprint != fp {
		t.Errorf("restored root fingerprint %s, want %s", rr.RootFingerprint, fp)
	}
	// Every CRL number the original published is below lastCRL.
	var issuing apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuing)
	lastCRL, err := in.app.store.NextCRLNumber(ctx, issuing.ID)
	if err != nil {
		t.Fatal(err)
	}
	restored := tStart(t, tRestoredConfig(t, dir), clock.Real{})
	tCheckRestored(t, restored, before, tAuditEvents(t, in, 0)[:headSeq])
	// The original published CRLs after the snapshot: the restored
	// instance's numbers go on above them, never repeating one.
	if n := tCRLNumber(t, restored, issuing.ID); n <= lastCRL {
		t.Errorf("restored instance publishes CRL number %d; the original had already published up to %d", n, lastCRL-1)
	}
	// The restored instance works: it issues.
	restored.sign(tCSR(t, key, "after-restore.example.test"))
}

// tCheckBundleContents checks what a bundle holds: never the KEK nor the
// admin token; the anchor, marker, root and config, and the CA
// certificates.
func tCheckBundleContents(t *testing.T, path, kekPath string) {
	t.Helper()
	kek, err := software.LoadKEK(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.Verify(context.Background(), path, kek)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	have := map[string]bool{}
	for _, e := range m.Entries {
		have[e.Name] = true
	}
	for _, secret := range []string{KEKFile, TokenFile} {
		if have[secret] {
			t.Errorf("the bundle holds %s", secret)
		}
	}
	for _, want := range []string{AnchorFile, KeysMarkerFile, RootFile, config.FileName, bundleCerts + "ca-root.pem"} {
		if !have[want] {
			t.Errorf("the bundle lacks %s (has %v)", want, have)
		}
	}
}

// tNothingLeft fails if dir exists or a staging directory is left beside it.
func tNothingLeft(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a refused restore: %v", dir, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".restore-") {
			t.Errorf("staging directory %s left behind", e.Name())
		}
	}
}

// tRewrite rebuilds the bundle at path (authenticated with kek) with its
// manifest changed by edit, checksums recomputed and the manifest
// authenticated with sealWith: with the same KEK a genuine bundle, with
// another a forgery by someone without it.
func tRewrite(t *testing.T, path string, kek, sealWith []byte, edit func(*backup.Manifest)) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	m, err := backup.Extract(ctx, path, dir, func(string) bool { return true }, kek)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range m.Entries {
		names = append(names, e.Name)
	}
	edit(m)
	out := filepath.Join(t.TempDir(), "edited.tar.gz")
	if err := backup.Write(ctx, out, m, dir, names, sealWith); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestoreRefuses: a wrong KEK, a truncated or damaged bundle, one from
// a newer schema and a non-empty target are refused, and nothing is left.
func TestRestoreRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := tNewServer(t, "")
	in.sign(tCSR(t, tECKey(t, elliptic.P256()), "a.example.test"))
	good := filepath.Join(t.TempDir(), "good.tar.gz")
	res, err := Backup(ctx, in.cfg, BackupOptions{Out: good, Version: "test"}, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, in.cfg, BackupOptions{Out: good, Version: "test"}, clock.Real{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup over the first: %v", err)
	}
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "bad.tar.gz")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wrongKEK := filepath.Join(t.TempDir(), "other.kek")
	other := make([]byte, 32)
	rand.Read(other)
	if err := os.WriteFile(wrongKEK, other, 0o600); err != nil {
		t.Fatal(err)
	}
	kek, err := software.LoadKEK(res.KEKPath)
	if err != nil {
		t.Fatal(err)
	}
	known, err := store.KnownSchemaVersion("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), whole...)
	damaged[len(damaged)/2] ^= 0xff
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		bundle string
		kek    string
		dir    string
		db     string
		want   error
		msg    string
	}{
		{"wrong KEK", good, wrongKEK, "", "", ErrWrongBundleKEK, "kek file of the instance"},
		{"truncated", write(whole[:len(whole)*2/3]), res.KEKPath, "", "", backup.ErrTruncated, "copy the whole file"},
		{"damaged", write(damaged), res.KEKPath, "", "", nil, "bundle"},
		{"newer schema", tRewrite(t, good, kek, kek, func(m *backup.Manifest) { m.SchemaVersion = known + 1 }), res.KEKPath, "", "", backup.ErrNewerSchema, fmt.Sprintf("schema version %d", known+1)},
		// Someone with the bundle but not the KEK changes a file (here: drops
		// one) and recomputes the checksums: the manifest no longer
		// authenticates.
		{"changed without the KEK", tRewrite(t, good, kek, other, func(m *backup.Manifest) { m.Entries = m.Entries[:len(m.Entries)-1] }), res.KEKPath, "", "", backup.ErrUnauthenticated, "changed after it was made"},
		{"non-empty target", good, res.KEKPath, nonEmpty, "", ErrExists, "not empty"},
		{"--db for a SQLite backup", good, res.KEKPath, "", "postgres://cw@127.0.0.1/x", nil, "holds its database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.dir
			if dir == "" {
				dir = filepath.Join(t.TempDir(), "restored")
			}
			_, err := Restore(ctx, RestoreOptions{Bundle: tc.bundle, DataDir: dir, KEKFile: tc.kek, DB: tc.db}, tLogger(), clock.Real{})
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Restore = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if tc.dir == "" {
				tNothingLeft(t, dir)
			} else if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("the non-empty target now holds %d entries", len(ents))
			}
		})
	}
}

// TestBackupRestorePostgres: the bundle of a PostgreSQL instance holds
// everything but the database; the printed pg_dump and pg_restore commands,
// run as printed, with the bundle restore a directory that serves it all.
func TestBackupRestorePostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv(tEnvPostgres)
	if base == "" {
		t.Skip("set " + tEnvPostgres + "=postgres://... to run this test on PostgreSQL")
	}
	for _, tool := range []string{"pg_dump", "pg_restore", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install the PostgreSQL client tools", tool)
		}
	}
	ctx := context.Background()
	dbURL := storetest.PostgresSchema(t, base)
	cfg := tConfig(t, dbURL)
	cfg.Audit.CheckpointEvents = 3
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	key := tECKey(t, elliptic.P256())
	var acked []tAck
	for i := range 6 {
		c := in.sign(tCSR(t, key, fmt.Sprintf("pg%d.example.test", i)))
		a := tAck{serial: c.Certificate.Serial}
		if i%2 == 0 {
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+a.serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
			a.revoked = true
		}
		acked = append(acked, a)
	}
	if _, err := in.app.audit.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	headSeq := tAuditHead(t, in)
	work := t.TempDir()
	out := filepath.Join(work, "backup.tar.gz")
	res, err := Backup(ctx, in.cfg, BackupOptions{Out: out, Version: "test"}, clock.Real{})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if res.Manifest.Dialect != "postgres" || res.Manifest.DatabaseIncluded || !strings.Contains(res.PGDump, "--schema=cw_test_") || strings.Contains(res.PGDump, "search_path") {
		t.Fatalf("result: manifest %+v, pg_dump %q", res.Manifest, res.PGDump)
	}
	tCheckBundleContents(t, out, res.KEKPath)
	sh := func(cmd string) {
		t.Helper()
		c := exec.Command("sh", "-c", cmd)
		c.Dir = work
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, b)
		}
	}
	t.Logf("%s\n%s", res.PGDump, res.PGRestore)
	sh(res.PGDump)
	want := tAuditEvents(t, in, 0)[:headSeq]
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	// The database is lost; the dump brings it back.
	schema := res.PGDump[strings.Index(res.PGDump, "--schema=")+len("--schema="):]
	schema = schema[:strings.IndexByte(schema, ' ')]
	tPGExec(t, base, "DROP SCHEMA "+schema+" CASCADE")
	// Before pg_restore the (empty) database is refused and left as it was.
	tPGExec(t, base, "CREATE SCHEMA "+schema)
	early := filepath.Join(t.TempDir(), "early")
	if _, err := Restore(ctx, RestoreOptions{Bundle: out, DataDir: early, KEKFile: res.KEKPath}, tLogger(), clock.Real{}); err == nil || !strings.Contains(err.Error(), "pg_restore") {
		t.Fatalf("Restore before pg_restore: %v", err)
	}
	tNothingLeft(t, early)
	if _, err := store.Inspect(ctx, dbURL); err == nil {
		t.Fatal("the refused restore created tables in the empty database")
	}
	tPGExec(t, base, "DROP SCHEMA "+schema)
	sh(res.PGRestore)

	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(ctx, RestoreOptions{Bundle: out, DataDir: dir, KEKFile: filepath.Join(work, "no-such-kek")}, tLogger(), clock.Real{}); err == nil {
		t.Fatal("Restore without a KEK file succeeded")
	}
	if _, err := Restore(ctx, RestoreOptions{Bundle: out, DataDir: dir, KEKFile: res.KEKPath, AdminTokenFile: filepath.Join(cfg.DataDir, TokenFile)}, tLogger(), clock.Real{}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	restored := tStart(t, tRestoredConfig(t, dir), clock.Real{})
	tCheckRestored(t, restored, acked, want)
	if err := restored.stop(); err != nil {
		t.Fatal(err)
	}

	// --db names the database explicitly, and is written into the config.
	dir2 := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(ctx, RestoreOptions{Bundle: out, DataDir: dir2, KEKFile: res.KEKPath, DB: dbURL}, tLogger(), clock.Real{}); err != nil {
		t.Fatalf("Restore --db: %v", err)
	}
	if got := tRestoredConfig(t, dir2).DB; got != dbURL {
		t.Errorf("restored config names database %q, want %q", got, dbURL)
	}
}

// tPGExec runs one statement on the PostgreSQL server at url.
func tPGExec(t *testing.T, url, stmt string) {
	t.Helper()
	c := exec.Command("psql", "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "--dbname="+url, "-c", stmt)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", stmt, err, b)
	}
}

// TestBackupConfigHoldsNoSecrets: the bundled config.yaml never carries a
// database password nor a SQLite path outside the restored directory, and
// the printed pg_dump command carries no password.
func TestBackupConfigHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ db, want, notWant string }{
		{"postgres://cw:s3cret@db.internal:5432/pki?sslmode=verify-full&search_path=certwright", "db: postgres://cw@db.internal:5432/pki", "s3cret"},
		{"postgres://cw@db.internal/pki?password=qs3cret&sslmode=require&sslpassword=k3ypass", "db: postgres://cw@db.internal/pki?sslmode=require", "3"},
		{"sqlite:/var/lib/elsewhere/cw.db", "", "elsewhere"},
		{"", "", "db:"},
	} {
		dir := t.TempDir()
		src := filepath.Join(dir, "config.yaml")
		body := "log_level: debug\n"
		if tc.db != "" {
			body += "db: " + tc.db + "\n"
		}
		if err := os.WriteFile(src, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		staging := t.TempDir()
		if ok, err := stageConfig(src, staging); err != nil || !ok {
			t.Fatalf("stageConfig(%q): %v, %v", tc.db, ok, err)
		}
		b, err := os.ReadFile(filepath.Join(staging, config.FileName))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "log_level: debug") || !strings.Contains(string(b), tc.want) || strings.Contains(string(b), tc.notWant) {
			t.Errorf("db %q: staged config\n%s\nwant %q and not %q", tc.db, b, tc.want, tc.notWant)
		}
	}
	for _, u := range []string{"postgres://cw:s3cret@db/pki", "postgres://cw@db/pki?password=s3cret", "postgres://db/pki?sslpassword=s3cret"} {
		if r := redactURL(u); strings.Contains(r, "s3cret") {
			t.Errorf("redactURL(%q) = %q", u, r)
		}
	}
	dump, restore := pgCommands("postgres://cw:s3cret@db.internal:5432/pki?sslmode=verify-full&search_path=certwright&application_name=x", "/b/it's.pgdump")
	for _, cmd := range []string{dump, restore} {
		if strings.Contains(cmd, "s3cret") || strings.Contains(cmd, "search_path") || !strings.Contains(cmd, "sslmode=verify-full") {
			t.Errorf("command %q", cmd)
		}
	}
	if !strings.Contains(dump, "--schema=certwright ") || !strings.Contains(dump, `--file='/b/it'\''s.pgdump'`) {
		t.Errorf("pg_dump command %q", dump)
	}
}

// tCRLNumber fetches caID's CRL from in's plain-HTTP listener and returns
// its number.
func tCRLNumber(t *testing.T, in *tInstance, caID string) int64 {
	t.Helper()
	return tCRL(t, in, caID).Number.Int64()
}
