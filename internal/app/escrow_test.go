package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/escrow"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store/storetest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tEscrowSet makes a 3-of-5 escrow set of in into a new directory.
func tEscrowSet(t *testing.T, in *tInstance) *KeysBackupResult {
	t.Helper()
	res, err := KeysBackup(context.Background(), in.cfg, KeysBackupOptions{OutDir: filepath.Join(t.TempDir(), "escrow"), Shares: 5, Threshold: 3, Version: "test"}, clock.Real{})
	if err != nil {
		t.Fatalf("KeysBackup: %v", err)
	}
	return res
}

// tShares picks share files of res by 1-based index.
func tShares(res *KeysBackupResult, idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, res.ShareFiles[i-1])
	}
	return out
}

// tWriteFile writes b to a new file in a temporary directory.
func tWriteFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tNoKeyMaterial fails when an audit event's details hold the KEK in any
// usual encoding.
func tNoKeyMaterial(t *testing.T, ev audit.Event, kek []byte) {
	t.Helper()
	for _, enc := range []string{string(kek), hex.EncodeToString(kek), base64.StdEncoding.EncodeToString(kek), base64.RawURLEncoding.EncodeToString(kek)} {
		if bytes.Contains(ev.Details, []byte(enc)) {
			t.Fatalf("%s event details hold the KEK: %s", ev.Action, ev.Details)
		}
	}
}

// TestKeysEscrow: a software-key instance is escrowed 3 of 5 while it
// runs, the drill passes with 3 shares and fails (audited) with 2, the data
// directory is lost, and 3 shares with the backup bring back an instance
// whose CAs sign and whose audit log verifies, the recovery on record;
// fewer shares, a damaged share, shares of two sets, a share claiming
// another threshold and a changed bundle are refused and leave nothing.
func TestKeysEscrow(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		tKeysEscrow(t, "")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		base := os.Getenv(tEnvPostgres)
		if base == "" {
			t.Skip("set " + tEnvPostgres + "=postgres://... to run this test on PostgreSQL")
		}
		tKeysEscrow(t, storetest.PostgresSchema(t, base))
	})
}

func tKeysEscrow(t *testing.T, dbURL string) {
	ctx := context.Background()
	in := tNewServer(t, dbURL)
	key := tECKey(t, elliptic.P256())
	before := in.sign(tCSR(t, key, "before.example.test"))
	bak := filepath.Join(t.TempDir(), "backup.tar.gz")
	if _, err := Backup(ctx, in.cfg, BackupOptions{Out: bak, Version: "test"}, clock.Real{}); err != nil {
		t.Fatal(err)
	}
	kek, err := software.LoadKEK(filepath.Join(in.cfg.DataDir, KEKFile))
	if err != nil {
		t.Fatal(err)
	}
	from := tAuditHead(t, in)
	set := tEscrowSet(t, in)

	// The set: a 0700 directory of 0600 files; the bundle lists every key
	// (root, issuing, audit, server TLS) and holds none in the clear.
	if fi, err := os.Stat(set.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("escrow directory: %v, %v", fi, err)
	}
	for _, f := range append([]string{set.Bundle}, set.ShareFiles...) {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v", f, fi, err)
		}
	}
	raw, err := os.ReadFile(set.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, kek) {
		t.Fatal("the bundle holds the KEK in the clear")
	}
	purposes := map[string]int{}
	for _, k := range set.Header.Keys {
		purposes[strings.SplitN(k.Purpose, ":", 2)[0]]++
	}
	if purposes["ca"] != 2 || purposes["audit"] != 1 || purposes["tls"] != 1 || len(set.Header.ShareSHA256) != 5 {
		t.Fatalf("escrowed keys by purpose %v, header %+v", purposes, set.Header)
	}
	// A second set of the same instance: its shares do not mix with the
	// first's.
	other := tEscrowSet(t, in)
	if _, err := KeysBackup(ctx, in.cfg, KeysBackupOptions{OutDir: set.Dir, Shares: 5, Threshold: 3}, clock.Real{}); !errors.Is(err, ErrExists) {
		t.Errorf("KeysBackup into the existing set: %v", err)
	}

	// The drill: 3 shares pass, 2 fail; both are on record.
	vr, err := KeysVerify(ctx, in.cfg, KeysVerifyOptions{Bundle: set.Bundle, Shares: tShares(set, 1, 3, 5)}, clock.Real{})
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if vr.Escrowed != len(set.Header.Keys) || vr.Live != len(set.Header.Keys) || vr.NotInSet != 0 {
		t.Fatalf("drill result %+v", vr)
	}
	if _, err := KeysVerify(ctx, in.cfg, KeysVerifyOptions{Bundle: set.Bundle, Shares: tShares(set, 2, 4)}, clock.Real{}); !errors.Is(err, escrow.ErrTooFewShares) {
		t.Fatalf("drill with 2 shares: %v", err)
	}
	evs := tAuditEvents(t, in, from)
	for _, ev := range evs {
		tNoKeyMaterial(t, ev, kek)
	}
	backups := tFindEvents(t, evs, actionEscrowBackup, 2)
	var d map[string]any
	if err := json.Unmarshal(backups[0].Details, &d); err != nil {
		t.Fatal(err)
	}
	if d["set_id"] != set.Header.SetID || d["threshold"] != float64(3) || d["shares"] != float64(5) || d["keys"] != float64(len(set.Header.Keys)) {
		t.Errorf("backup event details %s", backups[0].Details)
	}
	drills := tFindEvents(t, evs, actionEscrowVerify, 2)
	if drills[0].Outcome != audit.Success || drills[1].Outcome != audit.Failed || !strings.Contains(string(drills[1].Details), "not enough shares") {
		t.Errorf("drill events: %+v", drills)
	}

	// A drill against another instance fails: the set is not its.
	if dbURL == "" {
		stranger := tNewServer(t, "")
		if _, err := KeysVerify(ctx, stranger.cfg, KeysVerifyOptions{Bundle: set.Bundle, Shares: tShares(set, 1, 2, 3)}, clock.Real{}); !errors.Is(err, ErrEscrowMismatch) {
			t.Errorf("drill against another instance: %v", err)
		}
	}

	// Disaster: the data directory is gone (the admin token was kept
	// apart).
	token := tWriteFile(t, "admin.token", []byte(in.token))
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(in.cfg.DataDir); err != nil {
		t.Fatal(err)
	}

	share3, err := os.ReadFile(set.ShareFiles[2])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(share3), "\n")
	lines[5] = strings.Map(func(r rune) rune { // one body line, letters' case swapped
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, lines[5])
	damaged := tWriteFile(t, "share-3-damaged.txt", []byte(strings.Join(lines, "\n")))
	s3, err := escrow.ParseShare("s3", share3)
	if err != nil {
		t.Fatal(err)
	}
	s3.Threshold = 2
	mixed := tWriteFile(t, "share-3-threshold-2.txt", s3.Encode())
	tampered := bytes.Clone(raw)
	tampered[len(tampered)-40] ^= 0x01
	tamperedBundle := tWriteFile(t, "tampered.escrow", tampered)
	anotherBackup := filepath.Join(t.TempDir(), "stranger.tar.gz")
	if dbURL == "" {
		stranger := tNewServer(t, "")
		if _, err := Backup(ctx, stranger.cfg, BackupOptions{Out: anotherBackup, Version: "test"}, clock.Real{}); err != nil {
			t.Fatal(err)
		}
	}
	recoverOpts := func(bundle string, shares ...string) KeysRecoverOptions {
		o := KeysRecoverOptions{Bundle: bundle, Shares: shares, Backup: bak, DataDir: in.cfg.DataDir, AdminTokenFile: token}
		if dbURL != "" {
			// The database outlived the data directory.
			o.DB = dbURL
		}
		return o
	}
	cases := []struct {
		name string
		opts KeysRecoverOptions
		want error
		msg  string
	}{
		{"two shares", recoverOpts(set.Bundle, tShares(set, 1, 2)...), escrow.ErrTooFewShares, "2 of the 3 shares"},
		{"damaged share", recoverOpts(set.Bundle, set.ShareFiles[0], set.ShareFiles[1], damaged), escrow.ErrShare, "share-3-damaged.txt"},
		{"shares of two sets", recoverOpts(set.Bundle, set.ShareFiles[0], set.ShareFiles[1], other.ShareFiles[2]), escrow.ErrWrongSet, other.ShareFiles[2]},
		{"threshold mixed up", recoverOpts(set.Bundle, set.ShareFiles[0], set.ShareFiles[1], mixed), escrow.ErrWrongSet, "share-3-threshold-2.txt says 2 of 5"},
		{"same share twice", recoverOpts(set.Bundle, tShares(set, 1, 2, 2)...), escrow.ErrDuplicateShare, "both share 2"},
		{"tampered bundle", recoverOpts(tamperedBundle, tShares(set, 1, 2, 3)...), escrow.ErrOpen, "altered"},
		{"the other set's bundle", recoverOpts(other.Bundle, tShares(set, 1, 2, 3)...), escrow.ErrWrongSet, "another escrow set"},
	}
	if dbURL == "" {
		o := recoverOpts(set.Bundle, tShares(set, 1, 2, 3)...)
		o.Backup = anotherBackup
		cases = append(cases, struct {
			name string
			opts KeysRecoverOptions
			want error
			msg  string
		}{"backup of another instance", o, ErrWrongBundleKEK, "was not made by the instance"})
	}
	for _, tc := range cases {
		_, err := KeysRecover(ctx, tc.opts, tLogger(), clock.Real{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: KeysRecover = %v, want %v saying %q", tc.name, err, tc.want, tc.msg)
		}
		tNothingLeft(t, in.cfg.DataDir)
	}

	// Three shares, any three, bring it back.
	res, err := KeysRecover(ctx, recoverOpts(set.Bundle, tShares(set, 5, 2, 4)...), tLogger(), clock.Real{})
	if err != nil {
		t.Fatalf("KeysRecover: %v", err)
	}
	if res.Escrowed != len(set.Header.Keys) || res.Restore.DataDir != in.cfg.DataDir {
		t.Fatalf("recovery: %+v", res)
	}
	restored := tStart(t, tRestoredConfig(t, res.Restore.DataDir), clock.Real{})
	after := restored.sign(tCSR(t, key, "after.example.test"))
	if after.Certificate.Serial == "" || after.Certificate.Serial == before.Certificate.Serial {
		t.Fatalf("issued after the recovery: %+v", after.Certificate)
	}
	var c apitypes.Certificate
	restored.must(http.StatusOK, "GET", "/api/v1/certificates/"+before.Certificate.Serial, nil, &c)
	var vres apitypes.AuditVerifyResult
	restored.must(http.StatusOK, "GET", "/api/v1/audit/verify", nil, &vres)
	if !vres.Intact {
		t.Fatalf("audit verify after the recovery: %+v", vres.Problem)
	}
	recovered := tFindEvents(t, tAuditEvents(t, restored, 0), actionEscrowRecover, 1)[0]
	tNoKeyMaterial(t, recovered, kek)
	if !strings.Contains(string(recovered.Details), set.Header.SetID) || !strings.Contains(string(recovered.Details), `"shares_given":3`) {
		t.Errorf("recovery event details %s", recovered.Details)
	}
	// The recovered instance's keys are the escrowed ones: a drill of the
	// set against it passes.
	if _, err := KeysVerify(ctx, restored.cfg, KeysVerifyOptions{Bundle: set.Bundle, Shares: tShares(set, 1, 3, 4)}, clock.Real{}); err != nil {
		t.Fatalf("drill after the recovery: %v", err)
	}
}
