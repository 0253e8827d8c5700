package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/store/postgres"
)

// Several replicas sharing one PostgreSQL database (README "Several
// replicas"): the start-up steps that must happen once however many
// replicas run them at the same instant (Exclusive), and the registry of
// running replicas their configurations are checked against. On SQLite
// there is one process: Exclusive just runs its function and the registry
// is not kept.

const (
	// sqlLockExclusive takes PostgreSQL's transaction lock on one named
	// start-up step; the first key ("cw" + "ex" in ASCII) keeps these
	// apart from the saved views' locks and the migration lock.
	sqlLockExclusive   = `SELECT pg_advisory_xact_lock(` + exclusiveLockClass + `, hashtext($1))`
	exclusiveLockClass = "1668769144"
	// exclusiveConns bounds the connections of their own that Exclusive
	// calls hold at once in one process (further calls wait for one, on
	// nothing else); exclusiveLockTimeout bounds one call's wait for the
	// lock itself, held by another process.
	exclusiveConns       = 4
	exclusiveLockTimeout = time.Minute
)

// Exclusive runs fn while no other process sharing the database runs an
// Exclusive of the same key: on PostgreSQL it holds a transaction-level
// advisory lock (pg_advisory_xact_lock) for fn's duration, on a
// connection of its own outside the pool, so the lock goes with the
// connection if the process dies. fn writes through the store as usual,
// on the pool's connections, and its commits are visible to the next
// holder. Used where a check and a creation must not interleave across
// replicas: the audit key, the server certificate, each CA's OCSP
// responder, the replica registry and init. On SQLite it runs fn.
//
// Why a connection of its own rather than one of the pool's: fn needs
// pool connections, and callers holding (or waiting for) the lock on
// pooled connections could take all of them (twenty CAs whose OCSP
// responders are due together), leaving fn none, for ever. At most
// exclusiveConns such connections are open at once per process; the
// wait for a lock another process holds ends after exclusiveLockTimeout
// or with ctx. Nested calls (init takes the audit key's lock inside its
// own) need one connection per level, well within the bound.
func (db *DB) Exclusive(ctx context.Context, key string, fn func(context.Context) error) error {
	if db.dial == nil {
		return fn(ctx)
	}
	select {
	case db.exclusive <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("store: lock %s: waiting for a connection: %w", key, context.Cause(ctx))
	}
	defer func() { <-db.exclusive }()
	conn, err := db.dial.Connect(ctx)
	if err != nil {
		return fmt.Errorf("store: lock %s: %w", key, err)
	}
	defer func() {
		// Closing ends the transaction, which releases the lock.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: lock %s: %w", key, err)
	}
	// Nothing is written in tx: ending it just releases the lock.
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", db.lockTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("store: lock %s: %w", key, err)
	}
	if _, err := tx.Exec(ctx, sqlLockExclusive, key); err != nil {
		if postgres.IsLockTimeout(err) {
			return fmt.Errorf("store: lock %s: another process sharing the database has held it for over %s; if a replica is stuck in this step, restart it: %w", key, db.lockTimeout, err)
		}
		return fmt.Errorf("store: lock %s: %w", key, err)
	}
	return fn(ctx)
}

// Replica is one running serve process in the registry.
type Replica struct {
	ID      string
	Name    string
	Version string
	// StartedAt and LastSeen are on the database's clock.
	StartedAt, LastSeen time.Time
	// ConfigDigest is a digest of Settings, the settings every replica
	// must agree on (values, or digests of secret ones).
	ConfigDigest string
	Settings     map[string]string
}

// ReplicaLive is how long after its last heartbeat a replica counts as
// running; ReplicaHeartbeat is how often each replica beats.
const (
	ReplicaHeartbeat = 5 * time.Second
	ReplicaLive      = 15 * time.Second
	// replicaForget is how long a row outlives its last heartbeat (a
	// replica that was killed) before a heartbeat deletes it.
	replicaForget = 24 * time.Hour
)

const (
	replicaColumns = `id, name, version, started_at, last_seen, config_digest, settings`
	// sqlLiveReplicas lists the replicas seen within $1 seconds but $2.
	sqlLiveReplicas = `SELECT ` + replicaColumns + ` FROM replicas
		WHERE last_seen >= now() - make_interval(secs => $1) AND id <> $2 ORDER BY started_at, id`
	sqlInsertReplica = `INSERT INTO replicas (` + replicaColumns + `) VALUES ($1, $2, $3, now(), now(), $4, $5)`
	sqlBeatReplica   = `UPDATE replicas SET last_seen = now() WHERE id = $1`
	sqlForgetReplica = `DELETE FROM replicas WHERE last_seen < now() - make_interval(secs => $1)`
	sqlUpdateReplica = `UPDATE replicas SET config_digest = $2, settings = $3, last_seen = now() WHERE id = $1`
	sqlDeleteReplica = `DELETE FROM replicas WHERE id = $1`
	// replicasLock is the Exclusive key of registrations.
	replicasLock = "replicas"
)

// RegisterReplica adds r to the registry (its times from the database's
// clock) unless agree refuses the replicas running now (seen within
// ReplicaLive, r itself aside); agree's error is returned as is. Two
// replicas registering at once are taken one after the other, so the
// second sees the first. On SQLite it does nothing.
func (db *DB) RegisterReplica(ctx context.Context, r *Replica, agree func(live []*Replica) error) error {
	return db.putReplica(ctx, r, agree, "register", func(settings string) (string, []any) {
		return sqlInsertReplica, []any{r.ID, r.Name, r.Version, r.ConfigDigest, settings}
	})
}

// UpdateReplica records new agreed settings for replica r.ID (a reload),
// under the same rule as RegisterReplica: agree sees the other live
// replicas first. On SQLite it does nothing.
func (db *DB) UpdateReplica(ctx context.Context, r *Replica, agree func(live []*Replica) error) error {
	return db.putReplica(ctx, r, agree, "update", func(settings string) (string, []any) {
		return sqlUpdateReplica, []any{r.ID, r.ConfigDigest, settings}
	})
}

// putReplica runs the statement stmt returns for r's encoded settings once
// agree accepts the live replicas, under the registry's lock.
func (db *DB) putReplica(ctx context.Context, r *Replica, agree func(live []*Replica) error, what string, stmt func(settings string) (string, []any)) error {
	if db.dial == nil {
		return nil
	}
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return fmt.Errorf("store: %s replica: %w", what, err)
	}
	return db.Exclusive(ctx, replicasLock, func(ctx context.Context) error {
		live, err := db.LiveReplicas(ctx, r.ID)
		if err != nil {
			return err
		}
		if err := agree(live); err != nil {
			return err
		}
		q, args := stmt(string(settings))
		if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: %s replica: %w", what, err)
		}
		return nil
	})
}

// LiveReplicas returns the replicas seen within ReplicaLive, bar the one
// with ID except. On SQLite it returns none.
func (db *DB) LiveReplicas(ctx context.Context, except string) ([]*Replica, error) {
	if db.dial == nil {
		return nil, nil
	}
	rows, err := db.write.QueryContext(ctx, sqlLiveReplicas, ReplicaLive.Seconds(), except)
	if err != nil {
		return nil, fmt.Errorf("store: list replicas: %w", err)
	}
	defer rows.Close()
	var out []*Replica
	for rows.Next() {
		var r Replica
		var settings string
		if err := rows.Scan(&r.ID, &r.Name, &r.Version, timeScan{&r.StartedAt}, timeScan{&r.LastSeen}, &r.ConfigDigest, &settings); err != nil {
			return nil, fmt.Errorf("store: list replicas: %w", err)
		}
		if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
			return nil, fmt.Errorf("store: list replicas: replica %s: settings: %w", r.ID, err)
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list replicas: %w", err)
	}
	return out, nil
}

// BeatReplica moves replica id's last_seen to the database's now and
// deletes the rows of replicas gone for a day. It returns ErrNotFound
// when id's row is gone (deleted by hand, or restored over). On SQLite it
// does nothing.
func (db *DB) BeatReplica(ctx context.Context, id string) error {
	if db.dial == nil {
		return nil
	}
	res, err := db.write.ExecContext(ctx, sqlBeatReplica, id)
	if err != nil {
		return fmt.Errorf("store: replica heartbeat: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return notFound("replica", id)
	}
	if _, err := db.write.ExecContext(ctx, sqlForgetReplica, replicaForget.Seconds()); err != nil {
		return fmt.Errorf("store: replica heartbeat: forget old replicas: %w", err)
	}
	return nil
}

// RemoveReplica deletes replica id's row (a clean shutdown), so that a
// replica started next with changed settings need not wait for it to age
// out. On SQLite it does nothing.
func (db *DB) RemoveReplica(ctx context.Context, id string) error {
	if db.dial == nil {
		return nil
	}
	if _, err := db.write.ExecContext(ctx, sqlDeleteReplica, id); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: remove replica: %w", err)
	}
	return nil
}
