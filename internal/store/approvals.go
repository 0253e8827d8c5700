package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/issue"
)

// Statements for requests held for approval.
const (
	approvalColumns = `id, requester_id, requester, ca, profile, names, body, status, created_at, expires_at,
		decided_by, decided_at, comment, serial, error, replaces`

	sqlInsertApproval = `INSERT INTO approval_requests (` + approvalColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// Over approval_requests_requester: a requester's pending requests
	// are few (SCEP caps them).
	sqlPendingRenewal = `SELECT id FROM approval_requests WHERE requester_id = ? AND status = '` + issue.StatusPending + `'
		AND replaces = ? LIMIT 1`
	sqlGetApproval     = `SELECT ` + approvalColumns + ` FROM approval_requests WHERE id = ?`
	sqlListApprovals   = `SELECT ` + approvalColumns + ` FROM approval_requests ORDER BY created_at DESC, id DESC LIMIT ?`
	sqlListApprovalsIn = `SELECT ` + approvalColumns + ` FROM approval_requests WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT ?`
	sqlApprovalStatus  = `SELECT status, expires_at FROM approval_requests WHERE id = ?`
	sqlUpdateApproval  = `UPDATE approval_requests SET status = ?, decided_by = ?, decided_at = ?, comment = ?, serial = ?, error = ?
		WHERE id = ? AND status = ?`
	sqlUpdatePending   = sqlUpdateApproval + ` AND expires_at > ?`
	sqlExpireApprovals = `UPDATE approval_requests SET status = '` + issue.StatusExpired + `'
		WHERE status = '` + issue.StatusPending + `' AND expires_at <= ? RETURNING id`
)

// defaultApprovalLimit bounds ListApprovalRequests when the caller sets no limit.
const defaultApprovalLimit = 1000

// CreateApprovalRequest stores a request held for approval and appends ev.
// It returns ErrConflict when the ID is taken.
func (db *DB) CreateApprovalRequest(ctx context.Context, r *issue.ApprovalRequest, ev audit.Event) error {
	if r.ID == "" || r.Status == "" {
		return errors.New("store: create approval request: ID and status are required")
	}
	names, err := jsonList(r.Names)
	if err != nil {
		return fmt.Errorf("store: create approval request %q: %w", r.ID, err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertApproval), r.ID, r.RequesterID, r.Requester, r.CA, r.Profile,
			names, nonNil(r.Body), r.Status, db.timeArg(r.CreatedAt), db.timeArg(r.ExpiresAt),
			r.DecidedBy, db.nullTimeArg(r.DecidedAt), r.Comment, r.Serial, r.Error, r.Replaces)
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("approval request", r.ID)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create approval request %q: %w", r.ID, err)
	}
	return nil
}

// GetApprovalRequest returns the request with the given ID.
func (db *DB) GetApprovalRequest(ctx context.Context, id string) (*issue.ApprovalRequest, error) {
	r, err := scanApproval(db.read.QueryRowContext(ctx, db.d.rebind(sqlGetApproval), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("approval request", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get approval request %q: %w", id, err)
	}
	return r, nil
}

// ListApprovalRequests returns up to limit requests in status (any status
// when ""), newest first. A limit of zero or less means 1000.
func (db *DB) ListApprovalRequests(ctx context.Context, status string, limit int) ([]*issue.ApprovalRequest, error) {
	if limit <= 0 {
		limit = defaultApprovalLimit
	}
	q, args := sqlListApprovals, []any{limit}
	if status != "" {
		q, args = sqlListApprovalsIn, []any{status, limit}
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list approval requests: %w", err)
	}
	out, err := collect(rows, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("store: list approval requests: %w", err)
	}
	return out, nil
}

// CountApprovalRequests counts the requests in status, only requesterID's
// when it is not "" (over the approval_requests_status and
// approval_requests_requester indexes).
func (db *DB) CountApprovalRequests(ctx context.Context, status, requesterID string) (int, error) {
	q, args := `SELECT COUNT(*) FROM approval_requests WHERE status = ?`, []any{status}
	if requesterID != "" {
		q, args = q+` AND requester_id = ?`, append(args, requesterID)
	}
	var n int
	if err := db.read.QueryRowContext(ctx, db.d.rebind(q), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count approval requests: %w", err)
	}
	return n, nil
}

// PendingRenewal returns the ID of a pending request of requesterID
// that renews certificate serial, "" when there is none.
func (db *DB) PendingRenewal(ctx context.Context, requesterID, serial string) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, db.d.rebind(sqlPendingRenewal), requesterID, serial).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: pending renewal of %s: %w", serial, err)
	}
	return id, nil
}

// ApprovalRequestGroups counts the requests in status by what a scope
// judges them on (CA, profile and names) and by whether requesterID made
// them, at most limit groups.
func (db *DB) ApprovalRequestGroups(ctx context.Context, status, requesterID string, limit int) ([]issue.RequestGroup, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT ca, profile, names, CASE WHEN requester_id = ? THEN 1 ELSE 0 END, COUNT(*)
		FROM approval_requests WHERE status = ? GROUP BY ca, profile, names, 4 LIMIT ?`), requesterID, status, limit)
	if err != nil {
		return nil, fmt.Errorf("store: count approval requests: %w", err)
	}
	defer rows.Close()
	var out []issue.RequestGroup
	for rows.Next() {
		var g issue.RequestGroup
		var names string
		var own int
		if err := rows.Scan(&g.CA, &g.Profile, &names, &own, &g.N); err != nil {
			return nil, fmt.Errorf("store: count approval requests: %w", err)
		}
		if err := json.Unmarshal([]byte(names), &g.Names); err != nil {
			return nil, fmt.Errorf("store: count approval requests: names: %w", err)
		}
		g.Own = own == 1
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count approval requests: %w", err)
	}
	return out, nil
}

// UpdateApprovalRequest writes r's Status, DecidedBy, DecidedAt, Comment,
// Serial and Error, and appends ev, provided the stored status is from;
// otherwise it returns an error wrapping ErrConflict that names the current
// status. Moving a request out of pending also requires that it has not
// expired at now: of two approvers deciding at once, or an approver and
// the expiry sweep, exactly one wins.
func (db *DB) UpdateApprovalRequest(ctx context.Context, r *issue.ApprovalRequest, from string, now time.Time, ev audit.Event) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		args := []any{r.Status, r.DecidedBy, db.nullTimeArg(r.DecidedAt), r.Comment, r.Serial, r.Error, r.ID, from}
		q := sqlUpdateApproval
		if from == issue.StatusPending {
			q, args = sqlUpdatePending, append(args, db.timeArg(now))
		}
		n, err := execAffected(ctx, tx, db.d.rebind(q), args...)
		if err != nil {
			return err
		}
		if n == 0 {
			var status string
			var expires time.Time
			err := tx.QueryRowContext(ctx, db.d.rebind(sqlApprovalStatus), r.ID).Scan(&status, timeScan{&expires})
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("approval request", r.ID)
			}
			if err != nil {
				return err
			}
			if status != from {
				return fmt.Errorf("%w: %w: approval request %q is %s, not %s", issue.ErrNotPending, ErrConflict, r.ID, status, from)
			}
			return fmt.Errorf("%w: %w: approval request %q expired at %s", issue.ErrNotPending, ErrConflict, r.ID, expires.Format(time.RFC3339))
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: update approval request %q: %w", r.ID, err)
	}
	return nil
}

// ExpireApprovalRequests marks every pending request whose expiry is at or
// before now expired, appends a copy of ev for each with Target set to the
// request's ID, and returns the IDs in order.
func (db *DB) ExpireApprovalRequests(ctx context.Context, now time.Time, ev audit.Event) ([]string, error) {
	var ids []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		rows, err := tx.QueryContext(ctx, db.d.rebind(sqlExpireApprovals), db.timeArg(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(ids) == 0 {
			return nil
		}
		slices.Sort(ids)
		evs := make([]*audit.Event, len(ids))
		for i, id := range ids {
			e := ev
			e.Target = id
			evs[i] = &e
		}
		return db.appendAudit(ctx, tx, evs...)
	})
	if err != nil {
		return nil, fmt.Errorf("store: expire approval requests: %w", err)
	}
	return ids, nil
}

func scanApproval(s scanner) (*issue.ApprovalRequest, error) {
	var r issue.ApprovalRequest
	var names string
	if err := s.Scan(&r.ID, &r.RequesterID, &r.Requester, &r.CA, &r.Profile, &names, &r.Body, &r.Status,
		timeScan{&r.CreatedAt}, timeScan{&r.ExpiresAt}, &r.DecidedBy, nullTimeScan{&r.DecidedAt},
		&r.Comment, &r.Serial, &r.Error, &r.Replaces); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(names), &r.Names); err != nil {
		return nil, fmt.Errorf("approval request %q names: %w", r.ID, err)
	}
	if r.Names == nil {
		r.Names = []string{}
	}
	r.Body = nonNil(r.Body)
	return &r, nil
}
