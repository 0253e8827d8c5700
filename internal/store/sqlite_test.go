package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.SQLite())
}

func TestSQLiteFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cw.db")
	db, err := store.Open(context.Background(), "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutSetting(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), m)
		}
	}
}

func TestOpenURLForms(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, url string
		file      string // created file, relative to dir
	}{
		{"bare path", filepath.Join(dir, "a.db"), "a.db"},
		{"sqlite: scheme", "sqlite:" + filepath.Join(dir, "b.db"), "b.db"},
		{"sqlite:// scheme", "sqlite://" + filepath.Join(dir, "c.db"), "c.db"},
		{"path with ? and #", filepath.Join(dir, "d?x=1#y.db"), "d?x=1#y.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(context.Background(), tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if db.Dialect() != "sqlite" {
				t.Errorf("Dialect() = %q", db.Dialect())
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", ":memory:", "file::memory:?mode=memory", "mysql://localhost/db", t.TempDir()} {
		if db, err := store.Open(context.Background(), url, nil); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
	// A directory that does not exist is an error, not created.
	_, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "missing", "x.db"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open in missing directory: %v, want fs.ErrNotExist", err)
	}
}

// TestSQLiteConcurrentOpen starts two stores on one new file at once, as
// two processes would; both must migrate cleanly.
func TestSQLiteConcurrentOpen(t *testing.T) {
	t.Parallel()
	concurrentOpen(t, filepath.Join(t.TempDir(), "cw.db"))
}

func concurrentOpen(t *testing.T, url string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := store.Open(context.Background(), url, nil)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestSQLiteRowFailureInBatch makes one row of a batch fail for a reason
// other than its serial (a trigger raises an error) and checks that only its
// caller fails.
func TestSQLiteRowFailureInBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cw.db")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.ExecContext(ctx, `CREATE TRIGGER boom BEFORE INSERT ON certificates
		WHEN NEW.requester = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}

	const n = 100
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			c := &inventory.Certificate{Serial: fmt.Sprintf("%04x", i), Requester: "ok", DER: []byte{1}, SANs: []string{"a.example"}}
			if i == n/2 {
				c.Requester = "boom"
			}
			errs[i] = db.InsertCertificate(ctx, c, tev())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if (i == n/2) != (err != nil) {
			t.Errorf("insert %d: err = %v", i, err)
		}
	}
	if count, err := db.CountCertificates(ctx, ""); err != nil || count != n-1 {
		t.Errorf("count = %d, %v; want %d", count, err, n-1)
	}
	// One audit event per certificate written, none for the failed row.
	if seq, _, err := db.AuditHead(ctx); err != nil || seq != n-1 {
		t.Errorf("audit head = %d, %v; want %d", seq, err, n-1)
	}
}
