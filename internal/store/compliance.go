package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
)

var _ compliance.ReportStore = (*DB)(nil)

// Statements of the compliance report. Each walks an index by time: the
// certificates by not_after, the renewal attempts by at.
const (
	sqlComplianceCandidates = ` WHERE c.not_after >= ? AND c.status = '` + string(inventory.StatusValid) + `' AND c.renewed_by = ''
		ORDER BY c.not_after, c.serial`
	sqlRenewalStats = `SELECT kind, CASE WHEN ok THEN 1 ELSE 0 END, COUNT(*),
		COALESCE(SUM(CASE WHEN ok AND days_left < 1 THEN 1 ELSE 0 END), 0)
		FROM renewal_attempts WHERE at >= ? AND at < ? GROUP BY kind, ok`
	sqlExpiryIncidents = `SELECT COUNT(*) FROM certificates
		WHERE not_after >= ? AND not_after < ? AND status = '` + string(inventory.StatusValid) + `' AND renewed_by = ''`
)

// EachComplianceCandidate calls fn for every valid certificate not renewed
// by another whose notAfter is at or after since — the unexpired ones and
// those that expired since then — soonest expiry first, each a new value.
// The rows stream from one query; an error from fn stops the scan and is
// returned as is.
func (db *DB) EachComplianceCandidate(ctx context.Context, since time.Time, fn func(*inventory.Certificate) error) error {
	wrap := func(err error) error {
		return fmt.Errorf("store: certificates for the compliance report since %s: %w", since.Format(time.RFC3339), err)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(db.q.certSelect+sqlComplianceCandidates), db.timeArg(since))
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	var cs certScan
	for rows.Next() {
		c, err := scanCert(rows, &cs)
		if err != nil {
			return wrap(err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// RenewalStats counts the renewal attempts made in [since, until): all of
// them, the successful ones by kind, and the successful ones made with
// less than a day left (near misses).
func (db *DB) RenewalStats(ctx context.Context, since, until time.Time) (compliance.RenewalStats, error) {
	out := compliance.RenewalStats{SucceededByKind: map[inventory.RenewalKind]int{}}
	wrap := func(err error) error {
		return fmt.Errorf("store: renewal attempts between %s and %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(sqlRenewalStats), db.timeArg(since), db.timeArg(until))
	if err != nil {
		return out, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var ok, n, near int64
		if err := rows.Scan(&kind, &ok, &n, &near); err != nil {
			return out, wrap(err)
		}
		out.Attempts += int(n)
		if ok == 1 {
			out.Succeeded += int(n)
			out.SucceededByKind[inventory.RenewalKind(kind)] += int(n)
			out.NearMisses += int(near)
		}
	}
	if err := rows.Err(); err != nil {
		return out, wrap(err)
	}
	return out, nil
}

// CountExpiryIncidents counts the certificates that expired in [since,
// until) while still valid (not revoked) and never renewed.
func (db *DB) CountExpiryIncidents(ctx context.Context, since, until time.Time) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, db.d.rebind(sqlExpiryIncidents), db.timeArg(since), db.timeArg(until)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: expiry incidents between %s and %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	return n, nil
}

// keepSnapshots is how many compliance summaries are kept: the newest.
const keepSnapshots = 24

// SaveComplianceSnapshot stores s and drops all but the keepSnapshots
// newest summaries.
func (db *DB) SaveComplianceSnapshot(ctx context.Context, s *compliance.Snapshot) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("store: save compliance summary: %w", err)
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO compliance_snapshots (generated_at, body) VALUES (?, ?)
			ON CONFLICT (generated_at) DO UPDATE SET body = excluded.body`), db.timeArg(s.GeneratedAt), string(body)); err != nil {
			return fmt.Errorf("store: save compliance summary: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.d.rebind(`DELETE FROM compliance_snapshots WHERE generated_at <
			(SELECT MIN(generated_at) FROM (SELECT generated_at FROM compliance_snapshots ORDER BY generated_at DESC LIMIT ?) AS newest)`),
			keepSnapshots); err != nil {
			return fmt.Errorf("store: prune compliance summaries: %w", err)
		}
		return nil
	})
}

// LatestComplianceSnapshot returns the newest compliance summary, or an
// error wrapping authz.ErrNotFound when none was built yet.
func (db *DB) LatestComplianceSnapshot(ctx context.Context) (*compliance.Snapshot, error) {
	var body string
	err := db.read.QueryRowContext(ctx, `SELECT body FROM compliance_snapshots ORDER BY generated_at DESC LIMIT 1`).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("compliance summary", "latest")
	}
	if err != nil {
		return nil, fmt.Errorf("store: latest compliance summary: %w", err)
	}
	s := &compliance.Snapshot{}
	if err := json.Unmarshal([]byte(body), s); err != nil {
		return nil, fmt.Errorf("store: latest compliance summary: %w", err)
	}
	return s, nil
}
