package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadChallengeFileRefusesReadableFiles: a static SCEP challenge in a
// file group or others may read is refused with a chmod hint; at 0600 it
// is read without its line ending.
func TestReadChallengeFileRefusesReadableFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("kiosk-secret-0123456789\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readChallengeFile(path)
	var he *hintError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "readable by group or others") {
		t.Fatalf("mode 0644: %v, want a refusal with a hint", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readChallengeFile(path)
	if err != nil || got != "kiosk-secret-0123456789" {
		t.Fatalf("mode 0600: %q, %v", got, err)
	}
}
