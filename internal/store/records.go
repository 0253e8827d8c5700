package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
)

// CreateProfile stores a custom certificate profile, an opaque JSON
// document, under name and appends ev to the audit log, in one
// transaction. It returns ErrConflict when the name is taken.
func (db *DB) CreateProfile(ctx context.Context, name string, doc []byte, ev audit.Event) error {
	if err := db.profileWrite(ctx, db.q.insertProfile, []any{name, nonNil(doc)}, ev, func() error { return conflict("profile", name) }); err != nil {
		return fmt.Errorf("store: create profile %q: %w", name, err)
	}
	return nil
}

// UpdateProfile replaces the document of profile name and appends ev to
// the audit log, in one transaction.
func (db *DB) UpdateProfile(ctx context.Context, name string, doc []byte, ev audit.Event) error {
	if err := db.profileWrite(ctx, db.q.updateProfile, []any{nonNil(doc), name}, ev, func() error { return notFound("profile", name) }); err != nil {
		return fmt.Errorf("store: update profile %q: %w", name, err)
	}
	return nil
}

// profileWrite runs the single-row write q and appends ev, in one
// transaction; none returns the error for a write that touched no row.
func (db *DB) profileWrite(ctx context.Context, q string, args []any, ev audit.Event, none func() error) error {
	if err := normalizeEvent(&ev); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, q, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return none()
		}
		return db.appendAudit(ctx, tx, &ev)
	})
}

// GetProfile returns the document of profile name.
func (db *DB) GetProfile(ctx context.Context, name string) ([]byte, error) {
	var doc []byte
	err := db.rd.QueryRowContext(ctx, db.q.getProfile, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("profile", name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get profile %q: %w", name, err)
	}
	return nonNil(doc), nil
}

// ListProfiles returns every custom profile document by name.
func (db *DB) ListProfiles(ctx context.Context) (map[string][]byte, error) {
	rows, err := db.read.QueryContext(ctx, db.q.listProfiles)
	if err != nil {
		return nil, fmt.Errorf("store: list profiles: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var name string
		var doc []byte
		if err := rows.Scan(&name, &doc); err != nil {
			return nil, fmt.Errorf("store: list profiles: %w", err)
		}
		out[name] = nonNil(doc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list profiles: %w", err)
	}
	return out, nil
}

// DeleteProfile removes profile name and appends ev to the audit log, in
// one transaction.
func (db *DB) DeleteProfile(ctx context.Context, name string, ev audit.Event) error {
	if err := db.profileWrite(ctx, db.q.deleteProfile, []any{name}, ev, func() error { return notFound("profile", name) }); err != nil {
		return fmt.Errorf("store: delete profile %q: %w", name, err)
	}
	return nil
}

// GetSetting returns the value stored under key.
func (db *DB) GetSetting(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.read.QueryRowContext(ctx, db.q.getSetting, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("setting", key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get setting %q: %w", key, err)
	}
	return nonNil(v), nil
}

// PutSetting stores value under key, replacing any previous value.
func (db *DB) PutSetting(ctx context.Context, key string, value []byte) error {
	if _, err := db.write.ExecContext(ctx, db.q.putSetting, key, nonNil(value)); err != nil {
		return fmt.Errorf("store: put setting %q: %w", key, err)
	}
	return nil
}

// nonNil maps nil to an empty slice, for NOT NULL blob columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
