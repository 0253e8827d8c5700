package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// TestCompromisedKeyList: a revocation with reason keyCompromise (one, or
// in bulk) and a rotation by key list the key, in the report's transaction,
// the first report standing; another reason lists nothing. Migration 0014
// lists the keys reported before it.
func TestCompromisedKeyList(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		db, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		key := func(n int) string { return strings.Repeat(fmt.Sprintf("%x", n), 64) }
		for i, spki := range map[string]string{"s1": key(1), "s2a": key(2), "s2b": key(2), "s3": key(3), "s4": key(4)} {
			err := db.InsertCertificate(ctx, &inventory.Certificate{
				Serial: i, CAID: "ca1", Status: inventory.StatusValid, SPKISHA256: spki,
				NotAfter: now.Add(time.Hour), DER: []byte{1}, CreatedAt: now,
			}, tev())
			if err != nil {
				t.Fatal(err)
			}
		}
		rev := func(reason pki.Reason) *inventory.Revocation {
			return &inventory.Revocation{RevokedAt: now, Reason: reason, RevokedBy: "alice"}
		}
		r1 := rev(pki.ReasonKeyCompromise)
		r1.Serial = "s1"
		if _, _, err := db.RevokeCertificate(ctx, r1, tev()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RevokeMatching(ctx, inventory.Selector{SPKISHA256: key(2)}, now, *rev(pki.ReasonKeyCompromise), false, tev()); err != nil {
			t.Fatal(err)
		}
		r3 := rev(pki.ReasonSuperseded)
		r3.Serial = "s3"
		if _, _, err := db.RevokeCertificate(ctx, r3, tev()); err != nil {
			t.Fatal(err)
		}
		rotate := func(id, spki string) {
			r := &lifecycle.Rotation{ID: id, Selector: inventory.Selector{SPKISHA256: spki}, Reason: "keyCompromise", Grace: time.Hour,
				Status: lifecycle.RotationRunning, CreatedBy: "bob", CreatedAt: now}
			if err := db.CreateRotation(ctx, r, nil, tev()); err != nil {
				t.Fatal(err)
			}
		}
		rotate("rot4", strings.ToUpper(key(4)))
		rotate("rot1", key(1)) // listed already: the revocation stands

		type want struct{ source, ref, by string }
		check := func(what string, wants map[string]*want) {
			t.Helper()
			for spki, w := range wants {
				got, err := db.CompromisedKey(ctx, strings.ToUpper(spki))
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case w == nil && got != nil:
					t.Errorf("%s: key %s listed: %+v", what, spki[:4], got)
				case w == nil:
				case got == nil:
					t.Errorf("%s: key %s not listed, want %+v", what, spki[:4], *w)
				case got.SPKISHA256 != spki || got.Source != w.source || got.Ref != w.ref || got.ReportedBy != w.by || !got.ReportedAt.Equal(now):
					t.Errorf("%s: key %s: %+v, want %+v at %v", what, spki[:4], got, *w, now)
				}
			}
		}
		check("live", map[string]*want{
			key(1): {inventory.CompromiseRevocation, "s1", "alice"},
			key(2): {inventory.CompromiseRevocation, "s2a", "alice"},
			key(3): nil,
			key(4): {inventory.CompromiseRotation, "rot4", "bob"},
			key(5): nil,
		})

		// An upgrade from before the list: the reports already stored.
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		raw.exec(t, `DROP TABLE compromised_keys`)
		raw.exec(t, `DELETE FROM schema_migrations WHERE version = 14`)
		db = openStore(t, url)
		check("after migration 0014", map[string]*want{
			key(1): {inventory.CompromiseRotation, "rot1", ""},
			key(2): {inventory.CompromiseRevocation, "s2a", ""},
			key(3): nil,
			key(4): {inventory.CompromiseRotation, "rot4", ""},
			key(5): nil,
		})
	})
}
