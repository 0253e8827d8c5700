package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	p, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Created || p.Mode != 0o600 {
		t.Errorf("Created = %v, Mode = %v; want true, 0600", p.Created, p.Mode)
	}

	for _, tc := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"write", "journal_mode", "wal"},
		{"write", "synchronous", "2"}, // FULL
		{"write", "foreign_keys", "1"},
		{"write", "busy_timeout", busyTimeoutMillis},
		{"write", "secure_delete", "2"}, // FAST
		{"write", "query_only", "0"},
		{"write", "wal_autocheckpoint", walAutocheckpointPages},
		{"read", "journal_mode", "wal"},
		{"read", "foreign_keys", "1"},
		{"read", "busy_timeout", busyTimeoutMillis},
		{"read", "query_only", "1"},
	} {
		db := p.Write
		if tc.pool == "read" {
			db = p.Read
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s pool: PRAGMA %s = %s, want %s", tc.pool, tc.pragma, got, tc.want)
		}
	}
	if _, err := p.Read.ExecContext(ctx, "CREATE TABLE t (x)"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestOpenExisting(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Created || p.Mode != 0o644 {
		t.Errorf("Created = %v, Mode = %v; want false, 0644 (reported, left alone)", p.Created, p.Mode)
	}
}

// TestOptimizeDropsStat4 starts from statistics an unbounded ANALYZE
// wrote, samples included: Optimize keeps per-index statistics and drops
// the samples, and a later Optimize writes none.
func TestOptimizeDropsStat4(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := Open(ctx, filepath.Join(t.TempDir(), "cw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := p.Write.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	count := func(table string) int {
		t.Helper()
		var n int
		if err := p.Write.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	}
	exec("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT UNIQUE)")
	for i := range 20 {
		exec("INSERT INTO t VALUES (?, ?)", "id"+strconv.Itoa(i), "name"+strconv.Itoa(i))
	}
	exec("ANALYZE")
	if count("sqlite_stat4") == 0 {
		t.Fatal("an unbounded ANALYZE wrote no sqlite_stat4 samples: the test would prove nothing")
	}
	for range 2 {
		exec("INSERT INTO t VALUES (?, ?)", "more", "more") // a reason for optimize to re-analyze
		exec("DELETE FROM t WHERE id = 'more'")
		if err := Optimize(ctx, p.Write); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := p.Write.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat4'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("sqlite_stat4 still there after Optimize (%d, %v)", n, err)
		}
		if count("sqlite_stat1") == 0 {
			t.Fatal("Optimize dropped the per-index statistics too")
		}
	}
}
