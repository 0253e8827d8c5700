package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCompromisedReloadOnce: when the copy of the compromised-key list
// expires under load, one caller reads the list again and the others look
// their own key up in the table meanwhile — not every issuance of that
// moment reading the whole list — and every answer stays right.
func TestCompromisedReloadOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	base := time.Now()
	var elapsed atomic.Int64
	db.now = func() time.Time { return base.Add(time.Duration(elapsed.Load())) }
	// A long list (a mass rotation), so that reading it takes a while.
	key := func(i int) string { return fmt.Sprintf("%064x", i) }
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if _, err := tx.Exec(`INSERT INTO compromised_keys (spki_sha256, reported_at, source, ref, reported_by) VALUES (?, ?, 'rotation', 'r1', 'test')`,
			key(i), db.timeArg(base)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CompromisedKey(ctx, key(0)); err != nil { // first read of the list
		t.Fatal(err)
	}
	for round := range 3 {
		elapsed.Add(int64(2 * CompromisedCacheMaxAge)) // the copy has expired
		db.compromised.mu.Lock()
		before := db.compromised.loads
		db.compromised.mu.Unlock()
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				i := g * 97 // half listed, half not
				if g%2 == 1 {
					i = 10_000 + g
				}
				k, err := db.CompromisedKey(ctx, key(i))
				switch {
				case err != nil:
					errs <- err
				case (k != nil) != (i < 5000):
					errs <- fmt.Errorf("key %d: listed = %v", i, k != nil)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		db.compromised.mu.Lock()
		loads := db.compromised.loads - before
		db.compromised.mu.Unlock()
		if loads > 2 {
			t.Fatalf("round %d: 64 concurrent questions read the whole list %d times, want at most 2", round, loads)
		}
	}
}
