// Package sqlite owns how the store opens a SQLite database file: the pure-Go
// driver, the file's 0600 mode, and the per-connection settings (WAL,
// synchronous=FULL, busy timeout, foreign keys) that make a commit durable.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout bounds how long a connection waits for a lock held by another
// connection or process (a second server, an operator's sqlite3 shell)
// before failing with SQLITE_BUSY.
const (
	busyTimeout       = 10 * time.Second
	busyTimeoutMillis = "10000"
)

// Pools are the two connection pools of one database file. SQLite admits a
// single writer at a time, so Write holds exactly one connection and every
// write goes through it in order; Read holds several query-only connections
// that, under WAL, never block the writer nor each other.
type Pools struct {
	Write *sql.DB
	Read  *sql.DB
	// Created is true when Open created the file.
	Created bool
	// Mode is the permission bits the file had when opened.
	Mode fs.FileMode
}

// Close closes both pools.
func (p *Pools) Close() error {
	return errors.Join(p.Write.Close(), p.Read.Close())
}

// Open opens (creating with mode 0600 if needed) the database file at path.
// In-memory databases are refused: the read and write pools would each see a
// different empty database.
func Open(ctx context.Context, path string) (*Pools, error) {
	if path == "" || path == ":memory:" || hasMemoryMode(path) {
		return nil, fmt.Errorf("store: sqlite: a database file path is required (in-memory databases are not supported), got %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	created, mode, err := createFile(abs)
	if err != nil {
		return nil, err
	}

	write, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			"busy_timeout(" + busyTimeoutMillis + ")",
			// FULL: the WAL is fsynced at every commit, so a returned
			// issuance survives a power cut. NORMAL would not.
			"synchronous(FULL)",
			"foreign_keys(ON)",
			// Zero freed content when it costs no extra I/O, so purged
			// key blobs do not linger in free pages.
			"secure_delete(FAST)",
			// Truncate the WAL back to 64 MiB after a checkpoint that
			// follows a burst of issuance.
			"journal_size_limit(67108864)",
		},
		// BEGIN IMMEDIATE takes the write lock up front, so a transaction
		// never fails half-way with SQLITE_BUSY when another process writes.
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	if err := setWAL(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: sqlite: open %s: %w", abs, err)
	}
	if err := chmodSidecars(abs); err != nil {
		write.Close()
		return nil, err
	}

	read, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			"busy_timeout(" + busyTimeoutMillis + ")",
			"foreign_keys(ON)",
			"query_only(ON)",
		},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("store: sqlite: open %s: %w", abs, err)
	}
	return &Pools{Write: write, Read: read, Created: created, Mode: mode}, nil
}

// setWAL switches the file to WAL mode, which persists in the file. Two
// processes converting a new file at once can get SQLITE_BUSY without the
// busy handler being consulted (SQLite's deadlock avoidance), so BUSY is
// retried here up to busyTimeout.
func setWAL(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, busyTimeout)
	defer cancel()
	retry := time.NewTicker(5 * time.Millisecond)
	defer retry.Stop()
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		switch {
		case err == nil && mode == "wal":
			return nil
		case err == nil:
			return fmt.Errorf("journal mode is %q, WAL is required", mode)
		case !isBusy(err):
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("set WAL mode: %w (%w)", err, ctx.Err())
		case <-retry.C:
		}
	}
}

func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// dsn builds a file: URI so that a path containing '?' or '#' is escaped
// rather than taken for the start of the parameters.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

func hasMemoryMode(path string) bool {
	u, err := url.Parse(path)
	return err == nil && u.Scheme == "file" && u.Query().Get("mode") == "memory"
}

// createFile creates the database file with mode 0600 before SQLite sees it:
// SQLite would create it with 0644 less the umask, and it holds wrapped keys.
func createFile(abs string) (created bool, mode fs.FileMode, err error) {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, fs.ErrExist):
		f, err = os.OpenFile(abs, os.O_RDWR, 0)
		if err != nil {
			return false, 0, fmt.Errorf("store: sqlite: %w", err)
		}
	default:
		return false, 0, fmt.Errorf("store: sqlite: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, 0, fmt.Errorf("store: sqlite: %w", err)
	}
	if fi.IsDir() {
		return false, 0, fmt.Errorf("store: sqlite: %s is a directory", abs)
	}
	return created, fi.Mode().Perm(), nil
}

// chmodSidecars narrows the WAL and shared-memory files to 0600. SQLite
// already copies the database file's mode onto them; this covers files left
// by an earlier run with a looser mode.
func chmodSidecars(abs string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		err := os.Chmod(abs+suffix, 0o600)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: sqlite: %w", err)
		}
	}
	return nil
}

// IsUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE
// constraint failure.
func IsUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// IsUnavailable reports an error of the database file rather than of the
// statement: locked past the busy timeout, read-only, full, or failing
// I/O. Retrying later may succeed.
func IsUnavailable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}
