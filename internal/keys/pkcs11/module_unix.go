//go:build unix

package pkcs11

import (
	"os"
	"syscall"
)

// checkModes: permission bits mean what they say here.
const checkModes = true

// fileOwner returns the uid owning fi.
func fileOwner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
