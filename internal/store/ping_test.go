package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// TestCanCommitReadOnly: a SQLite database that answers reads but cannot
// be written (read-only) fails CanCommit with an error the edge answers
// 503, while Ping still passes; once writable again, CanCommit passes.
func TestCanCommitReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "certwright.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CanCommit(ctx); err != nil {
		t.Fatalf("CanCommit on a writable database: %v", err)
	}
	// The writer pool holds its one connection: this makes it read-only.
	if _, err := db.write.ExecContext(ctx, "PRAGMA query_only=ON"); err != nil {
		t.Fatal(err)
	}
	err = db.CanCommit(ctx)
	if err == nil || !Unavailable(err) {
		t.Fatalf("CanCommit on a read-only database: %v; want an error Unavailable reports", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping of a read-only database: %v", err)
	}
	if _, err := db.write.ExecContext(ctx, "PRAGMA query_only=OFF"); err != nil {
		t.Fatal(err)
	}
	if err := db.CanCommit(ctx); err != nil {
		t.Errorf("CanCommit once writable again: %v", err)
	}
}

// TestUnavailable: the database failing is told apart from the request
// failing.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	_, refused := Open(context.Background(), "postgres://certwright@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", nil)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", notFound("token", "x"), false},
		{"conflict", conflict("token", "x"), false},
		{"deadline", fmt.Errorf("store: get token: %w", context.DeadlineExceeded), true},
		{"postgres refused", refused, true},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
