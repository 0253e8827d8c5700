// Package gencache owns the in-memory copies a server keeps of rows it
// reads on every request (tokens and their principals, ACME accounts and
// provisioners), under one rule: an entry is used only while the store's
// generation it was read under is current — the store moves the
// generation after every transaction that changes those rows, so a change
// made through this process takes effect on the very next request — and
// for less than a maximum age, which bounds how stale a change made by
// another process writing the same database (another replica) can be.
package gencache

import (
	"sync"
	"time"
)

// Cache holds values by key under a store generation. Only values read
// from the store are added (never a miss), so a guesser cannot fill it
// with keys that do not exist. It is safe for concurrent use.
type Cache[V any] struct {
	maxAge time.Duration
	size   int
	// clone copies a value in and out, so that no caller shares it; nil
	// for values nobody changes.
	clone func(V) V

	mu sync.Mutex
	// gen is the generation every entry was read under; a newer one
	// empties the cache.
	gen     uint64
	entries map[string]entry[V]
}

type entry[V any] struct {
	v V
	// read is when the entry was read, on the caller's clock: before the
	// store was asked.
	read time.Time
}

// New returns a cache of at most size entries, each used for less than
// maxAge; clone (may be nil) copies values in and out.
func New[V any](maxAge time.Duration, size int, clone func(V) V) *Cache[V] {
	return &Cache[V]{maxAge: maxAge, size: size, clone: clone, entries: map[string]entry[V]{}}
}

func (c *Cache[V]) copy(v V) V {
	if c.clone == nil {
		return v
	}
	return c.clone(v)
}

// Get returns (a copy of) the entry for key if it was read under
// generation gen and less than the maximum age before now.
func (c *Cache[V]) Get(key string, gen uint64, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	if c.gen != gen {
		return zero, false
	}
	e, ok := c.entries[key]
	if !ok {
		return zero, false
	}
	// A clock that went back says nothing about the entry's age.
	if age := now.Sub(e.read); age < 0 || age >= c.maxAge {
		delete(c.entries, key)
		return zero, false
	}
	return c.copy(e.v), true
}

// Put adds (a copy of) v, read at read under generation gen. A value read
// under a generation older than the cache's is dropped: a change has
// committed since, and v may predate it. Past the size an arbitrary entry
// is evicted.
func (c *Cache[V]) Put(key string, gen uint64, read time.Time, v V) {
	v = c.copy(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return
	case gen > c.gen:
		clear(c.entries)
		c.gen = gen
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.size {
		for k := range c.entries { // map order is unspecified: an arbitrary victim
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = entry[V]{v: v, read: read}
}

// Remove drops the entry for key.
func (c *Cache[V]) Remove(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// Len is the number of entries held.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
