package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

func locker(t *testing.T, db *store.DB, replica string, ttl, renew time.Duration) *store.JobLocker {
	t.Helper()
	l, err := db.JobLocker(replica, ttl, renew)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestJobLease: a lease excludes another holder (on another replica's
// store and on the same one) until it is released or lapses; while held
// its heartbeat keeps it past its TTL; a holder that stops without
// releasing (a killed replica) loses it to the next taker once the TTL
// has passed by the database's clock, and its context then ends with
// lifecycle.ErrLockLost if it was still running.
func TestJobLease(t *testing.T) {
	t.Parallel()
	for name, dbs := range storetest.ReplicaPairs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const ttl, renew = 1200 * time.Millisecond, 300 * time.Millisecond
			a, b := locker(t, dbs[0], "a:8443", ttl, renew), locker(t, dbs[1], "b:8443", ttl, renew)
			if _, err := dbs[0].JobLocker("a", time.Second, 600*time.Millisecond); err == nil {
				t.Error("a renewal longer than half the lease was accepted")
			}

			held, release, ok, err := a.TryLock(ctx, "job")
			if err != nil || !ok {
				t.Fatalf("first TryLock: %v %v", ok, err)
			}
			if _, _, ok, err := b.TryLock(ctx, "job"); ok || err != nil {
				t.Fatalf("another replica took a held lease: %v %v", ok, err)
			}
			if _, _, ok, _ := a.TryLock(ctx, "job"); ok {
				t.Fatal("a second TryLock on the same replica took a held lease")
			}
			_, releaseOther, ok, err := b.TryLock(ctx, "other")
			if err != nil || !ok {
				t.Fatalf("another job's lease is independent: %v %v", ok, err)
			}
			releaseOther()
			l, err := dbs[1].GetJobLease(ctx, "job")
			if err != nil || !l.Held || l.Replica != "a:8443" {
				t.Fatalf("lease = %+v, %v; want held by a:8443", l, err)
			}

			// Renewed past its TTL while held.
			time.Sleep(2 * ttl)
			if held.Err() != nil {
				t.Fatalf("held lease lost: %v", context.Cause(held))
			}
			if _, _, ok, _ := b.TryLock(ctx, "job"); ok {
				t.Fatal("the heartbeat did not keep the lease")
			}
			release()
			if held.Err() == nil {
				t.Error("the held context outlives release")
			}
			held, release, ok, err = b.TryLock(ctx, "job")
			if err != nil || !ok {
				t.Fatalf("TryLock after release: %v %v", ok, err)
			}
			release()

			// A killed holder: its context ends without release, so its
			// heartbeat stops and the lease is left to lapse.
			killCtx, kill := context.WithCancel(ctx)
			if _, _, ok, err := a.TryLock(killCtx, "job"); err != nil || !ok {
				t.Fatalf("TryLock: %v %v", ok, err)
			}
			kill()
			killed := time.Now()
			var took time.Duration
			for {
				_, rel, ok, err := b.TryLock(ctx, "job")
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					took = time.Since(killed)
					rel()
					break
				}
				if time.Since(killed) > 3*ttl {
					t.Fatalf("the killed holder's lease did not lapse in %v", 3*ttl)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if took > ttl+500*time.Millisecond {
				t.Errorf("hand-over took %v, want at most the TTL %v (and a poll)", took, ttl)
			}
			t.Logf("%s: lease of a killed holder taken over %v after the kill (TTL %v, renewal every %v)", name, took.Round(time.Millisecond), ttl, renew)

			// A holder whose lease another replica took after it lapsed
			// (its renewals stalled) learns at its next renewal.
			held, release, ok, err = a.TryLock(ctx, "stolen")
			if err != nil || !ok {
				t.Fatalf("TryLock: %v %v", ok, err)
			}
			defer release()
			if err := store.StealLease(ctx, dbs[1], "stolen", "thief"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-held.Done():
				if cause := context.Cause(held); !errors.Is(cause, lifecycle.ErrLockLost) {
					t.Errorf("cause = %v, want ErrLockLost", cause)
				}
			case <-time.After(3 * renew):
				t.Fatal("a holder whose lease was taken still runs")
			}
		})
	}
}

// TestDeliveryClaims: two replicas claiming due deliveries at the same
// time never get the same one, and between them get every one; an update
// under a claim another replica took over after it lapsed changes nothing.
func TestDeliveryClaims(t *testing.T) {
	t.Parallel()
	for name, dbs := range storetest.ReplicaPairs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now := time.Now().UTC()
			const alerts = 200
			var as []*lifecycle.Alert
			var chans [][]string
			for i := range alerts {
				as = append(as, &lifecycle.Alert{ID: fmt.Sprintf("al%03d", i), Kind: lifecycle.AlertTest, Subject: fmt.Sprintf("s%d", i), CreatedAt: now})
				chans = append(chans, []string{"hook"})
			}
			if _, err := dbs[0].RaiseAlerts(ctx, as, chans); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			got := map[string]string{}
			var wg sync.WaitGroup
			for r := range 4 {
				db := dbs[r%2]
				claimer := fmt.Sprintf("replica-%d", r)
				wg.Go(func() {
					for {
						ds, err := db.ClaimDeliveries(ctx, now, claimer, time.Minute, 3)
						if err != nil {
							t.Error(err)
							return
						}
						if len(ds) == 0 {
							return
						}
						mu.Lock()
						for _, d := range ds {
							if prev, dup := got[d.AlertID]; dup {
								t.Errorf("delivery of %s handed to %s and %s", d.AlertID, prev, claimer)
							}
							got[d.AlertID] = claimer
							if d.ClaimedBy != claimer || d.Alert.ID != d.AlertID {
								t.Errorf("claimed delivery %+v, alert %+v", d, d.Alert)
							}
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(got) != alerts {
				t.Fatalf("%d deliveries claimed, want all %d", len(got), alerts)
			}

			// A lapsed claim: another claimer takes it, and the first one's
			// update is refused.
			if err := store.ExpireClaims(ctx, dbs[0]); err != nil {
				t.Fatal(err)
			}
			first, err := dbs[0].ClaimDeliveries(ctx, now, "first", time.Minute, 1)
			if err != nil || len(first) != 1 {
				t.Fatalf("claim: %v, %v", first, err)
			}
			if again, err := dbs[1].ClaimDeliveries(ctx, now, "second", time.Minute, alerts); err != nil || len(again) != alerts-1 {
				t.Fatalf("claim of the rest: %d, %v", len(again), err)
			}
			if err := store.ExpireClaims(ctx, dbs[0]); err != nil {
				t.Fatal(err)
			}
			second, err := dbs[1].ClaimDeliveries(ctx, now, "second", time.Minute, alerts)
			if err != nil || len(second) != alerts {
				t.Fatalf("claim after the claims lapsed: %d, %v", len(second), err)
			}
			d := first[0]
			d.Status, d.Attempts, d.SentAt = lifecycle.DeliverySent, 1, now
			if err := dbs[0].UpdateDelivery(ctx, d); !errors.Is(err, lifecycle.ErrElsewhere) {
				t.Fatalf("update under a lapsed claim: %v, want ErrElsewhere", err)
			}
			for _, d := range second {
				if d.AlertID == first[0].AlertID {
					d.Status, d.Attempts, d.SentAt = lifecycle.DeliverySent, 1, now
					if err := dbs[1].UpdateDelivery(ctx, d); err != nil {
						t.Fatalf("update under the live claim: %v", err)
					}
				}
			}
			if err := dbs[1].ReleaseDeliveries(ctx, "second"); err != nil {
				t.Fatal(err)
			}
			rest, err := dbs[0].ClaimDeliveries(ctx, now, "third", time.Minute, alerts)
			if err != nil || len(rest) != alerts-1 {
				t.Fatalf("after release: %d claimable, %v; want the %d unsent", len(rest), err, alerts-1)
			}
		})
	}
}

// TestJobLeaseHungRenewal: a holder whose renewals hang is told to stop
// before its lease lapses by the database's clock, counting from when
// the acquiring statement was sent (here it waited 400 ms for a row
// lock), whatever the renewal in flight is doing. PostgreSQL only: a row
// lock held by another transaction makes the statements wait.
func TestJobLeaseHungRenewal(t *testing.T) {
	t.Parallel()
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	// A wide lease: the waits below take their time on a loaded machine,
	// and the check at the end must come before the lease lapses.
	const ttl, renew = 3 * time.Second, time.Second
	l := locker(t, db, "a:8443", ttl, renew)
	// A lapsed lease row to lock.
	_, release, ok, err := l.TryLock(ctx, "hung")
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	release()
	lockRow := func() *sql.Tx {
		t.Helper()
		tx, err := store.Write(db).BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM job_leases WHERE name = 'hung' FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	first := lockRow()
	defer first.Rollback() // after Commit, a no-op; before, a Fatal must not leave the row locked
	type took struct {
		held    context.Context
		release func()
		ok      bool
		err     error
	}
	got := make(chan took, 1)
	go func() {
		held, release, ok, err := l.TryLock(ctx, "hung")
		got <- took{held, release, ok, err}
	}()
	// waiting waits until n statements wait for the row: TryLock's holds
	// the row's tuple lock while it waits for first, so a later locker
	// queues behind it (one that found the row free would take it first).
	waiting := func(granted bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var n int
			if err := store.Write(db).QueryRowContext(ctx, `SELECT count(*) FROM pg_locks
				WHERE locktype = 'tuple' AND relation = 'job_leases'::regclass AND granted = $1`, granted).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no statement waits for the lease row (tuple lock granted: %v)", granted)
			}
		}
	}
	waiting(true)
	time.Sleep(400 * time.Millisecond)
	// The acquisition goes through, then every renewal hangs.
	locked := make(chan *sql.Tx, 1)
	t.Cleanup(func() {
		// Whatever got the row, also after a Fatal, lets it go.
		select {
		case tx := <-locked:
			if tx != nil {
				tx.Rollback()
			}
		case <-time.After(10 * time.Second):
		}
	})
	go func() {
		tx, err := store.Write(db).BeginTx(ctx, nil)
		if err == nil {
			if _, err = tx.ExecContext(ctx, `SELECT 1 FROM job_leases WHERE name = 'hung' FOR UPDATE`); err != nil {
				tx.Rollback()
				tx = nil
			}
		}
		if err != nil {
			t.Error(err)
		}
		locked <- tx
	}()
	waiting(false)
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || !r.ok {
		t.Fatalf("TryLock: %v %v", r.ok, r.err)
	}
	defer r.release()
	select {
	case <-r.held.Done():
	case <-time.After(3 * ttl):
		t.Fatal("a holder whose renewals hang was never told to stop")
	}
	if cause := context.Cause(r.held); !errors.Is(cause, lifecycle.ErrLockLost) {
		t.Errorf("cause = %v, want ErrLockLost", cause)
	}
	lease, err := db.GetJobLease(ctx, "hung")
	if err != nil {
		t.Fatal(err)
	}
	if !lease.Held {
		t.Fatalf("the holder was told to stop after its lease lapsed (at %v by the database's clock)", lease.Expires)
	}
}
