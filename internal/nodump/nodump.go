// Package nodump keeps a process that holds private keys out of core
// dumps: on Linux it marks the process not dumpable (prctl
// PR_SET_DUMPABLE 0), so a crash writes no core file and other processes
// of the same user cannot read its memory through ptrace or
// /proc/PID/mem. Elsewhere it does nothing.
//
// Why not mlock as well: locking pages keeps them out of swap, but Go's
// runtime moves and copies memory (stacks grow and move, the garbage
// collector frees copies it does not wipe, buffers are reallocated), so
// no set of locked pages holds every copy of a key, and locking the whole
// heap (mlockall) is unbounded and needs privileges. Encrypted swap, or
// none, is the operator's part (README "Key hygiene").
package nodump

// EnvAllow is the environment variable that, set to 1, leaves the process
// dumpable, for debugging a crash with its core file or attaching a
// debugger or profiler as the same user.
const EnvAllow = "CERTWRIGHT_ALLOW_CORE_DUMPS"

// Protect marks the process not dumpable unless getenv(EnvAllow) is "1".
// It reports whether the process is protected now: false with a nil error
// where the platform has no such setting, or when the variable allowed
// dumps.
func Protect(getenv func(string) string) (bool, error) {
	if getenv(EnvAllow) == "1" {
		return false, nil
	}
	return disable()
}

// Dumpable reports whether the process may dump core (always true where
// the platform has no such setting).
func Dumpable() (bool, error) { return dumpable() }
