package software

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/certwright/certwright/internal/atomicfile"
)

// ErrKEKPermissions is returned by LoadKEK for a KEK file that other users
// could read.
var ErrKEKPermissions = errors.New("software: KEK file is readable by group or others")

// GenerateKEK writes a new random KEK to path with mode 0600. It never
// overwrites: an existing file is an error wrapping fs.ErrExist, because
// replacing a KEK makes every key wrapped under it unrecoverable.
func GenerateKEK(path string) (err error) {
	kek := make([]byte, KEKSize)
	defer clear(kek)
	if _, err := io.ReadFull(rand.Reader, kek); err != nil {
		return fmt.Errorf("software: read KEK randomness: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("software: create KEK file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if _, err := f.Write(kek); err != nil {
		return fmt.Errorf("software: write KEK file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("software: sync KEK file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("software: close KEK file %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the new directory entry durable, so a crash right after
// GenerateKEK cannot lose the KEK that keys are about to be wrapped under.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("software: KEK directory: %w", err)
	}
	return nil
}

// LoadKEK reads a KEK written by GenerateKEK. It refuses a file that group
// or others can access (ErrKEKPermissions) and one that is not exactly
// KEKSize bytes.
func LoadKEK(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("software: open KEK file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("software: stat KEK file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("software: KEK file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 %s)", ErrKEKPermissions, path, fi.Mode().Perm(), path)
	}
	// Read one byte more than needed so an over-long file is detected.
	buf := make([]byte, KEKSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		clear(buf)
		return nil, fmt.Errorf("software: read KEK file %s: %w", path, err)
	}
	if n != KEKSize {
		clear(buf)
		if n > KEKSize {
			return nil, fmt.Errorf("software: KEK file %s is longer than %d bytes", path, KEKSize)
		}
		return nil, fmt.Errorf("software: KEK file %s is %d bytes, want %d", path, n, KEKSize)
	}
	return buf[:KEKSize], nil
}
