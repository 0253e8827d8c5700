package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/store"
)

// TestSCEPTransactions: a held transaction is read back, a second one
// with the same ID is a conflict, storing one prunes those older than
// the cutoff, and a closed one is gone.
func TestSCEPTransactions(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		old := &scep.Transaction{ProvisionerID: "scep_p", ID: "tx-old", RequestID: "r1", KeyHash: []byte{1}, CreatedAt: at.Add(-100 * 24 * time.Hour)}
		if err := db.PutSCEPTransaction(ctx, old, old.CreatedAt.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.PutSCEPTransaction(ctx, old, old.CreatedAt.Add(-time.Hour)); !errors.Is(err, scep.ErrConflict) {
			t.Fatalf("the same transaction again: %v, want ErrConflict", err)
		}
		cur := &scep.Transaction{ProvisionerID: "scep_p", ID: "tx-new", RequestID: "r2", KeyHash: []byte{2}, CreatedAt: at}
		if err := db.PutSCEPTransaction(ctx, cur, at.Add(-90*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetSCEPTransaction(ctx, "scep_p", "tx-old"); !errors.Is(err, scep.ErrNotFound) {
			t.Errorf("a transaction older than the cutoff: %v, want pruned", err)
		}
		got, err := db.GetSCEPTransaction(ctx, "scep_p", "tx-new")
		if err != nil || got.RequestID != "r2" || !got.CreatedAt.Equal(at) {
			t.Fatalf("read back: %+v %v", got, err)
		}
		if err := db.DeleteSCEPTransaction(ctx, "scep_p", "tx-new"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetSCEPTransaction(ctx, "scep_p", "tx-new"); !errors.Is(err, scep.ErrNotFound) {
			t.Errorf("a closed transaction: %v, want not found", err)
		}
	})
}
