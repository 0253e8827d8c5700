//go:build !unix

package pkcs11

import "os"

// checkModes: elsewhere (Windows) access is by ACL, not the mode bits, and
// only the file's being a regular file is checked.
const checkModes = false

// fileOwner is unknown off Unix.
func fileOwner(os.FileInfo) (uint32, bool) { return 0, false }
