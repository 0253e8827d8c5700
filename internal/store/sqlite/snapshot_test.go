package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSnapshotWhileWriting copies a database that another pool is
// writing: the copy holds every row committed before it began, a whole
// number of transactions, and the source file is not changed by it.
func TestSnapshotWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	p, err := Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write.ExecContext(ctx, "CREATE TABLE t (n INTEGER NOT NULL, pair INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	insertPair := func(n int) {
		t.Helper()
		tx, err := p.Write.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := tx.ExecContext(ctx, "INSERT INTO t (n, pair) VALUES (?, ?)", n, n); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for n := range 50 {
		insertPair(n)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 50; n < 250; n++ {
			tx, err := p.Write.BeginTx(ctx, nil)
			if err != nil {
				return
			}
			tx.ExecContext(ctx, "INSERT INTO t (n, pair) VALUES (?, ?)", n, n)
			tx.ExecContext(ctx, "INSERT INTO t (n, pair) VALUES (?, ?)", n, n)
			if tx.Commit() != nil {
				return
			}
		}
	}()
	dst := filepath.Join(dir, "copy.db")
	if err := Snapshot(ctx, src, dst); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	<-done
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, %v; want mode 0600", fi, err)
	}
	c, err := OpenQueryOnly(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rows, odd, minN int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(cnt % 2), 0) FROM (SELECT COUNT(*) AS cnt FROM t GROUP BY n)").Scan(&rows, &odd); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRowContext(ctx, "SELECT COUNT(DISTINCT n) FROM t WHERE n < 50").Scan(&minN); err != nil {
		t.Fatal(err)
	}
	if minN != 50 {
		t.Errorf("copy holds %d of the 50 transactions committed before it began", minN)
	}
	if odd != 0 {
		t.Errorf("copy holds %d half transactions", odd)
	}

	if err := Snapshot(ctx, src, dst); err == nil {
		t.Error("Snapshot over an existing file succeeded")
	}
	if err := Snapshot(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("Snapshot of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !os.IsNotExist(err) {
		t.Errorf("Snapshot created the missing source file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); !os.IsNotExist(err) {
		t.Errorf("a failed Snapshot left its destination: %v", err)
	}
}
