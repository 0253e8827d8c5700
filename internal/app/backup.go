package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/backup"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// What a backup bundle holds, and why (the README's "Backup and restore"
// says the same to operators):
//   - the database (SQLite: a consistent snapshot; PostgreSQL: not in the
//     bundle, dumped with pg_dump after it);
//   - config.yaml, without a database password, and without a SQLite path
//     (a restored directory keeps its database inside);
//   - root.pem, which clients trust;
//   - audit-anchor.json (and an anchor log kept in the data directory),
//     read before the database so that the anchored checkpoint is in the
//     snapshot and audit verify stays intact after a restore;
//   - the keys-purpose-bound marker, so legacy key blobs stay closed;
//   - certs/: every CA and OCSP responder certificate as PEM, for reading
//     without a database (not restored: the database holds them).
//
// Never in it: the KEK (the bundle alone must not open the CA keys) and
// admin.token (a bearer credential; the tokens stay valid, as the database
// holds their hashes, so keep the file with the KEK or use another token).
const (
	bundleDB     = DBFile
	bundleConfig = config.FileName
	bundleCerts  = "certs/"
)

// ErrWrongBundleKEK is returned by Restore when the KEK does not unwrap
// the restored CA keys.
var ErrWrongBundleKEK = errors.New("app: restore: the key-encryption key does not unwrap the CA keys in the backup")

// BackupOptions say where a backup goes.
type BackupOptions struct {
	// Out is the bundle to create; it must not exist.
	Out string
	// ConfigFile is the configuration file to include (default
	// DATA/config.yaml); a missing file is left out.
	ConfigFile string
	// Version is the Certwright version recorded in the manifest.
	Version string
}

// BackupResult reports a backup.
type BackupResult struct {
	Path     string
	Manifest *backup.Manifest
	// KEKPath is the key-encryption key, which is not in the bundle;
	// KEKSealed says it is sealed by the token (keys.kek_provider pkcs11).
	KEKPath   string
	KEKSealed bool
	// ExternalAnchorLog is the audit anchor log, when it lives outside
	// the data directory and so is not in the bundle.
	ExternalAnchorLog string
	// PGDump and PGRestore are, for a PostgreSQL instance, the commands
	// that dump the database after the bundle and restore the dump.
	PGDump, PGRestore string
}

// Backup writes a bundle of cfg's data directory while a server may be
// running on it: everything committed before the snapshot began is in it,
// and it is consistent (the audit chain and its anchor verify).
func Backup(ctx context.Context, cfg *config.Config, opts BackupOptions, clk clock.Clock) (*BackupResult, error) {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	abs := *cfg
	abs.DataDir = dir
	kekPath := abs.KEKPath()
	if _, err := os.Stat(kekPath); err != nil {
		return nil, fmt.Errorf("app: backup: %s is not a Certwright data directory (no KEK file %s): run backup on the server host with the --data-dir (and --config) serve uses: %w", dir, kekPath, err)
	}
	// A rotation would change the KEK and the database under the
	// backup's feet: the bundle would open under neither KEK.
	lock, err := lockShared(dir)
	if errors.Is(err, ErrRotationRunning) {
		return nil, fmt.Errorf("app: backup: %w: back up once it has finished", err)
	}
	defer lock.Unlock()
	// The KEK never goes into the bundle; a key derived from it
	// authenticates the manifest, so restore refuses a bundle changed by
	// anyone without the KEK. A KEK sealed by the token is opened there
	// (so a backup needs the token, as serve does).
	ks, tok, err := openKEKStore(ctx, &abs, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	kek, err := ks.load(ctx, kekPath)
	tok.Close()
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	defer clear(kek)
	dbURL := DBURL(&config.Config{DataDir: dir, DB: cfg.DB})
	dialect, err := store.DialectOf(dbURL)
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	if Exists(out) {
		return nil, fmt.Errorf("app: backup: %s already exists (a backup never overwrites a file; choose another --out)", out)
	}
	staging, err := os.MkdirTemp(filepath.Dir(out), ".certwright-backup-*")
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	defer os.RemoveAll(staging)

	res := &BackupResult{Path: out, KEKPath: kekPath, KEKSealed: ks.inToken()}
	var names []string
	// The anchor is read before the database is snapshot: the checkpoint
	// it names is then in the snapshot.
	for _, name := range []string{AnchorFile, KeysMarkerFile, RootFile} {
		ok, err := copyFile(filepath.Join(dir, name), filepath.Join(staging, name), false)
		if err != nil {
			return nil, fmt.Errorf("app: backup: %w", err)
		}
		if ok {
			names = append(names, name)
		}
	}
	if log := filepath.Clean(cfg.Audit.AnchorLog); cfg.Audit.AnchorLog != "" {
		if filepath.IsAbs(log) || filepath.Base(log) != log || backup.ValidName(log) != nil || slices.Contains(dataDirFiles(), log) {
			res.ExternalAnchorLog = cfg.Audit.AnchorLog
		} else if ok, err := copyFile(filepath.Join(dir, log), filepath.Join(staging, log), true); err != nil {
			return nil, fmt.Errorf("app: backup: %w", err)
		} else if ok {
			names = append(names, log)
		}
	}
	cfgPath := opts.ConfigFile
	if cfgPath == "" {
		cfgPath = filepath.Join(dir, config.FileName)
	}
	if ok, err := stageConfig(cfgPath, staging); err != nil {
		return nil, err
	} else if ok {
		names = append(names, bundleConfig)
	}

	inspectURL := dbURL
	if dialect == "sqlite" {
		if err := store.SnapshotSQLite(ctx, dbURL, filepath.Join(staging, bundleDB)); err != nil {
			return nil, fmt.Errorf("app: backup: snapshot the database: %w", err)
		}
		names = append(names, bundleDB)
		inspectURL = "sqlite:" + filepath.Join(staging, bundleDB)
	}
	info, err := store.Inspect(ctx, inspectURL)
	if err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	certs, err := stageCerts(staging, info)
	if err != nil {
		return nil, err
	}
	names = append(names, certs...)

	m := &backup.Manifest{
		CertwrightVersion: opts.Version, Created: clk.Now().UTC(),
		Dialect: dialect, SchemaVersion: info.SchemaVersion, DatabaseIncluded: dialect == "sqlite",
	}
	if err := backup.Write(ctx, out, m, staging, names, kek); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	res.Manifest = m
	if dialect == "postgres" {
		res.PGDump, res.PGRestore = pgCommands(dbURL, strings.TrimSuffix(out, ".tar.gz")+".pgdump")
	}
	return res, nil
}

// dataDirFiles are the data directory's own files, which an anchor log of
// the same name must not be bundled as.
func dataDirFiles() []string {
	return []string{KEKFile, SealedKEKFile, TokenFile, RootFile, ServerFile, DBFile, AnchorFile, KeysMarkerFile, config.FileName}
}

// copyFile copies src to dst (new) with its mode narrowed as a bundle
// keeps it; a missing src is not copied and not an error. With wholeLines
// only the complete lines are copied: src is an append-only log the server
// may be appending to.
func copyFile(src, dst string, wholeLines bool) (bool, error) {
	b, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return false, err
	}
	mode := os.FileMode(0o600)
	if fi.Mode().Perm()&0o044 != 0 {
		mode = 0o644
	}
	if wholeLines {
		b = b[:bytes.LastIndexByte(b, '\n')+1]
	}
	return true, writeFileExcl(dst, b, mode)
}

// stageConfig copies the configuration file into staging, without the
// database password (a bundle must not open the live database) and without
// a SQLite path (a restored directory holds its database).
func stageConfig(path, staging string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("app: backup: %w", err)
	}
	c := &config.Config{}
	if err := c.Decode(b, path); err != nil {
		return false, fmt.Errorf("app: backup: %w", err)
	}
	dst := filepath.Join(staging, bundleConfig)
	if c.DB == "" {
		return true, writeFileExcl(dst, b, 0o600)
	}
	if d, err := store.DialectOf(c.DB); err == nil && d == "sqlite" {
		c.DB = ""
	} else {
		c.DB = withoutSecrets(c.DB)
	}
	c.DataDir = staging
	if err := c.Save(); err != nil {
		return false, fmt.Errorf("app: backup: %w", err)
	}
	return true, nil
}

// unsafeNameChars are replaced in file names made from CA names.
var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// stageCerts writes the CA and OCSP responder certificates as PEM under
// certs/ and returns their names.
func stageCerts(staging string, info *store.Inspection) ([]string, error) {
	if err := os.Mkdir(filepath.Join(staging, bundleCerts), 0o700); err != nil {
		return nil, fmt.Errorf("app: backup: %w", err)
	}
	var names []string
	for _, set := range []struct {
		prefix string
		certs  []store.NamedCert
	}{{"ca-", info.CACerts}, {"ocsp-responder-", info.Responders}} {
		for _, c := range set.certs {
			name := bundleCerts + set.prefix + unsafeNameChars.ReplaceAllString(c.CA, "_") + ".pem"
			if err := writeFileExcl(filepath.Join(staging, filepath.FromSlash(name)), pki.CertPEM(c.CertDER), 0o644); err != nil {
				return nil, err
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// libpqParams are the URL parameters pg_dump understands; the others (such
// as search_path) are run-time parameters only pgx passes on.
var libpqParams = map[string]bool{
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "connect_timeout": true,
	"application_name": true, "target_session_attrs": true, "passfile": true, "options": true,
}

// pgCommands returns the pg_dump and pg_restore commands for the database
// at dbURL, without its password (pg_dump reads PGPASSWORD or ~/.pgpass).
func pgCommands(dbURL, file string) (dump, restore string) {
	u, err := url.Parse(withoutSecrets(dbURL))
	if err != nil {
		return "", ""
	}
	q := u.Query()
	var schemas []string
	for _, s := range strings.Split(q.Get("search_path"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			schemas = append(schemas, "--schema="+shellQuote(s))
		}
	}
	for k := range q {
		if !libpqParams[k] {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	conn := shellQuote(u.String())
	dump = strings.Join(append([]string{"pg_dump --format=custom --no-owner", "--file=" + shellQuote(file)}, append(schemas, conn)...), " ")
	restore = "pg_restore --no-owner --exit-on-error --dbname=" + conn + " " + shellQuote(file)
	return dump, restore
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters a shell leaves alone.
func shellQuote(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@=,+-", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	// Bundle is the backup file.
	Bundle string
	// DataDir is the data directory to create: it must not exist, or be
	// empty.
	DataDir string
	// KEKFile is the key-encryption key of the instance backed up (mode
	// 0600): its KEK file, or its sealed KEK file (kek.p11) with Token
	// naming the token that opens it. It must unwrap the CA keys in the
	// backup.
	KEKFile string
	// Token is the PKCS#11 token that opens a sealed KEKFile (kek_label,
	// when empty, is the one the file names). The restored directory
	// keeps the sealed file and uses this token. With a plain KEKFile the
	// KEK is sealed in this token once the directory is restored (as
	// keys seal-kek does: under kek_label, or the backup's, or
	// certwright-kek; generated, or the AES key already under that label).
	Token *config.PKCS11Config
	// KEK is the key-encryption key itself, when KEKFile is empty (keys
	// recover reconstructs it from escrow shares).
	KEK []byte
	// AdminTokenFile, when set, is copied to DATA/admin.token.
	AdminTokenFile string
	// DB is the PostgreSQL URL the restored directory uses, for a bundle
	// from a PostgreSQL instance (default: the bundle's, without password).
	DB string
	// Audit, when set, is appended to the restored instance's audit log
	// once it opens (keys recover records itself so).
	Audit *audit.Event
}

// RestoreResult reports a restore.
type RestoreResult struct {
	DataDir         string
	Manifest        *backup.Manifest
	RootFingerprint string
	// DB is the store the restored directory uses (password hidden).
	DB string
	// TokenPath is DATA/admin.token when one was copied in.
	TokenPath string
	// KEKFileDropped is the backup configuration's kek_file, removed
	// from the restored one: the restored directory holds its KEK in
	// DATA/kek (or, sealed, DATA/kek.p11).
	KEKFileDropped string
	// KEKPath is the restored directory's KEK file; KEKSealed says it is
	// sealed by the token.
	KEKPath   string
	KEKSealed bool
	// KEKLeftToken says the backup's configuration kept the KEK sealed
	// by a token, but it was restored from a plain KEK (keys recover, or
	// --kek naming a plain file): the restored directory holds it in the
	// clear until keys seal-kek puts it back into a token.
	KEKLeftToken bool
}

// maxTokenFile bounds the admin token file read by Restore.
const maxTokenFile = 4 << 10

// Restore rebuilds a data directory from a bundle. It checks the whole
// bundle (every checksum, its completeness, its schema version) before
// writing anything, builds the directory beside the target, opens it as
// serve would (so a wrong KEK or a database that does not match is
// refused), and only then renames it into place: on any failure nothing is
// left behind.
func Restore(ctx context.Context, opts RestoreOptions, log *slog.Logger, clk clock.Clock) (res *RestoreResult, err error) {
	target, err := emptyTarget(opts.DataDir, "restore", "--data-dir")
	if err != nil {
		return nil, err
	}
	var kek, sealedFile []byte
	var hsm, sealInto *config.PKCS11Config
	switch {
	case opts.KEKFile != "" && isSealedKEK(opts.KEKFile):
		if kek, sealedFile, hsm, err = openSealedKEKFile(ctx, opts.KEKFile, opts.Token, log); err != nil {
			return nil, fmt.Errorf("app: restore: %w", err)
		}
	case opts.KEKFile != "":
		if kek, err = software.LoadKEK(opts.KEKFile); err != nil {
			return nil, fmt.Errorf("app: restore: %w", err)
		}
		if opts.Token != nil && opts.Token.Configured() {
			sealInto = opts.Token
		}
	case len(opts.KEK) == software.KEKSize:
		kek = bytes.Clone(opts.KEK)
	default:
		return nil, errors.New("app: restore: the key-encryption key file is required: the bundle does not hold it")
	}
	defer clear(kek)
	var token []byte
	if opts.AdminTokenFile != "" {
		if token, err = readToken(opts.AdminTokenFile); err != nil {
			return nil, err
		}
	}

	m, err := backup.Verify(ctx, opts.Bundle, kek)
	if errors.Is(err, backup.ErrUnauthenticated) {
		return nil, fmt.Errorf("%w: the bundle's manifest does not authenticate with this KEK: either --kek is not the kek file of the instance the backup was made from, or the bundle was changed after it was made; nothing was restored: %w", ErrWrongBundleKEK, err)
	}
	if err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	known, err := store.KnownSchemaVersion(m.Dialect)
	if err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	if err := m.CheckSchema(known); err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	if opts.DB != "" {
		if m.Dialect != "postgres" {
			return nil, fmt.Errorf("app: restore: --db is for a backup of a PostgreSQL instance; this backup is from a %s instance and holds its database", m.Dialect)
		}
		if d, err := store.DialectOf(opts.DB); err != nil || d != "postgres" {
			return nil, errors.New("app: restore: --db must be a PostgreSQL URL (postgres://...): the database pg_restore restored the dump into")
		}
	}

	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(target)+".restore-*")
	if err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
		}
	}()
	// The certificates under certs/ are extracted only to compare them
	// with a PostgreSQL database, and removed before the directory is
	// placed.
	if _, err := backup.Extract(ctx, opts.Bundle, staging, func(name string) bool {
		return m.Dialect == "postgres" || !strings.HasPrefix(name, bundleCerts)
	}, kek); err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	if sealedFile != nil {
		err = writeFileExcl(filepath.Join(staging, SealedKEKFile), sealedFile, 0o600)
	} else {
		err = writeFileExcl(filepath.Join(staging, KEKFile), kek, 0o600)
	}
	if err != nil {
		return nil, err
	}
	if token != nil {
		if err := writeFileExcl(filepath.Join(staging, TokenFile), token, 0o600); err != nil {
			return nil, err
		}
	}
	cfg := &config.Config{}
	if err := cfg.Load(filepath.Join(staging, config.FileName)); err != nil {
		return nil, fmt.Errorf("app: restore: the backup's configuration: %w", err)
	}
	cfg.DataDir = staging
	if sealInto != nil && sealInto.KEKLabel == "" {
		// The KEK goes back under the token key label the backup's
		// instance used, if it kept it in a token.
		tc := *sealInto
		tc.KEKLabel = cfg.Keys.PKCS11.KEKLabel
		sealInto = &tc
	}
	// The KEK goes into the restored directory whatever kek_file the
	// instance backed up used: that file may not exist here, or belong
	// to another instance.
	dropped := cfg.KEKFile
	cfg.KEKFile = ""
	// The KEK is kept as it was given: sealed by the token that opened
	// it, or as a plain file (the configuration says so, whatever the
	// backup's said).
	keysChanged, leftToken := false, false
	switch {
	case hsm != nil:
		keysChanged = cfg.Keys.KEKProvider != config.KEKProviderPKCS11 || cfg.Keys.PKCS11 != *hsm
		cfg.Keys.KEKProvider, cfg.Keys.PKCS11 = config.KEKProviderPKCS11, *hsm
	case cfg.Keys.KEKInToken():
		keysChanged, leftToken = true, true
		cfg.Keys.KEKProvider, cfg.Keys.PKCS11.KEKLabel = "", ""
	}
	if opts.DB != "" {
		cfg.DB = opts.DB
	}
	if opts.DB != "" || dropped != "" || keysChanged {
		if err := cfg.Save(); err != nil {
			return nil, err
		}
	}
	if m.Dialect == "postgres" && cfg.DB == "" {
		return nil, errors.New("app: restore: this backup is from a PostgreSQL instance but names no database: pass --db postgres://... (the database pg_restore restored)")
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("app: restore: the backup's configuration: %w", err)
	}
	if m.Dialect == "postgres" {
		if err := checkPostgres(ctx, cfg.DB, m, filepath.Join(staging, bundleCerts)); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(filepath.Join(staging, bundleCerts)); err != nil {
			return nil, fmt.Errorf("app: restore: %w", err)
		}
	}
	fp, err := checkRestored(ctx, cfg, m, opts.Audit, log, clk)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(staging, 0o700); err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	// Go's rename refuses an existing directory; the target, if any, is
	// empty (checked above).
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	if err := os.Rename(staging, target); err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return nil, fmt.Errorf("app: restore: %w", err)
	}
	res = &RestoreResult{DataDir: target, Manifest: m, RootFingerprint: fp, DB: redactURL(DBURL(&config.Config{DataDir: target, DB: cfg.DB})), KEKFileDropped: dropped,
		KEKSealed: hsm != nil, KEKLeftToken: leftToken}
	res.KEKPath = filepath.Join(target, filepath.Base(cfg.KEKPath()))
	if token != nil {
		res.TokenPath = filepath.Join(target, TokenFile)
	}
	if sealInto != nil {
		if err := sealRestored(ctx, target, cfg, *sealInto, log, clk, res); err != nil {
			return nil, err
		}
	}
	if !res.KEKSealed {
		why := "a copy of the directory is a copy of the CA's keys: keep the KEK on other storage (kek_file) or seal it in a PKCS#11 token (certwright keys seal-kek)"
		if res.KEKLeftToken {
			why = "the backup's instance kept it sealed by a PKCS#11 token: put it back with certwright keys seal-kek --data-dir " + target
		}
		log.Warn("the restored data directory holds its key-encryption key in the clear; "+why, "kek_file", res.KEKPath)
	}
	return res, nil
}

// sealRestored seals the plain KEK of the data directory just restored
// into dir in the token tc names, as keys seal-kek does, under tc's
// kek_label (default certwright-kek): generated there, or the AES key
// already under that label adopted. On failure the directory stays
// restored with its KEK in the clear, and the error says so.
func sealRestored(ctx context.Context, dir string, restored *config.Config, tc config.PKCS11Config, log *slog.Logger, clk clock.Clock, res *RestoreResult) error {
	cfg := &config.Config{}
	if err := cfg.Load(filepath.Join(dir, config.FileName)); err != nil {
		return fmt.Errorf("app: restore: %w", err)
	}
	cfg.DataDir, cfg.DB = dir, restored.DB
	cfg.Keys.PKCS11 = tc
	cfg.Defaults()
	sr, err := SealKEK(ctx, cfg, log, clk, SealKEKOptions{})
	if errors.Is(err, ErrTokenKEKExists) {
		sr, err = SealKEK(ctx, cfg, log, clk, SealKEKOptions{Adopt: true})
	}
	if err != nil {
		return fmt.Errorf("app: restore: the data directory was restored into %s, but its KEK could not be sealed in the token, so it is in the clear in %s: fix what the error says, then run certwright keys seal-kek --data-dir %s: %w",
			dir, res.KEKPath, dir, err)
	}
	if len(sr.NotRemoved) > 0 {
		return fmt.Errorf("app: restore: the KEK was sealed in the token (%s), but the plain KEK file %s could not be removed: overwrite and remove it yourself", sr.SealedFile, strings.Join(sr.NotRemoved, ", "))
	}
	res.KEKSealed, res.KEKLeftToken, res.KEKPath = true, false, sr.SealedFile
	return nil
}

// openSealedKEKFile opens the sealed KEK file at path in the token tc
// names, for a restore, and returns the KEK, the file's bytes and the
// token settings the restored directory is to use. The token is closed
// again: the restored directory is opened as serve opens it.
func openSealedKEKFile(ctx context.Context, path string, tc *config.PKCS11Config, log *slog.Logger) (kek, raw []byte, _ *config.PKCS11Config, err error) {
	if tc == nil || !tc.Configured() {
		return nil, nil, nil, fmt.Errorf("%s is a key-encryption key sealed by a PKCS#11 token: name the token that opens it (restore --pkcs11-module, --pkcs11-token and --pkcs11-pin-file)", path)
	}
	if raw, err = readPrivateFile(path, maxSealedKEKFile); err != nil {
		return nil, nil, nil, err
	}
	var f sealedKEKFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	tok := *tc
	if tok.KEKLabel == "" {
		tok.KEKLabel = f.TokenKEK
	}
	cfg := &config.Config{DataDir: filepath.Dir(path), Keys: config.KeysConfig{KEKProvider: config.KEKProviderPKCS11, PKCS11: tok}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("the token to open %s: %w", path, err)
	}
	ks, hsm, err := openKEKStore(ctx, cfg, log, false)
	if err != nil {
		return nil, nil, nil, err
	}
	defer hsm.Close()
	if kek, err = ks.load(ctx, path); err != nil {
		return nil, nil, nil, err
	}
	return kek, raw, &tok, nil
}

// emptyTarget returns dir as an absolute path if it does not exist or is
// an empty directory: what op (restore, keys backup) creates never lands
// over anything. flag names the option to change.
func emptyTarget(dir, op, flag string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("app: %s: %w", op, err)
	}
	if ents, err := os.ReadDir(abs); err == nil && len(ents) > 0 {
		return "", fmt.Errorf("%w: %s is not empty (%s never overwrites; choose a new %s)", ErrExists, abs, op, flag)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("app: %s: %s: %w", op, abs, err)
	}
	return abs, nil
}

// checkPostgres checks, reading only, that the PostgreSQL database at
// dbURL is the one backed up: restored from a dump taken after the bundle
// (schema at least as new) and holding every CA certificate the bundle
// lists. Opening an empty or foreign database would migrate it, changing
// a database the restore was refused for.
func checkPostgres(ctx context.Context, dbURL string, m *backup.Manifest, certsDir string) error {
	fix := "restore the pg_dump taken right after this backup into it (pg_restore), then pass it with --db; nothing was restored"
	info, err := store.Inspect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("app: restore: the database %s is not a Certwright database (%s): %w", redactURL(dbURL), fix, err)
	}
	if info.SchemaVersion < m.SchemaVersion {
		return fmt.Errorf("app: restore: the database %s has schema version %d, older than the backup's %d: it was not dumped after this backup; %s",
			redactURL(dbURL), info.SchemaVersion, m.SchemaVersion, fix)
	}
	have := make(map[string]bool, len(info.CACerts))
	for _, c := range info.CACerts {
		have[string(c.CertDER)] = true
	}
	ents, err := os.ReadDir(certsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("app: restore: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "ca-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(certsDir, e.Name()))
		if err != nil {
			return fmt.Errorf("app: restore: %w", err)
		}
		certs, err := pki.ParseCertificates(b)
		if err != nil || len(certs) != 1 {
			return fmt.Errorf("app: restore: the backup's %s%s is not one certificate: %w", bundleCerts, e.Name(), err)
		}
		if !have[string(certs[0].Raw)] {
			return fmt.Errorf("app: restore: the database %s does not hold the CA certificate %s%s of this backup: it is another instance's database; %s",
				redactURL(dbURL), bundleCerts, e.Name(), fix)
		}
	}
	return nil
}

// checkRestored opens the restored directory as serve would and returns
// the root's fingerprint.
func checkRestored(ctx context.Context, cfg *config.Config, m *backup.Manifest, ev *audit.Event, log *slog.Logger, clk clock.Clock) (string, error) {
	a, err := Open(ctx, cfg, log, clk)
	if err != nil {
		switch {
		case errors.Is(err, keys.ErrWrongKEK):
			return "", fmt.Errorf("%w: use the kek file of the instance the backup was made from; nothing was restored: %w", ErrWrongBundleKEK, err)
		case m.Dialect == "postgres":
			return "", fmt.Errorf("app: restore: the database %s does not open as this backup's (restore the pg_dump taken after this backup into it first, then pass it with --db); nothing was restored: %w", redactURL(DBURL(cfg)), err)
		}
		return "", fmt.Errorf("app: restore: the restored data directory does not open; nothing was restored: %w", err)
	}
	defer a.Close()
	fp, err := a.RootFingerprint(ctx)
	if err != nil {
		return "", fmt.Errorf("app: restore: %w", err)
	}
	// The instance backed up may have published CRLs after the snapshot,
	// numbered past its counters: restored CAs number on from the restore
	// time in milliseconds, above any count of CRLs published before.
	// Offline roots, whose CRLs are numbered at their ceremony, keep theirs.
	if err := a.store.RaiseCRLNumbers(ctx, clk.Now().UnixMilli()); err != nil {
		return "", fmt.Errorf("app: restore: %w", err)
	}
	if ev != nil {
		if err := a.store.AppendAudit(ctx, *ev); err != nil {
			return "", fmt.Errorf("app: restore: %w", err)
		}
	}
	return fp, nil
}

func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("app: restore: admin token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("app: restore: admin token: %w", err)
	}
	if len(b) > maxTokenFile || len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("app: restore: admin token file %s is empty or longer than %d bytes: it should hold one token", path, maxTokenFile)
	}
	return b, nil
}
