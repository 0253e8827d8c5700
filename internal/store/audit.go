package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/pki"
)

// The audit log is a hash chain: each event's hash covers the previous
// one's, and audit_head holds the last sequence number and hash so that an
// append reads one row instead of scanning. Events are appended in the same
// transaction as the change they describe, so a change and its record
// commit or roll back together.

const (
	auditColumns      = `seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash, principal_id`
	checkpointColumns = `seq, hash, time, key_id, signature, counter, prev_hash`
	auditKeyColumns   = `id, key_provider, key_id, key_algorithm, key_blob, public_key, created_at`
	auditColumnCount  = 12
)

// auditQueries are the audit log's statements, rebound for the dialect.
type auditQueries struct {
	lockHead, readHead, updateHead, insertEvent string
	eachFrom                                    string
	insertCheckpoint, listCheckpoints, lastCP   string
	checkpointAt                                string
	insertKey, listKeys                         string
}

func buildAuditQueries(d *dialect) auditQueries {
	lock := `SELECT seq, hash FROM audit_head WHERE id = 1`
	if d.name == "postgres" {
		// The row lock orders concurrent appenders; SQLite has one writer
		// connection and BEGIN IMMEDIATE already.
		lock += ` FOR UPDATE`
	}
	q := auditQueries{
		lockHead:         lock,
		readHead:         `SELECT seq, hash FROM audit_head WHERE id = 1`,
		updateHead:       `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`,
		insertEvent:      `INSERT INTO audit_events (` + auditColumns + `) VALUES (` + params(auditColumnCount) + `)`,
		eachFrom:         `SELECT ` + auditColumns + ` FROM audit_events WHERE seq >= ? ORDER BY seq`,
		insertCheckpoint: `INSERT INTO audit_checkpoints (` + checkpointColumns + `) VALUES (` + params(7) + `) ON CONFLICT DO NOTHING`,
		listCheckpoints:  `SELECT ` + checkpointColumns + ` FROM audit_checkpoints ORDER BY seq`,
		lastCP:           `SELECT ` + checkpointColumns + ` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`,
		checkpointAt:     `SELECT ` + checkpointColumns + ` FROM audit_checkpoints WHERE seq = ?`,
		insertKey:        `INSERT INTO audit_keys (` + auditKeyColumns + `) VALUES (` + params(7) + `) ON CONFLICT DO NOTHING`,
		listKeys:         `SELECT ` + auditKeyColumns + ` FROM audit_keys ORDER BY created_at, id`,
	}
	for _, s := range []*string{
		&q.lockHead, &q.readHead, &q.updateHead, &q.insertEvent, &q.eachFrom,
		&q.insertCheckpoint, &q.listCheckpoints, &q.lastCP, &q.checkpointAt, &q.insertKey, &q.listKeys,
	} {
		*s = d.rebind(*s)
	}
	return q
}

// normalizeEvent readies ev for appending and says which action failed.
func normalizeEvent(ev *audit.Event) error {
	if err := ev.Normalize(); err != nil {
		return fmt.Errorf("store: audit event: %w", err)
	}
	return nil
}

// appendAudit appends evs to the chain in tx, filling in each one's Seq,
// PrevHash and Hash. It must be the LAST statement of the tx before COMMIT
// (PostgreSQL: it row-locks audit_head; taking that lock last keeps it
// held for the shortest time and avoids deadlocks with locks taken by the
// change itself).
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, evs ...*audit.Event) error {
	if len(evs) == 0 {
		return nil
	}
	for _, ev := range evs {
		if err := normalizeEvent(ev); err != nil {
			return err
		}
	}
	var seq int64
	var head []byte
	ptx := db.wr.tx(tx)
	if err := ptx.QueryRowContext(ctx, db.aq.lockHead).Scan(&seq, &head); err != nil {
		return fmt.Errorf("store: audit: read head: %w", err)
	}
	prev := audit.Hash(head)
	for _, ev := range evs {
		seq++
		ev.Seq, ev.PrevHash = seq, prev
		ev.Hash = ev.ComputeHash(prev)
		prev = ev.Hash
	}
	if err := db.insertEvents(ctx, tx, evs); err != nil {
		return fmt.Errorf("store: audit: append: %w", err)
	}
	if _, err := ptx.ExecContext(ctx, db.aq.updateHead, seq, []byte(prev)); err != nil {
		return fmt.Errorf("store: audit: update head: %w", err)
	}
	return nil
}

// insertEvents writes evs, whose chain fields are set: one statement per
// event on SQLite (prepared once per store), one statement for all of
// them on PostgreSQL to save round trips (pgbatch.go).
func (db *DB) insertEvents(ctx context.Context, tx *sql.Tx, evs []*audit.Event) error {
	if db.d.multiRowInsert && len(evs) > 1 {
		_, err := tx.ExecContext(ctx, pgInsertEvents,
			columnsOf(len(evs), auditColumnCount, func(i int) []any { return db.eventArgs(evs[i]) })...)
		return err
	}
	insert := db.wr.tx(tx).bind(ctx, db.aq.insertEvent)
	for _, ev := range evs {
		if _, err := insert.ExecContext(ctx, db.eventArgs(ev)...); err != nil {
			return err
		}
	}
	return nil
}

// eventArgs returns ev's column values in auditColumns order.
func (db *DB) eventArgs(ev *audit.Event) []any {
	return []any{ev.Seq, db.timeArg(ev.Time), ev.Principal, ev.Source, ev.Action, ev.Target,
		string(ev.Outcome), ev.RequestID, string(ev.Details), []byte(ev.PrevHash), []byte(ev.Hash), ev.PrincipalID}
}

// AppendAudit appends standalone events (denied requests, CRL signatures,
// exports) in their own transaction. An invalid event (see
// audit.Event.Normalize) fails the call with an error wrapping
// audit.ErrInvalid and appends nothing.
func (db *DB) AppendAudit(ctx context.Context, evs ...audit.Event) error {
	if len(evs) == 0 {
		return nil
	}
	ptrs := make([]*audit.Event, len(evs))
	for i := range evs {
		ptrs[i] = &evs[i]
		if err := normalizeEvent(ptrs[i]); err != nil {
			return err
		}
	}
	if err := db.inTx(ctx, func(tx *sql.Tx) error { return db.appendAudit(ctx, tx, ptrs...) }); err != nil {
		return fmt.Errorf("store: append audit events: %w", err)
	}
	return nil
}

// EachAuditEvent calls fn for every event with seq >= from, in seq order,
// streaming the rows from one query. fn gets the same *audit.Event each
// call, overwritten, its slices included: it must not keep it or them. An
// error from fn stops the scan and is returned as is.
func (db *DB) EachAuditEvent(ctx context.Context, from int64, fn func(*audit.Event) error) error {
	return db.eachAuditFrom(ctx, db.read, from, fn)
}

func (db *DB) eachAuditFrom(ctx context.Context, src querier, from int64, fn func(*audit.Event) error) error {
	return db.eachAudit(ctx, src, db.aq.eachFrom, []any{from}, fn, func(err error) error {
		return fmt.Errorf("store: audit events from %d: %w", from, err)
	})
}

// EachAuditEventBetween calls fn for the events with since <= time < until
// (a zero until: no upper bound), in seq order, as EachAuditEvent does.
func (db *DB) EachAuditEventBetween(ctx context.Context, since, until time.Time, fn func(*audit.Event) error) error {
	q, args := `SELECT `+auditColumns+` FROM audit_events WHERE time >= ?`, []any{db.timeArg(since)}
	if !until.IsZero() {
		q += ` AND time < ?`
		args = append(args, db.timeArg(until))
	}
	return db.eachAudit(ctx, db.read, db.d.rebind(q+` ORDER BY seq`), args, fn, func(err error) error {
		return fmt.Errorf("store: audit events between %s and %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	})
}

// AuditEventsByTarget returns the newest limit events whose target is
// target (and whose action is action, when it is not ""), newest first:
// a range of the audit_events_target index however long the log is.
func (db *DB) AuditEventsByTarget(ctx context.Context, target, action string, limit int) ([]*audit.Event, error) {
	q, args := `SELECT `+auditColumns+` FROM audit_events WHERE target = ?`, []any{target}
	if action != "" {
		q += ` AND action = ?`
		args = append(args, action)
	}
	args = append(args, limit)
	var out []*audit.Event
	err := db.eachAudit(ctx, db.read, db.d.rebind(q+` ORDER BY target DESC, seq DESC LIMIT ?`), args, func(ev *audit.Event) error {
		c := *ev
		c.Details = append([]byte(nil), ev.Details...)
		c.PrevHash = append([]byte(nil), ev.PrevHash...)
		c.Hash = append([]byte(nil), ev.Hash...)
		out = append(out, &c)
		return nil
	}, func(err error) error {
		return fmt.Errorf("store: audit events of %s: %w", target, err)
	})
	return out, err
}

// eachAudit streams the events q selects from src to fn. Errors of the
// database go through wrap; fn's are returned as they are.
func (db *DB) eachAudit(ctx context.Context, src querier, q string, args []any, fn func(*audit.Event) error, wrap func(error) error) error {
	rows, err := src.QueryContext(ctx, q, args...)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	var (
		ev                                   audit.Event
		outcome, details, prevHash, hash     sql.RawBytes
		detailsBuf, prevBuf, hashBuf, outBuf []byte
	)
	dest := []any{&ev.Seq, timeScan{&ev.Time}, &ev.Principal, &ev.Source, &ev.Action, &ev.Target,
		&outcome, &ev.RequestID, &details, &prevHash, &hash, &ev.PrincipalID}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return wrap(err)
		}
		// RawBytes point into the driver's row, valid until Next; copy
		// them into buffers reused across rows.
		detailsBuf = append(detailsBuf[:0], details...)
		prevBuf = append(prevBuf[:0], prevHash...)
		hashBuf = append(hashBuf[:0], hash...)
		if string(outcome) != string(outBuf) {
			outBuf = append(outBuf[:0], outcome...)
			ev.Outcome = audit.Outcome(outBuf)
		}
		ev.Details, ev.PrevHash, ev.Hash = detailsBuf, prevBuf, hashBuf
		if err := fn(&ev); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// AuditHead returns the sequence number and hash of the last event: 0 and
// audit.Genesis() when the log is empty.
func (db *DB) AuditHead(ctx context.Context) (seq int64, hash audit.Hash, err error) {
	return db.auditHead(ctx, db.read)
}

func (db *DB) auditHead(ctx context.Context, src querier) (seq int64, hash audit.Hash, err error) {
	var h []byte
	if err := src.QueryRowContext(ctx, db.aq.readHead).Scan(&seq, &h); err != nil {
		return 0, nil, fmt.Errorf("store: audit head: %w", err)
	}
	return seq, audit.Hash(h), nil
}

// InsertCheckpoint stores c. It returns ErrConflict when a checkpoint at
// c.Seq, or a chained one with c.Counter, exists.
func (db *DB) InsertCheckpoint(ctx context.Context, c *audit.Checkpoint) error {
	n, err := execAffected(ctx, db.write, db.aq.insertCheckpoint,
		c.Seq, nonNil(c.Hash), db.timeArg(c.Time), c.KeyID, nonNil(c.Signature), c.Counter, nonNil(c.PrevHash))
	if err != nil {
		return fmt.Errorf("store: insert audit checkpoint %d: %w", c.Seq, err)
	}
	if n == 0 {
		return conflict("audit checkpoint", fmt.Sprint(c.Seq))
	}
	return nil
}

// ListCheckpoints returns every checkpoint, by seq ascending.
func (db *DB) ListCheckpoints(ctx context.Context) ([]*audit.Checkpoint, error) {
	return db.listCheckpoints(ctx, db.read)
}

func (db *DB) listCheckpoints(ctx context.Context, src querier) ([]*audit.Checkpoint, error) {
	rows, err := src.QueryContext(ctx, db.aq.listCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
	}
	defer rows.Close()
	out := []*audit.Checkpoint{}
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
	}
	return out, nil
}

// LastCheckpoint returns the checkpoint with the highest seq, or
// ErrNotFound when there is none.
func (db *DB) LastCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	c, err := scanCheckpoint(db.read.QueryRowContext(ctx, db.aq.lastCP))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: audit checkpoint", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: last audit checkpoint: %w", err)
	}
	return c, nil
}

// CheckpointAt returns the checkpoint at event seq, or ErrNotFound.
func (db *DB) CheckpointAt(ctx context.Context, seq int64) (*audit.Checkpoint, error) {
	c, err := scanCheckpoint(db.read.QueryRowContext(ctx, db.aq.checkpointAt, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: audit checkpoint at event %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("store: audit checkpoint at event %d: %w", seq, err)
	}
	return c, nil
}

func scanCheckpoint(s scanner) (*audit.Checkpoint, error) {
	var c audit.Checkpoint
	var hash, prev []byte
	if err := s.Scan(&c.Seq, &hash, timeScan{&c.Time}, &c.KeyID, &c.Signature, &c.Counter, &prev); err != nil {
		return nil, err
	}
	c.Hash = hash
	if len(prev) > 0 {
		c.PrevHash = prev
	}
	return &c, nil
}

// CreateAuditKey stores the checkpoint signing key k. It returns
// ErrConflict when k.ID is taken.
func (db *DB) CreateAuditKey(ctx context.Context, k *audit.Key) error {
	if k.ID == "" {
		return errors.New("store: create audit key: ID is required")
	}
	n, err := execAffected(ctx, db.write, db.aq.insertKey, k.ID, k.Key.Provider, k.Key.ID,
		string(k.Key.Algorithm), nilIfEmpty(k.Key.Blob), nonNil(k.PublicKey), db.timeArg(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create audit key %q: %w", k.ID, err)
	}
	if n == 0 {
		return conflict("audit key", k.ID)
	}
	return nil
}

// ListAuditKeys returns every audit key, oldest first (ties by ID).
func (db *DB) ListAuditKeys(ctx context.Context) ([]*audit.Key, error) {
	return db.listAuditKeys(ctx, db.read)
}

func (db *DB) listAuditKeys(ctx context.Context, src querier) ([]*audit.Key, error) {
	rows, err := src.QueryContext(ctx, db.aq.listKeys)
	if err != nil {
		return nil, fmt.Errorf("store: list audit keys: %w", err)
	}
	defer rows.Close()
	out := []*audit.Key{}
	for rows.Next() {
		var k audit.Key
		var alg string
		if err := rows.Scan(&k.ID, &k.Key.Provider, &k.Key.ID, &alg, &k.Key.Blob, &k.PublicKey, timeScan{&k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: list audit keys: %w", err)
		}
		k.Key.Algorithm, k.Key.Blob = pki.KeyAlgorithm(alg), nilIfEmpty(k.Key.Blob)
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit keys: %w", err)
	}
	return out, nil
}

// snapshotTx is a read-only transaction that sees one committed state
// throughout: REPEATABLE READ takes PostgreSQL's snapshot at its first
// statement; on SQLite in WAL mode every transaction reads from the
// snapshot its first statement takes (the driver begins a read-only
// transaction as a plain deferred BEGIN and ignores the isolation level).
var snapshotTx = sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}

// ReadAuditSnapshot calls fn with a view of the audit log (events, head,
// checkpoints, keys) read in one read-only transaction, so that every
// read sees the same committed state: an append committed meanwhile is
// seen whole or not at all. It returns fn's error as is.
func (db *DB) ReadAuditSnapshot(ctx context.Context, fn func(audit.Snapshot) error) error {
	tx, err := db.read.BeginTx(ctx, &snapshotTx)
	if err != nil {
		return fmt.Errorf("store: audit snapshot: %w", err)
	}
	defer tx.Rollback()
	if err := fn(auditSnapshot{db: db, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: audit snapshot: %w", err)
	}
	return nil
}

// auditSnapshot reads the audit log in one read-only transaction.
type auditSnapshot struct {
	db *DB
	tx *sql.Tx
}

func (s auditSnapshot) EachAuditEvent(ctx context.Context, from int64, fn func(*audit.Event) error) error {
	return s.db.eachAuditFrom(ctx, s.tx, from, fn)
}

func (s auditSnapshot) AuditHead(ctx context.Context) (int64, audit.Hash, error) {
	return s.db.auditHead(ctx, s.tx)
}

func (s auditSnapshot) ListCheckpoints(ctx context.Context) ([]*audit.Checkpoint, error) {
	return s.db.listCheckpoints(ctx, s.tx)
}

func (s auditSnapshot) ListAuditKeys(ctx context.Context) ([]*audit.Key, error) {
	return s.db.listAuditKeys(ctx, s.tx)
}
