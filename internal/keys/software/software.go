// Package software owns envelope-encrypted private keys held in memory and
// at rest under a 32-byte key-encryption key (KEK): each key is sealed with
// its own AES-256-GCM data key, and the data key is sealed with the KEK.
package software

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// Name is the provider name recorded in every Ref this package creates.
const Name = "software"

// KEKSize is the length in bytes of a key-encryption key (AES-256).
const KEKSize = 32

var (
	_ keys.Provider = (*Provider)(nil)
	_ keys.Exporter = (*Provider)(nil)
)

// Blob layout, version 1. All offsets are fixed so parsing needs no lengths:
//
//	[0]       version (1)
//	[1:13]    nonce sealing the data key under the KEK
//	[13:61]   data key (32 bytes) sealed under the KEK, with its 16-byte tag
//	[61:73]   nonce sealing the PKCS#8 key under the data key
//	[73:]     PKCS#8 private key sealed under the data key, with its tag
//
// Both seals use the key ID as additional authenticated data, so a blob
// moved to another ID (or a data key spliced from another blob) fails to open.
const (
	blobVersion1  = 1
	dataKeySize   = 32
	nonceSize     = 12
	tagSize       = 16
	wrappedDKSize = dataKeySize + tagSize
	offDKNonce    = 1
	offDK         = offDKNonce + nonceSize
	offCTNonce    = offDK + wrappedDKSize
	offCT         = offCTNonce + nonceSize
	minBlobSize   = offCT + tagSize
	maxIDLen      = 128
)

// ErrMalformedBlob is returned when a Ref's blob is not a blob this package wrote.
var ErrMalformedBlob = errors.New("software: malformed wrapped key")

// Provider keeps keys wrapped under one KEK. It is safe for concurrent use.
type Provider struct {
	kek  cipher.AEAD
	rand io.Reader
	// cache maps key ID to *cached, so a key in use is unwrapped and parsed
	// once. Only Signer fills it: CA keys are asked for again and again,
	// while managed end-entity keys passed through Generate or Wrap are
	// not, and caching them would grow memory with every one issued.
	cache sync.Map
}

type cached struct {
	blob   []byte
	signer crypto.Signer
}

// New returns a provider that wraps keys under kek, which must be exactly
// KEKSize bytes. A nil rand uses crypto/rand; rand supplies key IDs, data
// keys and nonces, and must be safe for concurrent use.
func New(kek []byte, random io.Reader) (*Provider, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("software: KEK is %d bytes, want %d", len(kek), KEKSize)
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	return &Provider{kek: aead, rand: random}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("software: AES key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("software: GCM: %w", err)
	}
	return aead, nil
}

// Generate creates a key of the given algorithm and returns it wrapped.
func (p *Provider) Generate(ctx context.Context, alg pki.KeyAlgorithm) (keys.Ref, crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return keys.Ref{}, nil, fmt.Errorf("software: generate: %w", err)
	}
	signer, err := alg.Generate(p.rand)
	if err != nil {
		return keys.Ref{}, nil, fmt.Errorf("software: generate %s key: %w", alg, err)
	}
	id, err := p.newID()
	if err != nil {
		return keys.Ref{}, nil, err
	}
	ref, err := p.wrap(id, alg, signer)
	if err != nil {
		return keys.Ref{}, nil, err
	}
	return ref, signer, nil
}

// Wrap seals an existing key under a new Ref. An empty id gets a fresh one.
func (p *Provider) Wrap(ctx context.Context, id string, key crypto.Signer) (keys.Ref, error) {
	if err := ctx.Err(); err != nil {
		return keys.Ref{}, fmt.Errorf("software: wrap: %w", err)
	}
	if key == nil {
		return keys.Ref{}, errors.New("software: wrap: nil key")
	}
	alg, err := pki.AlgorithmOf(key.Public())
	if err != nil {
		return keys.Ref{}, fmt.Errorf("software: wrap: %w", err)
	}
	if id == "" {
		if id, err = p.newID(); err != nil {
			return keys.Ref{}, err
		}
	} else if err := checkID(id); err != nil {
		return keys.Ref{}, err
	}
	return p.wrap(id, alg, key)
}

// Signer unwraps ref and returns its signer. A blob that does not
// authenticate under this provider's KEK and ref.ID returns an error
// wrapping keys.ErrWrongKEK.
func (p *Provider) Signer(ctx context.Context, ref keys.Ref) (crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("software: signer: %w", err)
	}
	if ref.Provider != Name {
		return nil, fmt.Errorf("software: key %q belongs to provider %q", ref.ID, ref.Provider)
	}
	if err := checkID(ref.ID); err != nil {
		return nil, err
	}
	if v, ok := p.cache.Load(ref.ID); ok {
		c := v.(*cached)
		if bytes.Equal(c.blob, ref.Blob) {
			return c.signer, nil
		}
	}
	signer, err := p.unwrap(ref)
	if err != nil {
		return nil, err
	}
	p.cache.Store(ref.ID, &cached{blob: bytes.Clone(ref.Blob), signer: signer})
	return signer, nil
}

func (p *Provider) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("software: read key ID randomness: %w", err)
	}
	return "k_" + hex.EncodeToString(b), nil
}

func checkID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("software: key ID must be 1-%d bytes, got %d", maxIDLen, len(id))
	}
	return nil
}

func (p *Provider) wrap(id string, alg pki.KeyAlgorithm, key crypto.Signer) (keys.Ref, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keys.Ref{}, fmt.Errorf("software: marshal PKCS#8: %w", err)
	}
	defer clear(der)

	dataKey := make([]byte, dataKeySize)
	defer clear(dataKey)
	if _, err := io.ReadFull(p.rand, dataKey); err != nil {
		return keys.Ref{}, fmt.Errorf("software: read data key: %w", err)
	}
	dk, err := newGCM(dataKey)
	if err != nil {
		return keys.Ref{}, err
	}

	blob := make([]byte, offCT, offCT+len(der)+tagSize)
	blob[0] = blobVersion1
	if _, err := io.ReadFull(p.rand, blob[offDKNonce:offDK]); err != nil {
		return keys.Ref{}, fmt.Errorf("software: read nonce: %w", err)
	}
	if _, err := io.ReadFull(p.rand, blob[offCTNonce:offCT]); err != nil {
		return keys.Ref{}, fmt.Errorf("software: read nonce: %w", err)
	}
	aad := []byte(id)
	p.kek.Seal(blob[offDK:offDK], blob[offDKNonce:offDK], dataKey, aad)
	blob = dk.Seal(blob, blob[offCTNonce:offCT], der, aad)

	return keys.Ref{Provider: Name, ID: id, Algorithm: alg, Blob: blob}, nil
}

func (p *Provider) unwrap(ref keys.Ref) (crypto.Signer, error) {
	b := ref.Blob
	if len(b) < minBlobSize {
		return nil, fmt.Errorf("%w: key %q blob is %d bytes", ErrMalformedBlob, ref.ID, len(b))
	}
	if b[0] != blobVersion1 {
		return nil, fmt.Errorf("%w: key %q blob version %d, want %d", ErrMalformedBlob, ref.ID, b[0], blobVersion1)
	}
	aad := []byte(ref.ID)
	dataKey, err := p.kek.Open(nil, b[offDKNonce:offDK], b[offDK:offCTNonce], aad)
	if err != nil {
		return nil, fmt.Errorf("software: unwrap data key of %q: %w", ref.ID, keys.ErrWrongKEK)
	}
	defer clear(dataKey)
	dk, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	der, err := dk.Open(nil, b[offCTNonce:offCT], b[offCT:], aad)
	if err != nil {
		return nil, fmt.Errorf("software: unwrap key %q: %w", ref.ID, keys.ErrWrongKEK)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("software: parse unwrapped key %q: %w", ref.ID, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("software: unwrapped key %q is %T, not a signer", ref.ID, parsed)
	}
	if ref.Algorithm != "" {
		alg, err := pki.AlgorithmOf(signer.Public())
		if err != nil {
			return nil, fmt.Errorf("software: unwrapped key %q: %w", ref.ID, err)
		}
		if alg != ref.Algorithm {
			return nil, fmt.Errorf("software: key %q is %s but its Ref says %s", ref.ID, alg, ref.Algorithm)
		}
	}
	return signer, nil
}
