package app

import (
	"context"
	"errors"

	"github.com/certwright/certwright/internal/keys"
)

// hsmToken is the PKCS#11 token of keys.pkcs11, opened once per process
// (a module is initialised once): it holds CA keys, and, with
// keys.kek_provider pkcs11, the AES key that seals the instance KEK.
type hsmToken struct {
	// keys is the token as the provider of CA keys.
	keys keys.Provider
	// kek returns the token's AES key labelled label, generating it
	// first when create is set (refused when the label is taken).
	kek func(ctx context.Context, label string, create bool) (tokenKEK, error)
	// close logs out and unloads the module.
	close func() error
}

// Close closes the token; a nil token is none.
func (t *hsmToken) Close() error {
	if t == nil {
		return nil
	}
	return t.close()
}

// tokenKEK is an AES-256 key in the token that seals and opens data
// there (pkcs11.KEK).
type tokenKEK interface {
	Seal(ctx context.Context, plaintext, additionalData []byte) ([]byte, error)
	Open(ctx context.Context, sealed, additionalData []byte) ([]byte, error)
	Destroy(ctx context.Context) error
}

// Refusals about the token's KEK, whatever the build (the pkcs11
// package's own errors exist only with cgo).
var (
	// ErrSealedKEK: the sealed KEK file does not open under the token's
	// KEK (sealed by another token key, or altered).
	ErrSealedKEK = errors.New("the sealed key-encryption key does not open under the token's KEK")
	// ErrTokenKEKMissing: the token holds no key under keys.pkcs11.kek_label.
	ErrTokenKEKMissing = errors.New("the token holds no KEK under that label")
	// ErrTokenKEKExists: init or seal-kek would generate the token KEK,
	// but the label is taken.
	ErrTokenKEKExists = errors.New("the token already holds an object under that label")
)
