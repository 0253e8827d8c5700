package app

import (
	"runtime/debug"
	"testing"
)

// TestServeGCTarget: serve raises the GC target to ServeGCPercent, and
// leaves one the operator set with GOGC alone.
func TestServeGCTarget(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)

	if SetServeGCTarget(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	}) {
		t.Fatal("the GC target was changed although GOGC is set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC target %d after GOGC was set, want it untouched (100)", got)
	}
	if !SetServeGCTarget(func(string) string { return "" }) {
		t.Fatal("the GC target was not applied without GOGC")
	}
	if got := debug.SetGCPercent(100); got != ServeGCPercent {
		t.Fatalf("GC target %d, want %d", got, ServeGCPercent)
	}
}
