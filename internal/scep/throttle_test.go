package scep

import (
	"strconv"
	"testing"
	"time"
)

// TestThrottle: a key's warning comes once per interval, the next one
// with the count held back since; keys are independent; the keys
// remembered are bounded, stale ones making room.
func TestThrottle(t *testing.T) {
	t.Parallel()
	var th throttle
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if ok, _ := th.allow("a", at); !ok {
		t.Fatal("first warning held back")
	}
	for i := range 3 {
		if ok, _ := th.allow("a", at.Add(time.Duration(i+1)*time.Minute)); ok {
			t.Fatalf("warning %d within the hour let through", i+2)
		}
	}
	if ok, _ := th.allow("b", at.Add(time.Minute)); !ok {
		t.Error("another key's first warning held back")
	}
	if ok, held := th.allow("a", at.Add(warnInterval)); !ok || held != 3 {
		t.Errorf("after an hour: allow = %v, held %d, want true, 3", ok, held)
	}
	if ok, held := th.allow("a", at.Add(2*warnInterval)); !ok || held != 0 {
		t.Errorf("after two hours: allow = %v, held %d, want true, 0", ok, held)
	}

	var full throttle
	for i := range maxWarnKeys {
		full.allow(strconv.Itoa(i), at)
	}
	if ok, _ := full.allow("new", at.Add(time.Minute)); ok || len(full.keys) > maxWarnKeys {
		t.Errorf("full: a new key let through (%v) or remembered (%d keys)", ok, len(full.keys))
	}
	if ok, _ := full.allow("new", at.Add(warnInterval)); !ok || len(full.keys) > maxWarnKeys {
		t.Errorf("full, keys stale: a new key held back (%v) or %d keys", ok, len(full.keys))
	}
}
