package ocsp

import (
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	stdasn1 "encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Issuer is one CA certificate with its CertID hashes (issuerNameHash and
// issuerKeyHash, RFC 6960 4.1.1) precomputed for every supported hash, so
// matching a request costs two short comparisons.
type Issuer struct {
	cert   *x509.Certificate
	hashes [len(hashAlgs)]struct{ name, key []byte }
}

// NewIssuer precomputes the CertID hashes of a CA certificate.
func NewIssuer(cert *x509.Certificate) (*Issuer, error) {
	if cert == nil {
		return nil, errors.New("ocsp: issuer certificate is required")
	}
	keyBits, err := publicKeyBits(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	i := &Issuer{cert: cert}
	for n, a := range hashAlgs {
		h := a.hash.New()
		h.Write(cert.RawSubject)
		i.hashes[n].name = h.Sum(nil)
		h.Reset()
		h.Write(keyBits)
		i.hashes[n].key = h.Sum(nil)
	}
	return i, nil
}

// Certificate returns the CA certificate.
func (i *Issuer) Certificate() *x509.Certificate { return i.cert }

// Matches reports whether id names a certificate of this issuer (serial
// aside). It compares both hashes in full whatever the outcome and
// allocates nothing.
func (i *Issuer) Matches(id CertID) bool {
	n := hashIndex(id.Hash)
	if n < 0 {
		return false
	}
	name := subtle.ConstantTimeCompare(id.NameHash, i.hashes[n].name)
	key := subtle.ConstantTimeCompare(id.KeyHash, i.hashes[n].key)
	return name&key == 1
}

// CertID returns the CertID of serial under this issuer with hash h, the
// form a response for a request using h must echo.
func (i *Issuer) CertID(h crypto.Hash, serial *big.Int) (CertID, error) {
	n := hashIndex(h)
	if n < 0 {
		return CertID{}, fmt.Errorf("%w: %v", ErrUnsupportedHash, h)
	}
	if serial == nil || serial.Sign() < 0 {
		return CertID{}, errors.New("ocsp: serial must be a non-negative number")
	}
	return CertID{Hash: h, NameHash: i.hashes[n].name, KeyHash: i.hashes[n].key, Serial: serial}, nil
}

// publicKeyBits returns the subjectPublicKey BIT STRING content without
// its unused-bits octet: what issuerKeyHash and the byKey ResponderID hash
// (RFC 6960 4.1.1, 4.2.1).
func publicKeyBits(spki []byte) ([]byte, error) {
	s := cryptobyte.String(spki)
	var seq, alg cryptobyte.String
	var bits stdasn1.BitString
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !s.Empty() ||
		!seq.ReadASN1(&alg, asn1.SEQUENCE) || !seq.ReadASN1BitString(&bits) || !seq.Empty() ||
		bits.BitLength%8 != 0 {
		return nil, errors.New("ocsp: malformed SubjectPublicKeyInfo")
	}
	return bits.Bytes, nil
}
