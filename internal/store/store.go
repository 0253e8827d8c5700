// Package store owns Certwright's persistent state — CAs, issued
// certificates and their revocations, CRL numbers, OCSP responders,
// profiles, API tokens, settings and the hash-chained audit log — in SQLite or PostgreSQL behind one
// concrete type, *DB, opened and migrated by Open.
//
// Times are stored in UTC at microsecond precision: a time read back equals
// the time written truncated to the microsecond, in UTC.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/est"
	"github.com/certwright/certwright/internal/store/postgres"
)

// Errors callers branch on with errors.Is. Each also matches the error of
// the same meaning that core packages declare for their ports.
var (
	ErrNotFound error = &sentinelError{msg: "store: not found", also: []error{acme.ErrNotFound, authz.ErrNotFound, est.ErrNotFound}}
	ErrConflict error = &sentinelError{msg: "store: already exists", also: []error{acme.ErrConflict, est.ErrConflict}}
)

// sentinelError is a store error that errors.Is also matches against its
// core counterparts.
type sentinelError struct {
	msg  string
	also []error
}

func (e *sentinelError) Error() string { return e.msg }

// Is reports whether target is one of e's counterparts.
func (e *sentinelError) Is(target error) bool { return slices.Contains(e.also, target) }

// errClosed is returned by InsertCertificate after Close.
var errClosed = errors.New("store: closed")

// DB is an open store. It is safe for concurrent use.
type DB struct {
	d *dialect
	// steerBound is steerBound but in tests (steerIndexes).
	steerBound int
	write      *sql.DB // the only pool that writes; one connection on SQLite
	read       *sql.DB // the same pool as write on PostgreSQL
	// dial opens the notification listener's connection; nil on SQLite,
	// which has no bus (notify.go).
	dial *postgres.Dialer
	// exclusive bounds the connections Exclusive holds at once
	// (exclusiveConns); lockTimeout bounds its wait for the lock.
	exclusive   chan struct{}
	lockTimeout time.Duration
	busState
	logger *slog.Logger
	// batch group-commits certificate inserts (and their audit events).
	batch *batcher
	// group group-commits the ACME order path's writes (SQLite only).
	group *txGroup
	q     queries
	aq    auditQueries
	// rd and wr run the hot statements of the read and write pools
	// prepared once (stmts.go).
	rd, wr *prepared
	// accessGen moves with every write authentication depends on
	// (access_generation.go).
	accessGen atomic.Uint64
	// acmeGen moves with every write ACME account resolution depends on
	// (acme_generation.go).
	acmeGen atomic.Uint64
	// estGen moves with every write to EST provisioners
	// (est_generation.go).
	estGen atomic.Uint64
	// compromisedGen moves with every write that may list a key as
	// compromised; compromised holds this process's copy of the list
	// (compromised.go).
	compromisedGen atomic.Uint64
	compromised    compromisedCache
	// now is the clock of the in-memory copies' freshness bounds.
	now func() time.Time

	closeOnce sync.Once
	closeErr  error
}

// Open opens and migrates a store. url is "sqlite:PATH", "sqlite://PATH" or
// a bare file path for SQLite, or "postgres://..." / "postgresql://..." for
// PostgreSQL; a PostgreSQL URL may carry run-time parameters such as
// ?search_path=myschema. A nil logger discards.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d, target, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	db := &DB{d: d, logger: logger.With("component", "store", "dialect", d.name), now: time.Now, steerBound: steerBound,
		exclusive: make(chan struct{}, exclusiveConns), lockTimeout: exclusiveLockTimeout}
	db.origin = newOrigin()
	db.busKey.Store(newBusKey())
	o, err := d.open(ctx, target, db.logger)
	if err != nil {
		return nil, err
	}
	db.write, db.read, db.dial = o.write, o.read, o.dial
	db.q = buildQueries(d)
	db.aq = buildAuditQueries(d)
	if err := db.migrate(ctx); err != nil {
		db.closePools()
		return nil, err
	}
	if d.afterMigrate != nil {
		if err := d.afterMigrate(ctx, db.write); err != nil {
			db.closePools()
			return nil, fmt.Errorf("store: open: %w", err)
		}
	}
	if err := db.backfillSPKI(ctx); err != nil {
		db.closePools()
		return nil, err
	}
	if err := db.takeBootSnapshot(ctx); err != nil {
		db.closePools()
		return nil, err
	}
	if err := db.prepareHot(ctx); err != nil {
		db.closePools()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if d.groupCommit {
		db.batch = newBatcher(db)
	}
	if d == &sqliteDialect {
		db.group = newTxGroup(db)
	}
	return db, nil
}

// parseURL picks the dialect from url's scheme, a bare path meaning SQLite.
func parseURL(url string) (*dialect, string, error) {
	for _, s := range schemes {
		if rest, ok := strings.CutPrefix(url, s.prefix); ok {
			if s.keepPrefix {
				return s.d, url, nil
			}
			return s.d, rest, nil
		}
	}
	if scheme, _, ok := strings.Cut(url, "://"); ok {
		return nil, "", fmt.Errorf("store: unsupported database URL scheme %q (want sqlite:, postgres:// or a file path)", scheme)
	}
	return &sqliteDialect, url, nil
}

// schemes maps URL prefixes to dialects; the longer prefix of a pair comes first.
var schemes = [...]struct {
	prefix     string
	d          *dialect
	keepPrefix bool // the driver parses the whole URL
}{
	{"postgres://", &postgresDialect, true},
	{"postgresql://", &postgresDialect, true},
	{"sqlite://", &sqliteDialect, false},
	{"sqlite:", &sqliteDialect, false},
}

// Close waits for queued certificate inserts to be written, then closes the
// database. Calling it again does nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if db.batch != nil {
			db.batch.stop()
		}
		if db.group != nil {
			db.group.q.stop()
		}
		err := errors.Join(db.rd.close(), db.wr.close(), db.closePools())
		if err != nil {
			db.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return db.closeErr
}

// prepareHot prepares the statements that run on every issuance,
// authenticated request (console pages included), ACME request or OCSP
// lookup, EST or SCEP enrolment.
func (db *DB) prepareHot(ctx context.Context) error {
	r := db.d.rebind
	var err error
	db.rd, err = prepare(ctx, db.read, db.d.prepare,
		db.q.getCA, db.q.getProfile, db.q.lookupSerial, db.q.getResponder,
		r(sqlGetToken), r(sqlGetPrincipalByID), r(sqlBindingsOf), r(sqlCompromisedKey),
		r(sqlGetProvisioner), r(sqlGetAccount), r(sqlAccountByThumbprint), r(sqlGetOrder),
		r(sqlOrderByCert), r(sqlGetAuthz), r(sqlReusableAuthz), r(sqlCountOrders), r(sqlCountPending),
		r(sqlCountFailed), r(sqlCertificateDER), r(sqlGetSession),
		db.q.getCert, r(sqlGetSCEPProvisioner), r(sqlGetSCEPTx))
	if err != nil {
		return err
	}
	db.wr, err = prepare(ctx, db.write, db.d.prepare,
		db.q.insertCert, db.q.insertName, db.aq.lockHead, db.aq.insertEvent, db.aq.updateHead,
		r(sqlUseNonce), r(sqlTouchToken), r(sqlTouchSession),
		r(sqlInsertOrder), r(sqlInsertAuthz), r(sqlInsertChallenge), r(sqlUpdateOrder), r(sqlUpdateAuthz),
		r(sqlUpdateChallengeA), r(sqlUpdateChallenge), sqlSavepoint, sqlRollbackTo, sqlRelease,
		r(sqlConsumeSCEPChallenge), r(sqlGetSCEPChallenge))
	if err != nil {
		db.rd.close()
		return err
	}
	return nil
}

func (db *DB) closePools() error {
	if db.read == db.write {
		return db.write.Close()
	}
	return errors.Join(db.write.Close(), db.read.Close())
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.name }

// notFound and conflict say which record the sentinel is about.
func notFound(what, key string) error { return fmt.Errorf("%w: %s %q", ErrNotFound, what, key) }
func conflict(what, key string) error { return fmt.Errorf("%w: %s %q", ErrConflict, what, key) }

// execAffected runs a single-row write and returns the number of rows it touched.
func execAffected(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, query string, args ...any) (int64, error) {
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
