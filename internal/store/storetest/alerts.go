package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/store"
)

// testAlertPages: alerts page newest first in the store, by kind and by
// "undelivered", each page starting where the last ended (alerts raised
// in the same microsecond ordered by ID); an alert is undelivered until
// every channel's delivery is sent, and one routed to no channel stays so.
func testAlertPages(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	var as []*lifecycle.Alert
	var chans [][]string
	for i := range 7 {
		kind, ch := lifecycle.AlertTest, []string{"a", "b"}
		if i%3 == 0 {
			kind = lifecycle.AlertExpiring
		}
		if i == 6 {
			ch = nil
		}
		// al2 and al3 share their creation time.
		at := base().Add(time.Duration(i) * time.Second)
		if i == 3 {
			at = base().Add(2 * time.Second)
		}
		as = append(as, &lifecycle.Alert{ID: fmt.Sprintf("al%d", i), Kind: kind, Subject: fmt.Sprintf("s%d", i), CreatedAt: at})
		chans = append(chans, ch)
	}
	_, err := db.RaiseAlerts(ctx, as, chans)
	must(t, err)
	sent := func(id, ch string) {
		t.Helper()
		must(t, db.UpdateDelivery(ctx, &lifecycle.Delivery{AlertID: id, Channel: ch, Status: lifecycle.DeliverySent, Attempts: 1, NextAttemptAt: base(), SentAt: base()}))
	}
	sent("al1", "a")
	sent("al1", "b")
	sent("al4", "a") // b still pending
	must(t, db.UpdateDelivery(ctx, &lifecycle.Delivery{AlertID: "al5", Channel: "a", Status: lifecycle.DeliveryFailed, Attempts: 3, NextAttemptAt: base()}))
	sent("al5", "b")

	n, err := db.CountUndeliveredAlerts(ctx)
	must(t, err)
	if n != 6 {
		t.Errorf("CountUndeliveredAlerts = %d, want 6 (all but al1)", n)
	}
	pages := func(q lifecycle.AlertQuery) [][]string {
		t.Helper()
		var out [][]string
		for range 10 {
			recs, err := db.ListAlertPage(ctx, q)
			must(t, err)
			if len(recs) == 0 {
				return out
			}
			var ids []string
			for _, r := range recs {
				ids = append(ids, r.Alert.ID)
			}
			out = append(out, ids)
			last := recs[len(recs)-1].Alert
			q.Before = lifecycle.AlertCursor{At: last.CreatedAt, ID: last.ID}
		}
		t.Fatal("paging does not end")
		return nil
	}
	for _, tc := range []struct {
		q    lifecycle.AlertQuery
		want [][]string
	}{
		{lifecycle.AlertQuery{Limit: 3}, [][]string{{"al6", "al5", "al4"}, {"al3", "al2", "al1"}, {"al0"}}},
		{lifecycle.AlertQuery{Limit: 2, Kind: lifecycle.AlertExpiring}, [][]string{{"al6", "al3"}, {"al0"}}},
		{lifecycle.AlertQuery{Limit: 4, Undelivered: true}, [][]string{{"al6", "al5", "al4", "al3"}, {"al2", "al0"}}},
		{lifecycle.AlertQuery{Limit: 10, Undelivered: true, Kind: lifecycle.AlertTest}, [][]string{{"al5", "al4", "al2"}}},
	} {
		if got := pages(tc.q); !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("pages of %+v = %q, want %q", tc.q, got, tc.want)
		}
	}
	recs, err := db.ListAlertPage(ctx, lifecycle.AlertQuery{Limit: 1, Before: lifecycle.AlertCursor{At: as[2].CreatedAt, ID: "al3"}})
	must(t, err)
	if len(recs) != 1 || recs[0].Alert.ID != "al2" || len(recs[0].Deliveries) != 2 {
		t.Errorf("the page after al3: %+v, want al2 with its 2 deliveries", recs)
	}
}
