package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// healthProbeSetting is the setting CanCommit rewrites.
const healthProbeSetting = "health_probe"

// CanCommit reports whether the database commits a write now: it rewrites
// one setting through the writer, so a database that answers reads but is
// read-only, out of disk or unreachable fails it.
func (db *DB) CanCommit(ctx context.Context) error {
	at := strconv.FormatInt(time.Now().UnixMicro(), 10)
	if _, err := db.write.ExecContext(ctx, db.q.putSetting, healthProbeSetting, []byte(at)); err != nil {
		return fmt.Errorf("store: commit probe: %w", err)
	}
	return nil
}
