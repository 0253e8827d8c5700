package sqlite

import (
	"context"
	"os"
	"path/filepath"
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
