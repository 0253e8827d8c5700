package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
)

var _ compliance.ImportStore = (*DB)(nil)

// ImportCertificates inserts certificates issued elsewhere, certs[i] with
// the audit event evs[i], all in one transaction, and reports which were
// inserted. A certificate whose serial is already present is skipped and
// its event dropped; any other failure stores nothing.
func (db *DB) ImportCertificates(ctx context.Context, certs []*inventory.Certificate, evs []audit.Event) ([]bool, error) {
	if len(certs) != len(evs) {
		return nil, fmt.Errorf("store: import certificates: %d certificates but %d audit events", len(certs), len(evs))
	}
	if len(certs) == 0 {
		return []bool{}, nil
	}
	rows := make([]*certRow, len(certs))
	for i, c := range certs {
		r, err := db.encodeCert(c)
		if err != nil {
			return nil, err
		}
		if err := normalizeEvent(&evs[i]); err != nil {
			return nil, fmt.Errorf("store: import certificate %s: %w", c.Serial, err)
		}
		rows[i] = r
	}
	var inserted []bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		inserted = make([]bool, len(rows))
		var certStmt, nameStmt *sql.Stmt
		if len(rows) > 1 {
			var err error
			if certStmt, err = tx.PrepareContext(ctx, db.q.insertCert); err != nil {
				return err
			}
			defer certStmt.Close()
			if !db.d.multiRowInsert {
				if nameStmt, err = tx.PrepareContext(ctx, db.q.insertName); err != nil {
					return err
				}
				defer nameStmt.Close()
			}
		}
		var done []*audit.Event
		for i, r := range rows {
			ok, err := db.insertCert(ctx, tx, certStmt, nameStmt, r)
			if err != nil {
				return fmt.Errorf("certificate %s: %w", r.serial, err)
			}
			if inserted[i] = ok; ok {
				done = append(done, &evs[i])
			}
		}
		if err := db.countInserted(ctx, tx, rows, inserted); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, done...)
	})
	if err != nil {
		return nil, fmt.Errorf("store: import %d certificates: %w", len(certs), err)
	}
	return inserted, nil
}
