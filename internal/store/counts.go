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
// nothing.
func (db *DB) countInserted(ctx context.Context, tx *sql.Tx, rows []*certRow, inserted []bool) error {
	if db.d.name == postgresDialect.name {
		return nil
	}
	groups := make(map[countKey]int64, 1)
	for i, r := range rows {
		if inserted == nil || inserted[i] {
			groups[r.count]++
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
