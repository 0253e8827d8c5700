package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store"
)

// InstanceFile holds the ID of the instance the data directory belongs to;
// the database records the same ID, so a data directory is never started
// against another instance's database.
const InstanceFile = "instance-id"

// checkDataDir refuses a data directory that group or others can enter:
// it holds the key-encryption key and the admin token.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("app: data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("app: refusing to start: the data directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("app: refusing to start: the data directory %s is accessible to group or others (mode %04o), and it holds the key-encryption key and the admin token: run `chmod 700 %s`",
			dir, perm, dir)
	}
	return nil
}

// sqlitePath returns the SQLite database file cfg uses, "" for PostgreSQL.
func sqlitePath(cfg *config.Config) string {
	u := DBURL(cfg)
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		return ""
	}
	return strings.TrimPrefix(strings.TrimPrefix(u, "sqlite://"), "sqlite:")
}

// checkDatabaseFile refuses to start on a missing SQLite file when the
// data directory shows that this instance has CAs: opening would create
// an empty database and a server without its certificates.
func checkDatabaseFile(cfg *config.Config) error {
	path := sqlitePath(cfg)
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, f := range []string{RootFile, InstanceFile, AnchorFile, KeysMarkerFile} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, f)); err == nil {
			return fmt.Errorf("app: refusing to start: the database file %s is missing, but the data directory %s belongs to an initialised instance (it holds %s); starting would create an empty database without its CAs and certificates. Put the database back (from a backup), or point db/--db at it",
				path, cfg.DataDir, f)
		}
	}
	return nil
}

// checkInstance refuses a database that belongs to another instance than
// the data directory, and records the instance ID where it is missing
// (data directories and databases from before IDs were recorded).
func (a *App) checkInstance(ctx context.Context) error { return checkInstance(ctx, a.cfg, a.store) }

func checkInstance(ctx context.Context, cfg *config.Config, st *store.DB) error {
	path := filepath.Join(cfg.DataDir, InstanceFile)
	mine, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("app: %w", err)
	}
	id := strings.TrimSpace(string(mine))
	if id == "" {
		if id, err = newInstanceID(); err != nil {
			return err
		}
	}
	theirs, err := st.ClaimInstanceID(ctx, id)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if len(mine) > 0 && theirs != id {
		return fmt.Errorf("app: refusing to start: the database %s belongs to another Certwright instance (instance %s), not to the data directory %s (instance %s). Each instance needs its own database, or its own PostgreSQL schema (?search_path=NAME in the URL); a replica uses a copy of the data directory of the instance whose database it shares",
			redactURL(DBURL(cfg)), theirs, cfg.DataDir, id)
	}
	if len(mine) == 0 {
		if err := atomicfile.WriteFile(path, []byte(theirs+"\n"), 0o600); err != nil {
			return fmt.Errorf("app: record the instance ID: %w", err)
		}
	}
	return nil
}

func newInstanceID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("app: instance ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// warnDurability logs what makes an acknowledged commit losable.
func (a *App) warnDurability(ctx context.Context) {
	v, err := a.store.SynchronousCommit(ctx)
	if err != nil {
		a.log.Warn("cannot read PostgreSQL's synchronous_commit", "err", err)
		return
	}
	if v == "off" {
		a.log.Warn("PostgreSQL runs with synchronous_commit=off: an issuance, revocation or audit event acknowledged to a client can be lost if the database server crashes; set synchronous_commit=on for this database or role (ALTER DATABASE ... SET synchronous_commit = on)")
	}
}
