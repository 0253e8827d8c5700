package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// Name is the provider name of keys held in a PKCS#11 token, as stored
// in keys.Ref.Provider and chosen by the configuration's
// keys.ca_key_provider.
const Name = "pkcs11"

// idBytes is the length of the random CKA_ID of a key KeyProvider makes.
const idBytes = 16

// ErrPurposeRefused means a key was asked for a purpose the token does not
// hold: only CA and OCSP responder keys are generated in it (managed
// end-entity keys must be exportable; audit and server TLS keys stay
// software keys), or a key the server never destroys (a CA's) was asked
// to be destroyed.
var ErrPurposeRefused = errors.New("pkcs11: only CA and OCSP responder keys are kept in the token")

// ErrNotBound means a Ref does not name the token key of the record it was
// read from: its provider is not this one, its label is another record's
// purpose, or the key with its CKA_ID carries another label. A Ref copied
// from one CA record onto another is refused so.
var ErrNotBound = errors.New("pkcs11: the key is not bound to this record (its reference was copied from another record or altered)")

// tokenPurpose is one kind of key the token holds.
type tokenPurpose struct {
	prefix keys.Purpose
	// perKey: the record has a new key now and then (an OCSP responder,
	// at each of its certificates), so two keys of one purpose coexist
	// while the old one is retired; each is labelled "<purpose>/<CKA_ID>".
	// Otherwise the record's one key is labelled with its purpose.
	perKey bool
	// destroy: the server destroys a key of this purpose once it has
	// replaced it. A CA key is never destroyed here.
	destroy bool
}

// tokenPurposes are the kinds of key KeyProvider makes.
var tokenPurposes = []tokenPurpose{
	{prefix: keys.CAPurpose("")},
	{prefix: keys.OCSPPurpose(""), perKey: true, destroy: true},
}

// label is the CKA_LABEL of the key with CKA_ID id (hex) for purpose.
func (tp tokenPurpose) label(purpose keys.Purpose, id string) string {
	if tp.perKey {
		return string(purpose) + "/" + id
	}
	return string(purpose)
}

// KeyProvider is a keys.Provider over one token: it generates CA and OCSP
// responder keys there, labelled with their purpose ("ca:<id>",
// "ocsp:<CA id>/<CKA_ID>") under a random CKA_ID, finds them again by
// that CKA_ID, checking the label, and destroys retired responder keys.
// Its keys are never exportable.
type KeyProvider struct {
	p *Provider

	mu      sync.RWMutex
	signers map[string]*Signer // by CKA_ID in hex
}

var (
	_ keys.Provider  = (*KeyProvider)(nil)
	_ keys.Capable   = (*KeyProvider)(nil)
	_ keys.Destroyer = (*KeyProvider)(nil)
)

// NewKeyProvider returns the keys.Provider of token p.
func NewKeyProvider(p *Provider) *KeyProvider {
	return &KeyProvider{p: p, signers: map[string]*Signer{}}
}

// Capabilities says the token's keys never leave it.
func (k *KeyProvider) Capabilities() keys.Capabilities { return keys.Capabilities{Exportable: false} }

// checkPurpose refuses an invalid purpose and any the token does not hold.
func checkPurpose(purpose keys.Purpose) (tokenPurpose, error) {
	if err := purpose.Validate(); err != nil {
		return tokenPurpose{}, fmt.Errorf("pkcs11: %w", err)
	}
	for _, tp := range tokenPurposes {
		if strings.HasPrefix(string(purpose), string(tp.prefix)) {
			return tp, nil
		}
	}
	return tokenPurpose{}, fmt.Errorf("%w: %q is not a CA or OCSP responder key", ErrPurposeRefused, purpose)
}

// checkRef refuses (ErrNotBound) a Ref of another provider, with an ID
// that is not a CKA_ID in hex, or not labelled for purpose, and returns
// its CKA_ID and the label its token key must have.
func checkRef(ref keys.Ref, tp tokenPurpose, purpose keys.Purpose) (id []byte, label string, err error) {
	if ref.Provider != Name {
		return nil, "", fmt.Errorf("%w: key %s is a %q key, not a %s one", ErrNotBound, ref.ID, ref.Provider, Name)
	}
	id, err = hex.DecodeString(ref.ID)
	if err != nil || len(id) == 0 {
		return nil, "", fmt.Errorf("%w: key ID %q is not a CKA_ID in hex", ErrNotBound, ref.ID)
	}
	label = tp.label(purpose, ref.ID)
	if string(ref.Blob) != label {
		return nil, "", fmt.Errorf("%w: key %s is labelled %q, this record's is %q", ErrNotBound, ref.ID, ref.Blob, label)
	}
	return id, label, nil
}

// Generate creates a key of algorithm alg in the token, labelled for
// purpose, under a random CKA_ID. The Ref's ID is the CKA_ID in hex and
// its Blob the label.
func (k *KeyProvider) Generate(ctx context.Context, alg pki.KeyAlgorithm, purpose keys.Purpose) (keys.Ref, crypto.Signer, error) {
	tp, err := checkPurpose(purpose)
	if err != nil {
		return keys.Ref{}, nil, err
	}
	id := make([]byte, idBytes)
	if _, err := rand.Read(id); err != nil {
		return keys.Ref{}, nil, fmt.Errorf("pkcs11: key ID: %w", err)
	}
	hexID := hex.EncodeToString(id)
	label := tp.label(purpose, hexID)
	sg, err := k.p.GenerateKey(ctx, alg, label, id)
	if err != nil {
		return keys.Ref{}, nil, err
	}
	ref := keys.Ref{Provider: Name, ID: hexID, Algorithm: alg, Blob: []byte(label)}
	k.mu.Lock()
	k.signers[ref.ID] = sg
	k.mu.Unlock()
	return ref, sg, nil
}

// Signer returns the signer of ref for purpose. It refuses (ErrNotBound) a
// Ref of another provider or labelled for another purpose, and a key whose
// label in the token is not the one purpose gives it; the key itself is
// adopted (checked sensitive, never extractable, matching its public key)
// once and cached.
func (k *KeyProvider) Signer(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error) {
	tp, err := checkPurpose(purpose)
	if err != nil {
		return nil, err
	}
	id, label, err := checkRef(ref, tp, purpose)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	sg, ok := k.signers[ref.ID]
	k.mu.RUnlock()
	if !ok {
		if sg, err = k.p.AdoptKey(ctx, KeySelector{ID: id}); err != nil {
			return nil, fmt.Errorf("pkcs11: key %s for %q: %w", ref.ID, purpose, err)
		}
	}
	if sg.Label() != label {
		return nil, fmt.Errorf("%w: the token's key with CKA_ID %s is labelled %q, this record's is %q", ErrNotBound, ref.ID, sg.Label(), label)
	}
	if ref.Algorithm != "" && sg.Algorithm() != ref.Algorithm {
		return nil, fmt.Errorf("%w: the token's key with CKA_ID %s is %s, the record says %s", ErrNotBound, ref.ID, sg.Algorithm(), ref.Algorithm)
	}
	if !ok {
		k.mu.Lock()
		k.signers[ref.ID] = sg
		k.mu.Unlock()
	}
	return sg, nil
}

// Destroy removes the key pair of ref, a retired key of purpose, from the
// token. It refuses a purpose whose keys are never destroyed (a CA's:
// ErrPurposeRefused), a Ref not bound to purpose and token objects with
// ref's CKA_ID under another label (ErrNotBound): it destroys only the key
// the record named. A key that is gone already is no error.
func (k *KeyProvider) Destroy(ctx context.Context, ref keys.Ref, purpose keys.Purpose) error {
	tp, err := checkPurpose(purpose)
	if err != nil {
		return err
	}
	if !tp.destroy {
		return fmt.Errorf("%w: the server never destroys a key of %q", ErrPurposeRefused, purpose)
	}
	id, label, err := checkRef(ref, tp, purpose)
	if err != nil {
		return err
	}
	if err := k.p.DestroyKey(ctx, id, label); err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.signers, ref.ID)
	k.mu.Unlock()
	return nil
}
