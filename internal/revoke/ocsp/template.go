package ocsp

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// ResponderTemplate returns the template of a delegated OCSP responder
// certificate for issuer's key to sign (RFC 6960 4.2.2.2): subject CN
// "<issuer CN> OCSP Responder" and the issuer's organisation, key usage
// digitalSignature (critical), EKU id-kp-OCSPSigning only, id-pkix-ocsp-nocheck
// (non-critical, NULL: clients do not check the responder's own status, so
// keep it short-lived), CA:FALSE, an RFC 7093 subject key identifier, the
// issuer's key identifier as authority key identifier and the issuer key's
// signature algorithm. notAfter is clamped to the issuer's notAfter.
func ResponderTemplate(issuer *x509.Certificate, pub crypto.PublicKey, serial *big.Int, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	if issuer == nil || pub == nil {
		return nil, errors.New("ocsp: responder template needs the issuer and a public key")
	}
	if !issuer.IsCA {
		return nil, fmt.Errorf("ocsp: %q is not a CA certificate", issuer.Subject.CommonName)
	}
	if serial == nil || serial.Sign() <= 0 {
		return nil, errors.New("ocsp: responder serial must be positive")
	}
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	if !notAfter.After(notBefore) {
		return nil, errors.New("ocsp: responder validity ends before it starts")
	}
	ski, err := pki.SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	alg := pki.SignatureAlgorithmFor(issuer.PublicKey)
	if alg == x509.UnknownSignatureAlgorithm {
		return nil, fmt.Errorf("ocsp: no signature algorithm for issuer key %T", issuer.PublicKey)
	}
	subject := pkix.Name{CommonName: issuer.Subject.CommonName + " OCSP Responder"}
	if o := issuer.Subject.Organization; len(o) > 0 {
		subject.Organization = append([]string(nil), o...)
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		AuthorityKeyId:        issuer.SubjectKeyId,
		SignatureAlgorithm:    alg,
		ExtraExtensions: []pkix.Extension{
			// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1), value NULL.
			{Id: []int{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Critical: false, Value: []byte{0x05, 0x00}},
		},
	}, nil
}
