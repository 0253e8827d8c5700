package keys

import (
	"bytes"
	"context"
	"crypto"
	"sync"
)

// SignerCache remembers the signers a provider returned, by purpose and key
// ID, so a wrapped key is unwrapped once per process rather than once per
// signature. An entry is used only for the same purpose and the same blob:
// a Ref copied onto another record never picks up a signer cached for the
// original.
type SignerCache struct {
	p       Provider
	mu      sync.RWMutex
	signers map[cacheKey]cachedSigner
}

type cacheKey struct {
	purpose Purpose
	id      string
}

type cachedSigner struct {
	blob   []byte
	signer crypto.Signer
}

// NewSignerCache returns a cache in front of p.
func NewSignerCache(p Provider) *SignerCache {
	return &SignerCache{p: p, signers: map[cacheKey]cachedSigner{}}
}

// Signer returns the signer for ref bound to purpose, asking the provider
// the first time.
func (c *SignerCache) Signer(ctx context.Context, ref Ref, purpose Purpose) (crypto.Signer, error) {
	k := cacheKey{purpose, ref.ID}
	c.mu.RLock()
	e, ok := c.signers[k]
	c.mu.RUnlock()
	if ok && bytes.Equal(e.blob, ref.Blob) {
		return e.signer, nil
	}
	sg, err := c.p.Signer(ctx, ref, purpose)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.signers[k] = cachedSigner{blob: bytes.Clone(ref.Blob), signer: sg}
	c.mu.Unlock()
	return sg, nil
}
