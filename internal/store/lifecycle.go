package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
)

// autoRenewCond is the partial index's condition, spelled so that each
// database's planner sees the query implies it.
func (db *DB) autoRenewCond() string {
	if db.d.name == "sqlite" {
		return "c.auto_renew = 1 AND c.renewed_by = ''"
	}
	return "c.auto_renew AND c.renewed_by = ''"
}

// eachCert runs a certSelect query and calls fn for every row.
func (db *DB) eachCert(ctx context.Context, what, where string, args []any, fn func(*inventory.Certificate) error) error {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(db.q.certSelect+" WHERE "+where), args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var cs certScan
	for rows.Next() {
		c, err := scanCert(rows, &cs)
		if err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// EachExpiringBetween calls fn for every valid, not yet renewed
// certificate whose notAfter lies in (from, to], soonest first. It walks
// the not_after index: the cost is the rows in the range, not the table.
func (db *DB) EachExpiringBetween(ctx context.Context, from, to time.Time, fn func(*inventory.Certificate) error) error {
	return db.eachCert(ctx, "certificates expiring in a range",
		"c.not_after > ? AND c.not_after <= ? AND c.status = 'valid' AND c.renewed_by = '' ORDER BY c.not_after",
		[]any{db.timeArg(from), db.timeArg(to)}, fn)
}

// EachCreatedBetween calls fn for every valid, not yet renewed certificate
// added in (from, to] that expires before notAfterBefore (created_at index).
func (db *DB) EachCreatedBetween(ctx context.Context, from, to, notAfterBefore time.Time, fn func(*inventory.Certificate) error) error {
	return db.eachCert(ctx, "certificates added in a range",
		"c.created_at > ? AND c.created_at <= ? AND c.not_after <= ? AND c.status = 'valid' AND c.renewed_by = ''",
		[]any{db.timeArg(from), db.timeArg(to), db.timeArg(notAfterBefore)}, fn)
}

// EachAutoRenewDue calls fn for up to limit auto-renewed certificates that
// expire by notAfterBefore (or were asked to renew now) and whose retry
// time, if any, has come.
func (db *DB) EachAutoRenewDue(ctx context.Context, notAfterBefore, now time.Time, limit int, fn func(*inventory.Certificate) error) error {
	n := db.timeArg(now)
	return db.eachCert(ctx, "certificates due for renewal",
		db.autoRenewCond()+` AND c.status = 'valid' AND c.not_after > ?
			AND (c.not_after <= ? OR c.renew_now_at <= ?)
			AND (c.renew_retry_at IS NULL OR c.renew_retry_at <= ?)
			ORDER BY c.not_after LIMIT ?`,
		[]any{n, db.timeArg(notAfterBefore), n, n, limit}, fn)
}

// RecordRenewalFailure stores a failed automatic renewal: the failure
// count, when to try again and the error.
func (db *DB) RecordRenewalFailure(ctx context.Context, serial string, failures int, retryAt time.Time, msg string) error {
	_, err := db.write.ExecContext(ctx, db.d.rebind(`UPDATE certificates SET renew_failures = ?, renew_retry_at = ?, renew_error = ?
		WHERE serial = ?`), failures, db.zeroNullTimeArg(retryAt), truncate(msg, 1000), serial)
	if err != nil {
		return fmt.Errorf("store: record renewal failure of %s: %w", serial, err)
	}
	return nil
}

// RecordRenewalAttempt appends one renewal attempt (for the KPIs).
func (db *DB) RecordRenewalAttempt(ctx context.Context, a inventory.RenewalAttempt) error {
	_, err := db.write.ExecContext(ctx, db.d.rebind(`INSERT INTO renewal_attempts (serial, new_serial, kind, ok, error, at, days_left)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), a.Serial, a.NewSerial, string(a.Kind), a.OK, truncate(a.Error, 1000), db.timeArg(a.At), a.DaysLeft)
	if err != nil {
		return fmt.Errorf("store: record renewal attempt of %s: %w", a.Serial, err)
	}
	return nil
}

// SetSupersedeAt schedules (or, with the zero time, cancels) revoking a
// renewed certificate as superseded.
func (db *DB) SetSupersedeAt(ctx context.Context, serial string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, db.d.rebind(`UPDATE certificates SET supersede_at = ? WHERE serial = ?`), db.zeroNullTimeArg(at), serial)
	if err != nil {
		return fmt.Errorf("store: schedule supersede of %s: %w", serial, err)
	}
	return nil
}

// SupersedeDue returns up to limit serials whose supersede time has come.
func (db *DB) SupersedeDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT serial FROM certificates
		WHERE supersede_at IS NOT NULL AND supersede_at <= ? ORDER BY supersede_at LIMIT ?`), db.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: certificates due to be superseded: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: certificates due to be superseded: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// RaiseAlert stores a unless an alert with the same subject, kind and
// threshold exists, and queues its delivery to each channel. It reports
// whether a was new; the unique key makes this hold across replicas.
func (db *DB) RaiseAlert(ctx context.Context, a *lifecycle.Alert, channels []string) (bool, error) {
	created, err := db.RaiseAlerts(ctx, []*lifecycle.Alert{a}, [][]string{channels})
	if err != nil {
		return false, err
	}
	return created[0], nil
}

// alertsPerStatement bounds the rows of one INSERT of alerts or deliveries
// (7 parameters a row: within SQLite's 32,766 and PostgreSQL's 65,535).
const alertsPerStatement = 1000

// RaiseAlerts is RaiseAlert for many alerts in one transaction (one
// commit, one fsync): channels[i] are the channels of as[i].
func (db *DB) RaiseAlerts(ctx context.Context, as []*lifecycle.Alert, channels [][]string) ([]bool, error) {
	if len(as) != len(channels) {
		return nil, errors.New("store: raise alerts: one channel list per alert")
	}
	payloads := make([]string, len(as))
	for i, a := range as {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("store: raise alert: %w", err)
		}
		payloads[i] = string(b)
	}
	created := make([]bool, len(as))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return db.raiseAlertsTx(ctx, tx, as, payloads, channels, created)
	})
	if err != nil {
		return nil, fmt.Errorf("store: raise %d alerts: %w", len(as), err)
	}
	return created, nil
}

// RaiseAlertAudited is RaiseAlert that, when a is new, appends ev in the
// same transaction (an alert a principal reported).
func (db *DB) RaiseAlertAudited(ctx context.Context, a *lifecycle.Alert, channels []string, ev audit.Event) (bool, error) {
	if err := normalizeEvent(&ev); err != nil {
		return false, fmt.Errorf("store: raise alert: %w", err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("store: raise alert: %w", err)
	}
	created := make([]bool, 1)
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.raiseAlertsTx(ctx, tx, []*lifecycle.Alert{a}, []string{string(b)}, [][]string{channels}, created); err != nil {
			return err
		}
		if !created[0] {
			return nil
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return false, fmt.Errorf("store: raise alert %s: %w", a.Subject, err)
	}
	return created[0], nil
}

// CountAlerts counts the alerts of kind whose subject starts with
// subjectPrefix, created at or after since.
func (db *DB) CountAlerts(ctx context.Context, kind lifecycle.AlertKind, subjectPrefix string, since time.Time) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, db.d.rebind(`SELECT COUNT(*) FROM alerts
		WHERE kind = ? AND created_at >= ? AND substr(subject, 1, ?) = ?`),
		string(kind), db.timeArg(since), len([]rune(subjectPrefix)), subjectPrefix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count alerts: %w", err)
	}
	return n, nil
}

// raiseAlertsTx inserts as (payloads[i] is as[i] as JSON) and the
// deliveries of the new ones, marking created[i] for each new as[i].
func (db *DB) raiseAlertsTx(ctx context.Context, tx *sql.Tx, as []*lifecycle.Alert, payloads []string, channels [][]string, created []bool) error {
	clear(created)
	// One multi-row statement per chunk: on PostgreSQL a statement per
	// row costs a round trip each, which dominates a large batch.
	for lo := 0; lo < len(as); lo += alertsPerStatement {
		hi := min(lo+alertsPerStatement, len(as))
		var q strings.Builder
		q.WriteString(`INSERT INTO alerts (id, subject, kind, threshold, created_at, payload, serial) VALUES `)
		args := make([]any, 0, 7*(hi-lo))
		index := make(map[string]int, hi-lo)
		for i := lo; i < hi; i++ {
			if i > lo {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			a := as[i]
			serial := ""
			if a.Cert != nil {
				serial = a.Cert.Serial
			}
			args = append(args, a.ID, a.Subject, string(a.Kind), a.Threshold, db.timeArg(a.CreatedAt), payloads[i], serial)
			index[a.ID] = i
		}
		q.WriteString(` ON CONFLICT (subject, kind, threshold) DO NOTHING RETURNING id`)
		rows, err := tx.QueryContext(ctx, db.d.rebind(q.String()), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			if i, ok := index[id]; ok {
				created[i] = true
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	var q strings.Builder
	var args []any
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO alert_deliveries
			(alert_id, channel, status, attempts, next_attempt_at, last_error) VALUES `+q.String()), args...)
		q.Reset()
		args, n = args[:0], 0
		return err
	}
	for i, a := range as {
		if !created[i] {
			continue
		}
		for _, ch := range channels[i] {
			if n > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, 0, ?, '')")
			args = append(args, a.ID, ch, lifecycle.DeliveryPending, db.timeArg(a.CreatedAt))
			if n++; n == alertsPerStatement {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// ClaimDeliveries claims for claimer up to limit pending deliveries whose
// next attempt is due and that no one else holds a live claim on, and
// returns them with their alerts. A claim lasts claimFor by the
// database's clock; UpdateDelivery or ReleaseDeliveries ends it. On
// PostgreSQL concurrent claimers skip each other's rows (FOR UPDATE SKIP
// LOCKED); on SQLite the one writer claims for one at a time. Either way
// no delivery is handed to two claimers at once.
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, claimer string, claimFor time.Duration, limit int) ([]*lifecycle.Delivery, error) {
	d := db.d
	rows, err := db.write.QueryContext(ctx, d.rebind(`UPDATE alert_deliveries SET claimed_by = ?, claimed_until = `+d.later+`
		WHERE (alert_id, channel) IN (SELECT alert_id, channel FROM alert_deliveries
			WHERE status = ? AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= `+d.now+`)
			ORDER BY next_attempt_at LIMIT ?`+d.skipLocked+`)
		RETURNING alert_id, channel, status, attempts, next_attempt_at, last_error,
			(SELECT a.payload FROM alerts a WHERE a.id = alert_deliveries.alert_id)`),
		claimer, claimFor.Microseconds(), lifecycle.DeliveryPending, db.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim alert deliveries: %w", err)
	}
	defer rows.Close()
	var out []*lifecycle.Delivery
	for rows.Next() {
		d := &lifecycle.Delivery{Alert: &lifecycle.Alert{}, ClaimedBy: claimer}
		var payload []byte
		if err := rows.Scan(&d.AlertID, &d.Channel, &d.Status, &d.Attempts, timeScan{&d.NextAttemptAt}, &d.LastError, &payload); err != nil {
			return nil, fmt.Errorf("store: claim alert deliveries: %w", err)
		}
		if err := json.Unmarshal(payload, d.Alert); err != nil {
			return nil, fmt.Errorf("store: alert %s: %w", d.AlertID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim alert deliveries: %w", err)
	}
	// Oldest due first, as claimed (RETURNING keeps no order).
	slices.SortStableFunc(out, func(a, b *lifecycle.Delivery) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	return out, nil
}

// ReleaseDeliveries ends claimer's claims on the deliveries it did not
// get to, so another replica may send them at once.
func (db *DB) ReleaseDeliveries(ctx context.Context, claimer string) error {
	_, err := db.write.ExecContext(ctx, db.d.rebind(`UPDATE alert_deliveries SET claimed_by = '', claimed_until = NULL WHERE claimed_by = ?`), claimer)
	if err != nil {
		return fmt.Errorf("store: release alert deliveries: %w", err)
	}
	return nil
}

// UpdateDelivery records the outcome of a delivery attempt, and whether
// the alert is now delivered to every channel (alerts.undelivered), and
// ends d's claim. It applies only while the delivery is still claimed by
// d.ClaimedBy ("" for an unclaimed one): when the claim lapsed and
// another replica claimed it, it changes nothing and returns
// lifecycle.ErrElsewhere.
func (db *DB) UpdateDelivery(ctx context.Context, d *lifecycle.Delivery) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.rebind(`UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,
			last_error = ?, sent_at = ?, claimed_by = '', claimed_until = NULL WHERE alert_id = ? AND channel = ? AND claimed_by = ?`),
			d.Status, d.Attempts, db.timeArg(d.NextAttemptAt), truncate(d.LastError, 1000), db.zeroNullTimeArg(d.SentAt), d.AlertID, d.Channel, d.ClaimedBy)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: its claim lapsed and another replica claimed it", lifecycle.ErrElsewhere)
		}
		_, err = tx.ExecContext(ctx, db.d.rebind(`UPDATE alerts SET undelivered = CASE WHEN EXISTS
			(SELECT 1 FROM alert_deliveries WHERE alert_id = ? AND status <> ?) THEN 1 ELSE 0 END WHERE id = ?`),
			d.AlertID, lifecycle.DeliverySent, d.AlertID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: update delivery of alert %s to %s: %w", d.AlertID, d.Channel, err)
	}
	return nil
}

// ListAlerts returns the newest alerts (up to limit) with their deliveries.
func (db *DB) ListAlerts(ctx context.Context, limit int) ([]*lifecycle.AlertRecord, error) {
	return db.ListAlertPage(ctx, lifecycle.AlertQuery{Limit: limit})
}

// CertificateAlerts returns the newest alerts (up to limit) about the
// certificate serial, with their deliveries: a range of the alerts_serial
// index.
func (db *DB) CertificateAlerts(ctx context.Context, serial string, limit int) ([]*lifecycle.AlertRecord, error) {
	if serial == "" {
		return []*lifecycle.AlertRecord{}, nil
	}
	return db.listAlerts(ctx, `SELECT created_at, payload FROM alerts WHERE serial = ? AND serial <> '' ORDER BY serial DESC, created_at DESC, id DESC LIMIT ?`, serial, limit)
}

// ListAlertPage returns a page of the alerts q selects, newest first, with
// their deliveries; each filter has its index (migration 0021), and the
// page starts after q.Before, so older alerts are reached page by page.
func (db *DB) ListAlertPage(ctx context.Context, q lifecycle.AlertQuery) ([]*lifecycle.AlertRecord, error) {
	var where []string
	var args []any
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(q.Kind))
	}
	if q.Undelivered {
		where = append(where, "undelivered = 1")
	}
	if !q.Before.At.IsZero() {
		at := db.timeArg(q.Before.At)
		where, args = append(where, "(created_at < ? OR (created_at = ? AND id < ?))"), append(args, at, at, q.Before.ID)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	return db.listAlerts(ctx, `SELECT created_at, payload FROM alerts`+cond+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, q.Limit)...)
}

// listAlerts returns the alerts whose creation time and payload q selects,
// in its order, with their deliveries.
func (db *DB) listAlerts(ctx context.Context, q string, args ...any) ([]*lifecycle.AlertRecord, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list alerts: %w", err)
	}
	out := []*lifecycle.AlertRecord{}
	byID := map[string]*lifecycle.AlertRecord{}
	var ids []string
	for rows.Next() {
		var payload []byte
		var at time.Time
		if err := rows.Scan(timeScan{&at}, &payload); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list alerts: %w", err)
		}
		r := &lifecycle.AlertRecord{Deliveries: []lifecycle.Delivery{}}
		if err := json.Unmarshal(payload, &r.Alert); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list alerts: %w", err)
		}
		// As stored (to the microsecond): a page's last alert is where
		// the next page starts.
		r.Alert.CreatedAt = at
		out = append(out, r)
		byID[r.Alert.ID] = r
		ids = append(ids, r.Alert.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list alerts: %w", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	js, _ := json.Marshal(ids)
	drows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT alert_id, channel, status, attempts, next_attempt_at, last_error, sent_at
		FROM alert_deliveries WHERE alert_id IN (`+db.d.stringsFromJSON+`) ORDER BY channel`), string(js))
	if err != nil {
		return nil, fmt.Errorf("store: list alert deliveries: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var d lifecycle.Delivery
		if err := drows.Scan(&d.AlertID, &d.Channel, &d.Status, &d.Attempts, timeScan{&d.NextAttemptAt}, &d.LastError, zeroTimeScan{&d.SentAt}); err != nil {
			return nil, fmt.Errorf("store: list alert deliveries: %w", err)
		}
		if r := byID[d.AlertID]; r != nil {
			r.Deliveries = append(r.Deliveries, d)
		}
	}
	return out, drows.Err()
}

// CountUndeliveredAlerts counts the alerts not delivered to every channel
// (or routed to none), over the alerts_undelivered index.
func (db *DB) CountUndeliveredAlerts(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts WHERE undelivered = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count undelivered alerts: %w", err)
	}
	return n, nil
}

// GetJob returns a job's last run, or ErrNotFound before its first.
func (db *DB) GetJob(ctx context.Context, name string) (*lifecycle.JobState, error) {
	j := &lifecycle.JobState{Name: name}
	err := db.read.QueryRowContext(ctx, db.d.rebind(`SELECT started_at, finished_at, outcome, detail, cursor, replica FROM jobs WHERE name = ?`), name).
		Scan(zeroTimeScan{&j.StartedAt}, zeroTimeScan{&j.FinishedAt}, &j.Outcome, &j.Detail, zeroTimeScan{&j.Cursor}, &j.Replica)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("job", name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get job %s: %w", name, err)
	}
	return j, nil
}

// PutJob records a job's run: its last run in jobs and, for a run that
// started, a row of its history in job_runs (pruned as it grows,
// pruneJobRuns), in one transaction, so the two never disagree.
func (db *DB) PutJob(ctx context.Context, j *lifecycle.JobState) error {
	detail := truncate(j.Detail, 2000)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO jobs (name, started_at, finished_at, outcome, detail, cursor, replica)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at,
			finished_at = excluded.finished_at, outcome = excluded.outcome, detail = excluded.detail, cursor = excluded.cursor,
			replica = excluded.replica`),
			j.Name, db.zeroNullTimeArg(j.StartedAt), db.zeroNullTimeArg(j.FinishedAt), j.Outcome, detail, db.zeroNullTimeArg(j.Cursor), j.Replica)
		if err != nil || j.StartedAt.IsZero() {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO job_runs (job, replica, started_at, finished_at, outcome, detail)
			VALUES (?, ?, ?, ?, ?, ?)`),
			j.Name, j.Replica, db.timeArg(j.StartedAt), db.zeroNullTimeArg(j.FinishedAt), j.Outcome, detail); err != nil {
			return err
		}
		return db.pruneJobRuns(ctx, tx, j.Name, j.StartedAt)
	})
	if err != nil {
		return fmt.Errorf("store: record job %s: %w", j.Name, err)
	}
	return nil
}

// EachMatching calls fn for every valid, unexpired certificate that sel
// matches, in serial order: the set RevokeMatching revokes, renewed
// certificates included.
func (db *DB) EachMatching(ctx context.Context, sel inventory.Selector, now time.Time, fn func(*inventory.Certificate) error) error {
	if sel.Empty() {
		return errors.New("store: the selector is empty and would match every certificate")
	}
	where, args := db.matchWhereIn(sel, now, "c.")
	return db.eachCert(ctx, "certificates matching a selector", where+" ORDER BY c.serial", args, fn)
}

// CreateRotation stores a rotation with its items, marks the certificates
// the holders replace (signal items) for renewal now, and appends ev, in
// one transaction.
func (db *DB) CreateRotation(ctx context.Context, r *lifecycle.Rotation, items []lifecycle.RotationItem, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create rotation: %w", err)
	}
	sel, err := json.Marshal(r.Selector)
	if err != nil {
		return fmt.Errorf("store: create rotation: %w", err)
	}
	err = db.compromisedTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO rotations (id, selector, to_ca, reason, grace_seconds, status, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, string(sel), r.ToCA, r.Reason, int64(r.Grace/time.Second), r.Status, r.CreatedBy, db.timeArg(r.CreatedAt)); err != nil {
			return err
		}
		// A rotation by key reports the key compromised: from now on it is
		// never certified again (the issuance path checks the list).
		if err := db.reportCompromisedKey(ctx, tx, r.Selector.SPKISHA256, r.ID, r.CreatedBy, r.CreatedAt); err != nil {
			return err
		}
		for _, it := range items {
			if _, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO rotation_items (rotation_id, serial, method, status, new_serial, error, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`), r.ID, it.Serial, it.Method, it.Status, it.NewSerial, it.Error, db.timeArg(it.UpdatedAt)); err != nil {
				return err
			}
			if it.Method == lifecycle.MethodSignal {
				if _, err := tx.ExecContext(ctx, db.d.rebind(`UPDATE certificates SET renew_now_at = ? WHERE serial = ?`),
					db.timeArg(r.CreatedAt), it.Serial); err != nil {
					return err
				}
			}
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create rotation %s: %w", r.ID, err)
	}
	return nil
}

// GetRotation returns a rotation and its items.
func (db *DB) GetRotation(ctx context.Context, id string) (*lifecycle.Rotation, []lifecycle.RotationItem, error) {
	r, err := db.scanRotation(db.read.QueryRowContext(ctx, db.d.rebind(`SELECT `+rotationColumns+` FROM rotations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("rotation", id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: get rotation %s: %w", id, err)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT serial, method, status, new_serial, error, updated_at
		FROM rotation_items WHERE rotation_id = ? ORDER BY serial`), id)
	if err != nil {
		return nil, nil, fmt.Errorf("store: get rotation %s: %w", id, err)
	}
	defer rows.Close()
	items := []lifecycle.RotationItem{}
	for rows.Next() {
		var it lifecycle.RotationItem
		if err := rows.Scan(&it.Serial, &it.Method, &it.Status, &it.NewSerial, &it.Error, timeScan{&it.UpdatedAt}); err != nil {
			return nil, nil, fmt.Errorf("store: get rotation %s: %w", id, err)
		}
		items = append(items, it)
	}
	return r, items, rows.Err()
}

const rotationColumns = `id, selector, to_ca, reason, grace_seconds, status, created_by, created_at, finished_at`

func (db *DB) scanRotation(s scanner) (*lifecycle.Rotation, error) {
	var r lifecycle.Rotation
	var sel []byte
	var grace int64
	if err := s.Scan(&r.ID, &sel, &r.ToCA, &r.Reason, &grace, &r.Status, &r.CreatedBy, timeScan{&r.CreatedAt}, zeroTimeScan{&r.FinishedAt}); err != nil {
		return nil, err
	}
	r.Grace = time.Duration(grace) * time.Second
	if err := json.Unmarshal(sel, &r.Selector); err != nil {
		return nil, fmt.Errorf("rotation %s selector: %w", r.ID, err)
	}
	return &r, nil
}

// ListRotations returns the newest rotations (running ones when running).
func (db *DB) ListRotations(ctx context.Context, runningOnly bool, limit int) ([]*lifecycle.Rotation, error) {
	q := `SELECT ` + rotationColumns + ` FROM rotations`
	args := []any{}
	if runningOnly {
		q += ` WHERE status = ?`
		args = append(args, lifecycle.RotationRunning)
	}
	q += ` ORDER BY created_at DESC, id LIMIT ?`
	args = append(args, limit)
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list rotations: %w", err)
	}
	defer rows.Close()
	out := []*lifecycle.Rotation{}
	for rows.Next() {
		r, err := db.scanRotation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list rotations: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRotationItem records an item's progress, if its status is still
// from: when another replica moved it on, it changes nothing and returns
// lifecycle.ErrElsewhere.
func (db *DB) UpdateRotationItem(ctx context.Context, rotationID string, it lifecycle.RotationItem, from string) error {
	res, err := db.write.ExecContext(ctx, db.d.rebind(`UPDATE rotation_items SET status = ?, new_serial = ?, error = ?, updated_at = ?
		WHERE rotation_id = ? AND serial = ? AND status = ?`), it.Status, it.NewSerial, truncate(it.Error, 1000), db.timeArg(it.UpdatedAt), rotationID, it.Serial, from)
	if err != nil {
		return fmt.Errorf("store: update rotation %s item %s: %w", rotationID, it.Serial, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("store: update rotation %s item %s: %w", rotationID, it.Serial, err)
		}
		return fmt.Errorf("store: update rotation %s item %s: %w: it is no longer %s", rotationID, it.Serial, lifecycle.ErrElsewhere, from)
	}
	return nil
}

// FinishRotation marks a rotation done and appends ev.
func (db *DB) FinishRotation(ctx context.Context, id string, at time.Time, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: finish rotation: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.d.rebind(`UPDATE rotations SET status = ?, finished_at = ? WHERE id = ? AND status = ?`),
			lifecycle.RotationDone, db.timeArg(at), id, lifecycle.RotationRunning)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: finish rotation %s: %w", id, err)
	}
	return nil
}
