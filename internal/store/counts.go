package store

import (
	"context"
	"database/sql"
	"fmt"
)

// countKey is one certificate_counts group.
type countKey struct {
	caID, profile, status string
	renewed               bool
	expiryDay             int64
}

// countInserted adds the certificates rows[i] with inserted[i] to
// certificate_counts in tx, one statement per group: on SQLite, where
// a row trigger cost every issuance about 7 % of its CPU, the insert paths
// (the group commit, a renewal's own transaction, an import) count what
// they wrote themselves, a batch of one CA and profile in one statement.
// Updates and deletes are counted by triggers (migration 0017); on
// PostgreSQL a statement-level trigger counts inserts too, and this does
// nothing. The certificates issued here are counted by day of issuance
// and CA in issuance_counts alike (migration 0019).
func (db *DB) countInserted(ctx context.Context, tx *sql.Tx, rows []*certRow, inserted []bool) error {
	if db.d.name == postgresDialect.name {
		return nil
	}
	groups := make(map[countKey]int64, 1)
	type issuedKey struct {
		day  int64
		caID string
	}
	issued := make(map[issuedKey]int64, 1)
	for i, r := range rows {
		if inserted == nil || inserted[i] {
			groups[r.count]++
			if r.issued {
				issued[issuedKey{r.issuedDay, r.count.caID}]++
			}
		}
	}
	for k, n := range issued {
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuance_counts (day, ca_id, n) VALUES (?, ?, ?)
			ON CONFLICT (day, ca_id) DO UPDATE SET n = n + excluded.n`, k.day, k.caID, n); err != nil {
			return fmt.Errorf("count issuance: %w", err)
		}
	}
	for k, n := range groups {
		renewed := 0
		if k.renewed {
			renewed = 1
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO certificate_counts (ca_id, profile, status, renewed, expiry_day, n)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ca_id, profile, status, renewed, expiry_day) DO UPDATE SET n = n + excluded.n`,
			k.caID, k.profile, k.status, renewed, k.expiryDay, n); err != nil {
			return fmt.Errorf("count certificates: %w", err)
		}
	}
	return nil
}
