//go:build unix

package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openSecretFile opens path for reading without following a symbolic
// link in its last element, and without blocking on a FIFO.
func openSecretFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, &hintError{fmt.Errorf("%s is a symbolic link", path), "give the path of the file itself"}
	}
	return f, err
}

// checkSecretFile refuses an open secret file that group or others may
// read, or that another user owns (and so may change or read).
func checkSecretFile(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return &hintError{fmt.Errorf("%s is readable by group or others (mode %04o)", path, fi.Mode().Perm()), "run chmod 600 " + path}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", path)
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return &hintError{fmt.Errorf("%s is owned by user %d, not by you (user %d)", path, st.Uid, uid), "copy the secret into a file you own, mode 0600"}
	}
	return nil
}
