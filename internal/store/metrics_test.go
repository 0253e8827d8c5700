package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// metricsCert is a certificate for the metrics queries: only what they read.
func metricsCert(serial, caID string, notAfter time.Time, mutate func(*inventory.Certificate)) *inventory.Certificate {
	c := &inventory.Certificate{
		Serial: serial, CAID: caID, Profile: "server", Requester: "test",
		Subject: "CN=" + serial + ".example.com", SANs: []string{serial + ".example.com", "alt.example.com"},
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter,
		Status: inventory.StatusValid, DER: []byte{1}, CreatedAt: notAfter.Add(-90 * 24 * time.Hour),
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func TestEachExpiry(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, _ *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		h := time.Hour
		certs := []*inventory.Certificate{
			metricsCert("a1", "ca1", now.Add(30*24*h), nil),
			metricsCert("a2", "ca2", now.Add(2*h), func(c *inventory.Certificate) { c.Profile = "client" }),
			metricsCert("a3", "ca1", now.Add(-3*24*h), nil),  // expired 3 days ago: inside the window
			metricsCert("a4", "ca1", now.Add(-10*24*h), nil), // expired before the window
			metricsCert("a5", "ca1", now.Add(5*h), func(c *inventory.Certificate) { c.Status = inventory.StatusRevoked }),
			metricsCert("a6", "ca1", now.Add(6*h), nil),
			// Renews a6: inserting it sets a6's renewed_by.
			metricsCert("a7", "ca1", now.Add(60*24*h), func(c *inventory.Certificate) { c.Replaces = "a6" }),
			// Imported, no SANs: the name comes from the subject's CN, unescaped.
			metricsCert("fp9", "", now.Add(10*24*h), func(c *inventory.Certificate) {
				c.Source, c.SANs, c.Subject, c.Profile = inventory.SourceImported, nil, `O=Acme\, Inc.,CN=legacy\, box\2b1`, ""
			}),
			// Same expiry as a1: ties are ordered by serial.
			metricsCert("a0", "ca2", now.Add(30*24*h), nil),
		}
		for _, c := range certs {
			if err := db.InsertCertificate(ctx, c, tev()); err != nil {
				t.Fatal(err)
			}
		}
		from := now.Add(-7 * 24 * h)
		collect := func(limit int) []inventory.ExpiryRow {
			t.Helper()
			var got []inventory.ExpiryRow
			if err := db.EachExpiry(ctx, from, limit, func(r inventory.ExpiryRow) error {
				got = append(got, r)
				return nil
			}); err != nil {
				t.Fatalf("EachExpiry(limit %d): %v", limit, err)
			}
			return got
		}
		want := []inventory.ExpiryRow{
			{Serial: "a3", CAID: "ca1", Profile: "server", Name: "a3.example.com", NotAfter: now.Add(-3 * 24 * h)},
			{Serial: "a2", CAID: "ca2", Profile: "client", Name: "a2.example.com", NotAfter: now.Add(2 * h)},
			{Serial: "fp9", CAID: "", Profile: "", Name: "legacy, box+1", NotAfter: now.Add(10 * 24 * h)},
			{Serial: "a0", CAID: "ca2", Profile: "server", Name: "a0.example.com", NotAfter: now.Add(30 * 24 * h)},
			{Serial: "a1", CAID: "ca1", Profile: "server", Name: "a1.example.com", NotAfter: now.Add(30 * 24 * h)},
			{Serial: "a7", CAID: "ca1", Profile: "server", Name: "a7.example.com", NotAfter: now.Add(60 * 24 * h)},
		}
		if got := collect(100); !slices.EqualFunc(got, want, sameExpiry) {
			t.Errorf("EachExpiry = %v\nwant      %v", got, want)
		}
		if got := collect(2); !slices.EqualFunc(got, want[:2], sameExpiry) {
			t.Errorf("EachExpiry(limit 2) = %v, want the two soonest %v", got, want[:2])
		}

		stop := errors.New("stop here")
		n := 0
		err := db.EachExpiry(ctx, from, 100, func(inventory.ExpiryRow) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("EachExpiry with failing fn: %d calls, err %v; want 1 call and the fn's error", n, err)
		}
		if err := db.EachExpiry(ctx, from, 0, func(inventory.ExpiryRow) error { return nil }); err == nil {
			t.Error("EachExpiry(limit 0) succeeded, want an error")
		}
	})
}

func sameExpiry(a, b inventory.ExpiryRow) bool {
	return a.Serial == b.Serial && a.CAID == b.CAID && a.Profile == b.Profile && a.Name == b.Name && a.NotAfter.Equal(b.NotAfter)
}

func TestCertificateCounts(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, _ *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		got, err := db.CertificateCounts(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		zero := map[string]int{store.CountValid: 0, store.CountExpired: 0, store.CountRevoked: 0, store.CountImported: 0, store.CountAutoRenew: 0}
		if !maps.Equal(got, zero) {
			t.Errorf("CertificateCounts on an empty store = %v, want %v", got, zero)
		}

		day := 24 * time.Hour
		add := func(serial string, notAfter time.Time, mutate func(*inventory.Certificate)) {
			t.Helper()
			if err := db.InsertCertificate(ctx, metricsCert(serial, "ca1", notAfter, mutate), tev()); err != nil {
				t.Fatal(err)
			}
		}
		revoked := func(c *inventory.Certificate) { c.Status = inventory.StatusRevoked }
		imported := func(c *inventory.Certificate) { c.Source = inventory.SourceImported }
		auto := func(c *inventory.Certificate) { c.AutoRenew = true }
		for i := range 3 {
			add(fmt.Sprintf("v%d", i), now.Add(day), nil)
		}
		add("x1", now.Add(-day), nil)
		add("x2", now, nil) // expires exactly now: expired
		add("r1", now.Add(day), revoked)
		add("r2", now.Add(-day), revoked) // revoked and expired: revoked
		add("i1", now.Add(day), imported)
		add("i2", now.Add(-day), imported)                                                  // expired: not counted as imported
		add("i3", now.Add(day), func(c *inventory.Certificate) { imported(c); revoked(c) }) // revoked: not imported
		add("u1", now.Add(day), auto)
		add("u2", now.Add(day), auto)
		add("u3", now.Add(-day), func(c *inventory.Certificate) { auto(c); c.Replaces = "u2" }) // expired; renews u2
		add("u4", now.Add(day), func(c *inventory.Certificate) { auto(c); revoked(c) })

		got, err = db.CertificateCounts(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{
			store.CountValid:     3 + 1 + 2, // v0-v2, i1, u1, u2
			store.CountExpired:   2 + 1 + 1, // x1, x2, i2, u3
			store.CountRevoked:   2 + 1 + 1, // r1, r2, i3, u4
			store.CountImported:  1,         // i1
			store.CountAutoRenew: 1,         // u1
		}
		if !maps.Equal(got, want) {
			t.Errorf("CertificateCounts = %v, want %v", got, want)
		}
	})
}
