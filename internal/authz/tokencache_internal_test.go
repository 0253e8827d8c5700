package authz

import (
	"fmt"
	"testing"
	"time"
)

// TestTokenCacheBounds: the cache never holds more than its size, drops
// everything when the generation moves, ignores what was read under an
// older one, and trusts no entry once the clock says it is too old or
// went back.
func TestTokenCacheBounds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newTokenCache(3)
	for i := range 10 {
		c.put(fmt.Sprint(i), 1, &cachedToken{read: at})
		if n := c.len(); n > 3 {
			t.Fatalf("after %d puts the cache holds %d, more than 3", i+1, n)
		}
	}
	if c.get("9", 1, at) == nil {
		t.Error("the newest entry was evicted")
	}
	if c.get("9", 2, at) != nil {
		t.Error("an entry of generation 1 was used under generation 2")
	}
	c.put("a", 2, &cachedToken{read: at})
	if n := c.len(); n != 1 {
		t.Errorf("a newer generation left %d entries, want 1", n)
	}
	c.put("old", 1, &cachedToken{read: at})
	if c.get("old", 1, at) != nil || c.get("old", 2, at) != nil {
		t.Error("an entry read under an older generation was kept")
	}
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{at, true},
		{at.Add(TokenCacheMaxAge - time.Nanosecond), true},
		{at.Add(TokenCacheMaxAge), false},
		{at.Add(-time.Nanosecond), false},
	} {
		c.put("a", 2, &cachedToken{read: at})
		if got := c.get("a", 2, tt.now) != nil; got != tt.want {
			t.Errorf("entry read at %s, used at %s: %v, want %v", at, tt.now, got, tt.want)
		}
	}
}
