package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/store"
)

// TestNonceUsesGroupCommitted runs many concurrent nonce uses, each nonce
// presented several times at once: exactly one use of each is fresh, also
// when the copies land in the same group commit.
func TestNonceUsesGroupCommitted(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "n.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const nonces, copies = 200, 4
	exp := time.Now().Add(time.Hour)
	var fresh [nonces]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, nonces*copies)
	for i := range nonces {
		for range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := db.UseNonce(context.Background(), fmt.Sprintf("nonce-%d", i), exp)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					fresh[i].Add(1)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range nonces {
		if n := fresh[i].Load(); n != 1 {
			t.Fatalf("nonce %d was fresh %d times, want exactly once", i, n)
		}
	}
	if ok, err := db.UseNonce(context.Background(), "nonce-0", exp); err != nil || ok {
		t.Fatalf("reuse after the batch: fresh=%v err=%v, want not fresh", ok, err)
	}
	db.Close()
	if _, err := db.UseNonce(context.Background(), "late", exp); err == nil {
		t.Fatal("UseNonce after Close succeeded")
	}
}
