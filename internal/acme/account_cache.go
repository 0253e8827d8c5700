package acme

import (
	"slices"
	"sync"
	"time"
)

// Account cache bounds.
const (
	// AccountCacheMaxAge is how long a resolved account is used without
	// reading it again. It bounds how stale a change made by another
	// process writing the same database (another replica on PostgreSQL, a
	// CLI on the SQLite file) can be on this one: an account deactivated
	// or rolled over to a new key, an external account key revoked, a
	// provisioner disabled, changed or deleted there takes effect here
	// within AccountCacheMaxAge. A change made through this process takes
	// effect on the very next request: the store moves its ACME generation
	// with it (Store.ACMEGeneration), and an entry of an older generation
	// is never used. The provisioner cache follows the same rules.
	AccountCacheMaxAge = time.Second
	// AccountCacheSize bounds the cached accounts; a new one past it
	// evicts an arbitrary one.
	AccountCacheSize = 10000
)

// genCache holds copies of what the store returned, by key, under the
// store's ACME generation: an entry is used only while the generation it
// was read under is current and for less than AccountCacheMaxAge. Only
// objects the store returned are added (never a miss), so a guesser cannot
// fill it with names that do not exist.
type genCache[V any] struct {
	mu sync.Mutex
	// gen is the generation every entry was read under; a newer one
	// empties the cache.
	gen     uint64
	entries map[string]genEntry[V]
	size    int
	// clone copies a value in and out, so that no caller shares it.
	clone func(V) V
}

type genEntry[V any] struct {
	v V
	// read is when the entry was read, on the service's clock: before the
	// store was asked.
	read time.Time
}

func newGenCache[V any](size int, clone func(V) V) *genCache[V] {
	return &genCache[V]{entries: map[string]genEntry[V]{}, size: size, clone: clone}
}

// get returns a copy of the entry for key if it was read under generation
// gen and less than AccountCacheMaxAge before now.
func (c *genCache[V]) get(key string, gen uint64, now time.Time) (V, bool) {
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
	if age := now.Sub(e.read); age < 0 || age >= AccountCacheMaxAge {
		delete(c.entries, key)
		return zero, false
	}
	return c.clone(e.v), true
}

// put adds a copy of v, read at read under generation gen. An entry read
// under a generation older than the cache's is dropped: a change has
// committed since, and v may predate it.
func (c *genCache[V]) put(key string, gen uint64, read time.Time, v V) {
	v = c.clone(v)
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
	c.entries[key] = genEntry[V]{v: v, read: read}
}

func (c *genCache[V]) remove(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// cloneAccount returns a copy of a sharing nothing with it.
func cloneAccount(a *Account) *Account {
	c := *a
	c.KeyJWK = slices.Clone(a.KeyJWK)
	c.Contact = slices.Clone(a.Contact)
	return &c
}

// cloneProvisioner returns a copy of p sharing nothing with it.
func cloneProvisioner(p *Provisioner) *Provisioner {
	c := *p
	c.Challenges = slices.Clone(p.Challenges)
	c.AllowNames = slices.Clone(p.AllowNames)
	return &c
}
