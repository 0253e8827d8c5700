package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
)

// Lease defaults: a held lease is renewed every LeaseRenewal and lapses
// LeaseTTL after its last renewal, so a replica that dies holding one
// hands its job over within LeaseTTL.
const (
	LeaseTTL     = 15 * time.Second
	LeaseRenewal = 5 * time.Second
)

// JobLocker is the lifecycle.Locker every replica shares: a lock is a
// lease row in job_leases, taken by one conditional upsert, renewed by a
// heartbeat while held and timed by the database's clock.
//
// Why leases rather than PostgreSQL advisory locks: a session advisory
// lock lives on one connection, which would stay pinned out of the pool
// (20 connections) for as long as each job runs, and breaks behind a
// transaction-pooling proxy (PgBouncer), where sessions are not
// connections; a dead replica's advisory lock is freed only when
// PostgreSQL notices the connection is gone, after TCP keepalive timeouts
// that the server's settings decide, while a lease lapses LeaseTTL after
// its last renewal whatever the network did; and comparing against the
// database's clock (now()) keeps replicas whose clocks disagree from
// disagreeing about who holds a lease. SQLite takes the same path, with
// the clock of the one process that owns the file.
type JobLocker struct {
	db      *DB
	replica string
	ttl     time.Duration
	renew   time.Duration
}

var _ lifecycle.Locker = (*JobLocker)(nil)

// JobLocker returns the locker of replica (its replica_name, recorded with
// each lease). A lease lapses ttl after its last renewal and is renewed
// every renew; zero values are LeaseTTL and LeaseRenewal.
func (db *DB) JobLocker(replica string, ttl, renew time.Duration) (*JobLocker, error) {
	if ttl <= 0 {
		ttl = LeaseTTL
	}
	if renew <= 0 {
		renew = LeaseRenewal
	}
	if replica == "" || renew*2 > ttl {
		return nil, fmt.Errorf("store: job locker: want a replica name and a renewal at most half the lease (%v), not %v", ttl, renew)
	}
	return &JobLocker{db: db, replica: replica, ttl: ttl, renew: renew}, nil
}

// TryLock implements lifecycle.Locker. held ends with cause
// lifecycle.ErrLockLost when a renewal finds the lease taken, or when no
// renewal has succeeded for ttl-renew since the last one that did (the
// acquisition counting as one, from when its statement was sent): a
// timer of its own ends held then, whatever the renewal in flight is
// doing, so the holder is told at least renew before the lease can
// lapse. release marks the lease lapsed, so another replica may take it
// at once; a replica that dies without releasing leaves it to lapse.
func (l *JobLocker) TryLock(ctx context.Context, name string) (context.Context, func(), bool, error) {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	holder := hex.EncodeToString(b[:])
	sent := time.Now()
	ok, err := l.acquire(ctx, name, holder)
	if err != nil || !ok {
		return nil, nil, false, err
	}
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.heartbeat(held, cancel, name, holder, sent)
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			cancel(context.Canceled)
			<-done
			rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), l.renew)
			defer stop()
			if err := l.release(rctx, name, holder); err != nil {
				l.db.logger.Warn("releasing a job lease failed; it lapses by itself", "job", name, "lapses_within", l.ttl, "err", err)
			}
		})
	}
	return held, release, true, nil
}

// heartbeat renews the lease every l.renew, counted from lastOK, until
// held ends, and ends held (cause lifecycle.ErrLockLost) when the lease
// is lost. lastOK is when the last successful renewal (or the
// acquisition) was sent: the database's clock read it later, so its
// lease lasts at least l.ttl from then. Past lastOK + ttl - renew (the
// give-up time) the lease is taken for lost: a timer ends held then even
// while a renewal hangs, and no renewal runs past it.
func (l *JobLocker) heartbeat(held context.Context, lost context.CancelCauseFunc, name, holder string, lastOK time.Time) {
	giveUp := func() time.Time { return lastOK.Add(l.ttl - l.renew) }
	expired := time.AfterFunc(time.Until(giveUp()), func() {
		lost(fmt.Errorf("%w: job %s: the lease could not be renewed for %s", lifecycle.ErrLockLost, name, l.ttl-l.renew))
	})
	defer expired.Stop()
	next := lastOK.Add(l.renew)
	for {
		wait := time.NewTimer(time.Until(next))
		select {
		case <-held.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		sent := time.Now()
		next = sent.Add(l.renew)
		budget := min(l.renew, giveUp().Sub(sent))
		if budget <= 0 {
			continue // the timer ends held
		}
		rctx, stop := context.WithTimeout(held, budget)
		ok, err := l.extend(rctx, name, holder)
		stop()
		switch {
		case held.Err() != nil:
			return
		case err == nil && ok:
			lastOK = sent
			expired.Reset(time.Until(giveUp()))
		case err == nil:
			lost(fmt.Errorf("%w: job %s: its lease lapsed and another replica took it", lifecycle.ErrLockLost, name))
			return
		default:
			l.db.logger.Warn("renewing a job lease failed; will retry", "job", name, "err", err,
				"gives_up_in", time.Until(giveUp()).Round(time.Millisecond))
		}
	}
}

// acquire takes the lease on name for holder if it is free (lapsed) or
// already holder's.
func (l *JobLocker) acquire(ctx context.Context, name, holder string) (bool, error) {
	d := l.db.d
	var got string
	err := l.db.write.QueryRowContext(ctx, d.rebind(`INSERT INTO job_leases (name, holder, replica, acquired_at, expires_at)
		VALUES (?, ?, ?, `+d.now+`, `+d.later+`)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, replica = excluded.replica,
			acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
		WHERE job_leases.expires_at <= `+d.now+` OR job_leases.holder = excluded.holder
		RETURNING holder`), name, holder, l.replica, l.ttl.Microseconds()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: take the lease of job %s: %w", name, err)
	}
	return got == holder, nil
}

// extend renews holder's lease on name; false when another holder has it.
// A lapsed lease no one took since is still holder's: no one else ran.
func (l *JobLocker) extend(ctx context.Context, name, holder string) (bool, error) {
	res, err := l.db.write.ExecContext(ctx, l.db.d.rebind(`UPDATE job_leases SET expires_at = `+l.db.d.later+`
		WHERE name = ? AND holder = ?`), l.ttl.Microseconds(), name, holder)
	if err != nil {
		return false, fmt.Errorf("store: renew the lease of job %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: renew the lease of job %s: %w", name, err)
	}
	return n == 1, nil
}

func (l *JobLocker) release(ctx context.Context, name, holder string) error {
	_, err := l.db.write.ExecContext(ctx, l.db.d.rebind(`UPDATE job_leases SET expires_at = `+l.db.d.now+`
		WHERE name = ? AND holder = ?`), name, holder)
	if err != nil {
		return fmt.Errorf("store: release the lease of job %s: %w", name, err)
	}
	return nil
}

// JobLease is a lease's row: who holds (or last held) the lock on a job.
type JobLease struct {
	Name, Replica       string
	AcquiredAt, Expires time.Time
	// Held is true while the lease has not lapsed by the database's clock.
	Held bool
}

// GetJobLease returns the lease on name, or ErrNotFound when it was never
// taken.
func (db *DB) GetJobLease(ctx context.Context, name string) (*JobLease, error) {
	l := &JobLease{Name: name}
	err := db.read.QueryRowContext(ctx, db.d.rebind(`SELECT replica, acquired_at, expires_at, CASE WHEN expires_at > `+db.d.now+` THEN 1 ELSE 0 END
		FROM job_leases WHERE name = ?`), name).Scan(&l.Replica, timeScan{&l.AcquiredAt}, timeScan{&l.Expires}, &l.Held)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("job lease", name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: job lease %s: %w", name, err)
	}
	return l, nil
}
