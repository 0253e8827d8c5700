package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

const (
	sessionColumns   = `id_hash, principal_id, auth, source, created_at, last_seen_at, expires_at, ended_at, end_reason`
	sqlGetSession    = `SELECT ` + sessionColumns + ` FROM console_sessions WHERE id_hash = ?`
	sqlInsertSession = `INSERT INTO console_sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '') ON CONFLICT (id_hash) DO NOTHING`
	sqlTouchSession  = `UPDATE console_sessions SET last_seen_at = ? WHERE id_hash = ? AND ended_at IS NULL`
	sqlEndSession    = `UPDATE console_sessions SET ended_at = ?, end_reason = ? WHERE id_hash = ? AND ended_at IS NULL`
)

// CreateSession stores a new console session and appends ev (the
// sign-in) in the same transaction.
func (db *DB) CreateSession(ctx context.Context, s *authz.Session, ev audit.Event) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertSession), s.IDHash, s.PrincipalID, s.Auth, s.Source,
			db.timeArg(s.CreatedAt), db.timeArg(s.LastSeenAt), db.timeArg(s.ExpiresAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("console session", "…")
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create console session: %w", err)
	}
	return nil
}

// GetSession returns the console session whose secret hashes to idHash,
// ended or not; ErrNotFound when there is none.
func (db *DB) GetSession(ctx context.Context, idHash string) (*authz.Session, error) {
	var s authz.Session
	err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetSession), idHash).Scan(&s.IDHash, &s.PrincipalID, &s.Auth, &s.Source,
		timeScan{&s.CreatedAt}, timeScan{&s.LastSeenAt}, timeScan{&s.ExpiresAt}, nullTimeScan{&s.EndedAt}, &s.EndReason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("console session", "…")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get console session: %w", err)
	}
	return &s, nil
}

// TouchSession records that an active session was used at at.
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	if _, err := db.wr.ExecContext(ctx, db.d.rebind(sqlTouchSession), db.timeArg(at), idHash); err != nil {
		return fmt.Errorf("store: touch console session: %w", err)
	}
	return nil
}

// EndSession ends a session at at for reason and appends evs (a sign-out)
// in the same transaction; a session already ended keeps its first end,
// and then no event is appended. It reports whether this call ended it.
func (db *DB) EndSession(ctx context.Context, idHash string, at time.Time, reason string, evs ...audit.Event) (bool, error) {
	ended := false
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlEndSession), db.timeArg(at), reason, idHash)
		if err != nil || n == 0 {
			return err
		}
		ended = true
		ptrs := make([]*audit.Event, len(evs))
		for i := range evs {
			ptrs[i] = &evs[i]
		}
		return db.appendAudit(ctx, tx, ptrs...)
	})
	if err != nil {
		return false, fmt.Errorf("store: end console session: %w", err)
	}
	return ended, nil
}

// PruneSessions deletes console sessions that ended, or reached their
// absolute end, before before, and returns how many. Sign-ins and
// sign-outs stay in the audit log; the rows are only what resumes a
// session.
func (db *DB) PruneSessions(ctx context.Context, before time.Time) (int64, error) {
	n, err := execAffected(ctx, db.wr, db.d.rebind(`DELETE FROM console_sessions
		WHERE (ended_at IS NOT NULL AND ended_at < ?) OR expires_at < ?`), db.timeArg(before), db.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune console sessions: %w", err)
	}
	return n, nil
}
