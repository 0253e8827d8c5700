package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestExclusiveDoesNotStarvePool: many Exclusive calls at once, more
// than the pool has connections, some on the same key, whose functions
// each need a pool connection, all finish, one holder per key at a time.
// A lock holder (or waiter) that kept a pool connection would leave none
// for the functions: every caller would wait for ever.
func TestExclusiveDoesNotStarvePool(t *testing.T) {
	t.Parallel()
	db := storetest.OpenPostgres(t)
	const conns, callers, keys = 4, 24, 6
	store.Write(db).SetMaxOpenConns(conns)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var inside [keys]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		k := i % keys
		wg.Go(func() {
			errs <- db.Exclusive(ctx, fmt.Sprintf("ocsp-responder:ca-%d", k), func(ctx context.Context) error {
				if n := inside[k].Add(1); n != 1 {
					t.Errorf("%d holders of key %d at once", n, k)
				}
				defer inside[k].Add(-1)
				_, err := store.Write(db).ExecContext(ctx, `SELECT pg_sleep(0.05)`)
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Exclusive: %v", err)
		}
	}
}

// TestExclusiveLockTimeout: a call waiting for a lock another process
// holds gives up after the lock timeout with an error that says so, and
// the holder is not disturbed.
func TestExclusiveLockTimeout(t *testing.T) {
	t.Parallel()
	dbs := storetest.ReplicaPairs(t)
	pair, ok := dbs["postgres"]
	if !ok {
		t.Skip("set " + storetest.EnvPostgres + " to run the PostgreSQL tests")
	}
	ctx := context.Background()
	store.SetLockTimeout(pair[1], 200*time.Millisecond)
	holding, done, finished := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		err := pair[0].Exclusive(ctx, "init", func(context.Context) error {
			close(holding)
			<-done
			return nil
		})
		if err != nil {
			t.Errorf("holder: %v", err)
		}
	}()
	<-holding
	start := time.Now()
	err := pair[1].Exclusive(ctx, "init", func(context.Context) error { return errors.New("ran while another held the lock") })
	close(done)
	<-finished
	if err == nil || !strings.Contains(err.Error(), "has held it for over 200ms") {
		t.Fatalf("waiter: %v; want the lock timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %v", took)
	}
}
