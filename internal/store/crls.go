package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// Each CA's latest signed CRL (migration 0031). On PostgreSQL several
// replicas share it: the one that takes the CA's CRL lock first builds the
// next CRL, the others then find it current and serve it, so each CRL
// number is signed once and the number a client sees never goes back,
// whichever replica answers.

const (
	crlColumns = `number, der, this_update, next_update, entries, revocations`
	sqlGetCRL  = `SELECT ` + crlColumns + ` FROM crls WHERE ca_id = ?`
	// sqlPutCRL keeps the higher number: a CRL is never replaced by an
	// older one.
	sqlPutCRL = `INSERT INTO crls (ca_id, ` + crlColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (ca_id) DO UPDATE SET number = excluded.number, der = excluded.der,
			this_update = excluded.this_update, next_update = excluded.next_update,
			entries = excluded.entries, revocations = excluded.revocations
		WHERE crls.number < excluded.number`
	// sqlCountRevocations counts from the revocations_crl index alone.
	sqlCountRevocations = `SELECT count(*) FROM revocations WHERE ca_id = ?`
	// sqlLockCRL takes caID's CRL lock until the transaction ends.
	sqlLockCRL = `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`
)

// queryer is a pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// LatestCRL returns caID's stored CRL, or nil when it has none.
func (db *DB) LatestCRL(ctx context.Context, caID string) (*revoke.StoredCRL, error) {
	c, err := db.readCRL(ctx, db.read, caID)
	if err != nil {
		return nil, fmt.Errorf("store: latest CRL of CA %q: %w", caID, err)
	}
	return c, nil
}

func (db *DB) readCRL(ctx context.Context, q queryer, caID string) (*revoke.StoredCRL, error) {
	var c revoke.StoredCRL
	var entries int64
	err := q.QueryRowContext(ctx, db.d.rebind(sqlGetCRL), caID).
		Scan(&c.Number, &c.DER, timeScan{&c.ThisUpdate}, timeScan{&c.NextUpdate}, &entries, &c.Revocations)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Entries = int(entries)
	return &c, nil
}

// PublishCRL implements revoke.Store. On PostgreSQL the whole step runs in
// one transaction holding caID's advisory lock, so that a second replica
// wanting the same CRL waits, then finds it stored and current; the
// revocations the CRL lists are read in that transaction too (after the
// count, so the CRL lists at least what the count says). On SQLite, with
// one process whose revocation service already builds one CRL per CA at a
// time, the build runs before the write transaction, which would
// otherwise hold every other write back.
func (db *DB) PublishCRL(ctx context.Context, caID string, need func(stored *revoke.StoredCRL, uncovered bool) bool, build revoke.CRLBuild) (out *revoke.StoredCRL, built bool, err error) {
	if db.dial == nil {
		out, built, err = db.publishCRLLocal(ctx, caID, need, build)
	} else {
		err = db.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, db.d.rebind(sqlLockCRL), "certwright.crl:"+caID); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			stored, count, err := db.crlAndCount(ctx, tx, caID)
			if err != nil {
				return err
			}
			if !need(stored, stored == nil || count > stored.Revocations) {
				out = stored
				return nil
			}
			var number int64
			if err := tx.QueryRowContext(ctx, db.q.nextCRLNumber, caID).Scan(&number); err != nil {
				return fmt.Errorf("next CRL number: %w", err)
			}
			c, ev, err := db.buildCRL(ctx, tx, caID, number, count, build)
			if err != nil {
				return err
			}
			if err := db.putCRL(ctx, tx, caID, c, ev); err != nil {
				return err
			}
			if err := db.notifyTx(ctx, tx, Notice{Kind: NoticeCRL, CA: caID}); err != nil {
				return err
			}
			out, built = c, true
			return nil
		})
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: publish CRL of CA %q: %w", caID, err)
	}
	return out, built, nil
}

func (db *DB) publishCRLLocal(ctx context.Context, caID string, need func(*revoke.StoredCRL, bool) bool, build revoke.CRLBuild) (*revoke.StoredCRL, bool, error) {
	stored, count, err := db.crlAndCount(ctx, db.read, caID)
	if err != nil {
		return nil, false, err
	}
	if !need(stored, stored == nil || count > stored.Revocations) {
		return stored, false, nil
	}
	number, err := db.NextCRLNumber(ctx, caID)
	if err != nil {
		return nil, false, err
	}
	c, ev, err := db.buildCRL(ctx, db.read, caID, number, count, build)
	if err != nil {
		return nil, false, err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error { return db.putCRL(ctx, tx, caID, c, ev) })
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// crlAndCount reads caID's stored CRL and its number of revocations.
func (db *DB) crlAndCount(ctx context.Context, q queryer, caID string) (*revoke.StoredCRL, int64, error) {
	stored, err := db.readCRL(ctx, q, caID)
	if err != nil {
		return nil, 0, fmt.Errorf("read the stored CRL: %w", err)
	}
	var count int64
	if err := q.QueryRowContext(ctx, db.d.rebind(sqlCountRevocations), caID).Scan(&count); err != nil {
		return nil, 0, fmt.Errorf("count revocations: %w", err)
	}
	return stored, count, nil
}

// buildCRL calls build for CRL number, reading the revocations through q.
func (db *DB) buildCRL(ctx context.Context, q queryer, caID string, number, count int64, build revoke.CRLBuild) (*revoke.StoredCRL, audit.Event, error) {
	c, ev, err := build(ctx, number, func(now time.Time, fn func(*inventory.Revocation) error) error {
		return db.eachRevoked(ctx, q, caID, now, fn)
	})
	if err != nil {
		return nil, audit.Event{}, err
	}
	c.Revocations = count
	return c, ev, nil
}

// putCRL stores c as caID's latest CRL, unless a higher number is stored,
// and appends ev, the audit event of its signature, in tx.
func (db *DB) putCRL(ctx context.Context, tx *sql.Tx, caID string, c *revoke.StoredCRL, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.d.rebind(sqlPutCRL), caID, c.Number, c.DER, db.timeArg(utc(c.ThisUpdate)),
		db.timeArg(utc(c.NextUpdate)), int64(c.Entries), c.Revocations); err != nil {
		return fmt.Errorf("store CRL %d: %w", c.Number, err)
	}
	if err := db.appendAudit(ctx, tx, &ev); err != nil {
		return fmt.Errorf("audit CRL %d: %w", c.Number, err)
	}
	return nil
}

// eachRevoked is EachRevoked reading through q.
func (db *DB) eachRevoked(ctx context.Context, q queryer, caID string, now time.Time, fn func(*inventory.Revocation) error) error {
	rows, err := q.QueryContext(ctx, db.q.eachRevoked, caID, db.timeArg(now))
	if err != nil {
		return fmt.Errorf("store: revocations of CA %q: %w", caID, err)
	}
	defer rows.Close()
	r := inventory.Revocation{CAID: caID}
	var reason int64
	dest := []any{&r.Serial, timeScan{&r.RevokedAt}, &reason, zeroTimeScan{&r.InvalidityDate}, &r.RevokedBy, timeScan{&r.NotAfter}, &r.CA}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: revocations of CA %q: %w", caID, err)
		}
		r.Reason, r.CAID = pki.Reason(reason), caID
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: revocations of CA %q: %w", caID, err)
	}
	return nil
}

// ImportCRL implements revoke.Store: it stores c, a CRL signed outside
// this instance (an offline root's, uploaded), as caID's latest and
// appends ev, in one transaction, unless a CRL numbered c.Number or higher
// is stored already: then ErrConflict, and nothing changes. Other
// processes sharing the database hear of it (NoticeCRL).
func (db *DB) ImportCRL(ctx context.Context, caID string, c *revoke.StoredCRL, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: import CRL of CA %q: %w", caID, err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlPutCRL), caID, c.Number, c.DER, db.timeArg(utc(c.ThisUpdate)),
			db.timeArg(utc(c.NextUpdate)), int64(c.Entries), c.Revocations)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: a CRL numbered %d or higher is stored", ErrConflict, c.Number)
		}
		if err := db.appendAudit(ctx, tx, &ev); err != nil {
			return fmt.Errorf("audit CRL %d: %w", c.Number, err)
		}
		return db.notifyTx(ctx, tx, Notice{Kind: NoticeCRL, CA: caID})
	})
	if err != nil {
		return fmt.Errorf("store: import CRL %d of CA %q: %w", c.Number, caID, err)
	}
	return nil
}
