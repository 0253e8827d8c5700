package nodump

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func disable() (bool, error) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return false, fmt.Errorf("nodump: prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return true, nil
}

func dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("nodump: prctl(PR_GET_DUMPABLE): %w", err)
	}
	return v != 0, nil
}
