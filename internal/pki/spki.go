package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

func subjectPublicKeyBits(spkiDER []byte) ([]byte, error) {
	var s subjectPublicKeyInfo
	if _, err := asn1.Unmarshal(spkiDER, &s); err != nil {
		return nil, fmt.Errorf("pki: parse SubjectPublicKeyInfo: %w", err)
	}
	return s.PublicKey.Bytes, nil
}
