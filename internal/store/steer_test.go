package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// TestListSteered: a listing that tests its filters row by row (a filter
// finding many rows, steerIndexes) lists exactly what the same listing
// finds by the filters' indexes, in every order, a page at a time.
func TestListSteered(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, _ *rawDB) {
		ctx := context.Background()
		db, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		base := time.Now().UTC().Truncate(time.Second)
		for i := range 60 {
			c := &inventory.Certificate{Serial: fmt.Sprintf("7a%04x", i), CAID: []string{"ca1", "ca2"}[i%2], Profile: []string{"p1", "p2", "p3"}[i%3],
				Requester: "alice", Subject: "CN=x", SANs: []string{fmt.Sprintf("n%02d.example", (i*7)%60)}, Status: inventory.StatusValid,
				NotBefore: base, NotAfter: base.Add(time.Duration(i%9) * time.Hour), Owner: []string{"a", "b"}[i%2], Tags: []string{}, CreatedAt: base}
			if i%3 == 0 {
				c.Tags = append(c.Tags, "t")
			}
			if i%4 == 0 {
				c.Requester, c.Tags = "acme:p/1", append(c.Tags, "acme")
			}
			if i%5 == 0 {
				c.Status = inventory.StatusRevoked
			}
			if err := db.InsertCertificate(ctx, c, audit.New(authz.System(), base, "cert.issue", c.Serial, nil)); err != nil {
				t.Fatal(err)
			}
		}
		list := func(f inventory.Filter) []string {
			var out []string
			for f.Limit = 7; ; {
				page, err := db.ListCertificates(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range page {
					out = append(out, c.Serial)
				}
				if len(page) < f.Limit {
					return out
				}
				f.Continue(page[len(page)-1])
			}
		}
		for _, f := range []inventory.Filter{
			{Tag: "t"}, {Owner: "a", Status: inventory.StatusValid}, {Source: inventory.SourceACME}, {Source: inventory.SourceIssued, CAID: "ca2"},
			{Profile: "p1", Requester: "alice"}, {UnexpiredAt: base.Add(3 * time.Hour)}, {Tag: "t", Source: inventory.SourceACME, Owner: "a"},
		} {
			for _, o := range []inventory.Order{inventory.OrderSerial, inventory.OrderName, inventory.OrderExpiry, inventory.OrderCA} {
				for _, desc := range []bool{false, true} {
					f.Order, f.Desc = o, desc
					store.SetSteerBound(db, 1<<30)
					want := list(f)
					store.SetSteerBound(db, 2)
					if got := list(f); !slices.Equal(got, want) || len(want) == 0 {
						t.Errorf("%+v: row by row %v, by index %v", f, got, want)
					}
				}
			}
		}
	})
}
