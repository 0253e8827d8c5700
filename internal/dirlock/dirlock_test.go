package dirlock_test

import (
	"errors"
	"testing"

	"github.com/certwright/certwright/internal/dirlock"
)

// TestLocks: shared locks coexist and keep an exclusive one out; an
// exclusive lock keeps everything out; unlocking lets the other in. Each
// take opens the directory anew, so the locks conflict within one process
// as they do between processes.
func TestLocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := dirlock.Shared(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dirlock.Shared(dir)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, err := dirlock.Exclusive(dir); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("exclusive lock beside shared ones: %v, want ErrLocked", err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := dirlock.Exclusive(dir); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("exclusive lock beside one shared lock: %v, want ErrLocked", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	x, err := dirlock.Exclusive(dir)
	if err != nil {
		t.Fatalf("exclusive lock once the shared ones are gone: %v", err)
	}
	if _, err := dirlock.Shared(dir); !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("shared lock beside an exclusive one: %v, want ErrLocked", err)
	}
	if err := x.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := x.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	s, err := dirlock.Shared(dir)
	if err != nil {
		t.Fatalf("shared lock after the exclusive one: %v", err)
	}
	s.Unlock()
	if _, err := dirlock.Shared(dir + "/missing"); err == nil {
		t.Error("lock on a missing directory succeeded")
	}
}
