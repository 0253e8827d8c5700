package gencache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/gencache"
)

// TestBounds: the cache never holds more than its size, drops everything
// when the generation moves, ignores what was read under an older one,
// and trusts no entry once the clock says it is too old or went back.
func TestBounds(t *testing.T) {
	t.Parallel()
	const maxAge = time.Second
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := gencache.New[int](maxAge, 3, nil)
	for i := range 10 {
		c.Put(fmt.Sprint(i), 1, at, i)
		if n := c.Len(); n > 3 {
			t.Fatalf("after %d puts the cache holds %d, more than 3", i+1, n)
		}
	}
	if v, ok := c.Get("9", 1, at); !ok || v != 9 {
		t.Error("the newest entry was evicted")
	}
	if _, ok := c.Get("9", 2, at); ok {
		t.Error("an entry of generation 1 was used under generation 2")
	}
	c.Put("a", 2, at, 1)
	if n := c.Len(); n != 1 {
		t.Errorf("a newer generation left %d entries, want 1", n)
	}
	c.Put("old", 1, at, 1)
	_, ok1 := c.Get("old", 1, at)
	_, ok2 := c.Get("old", 2, at)
	if ok1 || ok2 {
		t.Error("an entry read under an older generation was kept")
	}
	c.Remove("a")
	if _, ok := c.Get("a", 2, at); ok {
		t.Error("a removed entry was returned")
	}
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{at, true},
		{at.Add(maxAge - time.Nanosecond), true},
		{at.Add(maxAge), false},
		{at.Add(-time.Nanosecond), false},
	} {
		c.Put("a", 2, at, 1)
		if _, got := c.Get("a", 2, tt.now); got != tt.want {
			t.Errorf("entry read at %s, used at %s: %v, want %v", at, tt.now, got, tt.want)
		}
	}
}

// TestClone: with a clone function, neither the caller's value nor the
// one handed out is the one held.
func TestClone(t *testing.T) {
	t.Parallel()
	at := time.Now()
	c := gencache.New(time.Second, 10, func(s []int) []int { return append([]int(nil), s...) })
	v := []int{1}
	c.Put("k", 1, at, v)
	v[0] = 2
	got, _ := c.Get("k", 1, at)
	got = append(got[:0], 3)
	if again, _ := c.Get("k", 1, at); again[0] != 1 {
		t.Fatalf("the held value changed to %v through a caller's copy", again)
	}
}
