package pki

import (
	"crypto/sha256"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// subjectPublicKeyBits returns the subjectPublicKey BIT STRING's octets of
// a DER SubjectPublicKeyInfo (SEQUENCE { AlgorithmIdentifier, BIT STRING }).
func subjectPublicKeyBits(spkiDER []byte) ([]byte, error) {
	in := cryptobyte.String(spkiDER)
	var spki, alg cryptobyte.String
	var bits []byte
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!spki.ReadASN1BitStringAsBytes(&bits) || !spki.Empty() || !in.Empty() {
		return nil, errors.New("pki: parse SubjectPublicKeyInfo: not a DER SEQUENCE of an algorithm and a whole-octet BIT STRING")
	}
	return bits, nil
}

// SubjectKeyIDOf is SubjectKeyID for a public key already in DER
// SubjectPublicKeyInfo form (x509.MarshalPKIXPublicKey's output), for a
// caller that has it anyway.
func SubjectKeyIDOf(spkiDER []byte) ([]byte, error) {
	bits, err := subjectPublicKeyBits(spkiDER)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(bits)
	return h[:20], nil
}
