package store

import (
	"context"
	"fmt"
)

// instanceIDSetting holds the ID of the instance the database belongs to.
const instanceIDSetting = "instance_id"

// ClaimInstanceID records id as the database's instance ID unless one is
// recorded already, and returns the one recorded: two replicas starting
// together agree on the first.
func (db *DB) ClaimInstanceID(ctx context.Context, id string) (string, error) {
	v, err := db.ClaimSetting(ctx, instanceIDSetting, []byte(id))
	if err != nil {
		return "", fmt.Errorf("store: record instance ID: %w", err)
	}
	return string(v), nil
}

// SynchronousCommit returns PostgreSQL's synchronous_commit setting for
// this store's sessions, and "" on SQLite (whose commits are always
// synchronous: synchronous=FULL).
func (db *DB) SynchronousCommit(ctx context.Context) (string, error) {
	if db.d != &postgresDialect {
		return "", nil
	}
	var v string
	if err := db.read.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
		return "", fmt.Errorf("store: read synchronous_commit: %w", err)
	}
	return v, nil
}
