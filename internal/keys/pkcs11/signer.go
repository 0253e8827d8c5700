package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwright/certwright/internal/pki"
	"github.com/miekg/pkcs11"
)

// Signer is a private key in the token. It implements crypto.Signer and is
// safe for concurrent use; each signature takes a session from the
// provider's pool.
type Signer struct {
	p    *Provider
	alg  pki.KeyAlgorithm
	spec keySpec
	pub  crypto.PublicKey
	obj  object
}

var _ crypto.Signer = (*Signer)(nil)

// Public returns the *ecdsa.PublicKey or *rsa.PublicKey read from the
// token's public key object.
func (sg *Signer) Public() crypto.PublicKey { return sg.pub }

// Algorithm returns the key's algorithm.
func (sg *Signer) Algorithm() pki.KeyAlgorithm { return sg.alg }

// Label returns the key's CKA_LABEL.
func (sg *Signer) Label() string { return sg.obj.label }

// ID returns the key's CKA_ID.
func (sg *Signer) ID() []byte { return bytes.Clone(sg.obj.id) }

// Sign signs digest in the token; rand is not used (the token has its
// own). It is SignContext without a deadline: retries are bounded by the
// provider's configuration.
func (sg *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return sg.SignContext(context.Background(), digest, opts)
}

// SignContext signs digest, a hash made with opts.HashFunc(): ECDSA
// signatures are ASN.1 DER as crypto/ecdsa makes them; RSA signatures are
// PKCS #1 v1.5, or PSS when opts is *rsa.PSSOptions. SHA-256, SHA-384 and
// SHA-512 are accepted.
func (sg *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var sig []byte
	err := sg.p.do(ctx, "sign with "+sg.obj.String(), func(s session) error {
		var err error
		sig, err = sg.signOn(s, digest, opts)
		return err
	})
	return sig, err
}

// hashSpec is how a signature names one hash to the token.
type hashSpec struct {
	// digestInfo is the DER DigestInfo prefix of PKCS #1 v1.5 (RFC 8017
	// section 9.2, note 1); the digest follows it.
	digestInfo []byte
	mech       uint // CKM_SHA*, for PSS
	mgf        uint // CKG_MGF1_SHA*, for PSS
}

var hashSpecs = map[crypto.Hash]hashSpec{
	crypto.SHA256: {
		digestInfo: []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
		mech:       pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256,
	},
	crypto.SHA384: {
		digestInfo: []byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
		mech:       pkcs11.CKM_SHA384, mgf: pkcs11.CKG_MGF1_SHA384,
	},
	crypto.SHA512: {
		digestInfo: []byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
		mech:       pkcs11.CKM_SHA512, mgf: pkcs11.CKG_MGF1_SHA512,
	},
}

// mechanism returns the mechanism and the input that sign digest with opts.
func (sg *Signer) mechanism(digest []byte, opts crypto.SignerOpts) (*pkcs11.Mechanism, []byte, error) {
	if opts == nil {
		return nil, nil, fmt.Errorf("%w: no signer options (hash)", ErrUnsupported)
	}
	h := opts.HashFunc()
	hs, ok := hashSpecs[h]
	if !ok {
		return nil, nil, fmt.Errorf("%w: hash %v (SHA-256, SHA-384 and SHA-512 only)", ErrUnsupported, h)
	}
	if len(digest) != h.Size() {
		return nil, nil, fmt.Errorf("pkcs11: digest is %d bytes, %v makes %d", len(digest), h, h.Size())
	}
	if sg.spec.keyType == pkcs11.CKK_EC {
		if _, ok := opts.(*rsa.PSSOptions); ok {
			return nil, nil, fmt.Errorf("%w: PSS options for an ECDSA key", ErrUnsupported)
		}
		return pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil), digest, nil
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		salt, err := pssSaltLength(sg.pub.(*rsa.PublicKey), h, pss.SaltLength)
		if err != nil {
			return nil, nil, err
		}
		return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hs.mech, hs.mgf, uint(salt))), digest, nil
	}
	return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil), append(bytes.Clone(hs.digestInfo), digest...), nil
}

// pssSaltLength turns rsa.PSSOptions.SaltLength into a length in bytes,
// as crypto/rsa's SignPSS does: EqualsHash is the hash's size and Auto the
// largest the key allows (RFC 8017 section 9.1.1).
func pssSaltLength(pub *rsa.PublicKey, h crypto.Hash, salt int) (int, error) {
	maxSalt := (pub.N.BitLen()-1+7)/8 - 2 - h.Size()
	switch {
	case salt == rsa.PSSSaltLengthEqualsHash:
		salt = h.Size()
	case salt == rsa.PSSSaltLengthAuto:
		salt = maxSalt
	case salt < 0 || salt > maxSalt:
		return 0, fmt.Errorf("%w: PSS salt length %d (0 to %d for this key and hash)", ErrUnsupported, salt, maxSalt)
	}
	return salt, nil
}

// signOn signs on session s.
func (sg *Signer) signOn(s session, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	mech, input, err := sg.mechanism(digest, opts)
	if err != nil {
		return nil, err
	}
	h, err := sg.obj.handle(s)
	if err != nil {
		return nil, err
	}
	if err := s.mod.SignInit(s.h, []*pkcs11.Mechanism{mech}, h); err != nil {
		return nil, fmt.Errorf("C_SignInit: %w", err)
	}
	sig, err := s.mod.Sign(s.h, input)
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %w", err)
	}
	if sg.spec.keyType == pkcs11.CKK_EC {
		return ecdsaDER(sig, sg.spec.curve.Params().N.BitLen())
	}
	return sig, nil
}

// ecdsaDER turns the r||s a token returns for CKM_ECDSA (PKCS#11 section
// 2.3.1: each half as long as the group order) into the ASN.1 DER
// Ecdsa-Sig-Value of RFC 3279 section 2.2.3.
func ecdsaDER(raw []byte, orderBits int) ([]byte, error) {
	n := (orderBits + 7) / 8
	if len(raw) != 2*n {
		return nil, fmt.Errorf("pkcs11: the token returned a %d-byte ECDSA signature, want %d", len(raw), 2*n)
	}
	r := new(big.Int).SetBytes(raw[:n])
	s := new(big.Int).SetBytes(raw[n:])
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// Destroy deletes the key pair from the token: the private key object and
// the public key objects with its CKA_ID. It is for undoing GenerateKey
// when what the key was made for failed before the key was used; a key
// pair destroyed is gone for good.
func (sg *Signer) Destroy(ctx context.Context) error {
	return sg.p.do(ctx, "destroy "+sg.obj.String(), func(s session) error {
		h, err := sg.obj.handle(s)
		if err != nil {
			return err
		}
		if len(sg.obj.id) == 0 {
			return fmt.Errorf("%w: %s has no CKA_ID to find its public key by", ErrUnsupported, sg.obj.String())
		}
		pubs, err := s.publicKeys(sg.obj.id)
		if err != nil {
			return err
		}
		if err := s.mod.DestroyObject(s.h, h); err != nil {
			return fmt.Errorf("C_DestroyObject: %w", err)
		}
		for _, pub := range pubs {
			if err := s.mod.DestroyObject(s.h, pub); err != nil {
				return fmt.Errorf("C_DestroyObject (public key): %w", err)
			}
		}
		return nil
	})
}
