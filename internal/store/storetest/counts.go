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
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Skip("cannot locate the migration files")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "migrations", dialect)
	var url string
	var raw *sql.DB
	switch dialect {
	case "sqlite":
		url = "sqlite:" + filepath.Join(t.TempDir(), "v16.db")
		pools, err := sqlite.Open(ctx, strings.TrimPrefix(url, "sqlite:"))
		must(t, err)
		defer pools.Close()
		raw = pools.Write
	case "postgres":
		url = PostgresSchema(t, PostgresURL(t))
		db, err := postgres.Open(ctx, url)
		must(t, err)
		defer db.Close()
		raw = db
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if dialect == "postgres" {
			for i := range args {
				q = strings.Replace(q, "?", fmt.Sprintf("$%d", i+1), 1)
			}
		}
		if _, err := raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT 'before')`)
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		v, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(v)
		must(t, err)
		if version >= 17 {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, version, name)
	}
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
