package keys

import (
	"context"
	"crypto"
	"sync"
)

// SignerCache remembers the signers a provider returned, by key ID, so a
// wrapped key is unwrapped once per process rather than once per signature.
type SignerCache struct {
	p       Provider
	mu      sync.RWMutex
	signers map[string]crypto.Signer
}

// NewSignerCache returns a cache in front of p.
func NewSignerCache(p Provider) *SignerCache {
	return &SignerCache{p: p, signers: map[string]crypto.Signer{}}
}

// Signer returns the signer for ref, asking the provider the first time.
func (c *SignerCache) Signer(ctx context.Context, ref Ref) (crypto.Signer, error) {
	c.mu.RLock()
	sg, ok := c.signers[ref.ID]
	c.mu.RUnlock()
	if ok {
		return sg, nil
	}
	sg, err := c.p.Signer(ctx, ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.signers[ref.ID] = sg
	c.mu.Unlock()
	return sg, nil
}
