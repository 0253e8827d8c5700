//go:build !unix

package dirlock

import (
	"errors"
	"os"
)

// ErrUnsupported is returned where the platform has no advisory lock this
// package uses: a step needing an exclusive lock refuses, as it cannot
// tell that no server runs.
var ErrUnsupported = errors.New("dirlock: directory locks are not supported on this platform")

func lock(_ *os.File, exclusive bool) error {
	if exclusive {
		return ErrUnsupported
	}
	// Shared locks only keep exclusive ones out, which are refused here
	// anyway.
	return nil
}
