package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// TestActivityByDay: certificates issued here are counted per day of
// issuance and CA (imported ones are not, and a later revocation or
// renewal does not change the count); revocations per day and CA; the
// valid certificates per CA, renewal and day of expiry, a revoked one
// leaving its day.
func TestActivityByDay(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, _ *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
		day := 24 * time.Hour
		add := func(serial, caID string, created, notAfter time.Time, mutate func(*inventory.Certificate)) {
			t.Helper()
			c := metricsCert(serial, caID, notAfter, mutate)
			c.CreatedAt = created
			if err := db.InsertCertificate(ctx, c, tev()); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			add(fmt.Sprintf("a%d", i), "ca1", now.Add(-2*day), now.Add(5*day), nil)
		}
		add("b1", "ca2", now.Add(-2*day).Add(time.Hour), now.Add(5*day).Add(time.Hour), nil)
		add("c1", "ca1", now, now.Add(40*day), nil)
		add("old", "ca1", now.Add(-40*day), now.Add(-day), nil)
		imp := metricsCert("imp", "ca1", now.Add(5*day), func(c *inventory.Certificate) { c.Source = inventory.SourceImported })
		imp.CreatedAt = now
		if _, err := db.ImportCertificates(ctx, []*inventory.Certificate{imp}, []audit.Event{tev()}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.RevokeCertificate(ctx, &inventory.Revocation{Serial: "a2", CAID: "ca1", RevokedAt: now.Add(-day), Reason: pki.ReasonKeyCompromise,
			RevokedBy: "test", NotAfter: now.Add(5 * day)}, tev()); err != nil {
			t.Fatal(err)
		}

		key := func(d inventory.DayCount) string {
			return fmt.Sprintf("%s %s %v=%d", d.Day.Format("01-02"), d.CAID, d.Renewed, d.N)
		}
		check := func(what string, got []inventory.DayCount, err error, want ...string) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			var g []string
			for _, d := range got {
				g = append(g, key(d))
			}
			if fmt.Sprint(g) != fmt.Sprint(want) {
				t.Errorf("%s = %v, want %v", what, g, want)
			}
		}
		issued, err := db.IssuedByDay(ctx, now.Add(-30*day))
		check("IssuedByDay", issued, err, "05-08 ca1 false=3", "05-08 ca2 false=1", "05-10 ca1 false=1")
		revoked, err := db.RevokedByDay(ctx, now.Add(-30*day))
		check("RevokedByDay", revoked, err, "05-09 ca1 false=1")
		valid, err := db.ValidByExpiryDay(ctx, now)
		check("ValidByExpiryDay", valid, err, "05-15 ca1 false=3", "05-15 ca2 false=1", "06-19 ca1 false=1")
		if got, err := db.IssuedByDay(ctx, now); err != nil || len(got) != 1 {
			t.Errorf("IssuedByDay from today = %v, %v; want today's one", got, err)
		}
	})
}
