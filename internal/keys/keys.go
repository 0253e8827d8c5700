// Package keys owns how private keys are referred to and obtained: a Ref
// names a key held by a provider, and a provider turns a Ref into a
// crypto.Signer for one Purpose. Private key bytes never leave a provider
// unwrapped, except for a managed end-entity key handed out once through
// Export.
package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"

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

// Purpose names what a key is for and whose it is ("ca:<id>",
// "managed:<serial>", ...). A provider binds a key to its purpose when it
// wraps it (for software keys: in the AEAD additional data) and refuses to
// unwrap it for any other, so a wrapped key copied onto another record in
// the database does not unwrap there. Callers derive the purpose from the
// record they are acting on, never from the stored Ref.
type Purpose string

// The purposes, one constructor per kind of record that holds a key.
const (
	purposeCA        = "ca:"
	purposeManaged   = "managed:"
	purposeAudit     = "audit:"
	purposeOCSP      = "ocsp:"
	purposeServerTLS = "tls:server:"
)

// CAPurpose is the purpose of the private key of CA id.
func CAPurpose(id string) Purpose { return Purpose(purposeCA + id) }

// ManagedPurpose is the purpose of the server-kept key of end-entity
// certificate serial, the only kind of key that may be exported.
func ManagedPurpose(serial string) Purpose { return Purpose(purposeManaged + serial) }

// AuditPurpose is the purpose of audit checkpoint key id.
func AuditPurpose(id string) Purpose { return Purpose(purposeAudit + id) }

// OCSPPurpose is the purpose of the delegated OCSP responder key of CA caID.
func OCSPPurpose(caID string) Purpose { return Purpose(purposeOCSP + caID) }

// ServerTLSPurpose is the purpose of the key of the server's own TLS
// certificate serial. It is never exported.
func ServerTLSPurpose(serial string) Purpose { return Purpose(purposeServerTLS + serial) }

// ErrPurpose is returned for an empty or unknown purpose.
var ErrPurpose = errors.New("keys: invalid key purpose")

// Validate reports whether p is one of the purposes above with an owner.
func (p Purpose) Validate() error {
	for _, prefix := range []string{purposeCA, purposeManaged, purposeAudit, purposeOCSP, purposeServerTLS} {
		if owner, ok := strings.CutPrefix(string(p), prefix); ok {
			if owner == "" || strings.ContainsRune(owner, 0) {
				return fmt.Errorf("%w: %q names no owner", ErrPurpose, p)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrPurpose, p)
}

// ErrWrongKEK means a wrapped key could not be unwrapped: the key-encryption
// key in use is not the one the key was wrapped with, or the blob was altered
// or moved to a record (purpose) it was not wrapped for.
var ErrWrongKEK = errors.New("keys: key-encryption key does not match (or the wrapped key was altered or moved to another record)")

// ErrLegacyFormat means a key is still wrapped in the format of versions up
// to 5e5a77d, bound to its ID only. The server re-wraps such keys on start;
// one that is left was not the key of the record holding it (the database
// was altered), and it is never used.
var ErrLegacyFormat = errors.New("keys: key is wrapped in the legacy format bound to its ID only and was not re-wrapped on start (it is not the key of the record holding it)")

// ErrKeyMismatch means a private key's public half is not the public key of
// the certificate (or CA, or audit key) whose record holds it: the record
// was tampered with. Such a key is neither used nor exported.
var ErrKeyMismatch = errors.New("keys: private key does not match the public key of its record")

// ErrInstanceKey means a key offered as a managed (exportable) key is one
// of the instance's own keys — a CA's, an OCSP responder's or an audit
// key — because a database record was altered to put it there. Such a
// key is never a managed key: it is neither re-wrapped as one nor exported.
var ErrInstanceKey = errors.New("keys: the key is one of the instance's own keys (a CA, OCSP responder or audit key), never a managed key")

// CheckNotInstanceKey returns an error wrapping ErrInstanceKey when pub
// equals any of own, the public keys of the instance's own keys.
func CheckNotInstanceKey(pub crypto.PublicKey, own []crypto.PublicKey) error {
	p, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fmt.Errorf("%w: cannot compare a %T", ErrKeyMismatch, pub)
	}
	for _, o := range own {
		if o != nil && p.Equal(o) {
			return ErrInstanceKey
		}
	}
	return nil
}

// CheckPublic returns an error wrapping ErrKeyMismatch unless sg's public
// half equals want.
func CheckPublic(sg crypto.Signer, want crypto.PublicKey) error {
	if sg == nil || want == nil {
		return fmt.Errorf("%w: nothing to compare", ErrKeyMismatch)
	}
	pub, ok := sg.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(want) {
		return ErrKeyMismatch
	}
	return nil
}

// Provider creates keys and returns signers for them.
type Provider interface {
	// Generate creates a new key bound to purpose. The returned Ref must
	// be persisted by the caller to use the key again.
	Generate(ctx context.Context, alg pki.KeyAlgorithm, purpose Purpose) (Ref, crypto.Signer, error)
	// Signer returns a signer for a previously generated key; it fails
	// (wrapping ErrWrongKEK) when the key was not bound to purpose.
	Signer(ctx context.Context, ref Ref, purpose Purpose) (crypto.Signer, error)
}

// Destroyer is implemented by providers whose keys outlive the record
// that refers to them (a token's keys stay in the token when the database
// row goes): the owner of a key it has replaced destroys it. Keys of a
// provider that is not a Destroyer (wrapped software keys) end with their
// record.
type Destroyer interface {
	// Destroy removes the key ref, bound to purpose, from the provider.
	// A key that is already gone is no error, so a destruction can be
	// retried. A provider may refuse purposes whose keys it never
	// destroys (a CA's).
	Destroy(ctx context.Context, ref Ref, purpose Purpose) error
}

// Exporter is implemented by providers whose keys may be handed out, for
// managed end-entity keys only; CA keys are never passed to it.
type Exporter interface {
	// Wrap stores an existing private key under a new Ref bound to purpose.
	Wrap(ctx context.Context, purpose Purpose, key crypto.Signer) (Ref, error)
	// ExportPKCS8 unwraps ref for purpose and returns its PKCS#8 DER
	// without keeping it (nothing is cached); the caller clears it.
	ExportPKCS8(ctx context.Context, ref Ref, purpose Purpose) ([]byte, error)
}
