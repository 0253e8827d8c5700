package pkipub

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestLimiterBounded: a spray of sources never grows the map past
// maxSources, and IPv6 addresses of one /64 share a bucket.
func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(1, false, func() time.Time { return now })
	for i := range 3 * maxSources {
		r := &http.Request{RemoteAddr: fmt.Sprintf("10.%d.%d.%d:1234", i>>16&255, i>>8&255, i&255)}
		l.allow(r)
		if n := l.sources(); n > maxSources {
			t.Fatalf("%d sources held after %d requests, bound %d", n, i+1, maxSources)
		}
	}
	v6 := newLimiter(1, false, func() time.Time { return now })
	allowed := 0
	for i := range 10 {
		if v6.allow(&http.Request{RemoteAddr: fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)}) {
			allowed++
		}
	}
	if allowed != 2 || v6.sources() != 1 {
		t.Errorf("one /64: %d allowed over %d buckets, want 2 over 1", allowed, v6.sources())
	}
}
