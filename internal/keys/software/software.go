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
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

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

// Blob layout, versions 1 and 2. All offsets are fixed so parsing needs
// no lengths:
//
//	[0]       version (2; 1 is the legacy format, see below)
//	[1:13]    nonce sealing the data key under the KEK
//	[13:61]   data key (32 bytes) sealed under the KEK, with its 16-byte tag
//	[61:73]   nonce sealing the PKCS#8 key under the data key
//	[73:]     PKCS#8 private key sealed under the data key, with its tag
//
// Both seals use the same additional authenticated data. In version 2 it
// binds the key's purpose and owner as well as its ID (aadV2), so a blob
// moved to another record — a CA's key copied onto a managed certificate,
// one CA's key onto another CA — fails to open, as does a data key spliced
// from another blob. Version 1 bound the key ID only; such blobs are
// opened only by MigrateLegacy, which re-wraps them as version 2.
const (
	blobVersion1  = 1
	blobVersion2  = 2
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

// LegacyBlobPrefix is the first byte of a blob in the version-1 format,
// which bound a key to its ID only. The store selects rows still holding
// such blobs by it.
var LegacyBlobPrefix = []byte{blobVersion1}

// aadV2 is the additional data of a version-2 blob. The NUL separators
// cannot occur in a purpose or ID (both are checked), so no two
// (purpose, id) pairs share an encoding.
func aadV2(purpose keys.Purpose, id string) []byte {
	return []byte("certwright-key/v2\x00" + string(purpose) + "\x00" + id)
}

// ErrLegacyBlob is returned by Signer and ExportPKCS8 for a key still
// wrapped in the version-1 format: the server re-wraps those on start
// (MigrateLegacy), except one that is not the key of its record.
var ErrLegacyBlob = keys.ErrLegacyFormat

// ErrLegacyClosed is returned by MigrateLegacy once CloseLegacy was
// called: the purpose-bound migration of this data directory finished, so
// a version-1 blob found later was put into the database afterwards (from
// a backup, or by someone who can write it) and is never opened.
var ErrLegacyClosed = fmt.Errorf("software: legacy keys are no longer opened: the purpose-bound migration already finished: %w", keys.ErrLegacyFormat)

// ErrMalformedBlob is returned when a Ref's blob is not a blob this package wrote.
var ErrMalformedBlob = errors.New("software: malformed wrapped key")

// Provider keeps keys wrapped under one KEK. It is safe for concurrent use.
type Provider struct {
	kek cipher.AEAD
	// derive is a copy of the KEK, for DeriveKey only.
	derive []byte
	rand   io.Reader
	// cache maps (purpose, key ID) to *cached, so a key in use is
	// unwrapped and parsed once. Only Signer fills it: CA keys are asked
	// for again and again, while managed end-entity keys passed through
	// Generate, Wrap or ExportPKCS8 are not, and caching them would keep
	// every exported key in memory for the life of the process.
	cache sync.Map
	// legacyClosed, once set by CloseLegacy, makes MigrateLegacy refuse:
	// no version-1 blob is opened again.
	legacyClosed atomic.Bool
}

type cacheKey struct {
	purpose keys.Purpose
	id      string
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
	return &Provider{kek: aead, derive: bytes.Clone(kek), rand: random}, nil
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

// Generate creates a key of the given algorithm and returns it wrapped for
// purpose.
func (p *Provider) Generate(ctx context.Context, alg pki.KeyAlgorithm, purpose keys.Purpose) (keys.Ref, crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return keys.Ref{}, nil, fmt.Errorf("software: generate: %w", err)
	}
	if err := purpose.Validate(); err != nil {
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
	ref, err := p.wrap(id, purpose, alg, signer)
	if err != nil {
		return keys.Ref{}, nil, err
	}
	return ref, signer, nil
}

// Wrap seals an existing key for purpose under a new Ref with a fresh ID.
func (p *Provider) Wrap(ctx context.Context, purpose keys.Purpose, key crypto.Signer) (keys.Ref, error) {
	if err := ctx.Err(); err != nil {
		return keys.Ref{}, fmt.Errorf("software: wrap: %w", err)
	}
	if key == nil {
		return keys.Ref{}, errors.New("software: wrap: nil key")
	}
	if err := purpose.Validate(); err != nil {
		return keys.Ref{}, fmt.Errorf("software: wrap: %w", err)
	}
	alg, err := pki.AlgorithmOf(key.Public())
	if err != nil {
		return keys.Ref{}, fmt.Errorf("software: wrap: %w", err)
	}
	id, err := p.newID()
	if err != nil {
		return keys.Ref{}, err
	}
	return p.wrap(id, purpose, alg, key)
}

// Signer unwraps ref for purpose and returns its signer. A blob that does
// not authenticate under this provider's KEK, ref.ID and purpose returns an
// error wrapping keys.ErrWrongKEK.
func (p *Provider) Signer(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error) {
	if err := p.checkRef(ctx, ref, purpose); err != nil {
		return nil, err
	}
	k := cacheKey{purpose, ref.ID}
	if v, ok := p.cache.Load(k); ok {
		c := v.(*cached)
		if bytes.Equal(c.blob, ref.Blob) {
			return c.signer, nil
		}
	}
	signer, err := p.unwrap(ref, purpose)
	if err != nil {
		return nil, err
	}
	p.cache.Store(k, &cached{blob: bytes.Clone(ref.Blob), signer: signer})
	return signer, nil
}

// ExportPKCS8 unwraps ref for purpose and returns the PKCS#8 DER of the
// key, bypassing (and never filling) the signer cache, so a key handed out
// is not kept in memory afterwards. The caller owns the returned slice and
// should clear it once encoded.
func (p *Provider) ExportPKCS8(ctx context.Context, ref keys.Ref, purpose keys.Purpose) ([]byte, error) {
	if err := p.checkRef(ctx, ref, purpose); err != nil {
		return nil, err
	}
	der, err := p.openV2(ref, purpose)
	if err != nil {
		return nil, err
	}
	// Parse once so a blob holding garbage is an error here, not in the
	// hands of whoever receives it.
	if _, err := p.parse(ref, der); err != nil {
		clear(der)
		return nil, err
	}
	return der, nil
}

// Check unwraps ref for purpose and parses it, keeping nothing (the key
// is neither cached nor returned): it proves the KEK opens the key. A
// blob that does not authenticate is an error wrapping keys.ErrWrongKEK.
func (p *Provider) Check(ctx context.Context, ref keys.Ref, purpose keys.Purpose) error {
	if err := p.checkRef(ctx, ref, purpose); err != nil {
		return err
	}
	_, err := p.unwrap(ref, purpose)
	return err
}

// CachedSigners is the number of unwrapped keys the provider holds in
// memory (for tests and diagnostics).
func (p *Provider) CachedSigners() int {
	n := 0
	p.cache.Range(func(any, any) bool { n++; return true })
	return n
}

// IsLegacy reports whether ref is a software key still wrapped in the
// version-1 format, bound to its ID only.
func IsLegacy(ref keys.Ref) bool {
	return ref.Provider == Name && len(ref.Blob) > 0 && ref.Blob[0] == blobVersion1
}

// MigrateLegacy re-wraps a version-1 blob (bound to its key ID only) as a
// version-2 blob bound to purpose, keeping the key ID. It is the only
// place that opens version-1 blobs. Because a version-1 blob may have been
// copied from another record before the upgrade, the key is re-wrapped
// only when its public half equals want, the public key of the record it
// sits in; otherwise the error wraps keys.ErrKeyMismatch and nothing is
// re-wrapped. Nothing is cached.
//
// After CloseLegacy it opens nothing and returns an error wrapping
// ErrLegacyClosed.
func (p *Provider) MigrateLegacy(ctx context.Context, ref keys.Ref, purpose keys.Purpose, want crypto.PublicKey) (keys.Ref, error) {
	if err := ctx.Err(); err != nil {
		return keys.Ref{}, fmt.Errorf("software: migrate: %w", err)
	}
	if p.legacyClosed.Load() {
		return keys.Ref{}, fmt.Errorf("key %q for %s: %w", ref.ID, purpose, ErrLegacyClosed)
	}
	if ref.Provider != Name {
		return keys.Ref{}, fmt.Errorf("software: key %q belongs to provider %q", ref.ID, ref.Provider)
	}
	if err := checkID(ref.ID); err != nil {
		return keys.Ref{}, err
	}
	if err := purpose.Validate(); err != nil {
		return keys.Ref{}, fmt.Errorf("software: migrate: %w", err)
	}
	if !IsLegacy(ref) {
		return keys.Ref{}, fmt.Errorf("%w: key %q is not in the legacy format", ErrMalformedBlob, ref.ID)
	}
	der, err := p.open(ref, []byte(ref.ID))
	if err != nil {
		return keys.Ref{}, err
	}
	defer clear(der)
	signer, err := p.parse(ref, der)
	if err != nil {
		return keys.Ref{}, err
	}
	if err := keys.CheckPublic(signer, want); err != nil {
		return keys.Ref{}, fmt.Errorf("software: legacy key %q is not the key of %s: %w", ref.ID, purpose, err)
	}
	alg := ref.Algorithm
	if alg == "" {
		if alg, err = pki.AlgorithmOf(signer.Public()); err != nil {
			return keys.Ref{}, fmt.Errorf("software: migrate key %q: %w", ref.ID, err)
		}
	}
	return p.wrap(ref.ID, purpose, alg, signer)
}

// CloseLegacy makes the provider refuse to open version-1 blobs for the
// rest of its life: MigrateLegacy returns ErrLegacyClosed. The server
// calls it once the purpose-bound migration of its data directory has
// finished (or when the directory was created by a version that never
// wrote version-1 blobs), so a legacy blob written into the database
// later cannot be re-wrapped under whatever purpose its row claims.
func (p *Provider) CloseLegacy() { p.legacyClosed.Store(true) }

// LegacyClosed reports whether CloseLegacy was called.
func (p *Provider) LegacyClosed() bool { return p.legacyClosed.Load() }

func (p *Provider) checkRef(ctx context.Context, ref keys.Ref, purpose keys.Purpose) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("software: unwrap: %w", err)
	}
	if ref.Provider != Name {
		return fmt.Errorf("software: key %q belongs to provider %q", ref.ID, ref.Provider)
	}
	if err := checkID(ref.ID); err != nil {
		return err
	}
	if err := purpose.Validate(); err != nil {
		return fmt.Errorf("software: key %q: %w", ref.ID, err)
	}
	return nil
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
	if strings.ContainsRune(id, 0) {
		return errors.New("software: key ID contains a NUL byte")
	}
	return nil
}

func (p *Provider) wrap(id string, purpose keys.Purpose, alg pki.KeyAlgorithm, key crypto.Signer) (keys.Ref, error) {
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
	blob[0] = blobVersion2
	if _, err := io.ReadFull(p.rand, blob[offDKNonce:offDK]); err != nil {
		return keys.Ref{}, fmt.Errorf("software: read nonce: %w", err)
	}
	if _, err := io.ReadFull(p.rand, blob[offCTNonce:offCT]); err != nil {
		return keys.Ref{}, fmt.Errorf("software: read nonce: %w", err)
	}
	aad := aadV2(purpose, id)
	p.kek.Seal(blob[offDK:offDK], blob[offDKNonce:offDK], dataKey, aad)
	blob = dk.Seal(blob, blob[offCTNonce:offCT], der, aad)

	return keys.Ref{Provider: Name, ID: id, Algorithm: alg, Blob: blob}, nil
}

// openV2 returns the PKCS#8 DER in a version-2 blob bound to purpose.
func (p *Provider) openV2(ref keys.Ref, purpose keys.Purpose) ([]byte, error) {
	if len(ref.Blob) > 0 && ref.Blob[0] == blobVersion1 {
		return nil, fmt.Errorf("software: key %q: %w", ref.ID, ErrLegacyBlob)
	}
	if len(ref.Blob) > 0 && ref.Blob[0] != blobVersion2 {
		return nil, fmt.Errorf("%w: key %q blob version %d, want %d", ErrMalformedBlob, ref.ID, ref.Blob[0], blobVersion2)
	}
	return p.open(ref, aadV2(purpose, ref.ID))
}

// open authenticates and decrypts ref.Blob with aad; the caller clears
// the returned DER.
func (p *Provider) open(ref keys.Ref, aad []byte) ([]byte, error) {
	b := ref.Blob
	if len(b) < minBlobSize {
		return nil, fmt.Errorf("%w: key %q blob is %d bytes", ErrMalformedBlob, ref.ID, len(b))
	}
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
	return der, nil
}

func (p *Provider) unwrap(ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error) {
	der, err := p.openV2(ref, purpose)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	return p.parse(ref, der)
}

// parse turns unwrapped PKCS#8 DER into a signer of ref's algorithm.
func (p *Provider) parse(ref keys.Ref, der []byte) (crypto.Signer, error) {
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

// Capabilities: software keys are exportable (the callers export managed
// end-entity keys only).
func (p *Provider) Capabilities() keys.Capabilities { return keys.Capabilities{Exportable: true} }

// DeriveKey derives the instance secret d from the KEK: HKDF-SHA256 with
// no salt and d as info, 32 bytes. Only the names keys.Derivations lists
// are derived.
func (p *Provider) DeriveKey(d keys.Derivation) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	k, err := hkdf.Key(sha256.New, p.derive, nil, string(d), 32)
	if err != nil {
		return nil, fmt.Errorf("software: derive %q: %w", string(d), err)
	}
	return k, nil
}
