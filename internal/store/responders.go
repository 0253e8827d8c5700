package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
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

// PutOCSPResponder stores r as r.CAID's current responder, replacing the
// previous one, and appends ev to the audit log, in one transaction. Its
// key is stored as a CA's is: provider, ID, algorithm and wrapped blob.
func (db *DB) PutOCSPResponder(ctx context.Context, r *revoke.Responder, ev audit.Event) error {
	if r.CAID == "" {
		return errors.New("store: put OCSP responder: CA ID is required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: put OCSP responder of CA %q: %w", r.CAID, err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q.putResponder, r.CAID, nonNil(r.CertDER),
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
