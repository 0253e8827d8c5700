package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// GetOCSPResponder returns caID's current delegated OCSP responder, or
// ErrNotFound.
func (db *DB) GetOCSPResponder(ctx context.Context, caID string) (*revoke.Responder, error) {
	var r revoke.Responder
	var alg string
	err := db.rd.QueryRowContext(ctx, db.q.getResponder, caID).Scan(&r.CAID, &r.CertDER,
		&r.Key.Provider, &r.Key.ID, &alg, &r.Key.Blob, timeScan{&r.NotAfter}, timeScan{&r.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("OCSP responder of CA", caID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get OCSP responder of CA %q: %w", caID, err)
	}
	r.Key.Algorithm, r.Key.Blob = pki.KeyAlgorithm(alg), nilIfEmpty(r.Key.Blob)
	return &r, nil
}

// sqlRetireResponderKey lists the key of a CA's stored responder among
// the retired keys, unless it is the key about to be stored.
const sqlRetireResponderKey = `INSERT INTO retired_keys (key_provider, key_id, key_algorithm, key_blob, purpose, retired_at)
	SELECT key_provider, key_id, key_algorithm, key_blob, ?, ? FROM ocsp_responders
	WHERE ca_id = ? AND NOT (key_provider = ? AND key_id = ?)
	ON CONFLICT (key_provider, key_id) DO NOTHING`

// PutOCSPResponder stores r as r.CAID's current responder, replacing the
// previous one, whose key it lists among the retired keys (RetiredKeys)
// as retired at r.CreatedAt, and appends ev to the audit log, in one
// transaction. Its key is stored as a CA's is: provider, ID, algorithm
// and wrapped blob.
func (db *DB) PutOCSPResponder(ctx context.Context, r *revoke.Responder, ev audit.Event) error {
	if r.CAID == "" {
		return errors.New("store: put OCSP responder: CA ID is required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: put OCSP responder of CA %q: %w", r.CAID, err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.d.rebind(sqlRetireResponderKey), string(keys.OCSPPurpose(r.CAID)), db.timeArg(r.CreatedAt),
			r.CAID, r.Key.Provider, r.Key.ID)
		if err != nil {
			return fmt.Errorf("retire the replaced key: %w", err)
		}
		_, err = tx.ExecContext(ctx, db.q.putResponder, r.CAID, nonNil(r.CertDER),
			r.Key.Provider, r.Key.ID, string(r.Key.Algorithm), nilIfEmpty(r.Key.Blob),
			db.timeArg(r.NotAfter), db.timeArg(r.CreatedAt))
		if err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: put OCSP responder of CA %q: %w", r.CAID, err)
	}
	return nil
}

// retiredKeysBatch bounds the retired keys RetiredKeys returns at once:
// there are a few per CA and rotation at most.
const retiredKeysBatch = 1000

// RetiredKeys returns the keys replaced in their records and not yet
// deleted (DeleteRetiredKey), oldest first, at most 1,000 of them.
func (db *DB) RetiredKeys(ctx context.Context) ([]revoke.RetiredKey, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT key_provider, key_id, key_algorithm, key_blob, purpose, retired_at
		FROM retired_keys ORDER BY retired_at, key_provider, key_id LIMIT ?`), retiredKeysBatch)
	if err != nil {
		return nil, fmt.Errorf("store: retired keys: %w", err)
	}
	defer rows.Close()
	var out []revoke.RetiredKey
	for rows.Next() {
		var (
			k            revoke.RetiredKey
			alg, purpose string
		)
		if err := rows.Scan(&k.Key.Provider, &k.Key.ID, &alg, &k.Key.Blob, &purpose, timeScan{&k.RetiredAt}); err != nil {
			return nil, fmt.Errorf("store: retired keys: %w", err)
		}
		k.Key.Algorithm, k.Key.Blob, k.Purpose = pki.KeyAlgorithm(alg), nilIfEmpty(k.Key.Blob), keys.Purpose(purpose)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: retired keys: %w", err)
	}
	return out, nil
}

// DeleteRetiredKey deletes the row of the retired key ref (by provider and
// ID) and, when ev is not nil and the row was there, appends ev to the
// audit log in the same transaction: of two processes that destroyed the
// key, one records it.
func (db *DB) DeleteRetiredKey(ctx context.Context, ref keys.Ref, ev *audit.Event) error {
	if ev != nil {
		if err := normalizeEvent(ev); err != nil {
			return fmt.Errorf("store: delete retired key %s: %w", ref.ID, err)
		}
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.rebind(`DELETE FROM retired_keys WHERE key_provider = ? AND key_id = ?`), ref.Provider, ref.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 || ev == nil {
			return err
		}
		return db.appendAudit(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("store: delete retired key %s: %w", ref.ID, err)
	}
	return nil
}
