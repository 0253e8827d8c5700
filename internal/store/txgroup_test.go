package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// openGroupTest opens a SQLite store (which group-commits) with a scratch
// table t (k TEXT PRIMARY KEY, n INTEGER).
func openGroupTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "g.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.group == nil {
		t.Fatal("SQLite store has no write group")
	}
	if _, err := db.write.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func groupRows(t *testing.T, db *DB) map[string]int {
	t.Helper()
	rows, err := db.read.Query(`SELECT k, n FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTxGroupSerialSemantics runs many concurrent transactions, each a
// read-modify-write of one counter plus a row of its own, every third one
// failing after its writes: the counter counts exactly the transactions
// that succeeded (each saw the writes of those before it, as if run one
// after another), and nothing a failed transaction wrote is kept.
func TestTxGroupSerialSemantics(t *testing.T) {
	t.Parallel()
	db := openGroupTest(t)
	ctx := context.Background()
	if _, err := db.write.Exec(`INSERT INTO t VALUES ('counter', 0)`); err != nil {
		t.Fatal(err)
	}
	errPlanned := errors.New("planned failure")
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.groupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				var c int
				if err := tx.QueryRowContext(ctx, `SELECT n FROM t WHERE k = 'counter'`).Scan(&c); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE t SET n = ? WHERE k = 'counter'`, c+1); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?, ?)`, fmt.Sprintf("row-%d", i), i); err != nil {
					return err
				}
				if i%3 == 0 {
					return errPlanned
				}
				return nil
			})
		}()
	}
	wg.Wait()
	got := groupRows(t, db)
	ok := 0
	for i, err := range errs {
		_, kept := got[fmt.Sprintf("row-%d", i)]
		switch {
		case i%3 == 0:
			if !errors.Is(err, errPlanned) {
				t.Errorf("transaction %d: err = %v, want the planned failure", i, err)
			}
			if kept {
				t.Errorf("transaction %d failed but its row was kept", i)
			}
		case err != nil:
			t.Errorf("transaction %d: %v", i, err)
		default:
			ok++
			if !kept {
				t.Errorf("transaction %d succeeded but its row is missing", i)
			}
		}
	}
	if got["counter"] != ok {
		t.Errorf("counter = %d, want %d (the transactions that succeeded)", got["counter"], ok)
	}
}

// TestTxGroupCancelledCallerKeepsNothing: a caller whose context ends
// while its function runs gets the context's error and none of its
// writes, and the transactions grouped with it commit all the same.
func TestTxGroupCancelledCallerKeepsNothing(t *testing.T) {
	t.Parallel()
	db := openGroupTest(t)
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	var cancelledErr, otherErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		cancelledErr = db.groupTx(cctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('cancelled', 1)`); err != nil {
				return err
			}
			close(started)
			<-release
			// The caller is gone by now; the context fn got is not
			// cancelled, so its statements still run.
			_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('cancelled-2', 1)`)
			return err
		})
	}()
	<-started
	wg.Add(1)
	go func() {
		defer wg.Done()
		otherErr = db.groupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('other', 1)`)
			return err
		})
	}()
	cancel()
	close(release)
	wg.Wait()
	if !errors.Is(cancelledErr, context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", cancelledErr)
	}
	if otherErr != nil {
		t.Errorf("other caller: %v", otherErr)
	}
	got := groupRows(t, db)
	if _, ok := got["cancelled"]; ok {
		t.Error("the cancelled caller's first write was kept")
	}
	if _, ok := got["cancelled-2"]; ok {
		t.Error("the cancelled caller's second write was kept")
	}
	if _, ok := got["other"]; !ok {
		t.Error("the other caller's write is missing")
	}

	// A context that has ended before the call never runs the function.
	ran := false
	err := db.groupTx(cctx, func(context.Context, *sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("ended context: err = %v, ran = %v; want context.Canceled and not run", err, ran)
	}
}

// TestTxGroupWholeRollback: when the shared transaction itself is lost
// (here a function ends it; in production an I/O error or a full disk
// does), every caller of the group gets an error and nothing is kept,
// and the next group works.
func TestTxGroupWholeRollback(t *testing.T) {
	t.Parallel()
	db := openGroupTest(t)
	ctx := context.Background()
	jobs := []func(context.Context, *sql.Tx) error{
		func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('before', 1)`)
			return err
		},
		func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
				return err
			}
			return conflict("row", "lost")
		},
		func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('after', 1)`)
			return err
		},
	}
	// Run the three in one group, in this order, by calling the writer
	// directly.
	batch := make([]*txJob, len(jobs))
	for i, fn := range jobs {
		batch[i] = &txJob{groupCall: newGroupCall(ctx), fn: fn}
	}
	db.group.q.writeGuarded(batch)
	for i, j := range batch {
		err := <-j.done
		if err == nil {
			t.Errorf("job %d: no error, want the group's failure", i)
		}
		// Only the job that failed has its conflict; the others share
		// the group's failure, not its cause.
		if got := errors.Is(err, ErrConflict); got != (i == 1) {
			t.Errorf("job %d: errors.Is(%v, ErrConflict) = %v", i, err, got)
		}
	}
	if got := groupRows(t, db); len(got) != 0 {
		t.Errorf("rows %v kept from a group that was rolled back", got)
	}
	if err := db.groupTx(ctx, jobs[2]); err != nil {
		t.Fatalf("next group: %v", err)
	}
	if got := groupRows(t, db); got["after"] != 1 {
		t.Errorf("rows = %v, want the next group's row", got)
	}
}

// TestTxGroupPanic: a function that panics fails its group's callers with
// an error instead of taking the server down or leaving them waiting, and
// the writer goes on.
func TestTxGroupPanic(t *testing.T) {
	t.Parallel()
	db := openGroupTest(t)
	ctx := context.Background()
	err := db.groupTx(ctx, func(context.Context, *sql.Tx) error { panic("boom") })
	if err == nil {
		t.Fatal("a panicking function returned no error")
	}
	if err := db.groupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ('next', 1)`)
		return err
	}); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
	if got := groupRows(t, db); got["next"] != 1 {
		t.Errorf("rows = %v, want the row written after the panic", got)
	}
	db.Close()
	if err := db.groupTx(ctx, func(context.Context, *sql.Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("after Close: err = %v, want errClosed", err)
	}
}

// TestTxGroupNested: a function that asks for another group transaction
// from inside the group gets an error instead of waiting for itself.
func TestTxGroupNested(t *testing.T) {
	t.Parallel()
	db := openGroupTest(t)
	var inner error
	err := db.groupTx(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		inner = db.groupTx(ctx, func(context.Context, *sql.Tx) error { return nil })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, errNestedGroup) {
		t.Fatalf("nested call: %v, want errNestedGroup", inner)
	}
}
