package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/sqlite"
)

// dialect is everything that differs between the two databases. The SQL in
// this package is written once, with ? placeholders, and rebound per dialect.
type dialect struct {
	name string
	// open returns the write and read pools (the same pool when the
	// database has no single-writer limit).
	open func(ctx context.Context, target string, logger *slog.Logger) (opened, error)
	// numbered placeholders: $1, $2, ... instead of ?.
	numbered bool
	// timeArg turns a UTC time truncated to the microsecond into the
	// column's parameter value.
	timeArg func(time.Time) any
	// timeType is the SQL type of a time column, for casting a parameter
	// whose type the statement does not fix (INSERT ... SELECT ?).
	timeType string
	// stringsFromJSON is a subquery yielding the elements of a JSON array
	// of strings given as its one parameter: a list of any length in one
	// statement.
	stringsFromJSON string
	// migrationsTable is created before any migration runs.
	migrationsTable string
	// lock and unlock bracket migrations on one connection so that two
	// processes starting together do not both apply them. Empty when each
	// migration's own transaction is enough (SQLite's BEGIN IMMEDIATE).
	lock, unlock string
	// afterMigrate runs on the write pool once the schema is current; nil
	// for nothing.
	afterMigrate func(ctx context.Context, write *sql.DB) error
	// uniqueViolation recognises a PRIMARY KEY or UNIQUE failure.
	uniqueViolation func(error) bool
	// groupCommit batches concurrent certificate inserts into one
	// transaction behind a single writer goroutine (batch.go).
	groupCommit bool
	// commitLinger is how long the certificate group commit and the write
	// group wait for more rows under load (batch.go, txgroup.go); zero for
	// none.
	commitLinger time.Duration
	// prepare runs the hot statements through statements prepared once
	// (stmts.go); pgx does so by itself.
	prepare bool
	// multiRowInsert writes a certificate's names with one statement; on
	// SQLite a reused single-row statement is cheaper, there being no
	// round trip to save.
	multiRowInsert bool
	// firstName is a certificate's (alias c) name for the inventory's
	// name order: its first SAN as written, else its subject; the
	// certificates_name index is built on the same expression.
	firstName string
	// noIndex is the same test of column col that no index answers,
	// for steering a listing's choice of index (steerIndexes); nil, or
	// "" for col, when the planner is left to choose.
	noIndex func(col string) string
	// now is the database's clock as a time column's value, the same
	// through one statement; later is now plus a parameter of
	// microseconds. Leases and claims are timed by it so that replicas'
	// clocks never disagree about them.
	now, later string
	// skipLocked ends a subquery choosing rows to claim, so that
	// concurrent claimers pass over each other's rows ("" where one
	// writer claims at a time).
	skipLocked string
}

// migrationLockKey is the pg_advisory_lock key guarding migrations
// ("cw-migr" in ASCII).
const migrationLockKey = 0x63772d6d69677200

var sqliteDialect = dialect{
	name:     "sqlite",
	open:     openSQLite,
	numbered: false,
	// Integer microseconds keep range comparisons in SQL exact and cheap.
	timeArg:         func(t time.Time) any { return t.UnixMicro() },
	timeType:        "INTEGER",
	stringsFromJSON: "SELECT value FROM json_each(?)",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
	) STRICT`,
	// Refresh planner statistics where stale, without the samples that
	// would make prepared statements recompile on every call.
	afterMigrate:    sqlite.Optimize,
	uniqueViolation: sqlite.IsUniqueViolation,
	groupCommit:     true,
	commitLinger:    sqliteCommitLinger,
	prepare:         true,
	multiRowInsert:  false,
	firstName:       "coalesce(json_extract(c.sans, '$[0]'), c.subject)",
	// Unary plus: SQLite's documented way to keep a term off an index.
	noIndex: func(col string) string { return "+" + col },
	// One process owns the file, so its clock is the only one: 'now'
	// (milliseconds) as Unix microseconds.
	now:   sqliteNow,
	later: "(" + sqliteNow + " + ?)",
}

const sqliteNow = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"

var postgresDialect = dialect{
	name:            "postgres",
	open:            openPostgres,
	numbered:        true,
	timeArg:         func(t time.Time) any { return t },
	timeType:        "timestamptz",
	stringsFromJSON: "SELECT jsonb_array_elements_text(CAST(? AS jsonb))",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`,
	lock:            "SELECT pg_advisory_lock(" + strconv.FormatInt(migrationLockKey, 10) + ")",
	unlock:          "SELECT pg_advisory_unlock(" + strconv.FormatInt(migrationLockKey, 10) + ")",
	uniqueViolation: postgres.IsUniqueViolation,
	groupCommit:     true,
	// No linger: a PostgreSQL commit is a round trip whose fsync the
	// server groups itself, and waiting for bigger batches saved neither
	// this process's CPU nor PostgreSQL's in a side-by-side run.
	commitLinger:   0,
	multiRowInsert: true,
	firstName:      "coalesce(c.sans->>0, c.subject)",
	// PostgreSQL's statistics (most common values, histograms) judge
	// its choice; hiding a column in an expression would blind them.
	now:        "now()",
	later:      "(now() + CAST(? AS bigint) * interval '1 microsecond')",
	skipLocked: " FOR UPDATE SKIP LOCKED",
}

// opened is what a dialect's open returns.
type opened struct {
	write, read *sql.DB
	// dial opens connections outside the pools (the notification
	// listener); nil where there is no such thing (SQLite).
	dial *postgres.Dialer
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (opened, error) {
	p, err := sqlite.Open(ctx, path)
	if err != nil {
		return opened{}, err
	}
	if !p.Created && p.Mode&0o077 != 0 {
		logger.Warn("database file is accessible to other users; it holds wrapped keys, consider chmod 600",
			"path", path, "mode", p.Mode.String())
	}
	return opened{write: p.Write, read: p.Read}, nil
}

func openPostgres(ctx context.Context, url string, _ *slog.Logger) (opened, error) {
	db, dial, err := postgres.OpenDialer(ctx, url)
	if err != nil {
		return opened{}, err
	}
	return opened{write: db, read: db, dial: dial}, nil
}

// rebind rewrites ? placeholders as $n for dialects that number them. The
// package's SQL has no ? inside string literals.
func (d *dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// utc normalises a time to what the database returns: UTC, microseconds.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeScan reads a time column: Unix microseconds on SQLite, timestamptz on
// PostgreSQL.
type timeScan struct{ dst *time.Time }

func (s timeScan) Scan(src any) error {
	t, err := scanTime(src)
	if err != nil {
		return err
	}
	*s.dst = t
	return nil
}

// nullTimeScan reads a nullable time column.
type nullTimeScan struct{ dst **time.Time }

func (s nullTimeScan) Scan(src any) error {
	if src == nil {
		*s.dst = nil
		return nil
	}
	t, err := scanTime(src)
	if err != nil {
		return err
	}
	*s.dst = &t
	return nil
}

func scanTime(src any) (time.Time, error) {
	switch v := src.(type) {
	case int64:
		return time.UnixMicro(v).UTC(), nil
	case time.Time:
		return utc(v), nil
	default:
		return time.Time{}, fmt.Errorf("store: cannot read a time from a %T column value", src)
	}
}

// timeArg and nullTimeArg encode times for the dialect.
func (db *DB) timeArg(t time.Time) any { return db.d.timeArg(utc(t)) }

func (db *DB) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.timeArg(*t)
}
