//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadChallengeFileOpensOnce (review L13): a symbolic link (even to
// a 0600 file), a FIFO, a file another user owns and an oversized file
// are refused; the checks are made on the open file.
func TestReadChallengeFileOpensOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	if err := os.WriteFile(good, []byte("kiosk-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if _, err := readChallengeFile(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symbolic link: %v, want a refusal", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readChallengeFile(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v, want a refusal", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 1025), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readChallengeFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v, want a refusal", err)
	}
	if os.Getuid() != 0 {
		t.Skip("the owner check needs root to give a file to another user (run the test as root)")
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("kiosk-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := readChallengeFile(other); err == nil || !strings.Contains(err.Error(), "owned by user 65534") {
		t.Errorf("file of another user: %v, want a refusal", err)
	}
}
