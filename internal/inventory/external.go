package inventory

import (
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// ExternalSerial is the inventory key of a certificate issued elsewhere:
// its SHA-256 fingerprint (serials are unique only per issuer), written
// as Certwright writes serials, so that "cert show" finds it.
func ExternalSerial(der []byte) string {
	sum := sha256.Sum256(der)
	return pki.SerialHex(new(big.Int).SetBytes(sum[:]))
}

// External is the inventory record of a certificate issued elsewhere
// (src SourceImported or SourceDiscovered): keyed by ExternalSerial, with
// its issuer's own serial and name, and chain (nearest issuer first; nil
// for none). caID is the CA here that signed it, if any. Its subject,
// issuer and SANs are someone else's text, stored and shown: their
// control characters are escaped (pki.Printable), since a database
// refuses a NUL and a terminal acts on an escape sequence.
func External(leaf *x509.Certificate, chain [][]byte, src Source, caID string, now time.Time) *Certificate {
	fam, bits, err := pki.DescribeKey(leaf.PublicKey)
	if err != nil {
		fam, bits = leaf.PublicKeyAlgorithm.String(), 0
	}
	if len(chain) == 0 {
		chain = nil
	}
	return &Certificate{
		Serial:             ExternalSerial(leaf.Raw),
		CAID:               caID,
		Subject:            pki.Printable(leaf.Subject.String()),
		SANs:               pki.PrintableAll(pki.SANs(leaf)),
		NotBefore:          leaf.NotBefore.UTC(),
		NotAfter:           leaf.NotAfter.UTC(),
		KeyAlgorithm:       fam,
		KeyBits:            bits,
		SignatureAlgorithm: leaf.SignatureAlgorithm.String(),
		Status:             StatusValid,
		Fingerprint:        pki.Fingerprint(leaf.Raw),
		SPKISHA256:         pki.Fingerprint(leaf.RawSubjectPublicKeyInfo),
		Tags:               []string{},
		LintWarnings:       []string{},
		DER:                leaf.Raw,
		CreatedAt:          now,
		Source:             src,
		Issuer:             pki.Printable(leaf.Issuer.String()),
		IssuerSerial:       pki.SerialHex(leaf.SerialNumber),
		Chain:              chain,
	}
}
