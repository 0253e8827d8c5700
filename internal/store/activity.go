package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// dayStart is the midnight (UTC) of day d, in whole days since 1970.
func dayStart(d int64) time.Time { return time.Unix(d*86400, 0).UTC() }

// ValidByExpiryDay returns the valid certificates by CA, renewal and UTC
// day of expiry, from the day of from on, out of certificate_counts: its
// cost grows with the CAs and days, not with the inventory. A day's count
// is whole: the part of from's own day before from is in it.
func (db *DB) ValidByExpiryDay(ctx context.Context, from time.Time) ([]inventory.DayCount, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT ca_id, renewed, expiry_day, SUM(n) FROM certificate_counts
		WHERE status = 'valid' AND expiry_day >= ? GROUP BY ca_id, renewed, expiry_day HAVING SUM(n) > 0 ORDER BY expiry_day, ca_id, renewed`), expiryDay(from))
	if err != nil {
		return nil, fmt.Errorf("store: valid by expiry day: %w", err)
	}
	return scanDayCounts(rows, "valid by expiry day", func(dc *inventory.DayCount, day *int64, n *int64) []any {
		return []any{&dc.CAID, &dc.Renewed, day, n}
	})
}

// IssuedByDay returns the certificates issued here (not imported) per UTC
// day and CA, from the day of from on, out of issuance_counts.
func (db *DB) IssuedByDay(ctx context.Context, from time.Time) ([]inventory.DayCount, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT ca_id, day, n FROM issuance_counts WHERE day >= ? ORDER BY day, ca_id`), expiryDay(from))
	if err != nil {
		return nil, fmt.Errorf("store: issued by day: %w", err)
	}
	return scanDayCounts(rows, "issued by day", func(dc *inventory.DayCount, day *int64, n *int64) []any {
		return []any{&dc.CAID, day, n}
	})
}

// RevokedByDay returns the revocations per UTC day and CA from the day of
// from on. It counts the revocations_revoked_at index's entries of those
// days: revocations are few next to issuance.
func (db *DB) RevokedByDay(ctx context.Context, from time.Time) ([]inventory.DayCount, error) {
	day := "(revoked_at - ((revoked_at % 86400000000) + 86400000000) % 86400000000) / 86400000000"
	if db.d.numbered {
		day = "floor(extract(epoch FROM revoked_at) / 86400)::bigint"
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT ca_id, `+day+` AS d, COUNT(*) FROM revocations
		WHERE revoked_at >= ? GROUP BY ca_id, d ORDER BY d, ca_id`), db.timeArg(dayStart(expiryDay(from))))
	if err != nil {
		return nil, fmt.Errorf("store: revoked by day: %w", err)
	}
	return scanDayCounts(rows, "revoked by day", func(dc *inventory.DayCount, day *int64, n *int64) []any {
		return []any{&dc.CAID, day, n}
	})
}

func scanDayCounts(rows *sql.Rows, what string, dest func(dc *inventory.DayCount, day, n *int64) []any) ([]inventory.DayCount, error) {
	defer rows.Close()
	var out []inventory.DayCount
	for rows.Next() {
		var dc inventory.DayCount
		var day, n int64
		if err := rows.Scan(dest(&dc, &day, &n)...); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		dc.Day, dc.N = dayStart(day), int(n)
		out = append(out, dc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}
