package revcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// FetchCache keeps the answers of revocation fetches, by method, URL and
// request body, for the checks of one run (a scan of many endpoints
// sharing their CAs' CRLs and OCSP answers): each is fetched once, and
// checks that want it at the same time wait for that one fetch. Only
// complete answers are kept, up to a total size; a failed fetch is tried
// again by the next check. Use one per run: answers are not refreshed.
type FetchCache struct {
	max int64

	mu      sync.Mutex
	size    int64
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	done chan struct{}
	data []byte
	err  error
}

// NewFetchCache returns a cache keeping at most maxBytes of answers.
func NewFetchCache(maxBytes int64) *FetchCache {
	return &FetchCache{max: maxBytes, entries: map[string]*cacheEntry{}}
}

func cacheKey(method, u string, body []byte) string {
	sum := sha256.Sum256(body)
	return method + " " + u + " " + hex.EncodeToString(sum[:])
}

// get returns the answer for key: the cached one, the one being fetched
// (waiting for it, or for ctx), or fetch's.
func (c *FetchCache) get(ctx context.Context, key string, fetch func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.mu.Unlock()
		select {
		case <-e.done:
			if e.err == nil {
				return e.data, nil
			}
			// The fetch this check waited for failed (perhaps its own
			// context ended): try again, for this check.
			return fetch()
		case <-ctx.Done():
			return nil, &sourceError{kind: FailTimeout, msg: "interrupted: " + ctx.Err().Error(), err: ctx.Err()}
		}
	}
	e := &cacheEntry{done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	e.data, e.err = fetch()
	c.mu.Lock()
	if e.err != nil || c.size+int64(len(e.data)) > c.max {
		delete(c.entries, key)
	} else {
		c.size += int64(len(e.data))
	}
	c.mu.Unlock()
	close(e.done)
	return e.data, e.err
}
