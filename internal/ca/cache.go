package ca

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/clock"
)

// CacheMaxAge bounds how stale a cached CA record can be: an entry read
// longer ago than this is read again. It is the delay after which a change
// made by another process writing the same database (another replica on
// PostgreSQL) — a CA disabled, deleted, revoked, re-enabled, its
// certificate imported or its key re-wrapped — takes effect for issuance
// here. Changes made through this process take effect on the very next
// request: every write path invalidates the cache (Cache.Invalidate).
const CacheMaxAge = time.Second

// Getter reads a CA record by id or name.
type Getter interface {
	GetCA(ctx context.Context, idOrName string) (*CA, error)
}

// Cache serves CA records from memory to the issuance path, which reads
// one on every certificate. An entry is at most CacheMaxAge old, and
// Invalidate drops every entry at once; a read that started before an
// Invalidate never stores what it read. Lookups that fail (an unknown CA)
// are not cached, so the cache holds only CAs that exist. It returns
// copies: callers may change what they get. Read-modify-write paths (the
// lifecycle Manager) must read the store itself, not the cache.
type Cache struct {
	store Getter
	clock clock.Clock

	mu      sync.Mutex
	gen     uint64
	entries map[string]cacheEntry // by the id or name looked up
}

type cacheEntry struct {
	ca *CA
	at time.Time
}

// NewCache returns a Cache over st; clk dates the entries.
func NewCache(st Getter, clk clock.Clock) *Cache {
	return &Cache{store: st, clock: clk, entries: map[string]cacheEntry{}}
}

// GetCA returns the CA idOrName, from memory when it was read less than
// CacheMaxAge ago and nothing was invalidated since.
func (c *Cache) GetCA(ctx context.Context, idOrName string) (*CA, error) {
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[idOrName]
	gen := c.gen
	c.mu.Unlock()
	// A clock that went backwards makes the entry stale too.
	if ok && !now.Before(e.at) && now.Sub(e.at) < CacheMaxAge {
		return e.ca.clone(), nil
	}
	rec, err := c.store.GetCA(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.entries[idOrName] = cacheEntry{ca: rec.clone(), at: now}
	}
	c.mu.Unlock()
	return rec, nil
}

// Invalidate drops every entry. Every write that changes a CA record
// calls it once the write is done (or failed), so the next read sees the
// database.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// clone copies c deeply enough that changing the copy (fields, the chain
// list, the deletion times) never changes the original.
func (c *CA) clone() *CA {
	out := *c
	out.ChainDER = slices.Clone(c.ChainDER)
	if c.DeletedAt != nil {
		t := *c.DeletedAt
		out.DeletedAt = &t
	}
	if c.RestorableUntil != nil {
		t := *c.RestorableUntil
		out.RestorableUntil = &t
	}
	return &out
}
