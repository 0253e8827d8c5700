package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
)

// TestFindAuditEvents: each filter alone and together selects exactly the
// matching events, newest first; Before pages on; Floor bounds the read;
// the limit holds.
func TestFindAuditEvents(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, _ *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		start := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
		var evs []audit.Event
		for i := range 60 {
			evs = append(evs, audit.Event{Time: start.Add(time.Duration(i) * time.Minute), Principal: []string{"ann", "bob", "cy"}[i%3],
				Action: []string{"certificate.issue", "certificate.revoke", "principal.create", "ca.disable"}[i%4],
				Target: fmt.Sprintf("t%d", i%5), Outcome: audit.Success})
		}
		if err := db.AppendAudit(ctx, evs...); err != nil {
			t.Fatal(err)
		}
		head, _, err := db.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first := head - 59 // seq of evs[0]
		want := func(match func(i int) bool, limit int) []int64 {
			var out []int64
			for i := 59; i >= 0 && len(out) < limit; i-- {
				if match(i) {
					out = append(out, first+int64(i))
				}
			}
			return out
		}
		for _, c := range []struct {
			name  string
			q     audit.Query
			match func(i int) bool
		}{
			{"all", audit.Query{}, func(int) bool { return true }},
			{"principal", audit.Query{Principal: "bob"}, func(i int) bool { return i%3 == 1 }},
			{"target", audit.Query{Target: "t2"}, func(i int) bool { return i%5 == 2 }},
			{"action prefix", audit.Query{ActionPrefix: "certificate."}, func(i int) bool { return i%4 < 2 }},
			{"action", audit.Query{Action: "certificate.revoke"}, func(i int) bool { return i%4 == 1 }},
			{"time", audit.Query{Since: start.Add(10 * time.Minute), Until: start.Add(20 * time.Minute)}, func(i int) bool { return i >= 10 && i < 20 }},
			{"principal, action and time", audit.Query{Principal: "ann", ActionPrefix: "certificate.", Since: start.Add(5 * time.Minute)},
				func(i int) bool { return i%3 == 0 && i%4 < 2 && i >= 5 }},
			{"target and before", audit.Query{Target: "t0", Before: first + 30}, func(i int) bool { return i%5 == 0 && i < 30 }},
			{"floor", audit.Query{ActionPrefix: "ca.", Floor: first + 40}, func(i int) bool { return i%4 == 3 && i >= 40 }},
			{"no match", audit.Query{Principal: "zed"}, func(int) bool { return false }},
		} {
			for _, limit := range []int{5, 100} {
				c.q.Limit = limit
				got, err := db.FindAuditEvents(ctx, c.q)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				var seqs []int64
				for _, ev := range got {
					seqs = append(seqs, ev.Seq)
				}
				if w := want(c.match, limit); !slices.Equal(seqs, w) {
					t.Errorf("%s, limit %d: seqs %v, want %v", c.name, limit, seqs, w)
				}
			}
		}
		if _, err := db.FindAuditEvents(ctx, audit.Query{}); err == nil {
			t.Error("a query without a limit was accepted")
		}
	})
}
