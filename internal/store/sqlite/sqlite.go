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

// walAutocheckpointPages is the write connection's wal_autocheckpoint.
const walAutocheckpointPages = "4000"

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
			// Checkpoint every 4000 WAL pages (16 MiB) rather than
			// SQLite's 1000: a page that many commits dirty (the tail of
			// the certificate and audit tables, the time-ordered
			// indexes) is copied into the database once per checkpoint,
			// so fewer checkpoints write fewer pages in all. Only this
			// connection writes, so only it checkpoints.
			"wal_autocheckpoint(" + walAutocheckpointPages + ")",
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

// analysisLimit bounds the rows ANALYZE reads per index (SQLite's advice
// for PRAGMA optimize). With a limit set ANALYZE also leaves out the
// sqlite_stat4 samples; see Optimize.
const analysisLimit = "400"

// Optimize refreshes the planner statistics of a migrated database on the
// connection of db (one connection: the write pool): a bounded ANALYZE of
// the tables that need it, as SQLite advises for long-lived connections,
// so that listing certificates by expiry can choose the not_after index
// once the table is large.
//
// It keeps sqlite_stat1 only and drops the sqlite_stat4 samples that an
// unbounded ANALYZE (an older server, an operator's shell) leaves. With
// samples for an index, every statement comparing a parameter to that
// index's column is recompiled whenever a value is bound to it (SQLite
// re-plans for the value), which the driver does on every execution: a
// prepared statement would be parsed and planned again on each call.
// Dropping the table changes the schema, so every connection reloads the
// statistics without the samples.
func Optimize(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		"PRAGMA analysis_limit=" + analysisLimit,
		"DROP TABLE IF EXISTS sqlite_stat4",
		"PRAGMA optimize=0x10002",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: sqlite: optimize: %w", err)
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

// OpenQueryOnly opens the existing database file at path for reading only
// (query_only, no migration, no mode change), on one connection: for
// taking or inspecting a backup while a server may be writing the file.
func OpenQueryOnly(ctx context.Context, path string) (*sql.DB, error) {
	return openExisting(ctx, path, "query_only(ON)")
}

// openExisting opens the existing file at path on one connection, with
// the busy timeout and the pragmas extra.
func openExisting(ctx context.Context, path string, extra ...string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("store: sqlite: %s is a directory", abs)
	}
	db, err := sql.Open("sqlite", dsn(abs, url.Values{
		// mode=rw: never create a missing file.
		"mode":    {"rw"},
		"_pragma": append([]string{"busy_timeout(" + busyTimeoutMillis + ")"}, extra...),
	}))
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: sqlite: open %s: %w", abs, err)
	}
	return db, nil
}

// Snapshot copies the database file at src into dst, a new file (mode
// 0600), as of one read transaction (VACUUM INTO): a consistent copy,
// holding every transaction committed before it began and none after,
// taken while other connections and processes keep writing src.
func Snapshot(ctx context.Context, src, dst string) (err error) {
	// Not query_only: SQLite counts VACUUM INTO as a write, though it
	// only reads src.
	db, err := openExisting(ctx, src)
	if err != nil {
		return err
	}
	defer db.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: sqlite: snapshot: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(dst)
		}
	}()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("store: sqlite: snapshot %s: %w", src, err)
	}
	return nil
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
