package software

import (
	"fmt"
	"io"

	"github.com/certwright/certwright/internal/keys"
)

// sealVersion1 marks a secret sealed directly under the KEK.
const sealVersion1 = 0x53

// sealAAD separates sealed secrets from wrapped keys under the same KEK.
func sealAAD(aad []byte) []byte { return append([]byte("certwright-seal:"), aad...) }

// Seal encrypts a small secret (an ACME external account key, say) under
// the KEK with AES-256-GCM; aad binds it to its record and must be given
// again to Open.
func (p *Provider) Seal(plaintext, aad []byte) ([]byte, error) {
	ns := p.kek.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+p.kek.Overhead())
	out[0] = sealVersion1
	if _, err := io.ReadFull(p.rand, out[1:1+ns]); err != nil {
		return nil, fmt.Errorf("software: seal: nonce: %w", err)
	}
	return p.kek.Seal(out, out[1:1+ns], plaintext, sealAAD(aad)), nil
}

// Open decrypts what Seal sealed with the same aad. A wrong KEK or a
// tampered blob is keys.ErrWrongKEK.
func (p *Provider) Open(sealed, aad []byte) ([]byte, error) {
	ns := p.kek.NonceSize()
	if len(sealed) < 1+ns+p.kek.Overhead() || sealed[0] != sealVersion1 {
		return nil, fmt.Errorf("%w: sealed secret", ErrMalformedBlob)
	}
	pt, err := p.kek.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealAAD(aad))
	if err != nil {
		return nil, fmt.Errorf("software: open sealed secret: %w", keys.ErrWrongKEK)
	}
	return pt, nil
}
