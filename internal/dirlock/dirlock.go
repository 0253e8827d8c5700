// Package dirlock tells processes using one data directory apart: serve
// holds a shared lock on the directory while it runs, and an offline step
// that must have no server running (the KEK rotation) takes an exclusive
// one, refused while any server holds its share. The locks are the
// operating system's advisory locks on the directory (flock on Unix), so
// they go with the process however it ends.
package dirlock

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked is returned when the lock is held by another process (or
// another open of the directory in this one) in a conflicting mode.
var ErrLocked = errors.New("dirlock: the directory is locked by another process")

// Lock is a held lock; Unlock releases it.
type Lock struct{ f *os.File }

// Shared takes a shared lock on dir without waiting: any number of shared
// holders, but no exclusive one.
func Shared(dir string) (*Lock, error) { return take(dir, false) }

// Exclusive takes the only lock on dir without waiting.
func Exclusive(dir string) (*Lock, error) { return take(dir, true) }

func take(dir string, exclusive bool) (*Lock, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("dirlock: %w", err)
	}
	if err := lock(f, exclusive); err != nil {
		f.Close()
		return nil, fmt.Errorf("dirlock: %s: %w", dir, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. It is safe to call on a nil Lock and twice.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases its lock
	l.f = nil
	return err
}
