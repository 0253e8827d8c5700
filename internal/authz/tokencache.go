package authz

import (
	"slices"
	"sync"
	"time"
)

// Token cache bounds.
const (
	// TokenCacheMaxAge is how long a cached token and principal are used
	// without reading them again. It bounds how stale a change made by
	// another process writing the same database (another replica on
	// PostgreSQL, a CLI on the SQLite file) can be on this one: a token
	// revoked, a principal disabled or a role binding removed there stops
	// working here within TokenCacheMaxAge. A change made through this
	// process takes effect on the very next request: the store moves its
	// AccessGeneration with it, and an entry of an older generation is
	// never used.
	TokenCacheMaxAge = time.Second
	// TokenCacheSize bounds the cached tokens; a new one past it evicts
	// an arbitrary one.
	TokenCacheSize = 10000
)

// tokenCache holds what a successful token authentication read from the
// store, by token ID. Only tokens whose secret verified and whose
// principal was enabled are added, so a guesser cannot fill it. An entry
// is a hint, never a credential: every use compares the presented secret
// with the stored hash and checks expiry against the clock.
type tokenCache struct {
	mu sync.Mutex
	// gen is the store's AccessGeneration every entry was read under; a
	// newer one empties the cache.
	gen     uint64
	entries map[string]*cachedToken
	size    int
}

type cachedToken struct {
	hash    [32]byte
	expires time.Time // zero: never
	// principal is what the uncached path returns, Auth and AuthExpiresAt
	// filled.
	principal Principal
	// read is when the entry was read, on the authenticator's clock:
	// before the store was asked.
	read time.Time
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{entries: map[string]*cachedToken{}, size: size}
}

// get returns the entry for id if it was read under generation gen and
// less than TokenCacheMaxAge before now.
func (c *tokenCache) get(id string, gen uint64, now time.Time) *cachedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return nil
	}
	e := c.entries[id]
	if e == nil {
		return nil
	}
	// A clock that went back says nothing about the entry's age.
	if age := now.Sub(e.read); age < 0 || age >= TokenCacheMaxAge {
		delete(c.entries, id)
		return nil
	}
	return e
}

// put adds e, read under generation gen. An entry read under a
// generation older than the cache's is dropped: a change has committed
// since, and e may predate it.
func (c *tokenCache) put(id string, gen uint64, e *cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return
	case gen > c.gen:
		clear(c.entries)
		c.gen = gen
	}
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.size {
		for k := range c.entries { // map order is unspecified: an arbitrary victim
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = e
}

func (c *tokenCache) remove(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// len is for tests.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// copyPrincipal returns p with its own Bindings, so that a caller changing
// a binding cannot change what the next request sees.
func copyPrincipal(p Principal) Principal {
	p.Bindings = slices.Clone(p.Bindings)
	return p
}
