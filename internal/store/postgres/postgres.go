// Package postgres owns how the store connects to PostgreSQL: parsing the
// URL (runtime parameters such as search_path pass through to the server),
// the pgx database/sql driver, pool sizing, and reading driver errors.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// maxConns caps the pool. PostgreSQL's default max_connections is 100 and
// several replicas may share one server.
const maxConns = 20

// SQLSTATEs the store tells apart.
const (
	uniqueViolation  = "23505"
	lockNotAvailable = "55P03" // lock_timeout ran out
)

// Open connects to the database at url ("postgres://..." or
// "postgresql://..."). Query parameters pgx does not know, such as
// search_path or application_name, are sent to the server as run-time
// parameters.
func Open(ctx context.Context, url string) (*sql.DB, error) {
	db, _, err := OpenDialer(ctx, url)
	return db, err
}

// OpenDialer is Open that also returns a Dialer for connections outside
// the pool, with the same settings.
func OpenDialer(ctx context.Context, url string) (*sql.DB, *Dialer, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, nil, fmt.Errorf("store: postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("store: postgres: connect to %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	return db, &Dialer{cfg: cfg}, nil
}

// Dialer opens single connections outside the pool, for a session that
// must not be shared: the notification listener's LISTEN.
type Dialer struct {
	cfg *pgx.ConnConfig
}

// Connect opens one connection with the pool's settings and TCP
// keepalive probes after 15 s of silence, every 5 s, giving up after 3
// unanswered: a listening connection is idle most of the time, and the
// operating system's default waits two hours before the first probe.
func (d *Dialer) Connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := d.cfg.Copy()
	cfg.DialFunc = (&net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3,
	}}).DialContext
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: connect to %s/%s: %w", d.cfg.Host, d.cfg.Database, err)
	}
	return c, nil
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

// IsLockTimeout reports whether err is a statement that gave up waiting
// for a lock after lock_timeout.
func IsLockTimeout(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == lockNotAvailable
}
