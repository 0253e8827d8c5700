// Package postgres owns how the store connects to PostgreSQL: parsing the
// URL (runtime parameters such as search_path pass through to the server),
// the pgx database/sql driver, pool sizing, and reading driver errors.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// maxConns caps the pool. PostgreSQL's default max_connections is 100 and
// several replicas may share one server.
const maxConns = 20

// uniqueViolation is SQLSTATE unique_violation.
const uniqueViolation = "23505"

// Open connects to the database at url ("postgres://..." or
// "postgresql://..."). Query parameters pgx does not know, such as
// search_path or application_name, are sent to the server as run-time
// parameters.
func Open(ctx context.Context, url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres: connect to %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	return db, nil
}

// IsUnavailable reports an error of the server or the connection rather
// than of the statement: it could not be reached or stopped answering,
// is shutting down or read-only, or ran out of disk or connections.
// Retrying later may succeed.
func IsUnavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) {
		return true
	}
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case strings.HasPrefix(e.Code, "08"), // connection exception
		strings.HasPrefix(e.Code, "53"),  // insufficient resources: disk full, out of memory, too many connections
		strings.HasPrefix(e.Code, "57P"), // operator intervention: shutting down, cannot connect now
		e.Code == "25006":                // read_only_sql_transaction: a standby, or default_transaction_read_only
		return true
	}
	return false
}

// IsUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE
// constraint failure.
func IsUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation
}
