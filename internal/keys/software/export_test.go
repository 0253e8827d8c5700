package software

import (
	"crypto"
	"crypto/x509"
	"io"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// WrapLegacyForTest wraps key in the version-1 format that certwright
// wrote up to commit 5e5a77d: both seals bound to the key ID only. Tests
// use it to build the databases MigrateLegacy upgrades; nothing else may
// write this format.
func WrapLegacyForTest(p *Provider, id string, key crypto.Signer) (keys.Ref, error) {
	alg, err := pki.AlgorithmOf(key.Public())
	if err != nil {
		return keys.Ref{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keys.Ref{}, err
	}
	dataKey := make([]byte, dataKeySize)
	if _, err := io.ReadFull(p.rand, dataKey); err != nil {
		return keys.Ref{}, err
	}
	dk, err := newGCM(dataKey)
	if err != nil {
		return keys.Ref{}, err
	}
	blob := make([]byte, offCT, offCT+len(der)+tagSize)
	blob[0] = blobVersion1
	if _, err := io.ReadFull(p.rand, blob[offDKNonce:offDK]); err != nil {
		return keys.Ref{}, err
	}
	if _, err := io.ReadFull(p.rand, blob[offCTNonce:offCT]); err != nil {
		return keys.Ref{}, err
	}
	aad := []byte(id)
	p.kek.Seal(blob[offDK:offDK], blob[offDKNonce:offDK], dataKey, aad)
	blob = dk.Seal(blob, blob[offCTNonce:offCT], der, aad)
	return keys.Ref{Provider: Name, ID: id, Algorithm: alg, Blob: blob}, nil
}
