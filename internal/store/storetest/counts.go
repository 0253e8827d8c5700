package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/sqlite"
)

// testInventoryCountsBackfill: a database with certificates written before
// certificate_counts existed gets them counted by the migration that adds it.
func testInventoryCountsBackfill(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	dialect := open(t).Dialect()
	old := openOldSchema(t, dialect, 16)
	raw, exec, url := old.raw, old.exec, old.url
	now := time.Date(2026, 6, 10, 13, 30, 0, 0, time.UTC)
	ts := func(t time.Time) any {
		if dialect == "sqlite" {
			return t.UnixMicro()
		}
		return t
	}
	for i, c := range []struct {
		after          time.Duration
		status, renews string
	}{
		{-48 * time.Hour, "valid", ""}, {-time.Hour, "valid", ""}, {time.Hour, "valid", ""}, {3 * 24 * time.Hour, "valid", ""},
		{3 * 24 * time.Hour, "revoked", ""}, {20 * 24 * time.Hour, "valid", "0009"}, {200 * 24 * time.Hour, "valid", ""},
	} {
		exec(`INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after, key_algorithm,
			key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at, renewed_by)
			VALUES (?, 'caA', 'server', 'alice', 'CN=x', '[]', ?, ?, 'ECDSA', 256, 'ECDSA-SHA256', ?, 'fp', '', '[]', '[]', ?, ?, ?)`,
			fmt.Sprintf("%04d", i), ts(now.Add(-24*time.Hour)), ts(now.Add(c.after)), c.status, []byte{1}, ts(now), c.renews)
	}
	must(t, raw.Close())

	db, err := store.Open(ctx, url, nil)
	must(t, err)
	defer db.Close()
	got, err := db.InventoryCounts(ctx, now, []time.Time{now.Add(7 * 24 * time.Hour), now.Add(30 * 24 * time.Hour)})
	must(t, err)
	if want := (inventory.Counts{Valid: 4, Expired: 2, Revoked: 1, Expiring: []int{2, 2}}); !reflect.DeepEqual(got, want) {
		t.Errorf("after the migration: InventoryCounts = %+v, want %+v", got, want)
	}
}

// oldSchema is a database at an earlier schema version, written to with
// raw statements before store.Open migrates it.
type oldSchema struct {
	url  string
	raw  *sql.DB
	exec func(q string, args ...any) // "?" placeholders on both dialects
}

// openOldSchema creates a database of dialect with the migrations up to
// and including version applied, as a server of that version left it.
func openOldSchema(t *testing.T, dialect string, version int) oldSchema {
	t.Helper()
	ctx := context.Background()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Skip("cannot locate the migration files")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "migrations", dialect)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("migration files not found: %v", err)
	}
	var o oldSchema
	switch dialect {
	case "sqlite":
		o.url = "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", version))
		pools, err := sqlite.Open(ctx, strings.TrimPrefix(o.url, "sqlite:"))
		must(t, err)
		t.Cleanup(func() { pools.Close() })
		o.raw = pools.Write
	case "postgres":
		o.url = PostgresSchema(t, PostgresURL(t))
		db, err := postgres.Open(ctx, o.url)
		must(t, err)
		t.Cleanup(func() { db.Close() })
		o.raw = db
	default:
		t.Fatalf("unknown dialect %q", dialect)
	}
	o.exec = func(q string, args ...any) {
		t.Helper()
		if dialect == "postgres" {
			for i := range args {
				q = strings.Replace(q, "?", fmt.Sprintf("$%d", i+1), 1)
			}
		}
		if _, err := o.raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	o.exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT 'before')`)
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		v, _, _ := strings.Cut(name, "_")
		n, err := strconv.Atoi(v)
		must(t, err)
		if n > version {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		o.exec(string(body))
		o.exec(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, n, name)
	}
	return o
}
