package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/escrow"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// Key escrow (the README's "Key escrow" says the same to operators):
// `keys backup` seals the KEK and every software-wrapped key of an
// instance into a bundle under a fresh backup key split into Shamir
// shares; `keys backup verify` is the drill that proves a set opens and
// its KEK opens the live keys; `keys recover` rebuilds a data directory
// from a `certwright backup` bundle with the KEK from the shares. The KEK
// never changes, so one escrow set recovers every backup, older or newer.
// Each of the three appends an event to the audit log: backup and drill to
// the live instance's, recover to the restored one's.

// EscrowBundleFile is the bundle's name in the directory keys backup
// writes; the shares beside it are share-N-of-T.txt.
const EscrowBundleFile = "keys.escrow"

// Audit actions of key escrow.
const (
	actionEscrowBackup  = "keys.escrow.backup"
	actionEscrowVerify  = "keys.escrow.verify"
	actionEscrowRecover = "keys.escrow.recover"
)

// ErrEscrowMismatch is a drill whose escrow set does not belong to the
// instance it is run against, or whose KEK does not open that instance's
// CA keys.
var ErrEscrowMismatch = errors.New("app: keys: the escrow set does not match this instance")

// maxShareFiles bounds the --share files read.
const maxShareFiles = 255

// KeysBackupOptions say what escrow set to make and where.
type KeysBackupOptions struct {
	// OutDir is the directory to create (or an empty one) for the bundle
	// and the shares; it is made 0700, the files 0600.
	OutDir string
	// Shares is the number of shares N, Threshold the number M that
	// reconstruct the backup key (2 <= M <= N <= 255).
	Shares, Threshold int
	// Version is the Certwright version recorded in the bundle.
	Version string
}

// KeysBackupResult reports an escrow set written.
type KeysBackupResult struct {
	Dir        string
	Bundle     string
	ShareFiles []string
	Header     *escrow.Header
	// Unusable names the records whose software key the KEK does not
	// open (altered or legacy rows the server never uses either); they
	// are in the bundle as they are.
	Unusable []string
	// NotExportable names the keys of other providers (an HSM), which are
	// not in the bundle.
	NotExportable []string
}

// escrowKeys is what an instance's keys look like to escrow.
type escrowKeys struct {
	header   []escrow.Key
	blobs    [][]byte
	unusable []string
	other    []string
}

// collectKeys lists db's wrapped keys with their purposes and checks each
// software key opens under prov. A CA key that does not open is an error
// (the KEK is not this instance's); any other is reported as unusable.
func collectKeys(ctx context.Context, db *store.DB, prov *software.Provider) (*escrowKeys, error) {
	list, err := db.ListWrappedKeys(ctx)
	if err != nil {
		return nil, err
	}
	var serverTLS string
	if cur, err := db.GetSetting(ctx, settingServerTLS); err == nil {
		serverTLS = string(cur)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	out := &escrowKeys{}
	for i := range list {
		k := &list[i]
		if k.Ref.Provider != software.Name {
			out.other = append(out.other, k.Where()+" ("+k.Ref.Provider+")")
			continue
		}
		purpose := recordPurpose(k, serverTLS)
		if err := prov.Check(ctx, k.Ref, purpose); err != nil {
			if k.Kind == store.KeyKindCA {
				return nil, fmt.Errorf("the key-encryption key does not open the key of %s: %w", k.Where(), err)
			}
			out.unusable = append(out.unusable, k.Where())
		}
		out.header = append(out.header, escrow.Key{Purpose: string(purpose), Provider: k.Ref.Provider, ID: k.Ref.ID, Algorithm: string(k.Ref.Algorithm)})
		out.blobs = append(out.blobs, k.Ref.Blob)
	}
	return out, nil
}

// openLive opens the store of cfg's data directory, which a server may be
// running on, to read its keys and append to its audit log. A database
// whose schema is not this build's is refused untouched: opening it would
// migrate it under a server of another version.
func openLive(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	url := DBURL(cfg)
	info, err := store.Inspect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("app: keys: the database %s: %w", redactURL(url), err)
	}
	known, err := store.KnownSchemaVersion(info.Dialect)
	if err != nil {
		return nil, fmt.Errorf("app: keys: %w", err)
	}
	if info.SchemaVersion != known {
		return nil, fmt.Errorf("app: keys: the database %s has schema version %d, this build's is %d: run this command with the Certwright version the server runs",
			redactURL(url), info.SchemaVersion, known)
	}
	db, err := store.Open(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("app: keys: %w", err)
	}
	return db, nil
}

// localPrincipal is who runs a local admin command: the operator on the
// server host, recorded as the system acting from "local".
func localPrincipal() authz.Principal {
	p := authz.System()
	p.Source = "local"
	return p
}

// osUser names the operating-system user running the command, for the
// audit record.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// KeysBackup writes a new escrow set of cfg's instance into opts.OutDir:
// the bundle (the KEK and every software-wrapped key, encrypted under a
// fresh backup key) and the N share files. The server may be running. The
// directory is built beside OutDir and renamed into place, then the
// backup is audited; if the audit append fails the directory is removed.
func KeysBackup(ctx context.Context, cfg *config.Config, opts KeysBackupOptions, clk clock.Clock) (res *KeysBackupResult, err error) {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	out, err := emptyTarget(opts.OutDir, "keys backup", "--out")
	if err != nil {
		return nil, err
	}
	abs := *cfg
	abs.DataDir = dir
	at, tok, err := openKEKStore(ctx, &abs, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	kek, err := at.load(ctx, abs.KEKPath())
	tok.Close()
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %s is not a Certwright data directory, or its KEK is unreadable: run keys backup on the server host with the --data-dir (and --config) serve uses: %w", dir, err)
	}
	defer clear(kek)
	prov, err := software.New(kek, nil)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	db, err := openLive(ctx, &config.Config{DataDir: dir, DB: cfg.DB})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ks, err := collectKeys(ctx, db, prov)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	instance, err := db.InstanceID(ctx)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	bundle, shares, err := escrow.Seal(escrow.Header{
		Created: clk.Now(), CertwrightVersion: opts.Version, InstanceID: instance, Keys: ks.header,
	}, &escrow.Contents{KEK: kek, Blobs: ks.blobs}, opts.Shares, opts.Threshold, nil)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	parsed, err := escrow.ParseBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	res = &KeysBackupResult{Dir: out, Bundle: filepath.Join(out, EscrowBundleFile), Header: &parsed.Header,
		Unusable: ks.unusable, NotExportable: ks.other}
	files := map[string][]byte{EscrowBundleFile: bundle}
	for _, s := range shares {
		name := fmt.Sprintf("share-%d-of-%d.txt", s.Index, s.Total)
		files[name] = s.Encode()
		res.ShareFiles = append(res.ShareFiles, filepath.Join(out, name))
	}
	if err := placeDir(out, files); err != nil {
		return nil, fmt.Errorf("app: keys backup: %w", err)
	}
	ev := audit.New(localPrincipal(), clk.Now(), actionEscrowBackup, "escrow:"+parsed.Header.SetID, map[string]any{
		"set_id": parsed.Header.SetID, "threshold": opts.Threshold, "shares": opts.Shares, "keys": len(ks.header),
		"unusable": firstOf(ks.unusable), "unusable_count": len(ks.unusable),
		"not_exportable": firstOf(ks.other), "not_exportable_count": len(ks.other), "out": out, "os_user": osUser(),
	})
	if err := db.AppendAudit(ctx, ev); err != nil {
		// No escrow set without its record.
		return nil, errors.Join(fmt.Errorf("app: keys backup: record it in the audit log (the set was removed): %w", err), os.RemoveAll(out))
	}
	return res, nil
}

// maxListed bounds the records an audit event names (the counts say how
// many there are), so an event fits its row however many there are.
const maxListed = 50

func firstOf(list []string) []string { return list[:min(len(list), maxListed)] }

// placeDir writes files (mode 0600) into a directory built beside out
// (mode 0700) and renames it to out, which must be absent or empty: out
// holds all of them or does not change.
func placeDir(out string, files map[string][]byte) (err error) {
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
		}
	}()
	if err := os.Chmod(staging, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if err := writeFileExcl(filepath.Join(staging, name), b, 0o600); err != nil {
			return err
		}
	}
	if err := atomicfile.SyncDir(staging); err != nil {
		return err
	}
	// Go's rename refuses an existing directory: an empty out is removed
	// first (checked empty before).
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(staging, out); err != nil {
		return err
	}
	return atomicfile.SyncDir(parent)
}

// readLimited reads the file at path, refusing one over limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a file keys backup wrote", path, limit)
	}
	return b, nil
}

// openEscrow reads the bundle and the share files and opens the bundle.
// The caller clears the contents.
func openEscrow(bundlePath string, sharePaths []string) (*escrow.Bundle, *escrow.Contents, error) {
	if bundlePath == "" {
		return nil, nil, errors.New("app: keys: no bundle: pass the keys.escrow file that keys backup wrote")
	}
	if len(sharePaths) > maxShareFiles {
		return nil, nil, fmt.Errorf("app: keys: %d share files, more than a set has (%d)", len(sharePaths), maxShareFiles)
	}
	raw, err := readLimited(bundlePath, escrow.MaxBundle)
	if err != nil {
		return nil, nil, fmt.Errorf("app: keys: %w", err)
	}
	b, err := escrow.ParseBundle(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("app: keys: %s: %w", bundlePath, err)
	}
	shares := make([]*escrow.Share, 0, len(sharePaths))
	for _, p := range sharePaths {
		sb, err := readLimited(p, escrow.MaxShareFile)
		if err != nil {
			return nil, nil, fmt.Errorf("app: keys: share: %w", err)
		}
		s, err := escrow.ParseShare(p, sb)
		if err != nil {
			return nil, nil, fmt.Errorf("app: keys: %w", err)
		}
		shares = append(shares, s)
	}
	c, err := b.Open(shares)
	if err != nil {
		return nil, nil, fmt.Errorf("app: keys: %s: %w", bundlePath, err)
	}
	if len(c.KEK) != software.KEKSize {
		c.Clear()
		return nil, nil, fmt.Errorf("app: keys: %s: %w: the key-encryption key in it is %d bytes", bundlePath, escrow.ErrBundle, len(c.KEK))
	}
	return b, c, nil
}

// checkEscrowed checks that every software key in an opened bundle opens
// under its KEK for the purpose recorded; it returns the number that do
// and the purposes of those that do not. A CA key that does not open is
// an error.
func checkEscrowed(ctx context.Context, b *escrow.Bundle, c *escrow.Contents) (*software.Provider, int, []string, error) {
	prov, err := software.New(c.KEK, nil)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("app: keys: %w", err)
	}
	opened := 0
	var unusable []string
	for i, k := range b.Header.Keys {
		ref := keys.Ref{Provider: k.Provider, ID: k.ID, Algorithm: pki.KeyAlgorithm(k.Algorithm), Blob: c.Blobs[i]}
		if err := prov.Check(ctx, ref, keys.Purpose(k.Purpose)); err != nil {
			if strings.HasPrefix(k.Purpose, string(keys.CAPurpose(""))) {
				return nil, 0, nil, fmt.Errorf("%w: the escrowed key-encryption key does not open the escrowed key of %s: %w", ErrEscrowMismatch, k.Purpose, err)
			}
			unusable = append(unusable, k.Purpose)
			continue
		}
		opened++
	}
	return prov, opened, unusable, nil
}

// KeysVerifyOptions name the escrow set a drill opens.
type KeysVerifyOptions struct {
	Bundle string
	Shares []string
}

// KeysVerifyResult reports a drill.
type KeysVerifyResult struct {
	Header *escrow.Header
	// SharesGiven is the number of share files given.
	SharesGiven int
	// Escrowed is the number of escrowed keys that open under the
	// escrowed KEK; Unusable lists the purposes of those that do not.
	Escrowed int
	Unusable []string
	// Live is the number of the instance's software keys, all of which
	// open under the escrowed KEK; NotInSet is how many of them are newer
	// than the set (they open with its KEK, but their blobs are only in
	// the database and its backups).
	Live, NotInSet int
	// LiveUnusable names the instance's records whose key opens under
	// neither KEK the server uses (altered rows).
	LiveUnusable []string
}

// KeysVerify is the recovery drill: it reads the bundle and the shares,
// reconstructs the backup key, decrypts the bundle and checks that the
// escrowed KEK opens every escrowed key and every software key of cfg's
// instance, reading the live database and never the live KEK. It writes
// nothing but an audit event (a failed drill is recorded too).
func KeysVerify(ctx context.Context, cfg *config.Config, opts KeysVerifyOptions, clk clock.Clock) (*KeysVerifyResult, error) {
	db, err := openLive(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res, drillErr := drill(ctx, db, opts)
	details := map[string]any{"bundle": opts.Bundle, "shares_given": len(opts.Shares), "os_user": osUser()}
	target := "escrow"
	if res != nil && res.Header != nil {
		target = "escrow:" + res.Header.SetID
		details["set_id"], details["threshold"], details["shares"] = res.Header.SetID, res.Header.Threshold, res.Header.Shares
		details["keys"], details["escrowed_open"], details["live_keys"], details["live_not_in_set"] = len(res.Header.Keys), res.Escrowed, res.Live, res.NotInSet
	}
	if drillErr != nil {
		details["error"] = drillErr.Error()
	}
	ev := audit.New(localPrincipal(), clk.Now(), actionEscrowVerify, target, details)
	if drillErr != nil {
		ev.Outcome = audit.Failed
	}
	if err := db.AppendAudit(ctx, ev); err != nil {
		return nil, errors.Join(drillErr, fmt.Errorf("app: keys backup verify: record the drill in the audit log: %w", err))
	}
	if drillErr != nil {
		return nil, drillErr
	}
	return res, nil
}

// drill runs KeysVerify's checks; the result carries the header as soon
// as the bundle opened.
func drill(ctx context.Context, db *store.DB, opts KeysVerifyOptions) (*KeysVerifyResult, error) {
	b, c, err := openEscrow(opts.Bundle, opts.Shares)
	if err != nil {
		return nil, err
	}
	defer c.Clear()
	res := &KeysVerifyResult{Header: &b.Header, SharesGiven: len(opts.Shares)}
	prov, opened, unusable, err := checkEscrowed(ctx, b, c)
	if err != nil {
		return res, err
	}
	res.Escrowed, res.Unusable = opened, unusable
	instance, err := db.InstanceID(ctx)
	if err != nil {
		return res, fmt.Errorf("app: keys backup verify: %w", err)
	}
	if b.Header.InstanceID != "" && instance != "" && instance != b.Header.InstanceID {
		return res, fmt.Errorf("%w: the set was made from instance %s, this data directory's database is instance %s", ErrEscrowMismatch, b.Header.InstanceID, instance)
	}
	live, err := collectKeys(ctx, db, prov)
	if errors.Is(err, keys.ErrWrongKEK) {
		return res, fmt.Errorf("%w: the escrowed KEK does not open this instance's CA keys: the set is of another instance, or the database was altered: %w", ErrEscrowMismatch, err)
	}
	if err != nil {
		return res, fmt.Errorf("app: keys backup verify: %w", err)
	}
	inSet := make(map[escrow.Key]bool, len(b.Header.Keys))
	for _, k := range b.Header.Keys {
		inSet[k] = true
	}
	res.Live, res.LiveUnusable = len(live.header)-len(live.unusable), live.unusable
	for _, k := range live.header {
		if !inSet[k] {
			res.NotInSet++
		}
	}
	return res, nil
}

// KeysRecoverOptions say what to recover where.
type KeysRecoverOptions struct {
	// Bundle and Shares are the escrow set (at least its threshold of
	// shares).
	Bundle string
	Shares []string
	// Backup is a `certwright backup` bundle of the same instance (made
	// before or after the escrow set: the KEK does not change).
	Backup string
	// DataDir, DB and AdminTokenFile are as for Restore.
	DataDir, DB, AdminTokenFile string
}

// KeysRecoverResult reports a recovery.
type KeysRecoverResult struct {
	Restore  *RestoreResult
	Header   *escrow.Header
	Escrowed int
	Unusable []string
}

// KeysRecover reconstructs the KEK from the shares and restores the backup
// with it into a new data directory (Restore, with all its checks: a
// backup of another instance does not authenticate under this KEK). The
// recovery is the first event the restored instance's audit log gets.
// Nothing is written before the shares open the bundle.
func KeysRecover(ctx context.Context, opts KeysRecoverOptions, log *slog.Logger, clk clock.Clock) (*KeysRecoverResult, error) {
	if opts.Backup == "" {
		return nil, errors.New("app: keys recover: no backup: pass the certwright backup bundle to restore (--backup FILE); the escrow set holds the keys, the backup the database and configuration")
	}
	b, c, err := openEscrow(opts.Bundle, opts.Shares)
	if err != nil {
		return nil, err
	}
	defer c.Clear()
	_, opened, unusable, err := checkEscrowed(ctx, b, c)
	if err != nil {
		return nil, err
	}
	h := &b.Header
	ev := audit.New(localPrincipal(), clk.Now(), actionEscrowRecover, "escrow:"+h.SetID, map[string]any{
		"set_id": h.SetID, "threshold": h.Threshold, "shares": h.Shares, "shares_given": len(opts.Shares),
		"keys": len(h.Keys), "instance_id": h.InstanceID, "backup": filepath.Base(opts.Backup), "os_user": osUser(),
	})
	rr, err := Restore(ctx, RestoreOptions{
		Bundle: opts.Backup, DataDir: opts.DataDir, KEK: c.KEK, AdminTokenFile: opts.AdminTokenFile, DB: opts.DB, Audit: &ev,
	}, log, clk)
	if errors.Is(err, ErrWrongBundleKEK) {
		return nil, fmt.Errorf("%w: the backup %s was not made by the instance whose key-encryption key escrow set %s holds (instance %s), or it was changed after it was made; nothing was restored",
			ErrWrongBundleKEK, opts.Backup, h.SetID, h.InstanceID)
	}
	if err != nil {
		return nil, err
	}
	return &KeysRecoverResult{Restore: rr, Header: h, Escrowed: opened, Unusable: unusable}, nil
}
