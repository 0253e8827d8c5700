package profile

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"

	"github.com/certwright/certwright/internal/pki"
)

// The tables are functions returning fresh values so that no package-level
// state can be mutated.

// keyFamily is what a profile may say about one key family.
type keyFamily struct {
	name string
	// minBits are the accepted KeyRule.MinBits values when the family has
	// fixed sizes (ECDSA curves, Ed25519); otherwise lo..hi applies.
	minBits []int
	lo, hi  int
	// sizes are the key sizes a request may carry, nil when any size at or
	// above the rule's minimum is acceptable.
	sizes    []int
	sizeHint string
}

func keyFamilies() []keyFamily {
	return []keyFamily{
		// 4096 is the largest RSA key Certwright generates, and every profile
		// must be able to generate its default key.
		{name: pki.FamilyRSA, lo: 2048, hi: 4096},
		// P-224 and below are too weak; P-521 is refused by browser root
		// programmes and by Certwright's key generator.
		{name: pki.FamilyECDSA, minBits: []int{256, 384}, sizes: []int{256, 384}, sizeHint: "curves P-256 and P-384 only"},
		{name: pki.FamilyEd25519, minBits: []int{0, 256}, sizes: []int{256}, sizeHint: "Ed25519 keys are 256 bits"},
	}
}

func lookupFamily(name string) (keyFamily, bool) {
	for _, f := range keyFamilies() {
		if f.name == name {
			return f, true
		}
	}
	return keyFamily{}, false
}

// keyUsage maps a profile key usage name to its bit. families, when set,
// restricts the bit to keys of those families: key and data encipherment
// need an RSA key, key agreement an ECDSA key (RFC 5480; RFC 8410 reserves
// it for X25519, never Ed25519), so zlint passes for every key type.
type keyUsage struct {
	name     string
	bit      x509.KeyUsage
	families []string
}

func keyUsages() []keyUsage {
	return []keyUsage{
		{name: "digital_signature", bit: x509.KeyUsageDigitalSignature},
		{name: "content_commitment", bit: x509.KeyUsageContentCommitment},
		{name: "key_encipherment", bit: x509.KeyUsageKeyEncipherment, families: []string{pki.FamilyRSA}},
		{name: "data_encipherment", bit: x509.KeyUsageDataEncipherment, families: []string{pki.FamilyRSA}},
		{name: "key_agreement", bit: x509.KeyUsageKeyAgreement, families: []string{pki.FamilyECDSA}},
	}
}

func lookupKeyUsage(name string) (keyUsage, bool) {
	for _, u := range keyUsages() {
		if u.name == name {
			return u, true
		}
	}
	return keyUsage{}, false
}

// extKeyUsage maps a profile EKU name to its value. refused, when set, is
// why no profile may carry it; optIn marks an EKU a profile carries only
// with allow_time_stamping and as its sole EKU.
type extKeyUsage struct {
	name    string
	eku     x509.ExtKeyUsage
	refused string
	optIn   bool
}

func extKeyUsages() []extKeyUsage {
	return []extKeyUsage{
		{name: "server_auth", eku: x509.ExtKeyUsageServerAuth},
		{name: "client_auth", eku: x509.ExtKeyUsageClientAuth},
		{name: "code_signing", eku: x509.ExtKeyUsageCodeSigning},
		{name: "email_protection", eku: x509.ExtKeyUsageEmailProtection},
		// A time-stamping certificate speaks for the CA's clock to every
		// relying party that trusts the CA for RFC 3161 tokens, so it is
		// opt-in and alone (RFC 3161 2.3).
		{name: "time_stamping", eku: x509.ExtKeyUsageTimeStamping, optIn: true},
		// A leaf with id-kp-OCSPSigning issued by a CA is a delegated OCSP
		// responder for that CA (RFC 6960 4.2.2.2): its holder can sign
		// "good" for any revoked certificate. Only the revocation service
		// mints responder certificates, never a profile.
		{name: "ocsp_signing", eku: x509.ExtKeyUsageOCSPSigning,
			refused: "is reserved for the revocation service's own OCSP responder certificates: a leaf carrying it could sign \"good\" for any revoked certificate of its CA; remove it"},
	}
}

// CheckIssuableEKU refuses extended key usages that the issuance path must
// never sign into a leaf: OCSPSigning always, TimeStamping unless
// allowTimeStamping (the profile's allow_time_stamping). It is the issuance
// path's backstop behind Validate.
func CheckIssuableEKU(ekus []x509.ExtKeyUsage, allowTimeStamping bool) error {
	for _, e := range ekus {
		for _, u := range extKeyUsages() {
			if u.eku != e {
				continue
			}
			if u.refused != "" {
				return &FieldError{Field: "ext_key_usage: " + u.name, Problem: u.refused}
			}
			if u.optIn && !allowTimeStamping {
				return &FieldError{Field: "ext_key_usage: " + u.name, Problem: "requires allow_time_stamping: true"}
			}
		}
	}
	return nil
}

func lookupExtKeyUsage(name string) (extKeyUsage, bool) {
	for _, u := range extKeyUsages() {
		if u.name == name {
			return u, true
		}
	}
	return extKeyUsage{}, false
}

// subjectAttr is a subject attribute a profile can allow: its OID (RFC 5280
// appendix A, X.520) and where pkix.Name keeps it when set in code.
type subjectAttr struct {
	name   string
	oid    asn1.ObjectIdentifier
	values func(*pkix.Name) []string
}

func single(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func subjectAttrs() []subjectAttr {
	return []subjectAttr{
		{"common_name", asn1.ObjectIdentifier{2, 5, 4, 3}, func(n *pkix.Name) []string { return single(n.CommonName) }},
		{"serial_number", asn1.ObjectIdentifier{2, 5, 4, 5}, func(n *pkix.Name) []string { return single(n.SerialNumber) }},
		{"country", asn1.ObjectIdentifier{2, 5, 4, 6}, func(n *pkix.Name) []string { return n.Country }},
		{"locality", asn1.ObjectIdentifier{2, 5, 4, 7}, func(n *pkix.Name) []string { return n.Locality }},
		{"province", asn1.ObjectIdentifier{2, 5, 4, 8}, func(n *pkix.Name) []string { return n.Province }},
		{"street_address", asn1.ObjectIdentifier{2, 5, 4, 9}, func(n *pkix.Name) []string { return n.StreetAddress }},
		{"organization", asn1.ObjectIdentifier{2, 5, 4, 10}, func(n *pkix.Name) []string { return n.Organization }},
		{"organizational_unit", asn1.ObjectIdentifier{2, 5, 4, 11}, func(n *pkix.Name) []string { return n.OrganizationalUnit }},
		{"postal_code", asn1.ObjectIdentifier{2, 5, 4, 17}, func(n *pkix.Name) []string { return n.PostalCode }},
	}
}

func lookupSubjectAttr(name string) (subjectAttr, bool) {
	for _, a := range subjectAttrs() {
		if a.name == name {
			return a, true
		}
	}
	return subjectAttr{}, false
}
