package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// TestCreateViewBoundHoldsUnderConcurrency: a principal saving many views
// at once (several tabs, a script) ends with exactly the bound, never
// more, on either store; the rest are ErrTooMany.
func TestCreateViewBoundHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const max, tries = 3, 24
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			wg.Go(func() {
				v := &inventory.SavedView{ID: fmt.Sprintf("v_%02d", i), PrincipalID: "p_tabs", Name: fmt.Sprintf("view %02d", i),
					Query: "status=valid", CreatedAt: at}
				errs[i] = db.CreateView(ctx, v, max, audit.Event{Time: at, Principal: "tabs", Action: "view.create", Outcome: audit.Success})
			})
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrTooMany):
				t.Errorf("view %d: %v, want nil or ErrTooMany", i, err)
			}
		}
		views, err := db.ListViews(ctx, "p_tabs", 100)
		if err != nil {
			t.Fatal(err)
		}
		if ok != max || len(views) != max {
			t.Errorf("%d creations succeeded and %d views are stored, want %d of each", ok, len(views), max)
		}
	})
}
