package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/authz"
)

// CreateProfile stores a custom certificate profile, an opaque JSON
// document, under name. It returns ErrConflict when the name is taken.
func (db *DB) CreateProfile(ctx context.Context, name string, doc []byte) error {
	n, err := execAffected(ctx, db.write, db.q.insertProfile, name, nonNil(doc))
	if err != nil {
		return fmt.Errorf("store: create profile %q: %w", name, err)
	}
	if n == 0 {
		return conflict("profile", name)
	}
	return nil
}

// UpdateProfile replaces the document of profile name.
func (db *DB) UpdateProfile(ctx context.Context, name string, doc []byte) error {
	n, err := execAffected(ctx, db.write, db.q.updateProfile, nonNil(doc), name)
	if err != nil {
		return fmt.Errorf("store: update profile %q: %w", name, err)
	}
	if n == 0 {
		return notFound("profile", name)
	}
	return nil
}

// GetProfile returns the document of profile name.
func (db *DB) GetProfile(ctx context.Context, name string) ([]byte, error) {
	var doc []byte
	err := db.read.QueryRowContext(ctx, db.q.getProfile, name).Scan(&doc)
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

// DeleteProfile removes profile name.
func (db *DB) DeleteProfile(ctx context.Context, name string) error {
	n, err := execAffected(ctx, db.write, db.q.deleteProfile, name)
	if err != nil {
		return fmt.Errorf("store: delete profile %q: %w", name, err)
	}
	if n == 0 {
		return notFound("profile", name)
	}
	return nil
}

// CreateToken stores an API token. It returns ErrConflict when the ID is
// taken.
func (db *DB) CreateToken(ctx context.Context, t *authz.Token) error {
	if t.ID == "" {
		return errors.New("store: create token: ID is required")
	}
	n, err := execAffected(ctx, db.write, db.q.insertToken,
		t.ID, t.Name, string(t.Role), nonNil(t.SecretHash), db.timeArg(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create token %q: %w", t.ID, err)
	}
	if n == 0 {
		return conflict("token", t.ID)
	}
	return nil
}

// GetToken returns the token with the given ID.
func (db *DB) GetToken(ctx context.Context, id string) (*authz.Token, error) {
	var t authz.Token
	var role string
	err := db.read.QueryRowContext(ctx, db.q.getToken, id).
		Scan(&t.ID, &t.Name, &role, &t.SecretHash, timeScan{&t.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get token %q: %w", id, err)
	}
	t.Role = authz.Role(role)
	return &t, nil
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
