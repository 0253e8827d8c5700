// Package storetest owns the conformance suite every store backend must pass
// (Run) and the helpers that give a test its own throw-away SQLite file or
// PostgreSQL schema.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
)

// EnvPostgres names the variable holding the URL of a PostgreSQL database
// the tests may create schemas in, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgres = "CERTWRIGHT_TEST_POSTGRES"

// PostgresURL returns $CERTWRIGHT_TEST_POSTGRES, skipping tb when it is unset.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		tb.Skip("set " + EnvPostgres + "=postgres://... to run the PostgreSQL store tests")
	}
	return u
}

// OpenSQLite opens a store on a new SQLite file in a temporary directory,
// closed when tb ends. Domain tests use it as their real store.
func OpenSQLite(tb testing.TB) *store.DB {
	tb.Helper()
	return open(tb, filepath.Join(tb.TempDir(), "certwright.db"))
}

// OpenPostgres opens a store in a new schema of the database at
// $CERTWRIGHT_TEST_POSTGRES (skipping tb when unset), dropped when tb ends.
func OpenPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	return open(tb, PostgresSchema(tb, PostgresURL(tb)))
}

// SQLite returns an open function for Run: each test gets its own file, and
// calling it again with the same test reopens that file.
func SQLite() func(*testing.T) *store.DB {
	return memo(func(t *testing.T) string { return filepath.Join(t.TempDir(), "certwright.db") })
}

// Postgres returns an open function for Run on the database at url: each
// test gets its own schema, and calling it again with the same test reopens
// that schema.
func Postgres(url string) func(*testing.T) *store.DB {
	return memo(func(t *testing.T) string { return PostgresSchema(t, url) })
}

// Replicas runs f on SQLite and, when CERTWRIGHT_TEST_POSTGRES is set,
// PostgreSQL, each in a parallel subtest; open opens the test's database
// again on each call (a second handle is another replica).
func Replicas(t *testing.T, f func(t *testing.T, open func(*testing.T) *store.DB)) {
	t.Helper()
	for _, b := range []struct {
		name string
		open func(*testing.T) func(*testing.T) *store.DB
	}{
		{"sqlite", func(*testing.T) func(*testing.T) *store.DB { return SQLite() }},
		{"postgres", func(t *testing.T) func(*testing.T) *store.DB { return Postgres(PostgresURL(t)) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.open(t))
		})
	}
}

// memo opens the database newURL makes for a test, making it once per test.
func memo(newURL func(*testing.T) string) func(*testing.T) *store.DB {
	var mu sync.Mutex
	urls := map[*testing.T]string{}
	return func(t *testing.T) *store.DB {
		t.Helper()
		mu.Lock()
		u, ok := urls[t]
		if !ok {
			u = newURL(t)
			urls[t] = u
		}
		mu.Unlock()
		return open(t, u)
	}
}

func open(tb testing.TB, url string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), url, nil)
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

// PostgresSchema creates a schema with a random name in the database at
// baseURL, drops it (and everything in it) when tb ends, and returns baseURL
// with search_path set to it and, unless baseURL sets it, a pool of 8
// connections.
func PostgresSchema(tb testing.TB, baseURL string) string {
	tb.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		tb.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	var suffix [8]byte
	rand.Read(suffix[:]) // never fails since Go 1.24
	schema := "cw_test_" + hex.EncodeToString(suffix[:])
	admin(tb, baseURL, "CREATE SCHEMA "+schema)
	tb.Cleanup(func() { admin(tb, baseURL, "DROP SCHEMA "+schema+" CASCADE") })
	q := u.Query()
	q.Set("search_path", schema)
	// Test packages run side by side on one server (max_connections 100
	// by default), some starting three replicas: a small pool each.
	if !q.Has(postgres.PoolMaxConnsParam) {
		q.Set(postgres.PoolMaxConnsParam, "8")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func admin(tb testing.TB, url, stmt string) {
	tb.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
}

// ReplicaPairs opens, per dialect, two stores on one database, as two
// replicas hold them: SQLite (two pools on one file) always, PostgreSQL
// (one fresh schema) when EnvPostgres is set. Both close when tb ends.
func ReplicaPairs(tb testing.TB) map[string][2]*store.DB {
	tb.Helper()
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(tb.TempDir(), "db")}
	if base := os.Getenv(EnvPostgres); base != "" {
		urls["postgres"] = PostgresSchema(tb, base)
	}
	out := map[string][2]*store.DB{}
	for name, u := range urls {
		out[name] = [2]*store.DB{open(tb, u), open(tb, u)}
	}
	return out
}
