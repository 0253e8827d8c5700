package app

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/dirlock"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
)

// The key-encryption key's identity and its rotation (README "Rotating
// the KEK"). The database records the fingerprint of the KEK its keys are
// wrapped under (keys.KEKFingerprint, in settingKEK), so a start with
// another KEK file, or one half-way through a rotation, is refused with
// what to do rather than as a damaged key. RotateKEK re-wraps every key and
// re-seals every sealed secret under a new KEK in one transaction, then
// swaps the files beside the KEK:
//
//	kek.new            the new KEK, written before the transaction; kept
//	                   until the swap, so an interrupted run resumes with it
//	kek.old-TIMESTAMP  the old KEK, kept after the swap for the backups made
//	                   before it (their manifests are authenticated under it)

// settingKEK records the fingerprint of the KEK the database's keys are
// wrapped under.
const settingKEK = "kek_fingerprint"

// kekNewSuffix and kekOldInfix name the files beside the KEK file.
const (
	kekNewSuffix = ".new"
	kekOldInfix  = ".old-"
)

// ErrKEKMismatch is returned by Open when the KEK file is not the KEK the
// database records.
var ErrKEKMismatch = errors.New("the KEK file is not the key-encryption key the database's keys are wrapped under")

// ErrKEKRotationUnfinished is returned by Open when a rotation committed
// the new KEK to the database but did not swap the files yet.
var ErrKEKRotationUnfinished = errors.New("a KEK rotation is unfinished")

// ErrServerRunning is returned by RotateKEK while a server runs on the
// data directory (or on the database, for PostgreSQL replicas).
var ErrServerRunning = errors.New("app: a server is running")

// kekFingerprint is keys.KEKFingerprint of a KEK held in memory.
func kekFingerprint(kek []byte) (string, error) {
	p, err := software.New(kek, nil)
	if err != nil {
		return "", err
	}
	return keys.KEKFingerprint(p)
}

// ErrRotationRunning is returned by Open and Backup while a KEK rotation
// holds the data directory.
var ErrRotationRunning = errors.New("a KEK rotation (certwright keys rotate-kek) holds the data directory")

// lockShared takes the data directory's shared lock, which serve holds
// while it runs and backup while it reads, refused (ErrRotationRunning)
// while a KEK rotation holds it exclusively. Where the file system has no
// locks it returns the error with a nil Lock, for the caller to go on
// without.
func lockShared(dir string) (*dirlock.Lock, error) {
	l, err := dirlock.Shared(dir)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("%w %s: %w", ErrRotationRunning, dir, err)
	}
	return l, err
}

// lockServe is lockShared for serve: a file system without locks is
// logged and started without one.
func lockServe(cfg *config.Config, log *slog.Logger) (*dirlock.Lock, error) {
	l, err := lockShared(cfg.DataDir)
	switch {
	case errors.Is(err, ErrRotationRunning):
		return nil, fmt.Errorf("app: refusing to start: %w; start once it has finished", err)
	case err != nil:
		log.Warn("cannot lock the data directory: certwright keys rotate-kek will not see that this server runs", "dir", cfg.DataDir, "err", err)
		return nil, nil
	}
	return l, nil
}

// lockOffline takes the data directory's exclusive lock for op, a
// command that changes the KEK's files with no server running: refused
// (ErrServerRunning) while serve, a backup or another such command holds
// it, or where the file system cannot tell.
func lockOffline(dir, op string) (*dirlock.Lock, error) {
	if err := checkDataDir(dir); err != nil {
		return nil, err
	}
	lock, err := dirlock.Exclusive(dir)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("%w on the data directory %s (or another rotate-kek or seal-kek): stop it first: %w", ErrServerRunning, dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("app: %s: cannot tell whether a server runs on the data directory: %w", op, err)
	}
	return lock, nil
}

// sameKEK refuses a KEK other than the one the database records (none
// recorded passes: claimKEK records it once the keys opened). A replica
// checks it again when it registers, under the registry's lock, which a
// rotation holds until it has committed.
func (a *App) sameKEK(ctx context.Context) error {
	rec, err := a.store.GetSetting(ctx, settingKEK)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if string(rec) != a.kekID {
		return kekMismatch(ctx, a.cfg, a.kekStore, string(rec), a.kekID)
	}
	return nil
}

// checkRecordedKEK is sameKEK at start, with a warning about a rotation
// interrupted before it changed the database.
func (a *App) checkRecordedKEK(ctx context.Context) error {
	if err := a.sameKEK(ctx); err != nil {
		return fmt.Errorf("app: refusing to start: %w", err)
	}
	if _, err := os.Lstat(a.cfg.KEKPath() + kekNewSuffix); err == nil {
		a.log.Warn("a KEK rotation was interrupted before it changed the database: the old KEK is still in use; run certwright keys rotate-kek again to finish it (with the server stopped), or delete the new KEK file",
			"file", a.cfg.KEKPath()+kekNewSuffix)
	}
	return nil
}

// claimKEK records this KEK's fingerprint where the database records none
// (a database from before fingerprints were recorded), once the keys
// opened under it, and refuses a KEK other than the one recorded.
func (a *App) claimKEK(ctx context.Context) error {
	rec, err := a.store.ClaimSetting(ctx, settingKEK, []byte(a.kekID))
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if string(rec) != a.kekID {
		return fmt.Errorf("app: refusing to start: %w", kekMismatch(ctx, a.cfg, a.kekStore, string(rec), a.kekID))
	}
	return nil
}

// kekMismatch is the refusal of a KEK file (fingerprint have) that is not
// the database's KEK (recorded): an unfinished rotation when DATA/kek.new
// is the recorded KEK, another KEK file otherwise. ks (nil: not known)
// reads the new KEK.
func kekMismatch(ctx context.Context, cfg *config.Config, ks *kekStore, recorded, have string) error {
	path := cfg.KEKPath()
	if ks == nil {
		ks = &kekStore{}
	}
	if kek, err := ks.load(ctx, path+kekNewSuffix); err == nil {
		fp, ferr := kekFingerprint(kek)
		clear(kek)
		if ferr == nil && fp == recorded {
			return fmt.Errorf("%w: the database's keys were re-wrapped under the new KEK %s (in %s), but %s is still the old KEK %s: run `certwright keys rotate-kek --data-dir %s` to finish the rotation",
				ErrKEKRotationUnfinished, recorded, path+kekNewSuffix, path, have, cfg.DataDir)
		}
	}
	return fmt.Errorf("%w: the database records KEK %s, but %s is KEK %s. If the KEK was rotated (certwright keys rotate-kek) on another replica's data directory, copy that directory's KEK file here (mode 0600); otherwise use the KEK file of this instance: %w",
		ErrKEKMismatch, recorded, path, have, keys.ErrWrongKEK)
}

// warnKEKPlacement warns, at start, when the KEK file sits in the data
// directory of an instance that is not a local trial: a copy of the
// directory is then a copy of the CA.
func (a *App) warnKEKPlacement() {
	if a.cfg.Keys.KEKInToken() {
		a.warnPlainKEKLeft()
		return
	}
	if IsTrial(a.cfg) || !kekInDataDir(a.cfg) {
		return
	}
	a.log.Warn("the key-encryption key sits in the data directory beside the database, so a copy of the directory is a copy of the CA's keys; keep it on other storage with kek_file (README: Keeping the KEK elsewhere)",
		"kek_file", a.cfg.KEKPath(), "data_dir", a.cfg.DataDir)
}

// warnPlainKEKLeft warns, at start, about each plain KEK file left
// beside the KEK sealed by the token (a keys seal-kek interrupted after
// it switched the configuration): a copy of it opens every key without
// the token.
func (a *App) warnPlainKEKLeft() {
	for _, l := range plainKEKsLeft(a.cfg) {
		a.log.Warn("a plain key-encryption key file is still there although the KEK is sealed in the token (keys seal-kek was interrupted?): whoever copies it opens the CA's keys without the token; stop the server and run certwright keys seal-kek to finish (it removes the file once it checks it holds the sealed KEK), or overwrite and remove it yourself",
			"file", l.plain, "sealed_kek", l.sealed, "data_dir", a.cfg.DataDir)
	}
	if pinInDataDir(a.cfg) {
		a.log.Warn("the token's PIN file is inside the data directory although the KEK is sealed in the token: a copy of the directory holds the PIN too, and with access to the token opens every key; move the PIN file out of the data directory (mode 0600) and point keys.pkcs11.pin_file at it, or use keys.pkcs11.pin_env",
			"pin_file", a.cfg.Keys.PKCS11.PINPath(a.cfg.DataDir), "data_dir", a.cfg.DataDir)
	}
}

// pinInDataDir reports whether keys.pkcs11.pin_file names a file in the
// data directory, as written or with symbolic links resolved.
func pinInDataDir(cfg *config.Config) bool {
	pin := cfg.Keys.PKCS11.PINPath(cfg.DataDir)
	return pin != "" && (isIn(cfg.DataDir, pin) || resolvesIn(cfg.DataDir, pin))
}

// resolvesIn reports whether path, with symbolic links resolved, names a
// file inside dir (resolved too); false when either does not exist.
func resolvesIn(dir, path string) bool {
	d, derr := filepath.EvalSymlinks(dir)
	p, perr := filepath.EvalSymlinks(path)
	return derr == nil && perr == nil && isIn(d, p)
}

// kekInDataDir reports whether cfg's KEK file resolves (through symbolic
// links) to a file inside the data directory.
func kekInDataDir(cfg *config.Config) bool {
	return resolvesIn(cfg.DataDir, cfg.KEKPath())
}

// isIn reports whether path names something inside dir (as written: links
// are not followed).
func isIn(dir, path string) bool {
	d, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	p, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// RotateKEKOptions tune RotateKEK.
type RotateKEKOptions struct {
	// Hook, when set, is called after each step (see the kekStep
	// constants); an error from it stops the rotation there, as a crash
	// would. Tests use it.
	Hook func(step string) error
}

// The steps RotateKEKOptions.Hook is called after.
const (
	kekStepGenerated    = "generated"     // kek.new written
	kekStepBeforeCommit = "before-commit" // everything written in the transaction, not committed
	kekStepCommitted    = "committed"     // the database is under the new KEK
	kekStepOldKept      = "old-kept"      // kek.old-TIMESTAMP written, kek not swapped yet
)

// RotateKEKResult reports a rotation.
type RotateKEKResult struct {
	// From and To are the old and new KEK's fingerprints.
	From, To string
	// Found and Rewrapped count, by kind of record, the keys and sealed
	// secrets found and the ones moved to the new KEK.
	Found, Rewrapped map[string]int
	// Left names the records whose key or secret does not open under
	// the old KEK (altered, or a legacy key never migrated): left as they
	// were, as unusable as before.
	Left []string
	// Resumed: the new KEK is one an interrupted run had written.
	// FilesOnly: that run had committed, and only the files were swapped.
	Resumed, FilesOnly bool
	// KEKFile is the KEK file (now the new KEK); OldKEKFile keeps the old
	// one, for restoring backups made before the rotation.
	KEKFile, OldKEKFile string
}

// RotateKEK moves every key and sealed secret of cfg's instance to a new
// KEK, with no server running on it: it refuses while serve holds the
// data directory, and, on PostgreSQL, while any replica is running.
//
// The new KEK is written to KEK.new (or taken from there, left by an
// interrupted run); in one transaction every key is re-wrapped and every
// secret re-sealed under it, its fingerprint recorded and an audit event
// appended; then the old KEK is kept as KEK.old-TIMESTAMP and KEK.new
// renamed over KEK. A run interrupted before the commit changed nothing
// and the next one completes it with the same new KEK; one interrupted
// after it is finished by the next, which only swaps the files (serve
// refuses to start meanwhile, saying so).
func RotateKEK(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock, opts RotateKEKOptions) (*RotateKEKResult, error) {
	hook := func(step string) error {
		if opts.Hook == nil {
			return nil
		}
		return opts.Hook(step)
	}
	lock, err := lockOffline(cfg.DataDir, "rotate KEK")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if ok, err := software.LegacyMarkerExists(filepath.Join(cfg.DataDir, KeysMarkerFile)); err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	} else if !ok {
		return nil, fmt.Errorf("app: rotate KEK: this data directory's keys were never made purpose-bound (no %s): start serve once, then rotate", KeysMarkerFile)
	}

	// With the KEK in the token, the new KEK is sealed by the same
	// token key as the old, and so are the files kept beside it.
	ks, tok, err := openKEKStore(ctx, cfg, log, false)
	if err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	defer tok.Close()
	kekPath, newPath := cfg.KEKPath(), cfg.KEKPath()+kekNewSuffix
	res := &RotateKEKResult{KEKFile: kekPath}
	oldKEK, err := ks.load(ctx, kekPath)
	if err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	defer clear(oldKEK)
	oldP, err := software.New(oldKEK, nil)
	if err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	if res.From, err = keys.KEKFingerprint(oldP); err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}

	st, err := store.Open(ctx, DBURL(cfg), log)
	if err != nil {
		return nil, fmt.Errorf("app: rotate KEK: open store: %w", err)
	}
	defer st.Close()
	if err := checkInstance(ctx, cfg, st); err != nil {
		return nil, err
	}

	// A KEK file the database does not record (another replica's data
	// directory finished a rotation) is refused before a new KEK is
	// written beside it.
	rec, err := st.GetSetting(ctx, settingKEK)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	if _, serr := os.Lstat(newPath); len(rec) > 0 && string(rec) != res.From && errors.Is(serr, fs.ErrNotExist) {
		return nil, fmt.Errorf("app: rotate KEK: %w: the database records KEK %s, but %s is KEK %s; if the KEK was rotated on another replica's data directory, copy that directory's KEK file here (mode 0600) instead",
			store.ErrOtherKEK, rec, kekPath, res.From)
	}

	newKEK, err := ks.load(ctx, newPath)
	switch {
	case err == nil:
		res.Resumed = true
	case errors.Is(err, fs.ErrNotExist):
		if err := ks.create(ctx, newPath); err != nil {
			return nil, fmt.Errorf("app: rotate KEK: %w", err)
		}
		if err := hook(kekStepGenerated); err != nil {
			return nil, err
		}
		if newKEK, err = ks.load(ctx, newPath); err != nil {
			return nil, fmt.Errorf("app: rotate KEK: %w", err)
		}
	default:
		return nil, fmt.Errorf("app: rotate KEK: the new KEK left by an interrupted run: %w", err)
	}
	defer clear(newKEK)
	if subtle.ConstantTimeCompare(newKEK, oldKEK) == 1 {
		return nil, fmt.Errorf("app: rotate KEK: %s holds the same key as %s: delete it and run again", newPath, kekPath)
	}
	newP, err := software.New(newKEK, nil)
	if err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	if res.To, err = keys.KEKFingerprint(newP); err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}

	var serverTLS string
	if cur, err := st.GetSetting(ctx, settingServerTLS); err == nil {
		serverTLS = string(cur)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	left := func(where string, err error) {
		res.Left = append(res.Left, where)
		log.Error("key NOT moved to the new KEK: it does not open under the old one (altered in the database, or a legacy key never migrated); it stays unusable", "record", where, "err", err)
	}
	r, err := st.RotateKEK(ctx, store.KEKRotation{
		Provider: software.Name, Prefixes: [][]byte{software.CurrentBlobPrefix(), software.LegacyBlobPrefix},
		Setting: settingKEK, From: res.From, To: res.To,
		Key: func(k *store.WrappedKey) ([]byte, error) {
			if software.IsLegacy(k.Ref) {
				left(k.Where(), keys.ErrLegacyFormat)
				return nil, nil
			}
			blob, err := rewrapUnder(oldP, newP, k, serverTLS)
			if err != nil && k.Kind != store.KeyKindCA && (errors.Is(err, keys.ErrWrongKEK) || errors.Is(err, software.ErrMalformedBlob)) {
				left(k.Where(), err)
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.Where(), err)
			}
			return blob, nil
		},
		Secret: func(s *store.SealedSecret) ([]byte, error) {
			aad, err := sealedAAD(s)
			if err != nil {
				return nil, err
			}
			b, err := oldP.ResealTo(newP, s.Sealed, aad)
			if errors.Is(err, keys.ErrWrongKEK) || errors.Is(err, software.ErrMalformedBlob) {
				left(s.Where(), err)
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Where(), err)
			}
			return b, nil
		},
		Event: func(r *store.KEKRotationResult) *audit.Event {
			details := map[string]any{"old_kek": res.From, "new_kek": res.To, "found": r.Found, "rewrapped": r.Rewrapped}
			if len(res.Left) > 0 {
				details["left"] = res.Left
			}
			ev := audit.New(authz.System(), clk.Now(), "kek.rotate", "keys", details)
			return &ev
		},
		BeforeCommit: func() error { return hook(kekStepBeforeCommit) },
	})
	var live *store.LiveReplicasError
	switch {
	case errors.As(err, &live):
		return nil, fmt.Errorf("%w: stop every replica first (each is seen for %s after it stops beating): %w", ErrServerRunning, store.ReplicaLive, err)
	case errors.Is(err, keys.ErrWrongKEK):
		return nil, fmt.Errorf("app: rotate KEK: %s does not open the CA keys in the database (is it this instance's KEK?); nothing was changed: %w", kekPath, err)
	case err != nil:
		return nil, fmt.Errorf("app: rotate KEK: nothing was changed: %w", err)
	}
	res.Found, res.Rewrapped, res.FilesOnly = r.Found, r.Rewrapped, r.Already
	if err := hook(kekStepCommitted); err != nil {
		return nil, err
	}
	if res.OldKEKFile, err = keepOldKEK(ctx, ks, kekPath, oldKEK, clk.Now()); err != nil {
		return nil, fmt.Errorf("app: rotate KEK: the database is under the new KEK; keep the old one: %w (run rotate-kek again to finish)", err)
	}
	if err := hook(kekStepOldKept); err != nil {
		return nil, err
	}
	if err := os.Rename(newPath, kekPath); err != nil {
		return nil, fmt.Errorf("app: rotate KEK: the database is under the new KEK; put it in place: %w (run rotate-kek again to finish)", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(kekPath)); err != nil {
		return nil, fmt.Errorf("app: rotate KEK: %w", err)
	}
	return res, nil
}

// rewrapUnder returns k's blob under newP's KEK. The purpose is the one
// its record gives; a certificate's key is tried as a managed key and as a
// server TLS key (the server's own certificates, whichever requested
// them), and re-wrapped for the purpose it opened for.
func rewrapUnder(oldP, newP *software.Provider, k *store.WrappedKey, serverTLS string) ([]byte, error) {
	purposes := []keys.Purpose{recordPurpose(k, serverTLS)}
	if k.Kind == store.KeyKindManaged {
		purposes = append(purposes, keys.ManagedPurpose(k.Owner), keys.ServerTLSPurpose(k.Owner))
	}
	var err error
	for _, p := range slices.Compact(purposes) {
		var blob []byte
		if blob, err = oldP.RewrapTo(newP, k.Ref, p); err == nil || !errors.Is(err, keys.ErrWrongKEK) {
			return blob, err
		}
	}
	return nil, err
}

// sealedAAD is the additional data a sealed secret of s's record was
// sealed with.
func sealedAAD(s *store.SealedSecret) ([]byte, error) {
	switch s.Kind {
	case store.SecretKindEAB:
		return acme.EABSealAAD(s.Owner), nil
	}
	return nil, fmt.Errorf("app: rotate KEK: no additional data known for sealed secrets of kind %q", s.Kind)
}

// keepOldKEK writes the old KEK to KEK.old-TIMESTAMP (0600, synced, as
// ks keeps KEKs) and returns its path; when a kept file already holds it
// (a run interrupted after keeping it) that file is returned.
func keepOldKEK(ctx context.Context, ks *kekStore, kekPath string, oldKEK []byte, now time.Time) (string, error) {
	kept, err := filepath.Glob(globEscape(kekPath) + kekOldInfix + "*")
	if err != nil {
		return "", err
	}
	for _, p := range kept {
		if k, err := ks.load(ctx, p); err == nil {
			same := subtle.ConstantTimeCompare(k, oldKEK) == 1
			clear(k)
			if same {
				return p, nil
			}
		}
	}
	base := kekPath + kekOldInfix + now.UTC().Format("20060102T150405Z")
	path := base
	for i := 2; Exists(path); i++ {
		path = fmt.Sprintf("%s-%d", base, i)
	}
	if err := ks.writeNew(ctx, path, oldKEK); err != nil {
		return "", err
	}
	return path, nil
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
