package app

import "runtime/debug"

// ServeGCPercent is the server's garbage-collection target when GOGC is
// not set. An issuance allocates about 150 KB, nearly all of it garbage
// when the answer is written, while the live heap stays small; at Go's
// default of 100 the collector runs so often that raising the target to
// 300 cut server CPU per certificate by about 12 % under load, for about
// 25 MB more memory (README, Speed). serve applies it, and so do the
// benchmarks to the server they measure.
const ServeGCPercent = 300

// SetServeGCTarget applies ServeGCPercent unless the operator chose a
// target with GOGC (env reads the environment); it reports whether it did.
func SetServeGCTarget(env func(string) string) bool {
	if env("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(ServeGCPercent)
	return true
}
