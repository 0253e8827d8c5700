package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
)

// pruneJobRuns deletes, as PutJob adds a run of job that started at
// started, the job's runs that started more than lifecycle.RunHistoryAge
// before it and those past its newest lifecycle.RunHistoryMax. Both walk
// the job_runs_job index: the first reads the rows it deletes (one or
// none once the history is full), the second RunHistoryMax index entries.
// The age is counted from the run's own start, not from the database's
// clock, so the history follows the clock the scheduler runs on.
func (db *DB) pruneJobRuns(ctx context.Context, tx *sql.Tx, job string, started time.Time) error {
	if _, err := tx.ExecContext(ctx, db.d.rebind(`DELETE FROM job_runs WHERE job = ? AND started_at < ?`),
		job, db.timeArg(started.Add(-lifecycle.RunHistoryAge))); err != nil {
		return fmt.Errorf("prune runs of job %s: %w", job, err)
	}
	// A run is added at a time, so past the cap there is one row to
	// delete; the LIMIT bounds the statement whatever came before.
	if _, err := tx.ExecContext(ctx, db.d.rebind(`DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs WHERE job = ?
		ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?)`), job, lifecycle.RunHistoryMax, lifecycle.RunHistoryMax); err != nil {
		return fmt.Errorf("prune runs of job %s: %w", job, err)
	}
	return nil
}

// ListJobRuns returns the recorded runs q selects, newest first (ties in
// start time by insertion, newest first).
func (db *DB) ListJobRuns(ctx context.Context, q lifecycle.JobRunQuery) ([]lifecycle.JobRun, error) {
	where, args := "started_at >= ?", []any{db.timeArg(q.Since)}
	if q.Job != "" {
		where, args = "job = ? AND "+where, append([]any{q.Job}, args...)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT job, replica, started_at, finished_at, outcome, detail FROM job_runs
		WHERE `+where+` ORDER BY started_at DESC, id DESC LIMIT ?`), append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: list job runs: %w", err)
	}
	defer rows.Close()
	out := []lifecycle.JobRun{}
	for rows.Next() {
		var r lifecycle.JobRun
		if err := rows.Scan(&r.Job, &r.Replica, timeScan{&r.StartedAt}, zeroTimeScan{&r.FinishedAt}, &r.Outcome, &r.Detail); err != nil {
			return nil, fmt.Errorf("store: list job runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list job runs: %w", err)
	}
	return out, nil
}

// CountJobRuns counts each job's recorded runs that started at or after
// since (a range of the job_runs_started index).
func (db *DB) CountJobRuns(ctx context.Context, since time.Time) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT job, COUNT(*) FROM job_runs WHERE started_at >= ? GROUP BY job`), db.timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("store: count job runs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var job string
		var n int
		if err := rows.Scan(&job, &n); err != nil {
			return nil, fmt.Errorf("store: count job runs: %w", err)
		}
		out[job] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count job runs: %w", err)
	}
	return out, nil
}
