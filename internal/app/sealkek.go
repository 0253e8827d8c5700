package app

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/store"
)

// actionKEKSeal is the audit action of keys seal-kek.
const actionKEKSeal = "kek.seal"

// SealKEKOptions tune SealKEK.
type SealKEKOptions struct {
	// ConfigFile is the configuration file to switch to the sealed KEK
	// (default DATA/config.yaml); it is created when missing.
	ConfigFile string
	// Adopt seals under the AES key already in the token under
	// keys.pkcs11.kek_label instead of generating it.
	Adopt bool
}

// SealKEKResult reports a KEK moved into the token.
type SealKEKResult struct {
	// SealedFile is the new sealed KEK file; Label the token key that
	// sealed it, Generated whether SealKEK generated that key.
	SealedFile string
	Label      string
	Generated  bool
	// Fingerprint is the KEK's (unchanged) fingerprint.
	Fingerprint string
	// SealedOld are the sealed copies of the old KEKs a rotation kept.
	SealedOld []string
	// Removed are the plain KEK files removed; NotRemoved those that
	// could not be (the error says why), which the operator removes.
	Removed, NotRemoved []string
	ConfigFile          string
	// Resumed says an interrupted seal-kek was finished: its sealed file
	// was used again (it was written, the configuration not switched
	// yet), or the configuration was switched already and only the plain
	// files were left to remove (and the audit event, if missing, to
	// record).
	Resumed bool
}

// SealKEK moves cfg's KEK file into the token of keys.pkcs11 with no
// server running: it seals the KEK (and the old KEKs a rotation kept)
// under the token's KEK, checks each sealed file opens to the same key,
// switches the configuration file to keys.kek_provider pkcs11, records an
// audit event and only then removes the plain files, overwritten first.
// The KEK itself does not change, so every backup and escrow set still
// opens with it. Until the configuration is switched nothing is removed,
// and a failure takes back what was written.
//
// An interrupted run is finished by the next. Before the switch: a sealed
// file already there that opens under the token's key to the same KEK is
// used again (another is refused). After it (cfg keeps the KEK in the
// token): the plain files left are removed, each once it is checked to
// hold the key sealed beside it, and the audit event recorded if it is
// missing.
func SealKEK(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock, opts SealKEKOptions) (_ *SealKEKResult, err error) {
	if cfg.Keys.KEKInToken() {
		return finishSeal(ctx, cfg, log, clk, opts)
	}
	if !cfg.Keys.PKCS11.Configured() {
		return nil, errors.New("app: seal KEK: no token: set keys.pkcs11 in the configuration, or pass --pkcs11-module, --pkcs11-token and --pkcs11-pin-file")
	}
	lock, err := lockOffline(cfg.DataDir, "seal KEK")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	plainPath := cfg.KEKPath()
	if _, err := os.Lstat(plainPath + kekNewSuffix); err == nil {
		return nil, fmt.Errorf("app: seal KEK: a KEK rotation is unfinished (%s exists): run certwright keys rotate-kek to finish it first", plainPath+kekNewSuffix)
	}
	kek, err := software.LoadKEK(plainPath)
	if err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	defer clear(kek)
	fp, err := kekFingerprint(kek)
	if err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	// Only this database's KEK is sealed: a stray file must not replace
	// the one that opens the keys.
	if err := checkDatabaseKEK(ctx, cfg, log, plainPath, fp); err != nil {
		return nil, err
	}

	sealed := *cfg
	sealed.KEKFile = ""
	sealed.Keys.KEKProvider = config.KEKProviderPKCS11
	sealed.Keys.PKCS11.KEKLabel = cfg.Keys.PKCS11.KEKLabelOrDefault()
	if err := sealed.Validate(); err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	// A sealed file left by an interrupted run was sealed by the token's
	// key that run generated: it is used, not generated again.
	_, serr := os.Lstat(sealed.KEKPath())
	generate := !opts.Adopt && errors.Is(serr, fs.ErrNotExist)
	ks, tok, err := openKEKStore(ctx, &sealed, log, generate)
	if err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	defer tok.Close()
	r := &SealKEKResult{SealedFile: sealed.KEKPath(), Label: ks.label, Generated: generate, Fingerprint: fp}
	var written []string
	defer func() {
		if err == nil {
			return
		}
		for _, p := range written {
			os.Remove(p)
		}
		if r.Generated {
			if derr := ks.tk.Destroy(context.WithoutCancel(ctx)); derr != nil {
				log.Error("seal-kek failed, and the KEK it generated in the token could not be destroyed: delete it before running seal-kek again under the same label", "label", ks.label, "err", derr)
			}
		}
	}()
	// seal writes k, from the plain file from, sealed to path, or takes
	// the sealed file an interrupted run left there.
	seal := func(path, from string, k []byte) error {
		reused, err := sealOrReuse(ctx, ks, path, from, k)
		if err != nil {
			return err
		}
		if reused {
			r.Resumed = true
		} else {
			written = append(written, path)
		}
		return nil
	}
	if err := seal(r.SealedFile, plainPath, kek); err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	plains := []string{plainPath}
	old, err := filepath.Glob(globEscape(plainPath) + kekOldInfix + "*")
	if err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	for _, p := range old {
		k, err := software.LoadKEK(p)
		if err != nil {
			return nil, fmt.Errorf("app: seal KEK: an old KEK kept by a rotation: %w", err)
		}
		to := r.SealedFile + kekOldInfix + strings.TrimPrefix(filepath.Base(p), filepath.Base(plainPath)+kekOldInfix)
		err = seal(to, p, k)
		clear(k)
		if err != nil {
			return nil, fmt.Errorf("app: seal KEK: an old KEK kept by a rotation: %w", err)
		}
		r.SealedOld = append(r.SealedOld, to)
		plains = append(plains, p)
	}

	r.ConfigFile = opts.ConfigFile
	if r.ConfigFile == "" {
		r.ConfigFile = filepath.Join(cfg.DataDir, config.FileName)
	}
	onDisk := &config.Config{}
	if err := onDisk.Load(r.ConfigFile); err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	onDisk.KEKFile = ""
	onDisk.Keys.KEKProvider = config.KEKProviderPKCS11
	onDisk.Keys.PKCS11 = sealed.Keys.PKCS11
	if err := onDisk.Replace(r.ConfigFile); err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}

	if err := auditSeal(ctx, &sealed, r, clk); err != nil {
		return nil, errors.Join(err, restoreConfig(r.ConfigFile, cfg))
	}
	shredAll(r, plains, log)
	return r, nil
}

// shredAll removes the plain KEK files, noting each in r.
func shredAll(r *SealKEKResult, plains []string, log *slog.Logger) {
	for _, p := range plains {
		if err := shred(p); err != nil {
			log.Error("the KEK is sealed in the token, but a plain KEK file could not be removed: remove it yourself", "file", p, "err", err)
			r.NotRemoved = append(r.NotRemoved, p)
			continue
		}
		r.Removed = append(r.Removed, p)
	}
}

// sealOrReuse writes kek sealed to path, or, when path exists (left by an
// interrupted seal-kek), checks it opens under ks to kek and reports it
// reused. A sealed file that does not open, or holds another KEK, is
// refused: it is not this KEK's, and is left for the operator.
func sealOrReuse(ctx context.Context, ks *kekStore, path, from string, kek []byte) (reused bool, err error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return false, ks.writeNewFrom(ctx, path, kek, from)
	}
	back, err := ks.load(ctx, path)
	if err != nil {
		return false, fmt.Errorf("%s exists (left by an interrupted seal-kek?) but does not open under the token's key %q, so it is not this KEK sealed; move it away and run seal-kek again: %w", path, ks.label, err)
	}
	same := subtle.ConstantTimeCompare(back, kek) == 1
	clear(back)
	if !same {
		return false, fmt.Errorf("%s exists and opens under the token's key %q, but to another KEK than %s: it is not left by a seal-kek of this KEK; move it away and run seal-kek again", path, ks.label, from)
	}
	return true, nil
}

// finishSeal finishes a seal-kek interrupted after it switched the
// configuration to the sealed KEK (cfg): every plain KEK file left is
// checked to hold the key sealed beside it (one that does not is
// refused, and nothing is removed), the audit event is recorded unless
// it is there, and the plain files are removed.
func finishSeal(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock, opts SealKEKOptions) (*SealKEKResult, error) {
	left := plainKEKsLeft(cfg)
	if len(left) == 0 {
		return nil, fmt.Errorf("app: seal KEK: the configuration already keeps the KEK in the token (keys.kek_provider pkcs11, %s), and no plain KEK file is left: nothing to do", cfg.KEKPath())
	}
	lock, err := lockOffline(cfg.DataDir, "seal KEK")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ks, tok, err := openKEKStore(ctx, cfg, log, false)
	if err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	defer tok.Close()
	r := &SealKEKResult{SealedFile: cfg.KEKPath(), Label: ks.label, Resumed: true, ConfigFile: opts.ConfigFile}
	if r.ConfigFile == "" {
		r.ConfigFile = filepath.Join(cfg.DataDir, config.FileName)
	}
	kek, err := ks.load(ctx, r.SealedFile)
	if err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	defer clear(kek)
	if r.Fingerprint, err = kekFingerprint(kek); err != nil {
		return nil, fmt.Errorf("app: seal KEK: %w", err)
	}
	if err := checkDatabaseKEK(ctx, cfg, log, r.SealedFile, r.Fingerprint); err != nil {
		return nil, err
	}
	var plains []string
	for _, l := range left {
		if err := samePlainKEK(ctx, ks, l); err != nil {
			return nil, fmt.Errorf("app: seal KEK: %w; it was left in place, and nothing was removed: if it is not needed, overwrite and remove it yourself", err)
		}
		plains = append(plains, l.plain)
		if l.sealed != r.SealedFile {
			r.SealedOld = append(r.SealedOld, l.sealed)
		}
	}
	recorded, err := sealRecorded(ctx, cfg, r.Fingerprint)
	if err != nil {
		return nil, err
	}
	if !recorded {
		if err := auditSeal(ctx, cfg, r, clk); err != nil {
			return nil, err
		}
	}
	shredAll(r, plains, log)
	return r, nil
}

// samePlainKEK refuses a plain KEK file that does not hold the key of
// the sealed file beside it.
func samePlainKEK(ctx context.Context, ks *kekStore, l plainKEK) error {
	plain, err := software.LoadKEK(l.plain)
	if err != nil {
		return fmt.Errorf("the plain KEK file %s: %w", l.plain, err)
	}
	defer clear(plain)
	sealed, err := ks.load(ctx, l.sealed)
	if err != nil {
		return fmt.Errorf("the plain KEK file %s is not the KEK sealed in %s (that does not open: %w)", l.plain, l.sealed, err)
	}
	defer clear(sealed)
	if subtle.ConstantTimeCompare(plain, sealed) != 1 {
		return fmt.Errorf("the plain KEK file %s is not the KEK sealed in %s", l.plain, l.sealed)
	}
	return nil
}

// sealRecorded reports whether the audit log records the move of KEK fp
// into the token.
func sealRecorded(ctx context.Context, cfg *config.Config, fp string) (bool, error) {
	st, err := store.Open(ctx, DBURL(cfg), nil)
	if err != nil {
		return false, fmt.Errorf("app: seal KEK: open store: %w", err)
	}
	defer st.Close()
	evs, err := st.FindAuditEvents(ctx, audit.Query{Action: actionKEKSeal, Limit: 1000})
	if err != nil {
		return false, fmt.Errorf("app: seal KEK: %w", err)
	}
	for _, ev := range evs {
		var d struct {
			KEK string `json:"kek"`
		}
		if json.Unmarshal(ev.Details, &d) == nil && d.KEK == fp {
			return true, nil
		}
	}
	return false, nil
}

// checkDatabaseKEK refuses a KEK whose fingerprint fp is not the one the
// database records.
func checkDatabaseKEK(ctx context.Context, cfg *config.Config, log *slog.Logger, path, fp string) error {
	st, err := store.Open(ctx, DBURL(cfg), log)
	if err != nil {
		return fmt.Errorf("app: seal KEK: open store: %w", err)
	}
	defer st.Close()
	rec, err := st.GetSetting(ctx, settingKEK)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("app: seal KEK: %w", err)
	}
	if len(rec) > 0 && string(rec) != fp {
		return fmt.Errorf("app: seal KEK: %w: the database records KEK %s, but %s is KEK %s; nothing was sealed", ErrKEKMismatch, rec, path, fp)
	}
	return nil
}

// auditSeal records the KEK's move into the token.
func auditSeal(ctx context.Context, cfg *config.Config, res *SealKEKResult, clk clock.Clock) error {
	st, err := store.Open(ctx, DBURL(cfg), nil)
	if err != nil {
		return fmt.Errorf("app: seal KEK: open store: %w", err)
	}
	defer st.Close()
	ev := audit.New(localPrincipal(), clk.Now(), actionKEKSeal, "keys", map[string]any{
		"kek": res.Fingerprint, "token_kek_label": res.Label, "generated": res.Generated,
		"sealed_file": res.SealedFile, "old_keks_sealed": len(res.SealedOld), "resumed": res.Resumed, "os_user": osUser(),
	})
	if err := st.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("app: seal KEK: record it in the audit log (the KEK file was left as it was): %w", err)
	}
	return nil
}

// restoreConfig puts back the configuration SealKEK switched.
func restoreConfig(path string, cfg *config.Config) error {
	onDisk := &config.Config{}
	if err := onDisk.Load(path); err != nil {
		return err
	}
	onDisk.KEKFile = cfg.KEKFile
	onDisk.Keys.KEKProvider = cfg.Keys.KEKProvider
	onDisk.Keys.PKCS11 = cfg.Keys.PKCS11
	return onDisk.Replace(path)
}

// shred overwrites the plain KEK file at path with zeros, syncs it and
// removes it. On a copy-on-write or journalling file system, or an SSD,
// the old blocks may survive the overwrite (README "The KEK in the
// token").
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, fi.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}
