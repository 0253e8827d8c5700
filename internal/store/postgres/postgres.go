// Package postgres owns how the store connects to PostgreSQL: parsing the
// URL (runtime parameters such as search_path pass through to the server),
// the pgx database/sql driver, pool sizing, and reading driver errors.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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

// IsUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE
// constraint failure.
func IsUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation
}
