// Package keys owns how private keys are referred to and obtained: a Ref
// names a key held by a provider, and a provider turns a Ref into a
// crypto.Signer. Private key bytes never leave a provider unwrapped, except
// for a managed end-entity key handed out once through Export.
package keys

import (
	"context"
	"crypto"
	"errors"

	"github.com/certwright/certwright/internal/pki"
)

// Ref identifies a key held by a provider. Blob is provider-specific opaque
// data: for the software provider it is the wrapped (encrypted) key; for an
// HSM it would be the object label. A Ref is safe to store and log.
type Ref struct {
	Provider  string           `json:"provider"`
	ID        string           `json:"id"`
	Algorithm pki.KeyAlgorithm `json:"algorithm"`
	Blob      []byte           `json:"-"`
}

// ErrWrongKEK means a wrapped key could not be unwrapped: the key-encryption
// key in use is not the one the key was wrapped with, or the blob was altered.
var ErrWrongKEK = errors.New("keys: key-encryption key does not match (or the wrapped key was altered)")

// Provider creates keys and returns signers for them.
type Provider interface {
	// Generate creates a new key. The returned Ref must be persisted by the
	// caller to use the key again.
	Generate(ctx context.Context, alg pki.KeyAlgorithm) (Ref, crypto.Signer, error)
	// Signer returns a signer for a previously generated key.
	Signer(ctx context.Context, ref Ref) (crypto.Signer, error)
}

// Exporter is implemented by providers whose keys may be handed out, for
// managed end-entity keys only; CA keys are never passed to it.
type Exporter interface {
	// Wrap stores an existing private key under a new Ref.
	Wrap(ctx context.Context, id string, key crypto.Signer) (Ref, error)
}
