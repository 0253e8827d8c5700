package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
)

// ErrTooMany is returned when a principal already has as many saved
// views as it may.
var ErrTooMany = errors.New("store: too many")

const (
	viewColumns = `id, principal_id, name, query, created_at`
	// Only while the principal has fewer than the bound (the last
	// parameter); %s is the dialect's time type.
	sqlInsertView = `INSERT INTO console_views (` + viewColumns + `) SELECT ?, ?, ?, ?, CAST(? AS %s)
		WHERE (SELECT COUNT(*) FROM console_views WHERE principal_id = ?) < ? ON CONFLICT DO NOTHING`
	sqlListViews  = `SELECT ` + viewColumns + ` FROM console_views WHERE principal_id = ? ORDER BY name LIMIT ?`
	sqlGetView    = `SELECT ` + viewColumns + ` FROM console_views WHERE principal_id = ? AND id = ?`
	sqlDeleteView = `DELETE FROM console_views WHERE principal_id = ? AND id = ?`
	sqlViewNamed  = `SELECT COUNT(*) FROM console_views WHERE principal_id = ? AND name = ?`
	// sqlLockViews takes PostgreSQL's transaction lock on one
	// principal's saved views (the first key names the lock's use).
	sqlLockViews = `SELECT pg_advisory_xact_lock(` + viewsLockClass + `, hashtext($1))`
	// viewsLockClass is "cw" + "sv" in ASCII, apart from the migration
	// lock's single 64-bit key.
	viewsLockClass = "1668772726"
)

// CreateView saves v unless its principal already has max views
// (ErrTooMany) or one of the same name (ErrConflict), and appends ev in
// the same transaction.
func (db *DB) CreateView(ctx context.Context, v *inventory.SavedView, max int, ev audit.Event) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if db.d.name == "postgres" {
			// Under READ COMMITTED two transactions would each count
			// fewer than max and both insert; a lock per principal, held
			// to commit, orders them. SQLite has one writer already.
			if _, err := tx.ExecContext(ctx, sqlLockViews, v.PrincipalID); err != nil {
				return err
			}
		}
		n, err := execAffected(ctx, tx, db.d.rebind(fmt.Sprintf(sqlInsertView, db.d.timeType)), v.ID, v.PrincipalID, v.Name, v.Query, db.timeArg(v.CreatedAt),
			v.PrincipalID, max)
		if err != nil {
			return err
		}
		if n == 0 {
			var named int
			if err := tx.QueryRowContext(ctx, db.d.rebind(sqlViewNamed), v.PrincipalID, v.Name).Scan(&named); err != nil {
				return err
			}
			if named > 0 {
				return conflict("saved view", v.Name)
			}
			return fmt.Errorf("%w: saved views: at most %d", ErrTooMany, max)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create saved view: %w", err)
	}
	return nil
}

// ListViews returns principalID's saved views by name, at most limit.
func (db *DB) ListViews(ctx context.Context, principalID string, limit int) ([]*inventory.SavedView, error) {
	rows, err := db.rd.QueryContext(ctx, db.d.rebind(sqlListViews), principalID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list saved views: %w", err)
	}
	defer rows.Close()
	var out []*inventory.SavedView
	for rows.Next() {
		var v inventory.SavedView
		if err := rows.Scan(&v.ID, &v.PrincipalID, &v.Name, &v.Query, timeScan{&v.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: list saved views: %w", err)
		}
		out = append(out, &v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list saved views: %w", err)
	}
	return out, nil
}

// GetView returns principalID's saved view id; ErrNotFound when it has
// none by that ID (another principal's included).
func (db *DB) GetView(ctx context.Context, principalID, id string) (*inventory.SavedView, error) {
	var v inventory.SavedView
	err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetView), principalID, id).Scan(&v.ID, &v.PrincipalID, &v.Name, &v.Query, timeScan{&v.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("saved view", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get saved view: %w", err)
	}
	return &v, nil
}

// DeleteView deletes principalID's saved view id and appends ev in the
// same transaction; ErrNotFound when it has none by that ID.
func (db *DB) DeleteView(ctx context.Context, principalID, id string, ev audit.Event) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteView), principalID, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("saved view", id)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: delete saved view: %w", err)
	}
	return nil
}
