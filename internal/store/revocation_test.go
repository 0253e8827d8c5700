package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
)

var _ revoke.Store = (*store.DB)(nil)

// rawDB is a second, plain connection to a store's database, for what the
// store's API cannot do: install failing triggers, build an old schema.
type rawDB struct {
	*sql.DB
	numbered bool // $n placeholders
	timeArg  func(time.Time) any
	// trigger makes UPDATE or INSERT (event) on table fail for rows whose
	// serial is serial.
	trigger func(t testing.TB, event, table, serial string)
}

func (r *rawDB) rebind(q string) string {
	if !r.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *rawDB) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := r.ExecContext(context.Background(), r.rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// dialects gives each test a fresh database URL and a raw connection to it.
var dialects = []struct {
	name string
	new  func(t testing.TB) (url string, raw *rawDB)
}{
	{"sqlite", func(t testing.TB) (string, *rawDB) {
		path := filepath.Join(t.TempDir(), "cw.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		raw := &rawDB{DB: db, timeArg: func(tm time.Time) any { return tm.UnixMicro() }}
		raw.trigger = func(t testing.TB, event, table, serial string) {
			raw.exec(t, fmt.Sprintf(`CREATE TRIGGER boom_%s_%s BEFORE %s ON %s WHEN NEW.serial = '%s'
				BEGIN SELECT RAISE(ABORT, 'boom'); END`, event, table, event, table, serial))
		}
		return path, raw
	}},
	{"postgres", func(t testing.TB) (string, *rawDB) {
		url := storetest.PostgresSchema(t, storetest.PostgresURL(t))
		db, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		raw := &rawDB{DB: db, numbered: true, timeArg: func(tm time.Time) any { return tm }}
		raw.trigger = func(t testing.TB, event, table, serial string) {
			raw.exec(t, `CREATE OR REPLACE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'boom'; END $$`)
			raw.exec(t, fmt.Sprintf(`CREATE TRIGGER boom_%s_%s BEFORE %s ON %s FOR EACH ROW
				WHEN (NEW.serial = '%s') EXECUTE FUNCTION boom()`, event, table, event, table, serial))
		}
		return url, raw
	}},
}

func forDialects(t *testing.T, fn func(t *testing.T, url string, raw *rawDB)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			url, raw := d.new(t)
			fn(t, url, raw)
		})
	}
}

func openStore(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestRevokeAllOrNothing makes one statement of a revocation fail part-way
// (a trigger raises an error on one row) and checks that nothing of it
// remains.
func TestRevokeAllOrNothing(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		now := time.Now()
		const n = 60
		for i := range n {
			err := db.InsertCertificate(ctx, &inventory.Certificate{
				Serial: fmt.Sprintf("c%04d", i), CAID: "ca1", Status: inventory.StatusValid,
				NotAfter: now.Add(time.Hour), DER: []byte{1}, CreatedAt: now,
			}, tev())
			if err != nil {
				t.Fatal(err)
			}
		}
		// The revocations go in before the statuses change: a failure in
		// either statement must undo both.
		raw.trigger(t, "UPDATE", "certificates", "c0030")
		raw.trigger(t, "INSERT", "revocations", "c0040")
		tmpl := inventory.Revocation{RevokedAt: now, Reason: pki.ReasonSuperseded, RevokedBy: "test"}
		check := func(what string) {
			t.Helper()
			var k int
			if err := db.EachRevoked(ctx, "ca1", now, func(*inventory.Revocation) error { k++; return nil }); err != nil {
				t.Fatal(err)
			}
			list, err := db.ListCertificates(ctx, inventory.Filter{Status: inventory.StatusRevoked})
			if err != nil {
				t.Fatal(err)
			}
			if k != 0 || len(list) != 0 {
				t.Errorf("after %s: %d revocations, %d certificates revoked; want none", what, k, len(list))
			}
		}

		for _, sel := range []inventory.Selector{
			{CAID: "ca1"},           // fails inserting c0040
			{CAID: "ca1", SAN: "x"}, // matches nothing: succeeds, empty
		} {
			recs, err := db.RevokeMatching(ctx, sel, now, tmpl, false, tev())
			switch {
			case sel.SAN == "" && err == nil:
				t.Fatalf("RevokeMatching(%+v) succeeded through a failing trigger: %d records", sel, len(recs))
			case sel.SAN != "" && (err != nil || len(recs) != 0):
				t.Fatalf("RevokeMatching(%+v) = %d records, %v; want none, no error", sel, len(recs), err)
			}
			check(fmt.Sprintf("RevokeMatching(%+v)", sel))
		}
		raw.exec(t, `DROP TRIGGER boom_INSERT_revocations`+map[bool]string{true: " ON revocations"}[raw.numbered])
		if _, err := db.RevokeMatching(ctx, inventory.Selector{CAID: "ca1"}, now, tmpl, false, tev()); err == nil {
			t.Fatal("RevokeMatching succeeded through a failing status update")
		}
		check("RevokeMatching with a failing status update")

		r := tmpl
		r.Serial = "c0030"
		if _, _, err := db.RevokeCertificate(ctx, &r, tev()); err == nil {
			t.Fatal("RevokeCertificate succeeded through a failing status update")
		}
		if _, err := db.GetRevocation(ctx, "c0030"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("failed RevokeCertificate left its revocation: %v", err)
		}
		check("RevokeCertificate")

		// Without the trigger everything goes through at once.
		raw.exec(t, `DROP TRIGGER boom_UPDATE_certificates`+map[bool]string{true: " ON certificates"}[raw.numbered])
		recs, err := db.RevokeMatching(ctx, inventory.Selector{CAID: "ca1"}, now, tmpl, false, tev())
		if err != nil || len(recs) != n {
			t.Fatalf("RevokeMatching = %d records, %v; want %d", len(recs), err, n)
		}
	})
}

// TestUpgradeBackfillsSPKI opens a database at schema version 1, holding
// certificates from before spki_sha256 existed, and checks that Open fills
// the column from each certificate's DER.
func TestUpgradeBackfillsSPKI(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		dialect := "sqlite"
		if raw.numbered {
			dialect = "postgres"
		}
		init, err := os.ReadFile(filepath.Join("migrations", dialect, "0001_init.sql"))
		if err != nil {
			t.Fatal(err)
		}
		raw.exec(t, string(init))
		raw.exec(t, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
			applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`)
		raw.exec(t, `INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init')`)

		// More rows than one backfill batch, three keys, one DER that does
		// not parse.
		const n = 2500
		var ders [3][]byte
		var hashes [3]string
		for i := range ders {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ders[i], hashes[i] = storetest.NewCertDER(t, k, int64(i+1)), storetest.SPKISHA256(t, k)
		}
		now := time.Now()
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, raw.rebind(`INSERT INTO certificates (serial, ca_id, profile, requester,
			subject, sans, not_before, not_after, key_algorithm, key_bits, signature_algorithm, status, fingerprint,
			tags, lint_warnings, der, created_at) VALUES (?, 'ca1', 'server', 'old', 'CN=old', '[]', ?, ?, 'ECDSA', 256,
			'ECDSA-SHA256', 'valid', 'fp', '[]', '[]', ?, ?)`))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n + 1 {
			der := []byte("not DER")
			if i < n {
				der = ders[i%3]
			}
			tm := raw.timeArg(now)
			if _, err := stmt.ExecContext(ctx, fmt.Sprintf("%05d", i), tm, tm, der, tm); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}

		for range 2 { // the second Open has nothing to do
			db, err := store.Open(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, 1, 2, 999, 1000, 1001, n - 1} {
				c, err := db.GetCertificate(ctx, fmt.Sprintf("%05d", i))
				if err != nil {
					t.Fatal(err)
				}
				if c.SPKISHA256 != hashes[i%3] {
					t.Errorf("certificate %d: SPKISHA256 %q, want %q", i, c.SPKISHA256, hashes[i%3])
				}
			}
			for i, h := range hashes {
				var count int
				for f := (inventory.Filter{SPKISHA256: h, Limit: store.MaxListLimit}); ; {
					page, err := db.ListCertificates(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					count += len(page)
					f.After = page[len(page)-1].Serial
				}
				if want := (n + 2 - i) / 3; count != want {
					t.Errorf("key %d: %d certificates, want %d", i, count, want)
				}
			}
			var empty int
			if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM certificates WHERE spki_sha256 = ''").Scan(&empty); err != nil {
				t.Fatal(err)
			}
			if empty != 1 {
				t.Errorf("%d rows without a hash, want 1 (the one whose DER does not parse)", empty)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
