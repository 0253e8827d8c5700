package software

import (
	"errors"
	"fmt"
	"io"

	"github.com/certwright/certwright/internal/keys"
)

// Re-wrapping under a new KEK (certwright keys rotate-kek). Only the data
// key is sealed under the KEK, so a key moves to another KEK without its
// private key being decrypted: the data key is opened under p's KEK and
// sealed again under to's, with a new nonce and the same additional data;
// the private key stays sealed under its data key as it was. Nothing is
// cached.

// RewrapTo returns ref's blob with its data key sealed under to's KEK
// instead of p's, still bound to purpose and ref.ID. The blob must open
// under p's KEK for purpose (else the error wraps keys.ErrWrongKEK), and
// its private key must open under its data key, so a damaged blob is never
// carried over. Legacy (version-1) blobs are refused: they are opened only
// by MigrateLegacy.
func (p *Provider) RewrapTo(to *Provider, ref keys.Ref, purpose keys.Purpose) ([]byte, error) {
	if to == nil {
		return nil, errors.New("software: rewrap: no target provider")
	}
	if ref.Provider != Name {
		return nil, fmt.Errorf("software: key %q belongs to provider %q", ref.ID, ref.Provider)
	}
	if err := checkID(ref.ID); err != nil {
		return nil, err
	}
	if err := purpose.Validate(); err != nil {
		return nil, fmt.Errorf("software: rewrap key %q: %w", ref.ID, err)
	}
	der, err := p.openV2(ref, purpose)
	if err != nil {
		return nil, err
	}
	clear(der)
	aad := aadV2(purpose, ref.ID)
	b := ref.Blob
	dataKey, err := p.kek.Open(nil, b[offDKNonce:offDK], b[offDK:offCTNonce], aad)
	if err != nil {
		return nil, fmt.Errorf("software: unwrap data key of %q: %w", ref.ID, keys.ErrWrongKEK)
	}
	defer clear(dataKey)
	out := make([]byte, len(b))
	out[0] = blobVersion2
	if _, err := io.ReadFull(to.rand, out[offDKNonce:offDK]); err != nil {
		return nil, fmt.Errorf("software: read nonce: %w", err)
	}
	to.kek.Seal(out[offDK:offDK], out[offDKNonce:offDK], dataKey, aad)
	copy(out[offCTNonce:], b[offCTNonce:])
	return out, nil
}

// ResealTo returns sealed (made by p.Seal with aad) sealed under to's KEK
// instead. A secret that does not open under p's KEK with aad is an error
// wrapping keys.ErrWrongKEK.
func (p *Provider) ResealTo(to *Provider, sealed, aad []byte) ([]byte, error) {
	if to == nil {
		return nil, errors.New("software: reseal: no target provider")
	}
	pt, err := p.Open(sealed, aad)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return to.Seal(pt, aad)
}

// CurrentBlobPrefix is the first byte of a blob in the format this
// package writes (version 2, bound to its purpose).
func CurrentBlobPrefix() []byte { return []byte{blobVersion2} }
