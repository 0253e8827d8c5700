package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/certwright/certwright/internal/app"
	"github.com/certwright/certwright/internal/backup"
	"github.com/certwright/certwright/internal/clock"
)

// backupCommand is "certwright backup": local, on the server host.
func backupCommand() *command {
	return &command{
		name: "backup", summary: "write a consistent backup of the data directory while the server runs (never the KEK)",
		args:    "--out FILE [--data-dir DIR] [--config FILE] [--db URL] [--json]",
		example: "certwright backup --data-dir ./certwright-data --out certwright-backup.tar.gz",
		more: "Runs on the server host, reading the data directory serve uses; the server keeps running.\n" +
			"The bundle (mode 0600) holds the database (SQLite), config.yaml (without a database password),\n" +
			"root.pem, the audit anchor, the CA and OCSP responder certificates and a manifest with a SHA-256 per file.\n" +
			"It never holds the key-encryption key DATA/kek nor DATA/admin.token: copy the KEK to separate,\n" +
			"protected storage; the bundle alone cannot decrypt the CA keys. For PostgreSQL the database is not\n" +
			"in the bundle: the command prints the pg_dump to run right after it.",
		keyMaterial: true, // the KEK, for the manifest's MAC
		run:         runBackup,
	}
}

// restoreCommand is "certwright restore": local, on the new host.
func restoreCommand() *command {
	return &command{
		name: "restore", summary: "rebuild a data directory from a backup, with the KEK kept apart from it",
		args:    "FILE --data-dir DIR --kek FILE [--admin-token FILE] [--db URL] [--json]",
		example: "certwright restore certwright-backup.tar.gz --data-dir ./restored --kek /secure/certwright.kek",
		more: "Checks every checksum, that the bundle is complete and that its schema is not newer than this build\n" +
			"before writing anything; builds the directory beside DIR, opens it as serve would (a KEK that does not\n" +
			"unwrap the CA keys is refused) and only then moves it into place. DIR must not exist or be empty.\n" +
			"For a PostgreSQL backup, first pg_restore the dump into an empty database and pass it with --db.",
		keyMaterial: true,
		run:         runRestore,
	}
}

// backupJSON is the --json output of backup.
type backupJSON struct {
	Path              string           `json:"path"`
	KEKPath           string           `json:"kek_path"`
	ExternalAnchorLog string           `json:"external_anchor_log,omitempty"`
	PGDump            string           `json:"pg_dump,omitempty"`
	PGRestore         string           `json:"pg_restore,omitempty"`
	Manifest          *backup.Manifest `json:"manifest"`
}

func runBackup(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	var sf serverFlags
	sf.registerStore(fs, r.getenv)
	out := fs.String("out", "", "bundle `FILE` to write (must not exist)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return r.usagef("--out FILE is required: where to write the backup")
	}
	cfg, err := sf.config(nil)
	if err != nil {
		return err
	}
	res, err := app.Backup(ctx, cfg, app.BackupOptions{Out: *out, ConfigFile: sf.configFile, Version: currentVersion().Version}, clock.Real{})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r.stdout, backupJSON{Path: res.Path, KEKPath: res.KEKPath, ExternalAnchorLog: res.ExternalAnchorLog,
			PGDump: res.PGDump, PGRestore: res.PGRestore, Manifest: res.Manifest})
	}
	m := res.Manifest
	w := r.stdout
	fmt.Fprintf(w, "Backup written to %s (mode 0600): %d files, %s database schema version %d\n", res.Path, len(m.Entries), m.Dialect, m.SchemaVersion)
	if res.KEKSealed {
		fmt.Fprintf(w, "\nThe key-encryption key is NOT in the backup: it is sealed by the PKCS#11 token in %s\n", res.KEKPath)
		fmt.Fprintf(w, "  Keep a copy of that file; to restore you need it, the token and its PIN (restore --kek FILE\n")
		fmt.Fprintf(w, "  --pkcs11-module ... --pkcs11-token ... --pkcs11-pin-file ...). Without the token it opens nothing.\n")
	} else {
		fmt.Fprintf(w, "\nThe key-encryption key is NOT in the backup: %s\n", res.KEKPath)
		fmt.Fprintf(w, "  Copy it to separate, protected storage; the bundle alone cannot decrypt the CA keys,\n")
		fmt.Fprintf(w, "  and without the KEK the backup cannot be restored. Never store the two together.\n")
	}
	fmt.Fprintf(w, "  %s is not in the backup either (a credential): keep it with the KEK, or use another token.\n", app.TokenFile)
	if res.ExternalAnchorLog != "" {
		fmt.Fprintf(w, "\nThe audit anchor log %s is outside the data directory and not in the backup.\n", res.ExternalAnchorLog)
	}
	if res.PGDump != "" {
		fmt.Fprintf(w, "\nThe PostgreSQL database is not in the bundle. Dump it now, after this backup (the bundle's\n")
		fmt.Fprintf(w, "audit anchor must not be newer than the dump); pg_dump reads the password from PGPASSWORD or ~/.pgpass:\n")
		fmt.Fprintf(w, "  %s\n", res.PGDump)
		fmt.Fprintf(w, "To restore, load the dump into an empty database, then run certwright restore with --db:\n")
		fmt.Fprintf(w, "  %s\n", res.PGRestore)
	}
	return nil
}

// restoreJSON is the --json output of restore.
type restoreJSON struct {
	DataDir         string `json:"data_dir"`
	RootFingerprint string `json:"root_fingerprint"`
	DB              string `json:"db"`
	AdminToken      string `json:"admin_token,omitempty"`
	kekJSON
	Manifest *backup.Manifest `json:"manifest"`
}

// kekJSON says, in restore's and keys recover's --json, where the
// restored directory's KEK is and whether it is in the clear there.
type kekJSON struct {
	KEKPath string `json:"kek_path"`
	// KEKSealed: sealed by the PKCS#11 token; KEKInClear: a plain file,
	// which a copy of the directory copies.
	KEKSealed  bool `json:"kek_sealed"`
	KEKInClear bool `json:"kek_in_clear"`
	// KEKLeftToken: the backup's instance kept it sealed by a token
	// (keys seal-kek puts it back).
	KEKLeftToken bool `json:"kek_left_token,omitempty"`
}

func restoredKEK(res *app.RestoreResult) kekJSON {
	return kekJSON{KEKPath: res.KEKPath, KEKSealed: res.KEKSealed, KEKInClear: !res.KEKSealed, KEKLeftToken: res.KEKLeftToken}
}

func runRestore(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data `DIR` to create (must not exist, or be empty)")
	kek := fs.String("kek", "", "`FILE` holding the key-encryption key of the instance backed up (mode 0600): its DATA/kek, or its sealed DATA/kek.p11 with the --pkcs11 flags (a plain KEK with the --pkcs11 flags is sealed in that token)")
	var tf serverFlags
	tf.registerPKCS11(fs)
	token := fs.String("admin-token", "", "`FILE` to copy to DIR/admin.token (optional)")
	db := fs.String("db", "", "PostgreSQL `URL` of the database the dump was restored into (PostgreSQL backups; default the one in the backup's config)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := r.parse(fs, args, "FILE")
	if err != nil {
		return err
	}
	switch {
	case *dataDir == "":
		return r.usagef("--data-dir DIR is required: the new data directory to restore into")
	case *kek == "":
		return r.usagef("--kek FILE is required: the backup does not hold the key-encryption key")
	}
	hsm, err := tf.pkcs11Config()
	if err != nil {
		return err
	}
	res, err := app.Restore(ctx, app.RestoreOptions{
		Bundle: pos[0], DataDir: *dataDir, KEKFile: *kek, Token: hsm, AdminTokenFile: *token, DB: *db,
	}, newLogger(r.stderr, "warn"), clock.Real{})
	if err != nil {
		return restoreHint(err)
	}
	if *asJSON {
		return printJSON(r.stdout, restoreJSON{DataDir: res.DataDir, RootFingerprint: res.RootFingerprint, DB: res.DB, AdminToken: res.TokenPath, kekJSON: restoredKEK(res), Manifest: res.Manifest})
	}
	printRestored(r.stdout, pos[0], res)
	return nil
}

// printRestored says what restore (or keys recover) put where, and what to
// run next.
func printRestored(w io.Writer, bundle string, res *app.RestoreResult) {
	m := res.Manifest
	fmt.Fprintf(w, "Restored %s into %s\n", bundle, res.DataDir)
	fmt.Fprintf(w, "  backup made:                 %s by certwright %s (schema version %d)\n", m.Created.Format("2006-01-02 15:04:05 MST"), m.CertwrightVersion, m.SchemaVersion)
	fmt.Fprintf(w, "  root CA SHA-256 fingerprint: %s\n", res.RootFingerprint)
	fmt.Fprintf(w, "  store:                       %s\n", res.DB)
	if res.TokenPath != "" {
		fmt.Fprintf(w, "  admin token:                 %s (mode 0600)\n", res.TokenPath)
	} else {
		fmt.Fprintf(w, "  admin token:                 not restored; the backed-up tokens still work: put one in %s or pass --token-file\n", filepath.Join(res.DataDir, app.TokenFile))
	}
	switch {
	case res.KEKSealed:
		fmt.Fprintf(w, "  key-encryption key:          %s, sealed by the PKCS#11 token (keys.kek_provider pkcs11)\n", res.KEKPath)
	case res.KEKLeftToken:
		fmt.Fprintf(w, "  key-encryption key:          %s, IN THE CLEAR: the backup's instance kept it sealed by a token;\n", res.KEKPath)
		fmt.Fprintf(w, "                               put it back with: certwright keys seal-kek --data-dir %s\n", res.DataDir)
	case res.KEKFileDropped == "":
		fmt.Fprintf(w, "  key-encryption key:          %s, in the clear (a copy of the directory is a copy of the CA's keys)\n", res.KEKPath)
	}
	if res.KEKFileDropped != "" && !res.KEKSealed {
		fmt.Fprintf(w, "  key-encryption key:          %s (the backup's kek_file %s was dropped from the restored config.yaml;\n", filepath.Join(res.DataDir, app.KEKFile), res.KEKFileDropped)
		fmt.Fprintf(w, "                               move the KEK to separate storage and set kek_file again)\n")
	}
	fmt.Fprintf(w, "\nStart it:     certwright serve --data-dir %s\n", res.DataDir)
	fmt.Fprintf(w, "Then check:   certwright audit verify --data-dir %s\n", res.DataDir)
}

// restoreHint adds what to do about a refused restore.
func restoreHint(err error) error {
	var hint string
	switch {
	case errors.Is(err, app.ErrWrongBundleKEK):
		hint = "pass with --kek the kek file of the instance the backup was made from (its DATA/kek, or the protected copy of it)"
	case errors.Is(err, app.ErrExists):
		hint = "restore into a new directory: choose another --data-dir"
	case errors.Is(err, backup.ErrTruncated), errors.Is(err, backup.ErrChecksum), errors.Is(err, backup.ErrCorrupt):
		hint = "the bundle is damaged or incomplete: copy it again from where it is stored, or use another backup"
	case errors.Is(err, backup.ErrNewerSchema), errors.Is(err, backup.ErrNewerFormat):
		hint = "install the Certwright version that made the backup, or a newer one, and restore with it"
	default:
		return err
	}
	return &hintError{err: err, hint: hint}
}
