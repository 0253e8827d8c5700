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
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// maxConns caps the pool unless the URL's pool_max_conns says otherwise.
// PostgreSQL's default max_connections is 100 and several replicas may
// share one server.
const maxConns = 20

// maxIdle is how long a pooled connection may sit unused before it is
// closed, so a replica that had a burst hands its server slots back.
const maxIdle = time.Minute

// PoolMaxConnsParam is the URL query parameter that sets the pool's size
// (the name pgxpool uses); it is read here, never sent to the server.
const PoolMaxConnsParam = "pool_max_conns"

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
	url, size, err := poolSize(url)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, nil, fmt.Errorf("store: postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(size)
	db.SetMaxIdleConns(size)
	db.SetConnMaxIdleTime(maxIdle)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("store: postgres: connect to %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	return db, &Dialer{cfg: cfg}, nil
}

// poolSize takes pool_max_conns out of a URL (either form pgx accepts) and
// returns the rest with the pool's size: maxConns when it is absent.
func poolSize(raw string) (string, int, error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return raw, maxConns, nil // a key=value string: pgx reads it as is
	}
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("store: postgres: the database URL does not parse; check its syntax (postgres://USER@HOST:PORT/DB?sslmode=...)")
	}
	q := u.Query()
	v, ok := q[PoolMaxConnsParam]
	if !ok {
		return raw, maxConns, nil
	}
	n, err := strconv.Atoi(strings.Join(v, ""))
	if len(v) != 1 || err != nil || n < 2 || n > 1000 {
		return "", 0, fmt.Errorf("store: postgres: %s=%q: give one whole number from 2 to 1000", PoolMaxConnsParam, strings.Join(v, ","))
	}
	q.Del(PoolMaxConnsParam)
	u.RawQuery = q.Encode()
	return u.String(), n, nil
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
