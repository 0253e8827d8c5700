// Package profile owns certificate profiles and the key, name, subject,
// validity and usage policy a leaf certificate request is checked against.
//
// A profile comes from Builtins or from Parse (strict JSON or YAML followed by
// Validate). Check evaluates a Request and returns a *Violation naming the
// rule that failed; Usages, Validity and DefaultKeyAlgorithm turn the profile
// into certificate template values.
package profile

import (
	"encoding/json"
	"slices"

	"github.com/certwright/certwright/internal/pki"
)

// Key export modes for server-generated (managed) keys.
const (
	// KeyExportOnce returns a managed key with the certificate and never keeps it.
	KeyExportOnce = "once"
	// KeyExportRetain keeps a managed key wrapped so it can be handed out again
	// to machine identities.
	KeyExportRetain = "retain"
)

// DefaultMaxSANs applies when NameRules.MaxSANs is zero.
const DefaultMaxSANs = 100

// Person is the built-in profile of a person's short-lived client
// certificate, asked for after a sign-in through an identity provider
// and carrying only the e-mail addresses it verified.
const Person = "person"

// Profile is a certificate profile. JSON and YAML use the same snake_case
// field names.
type Profile struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Keys lists the allowed key families, one rule per family. Keys[0] is
	// the family and size generated for managed keys (DefaultKeyAlgorithm).
	Keys            []KeyRule `json:"keys" yaml:"keys"`
	MaxValidityDays int       `json:"max_validity_days" yaml:"max_validity_days"`
	RenewBeforeDays int       `json:"renew_before_days" yaml:"renew_before_days"`
	KeyUsage        []string  `json:"key_usage,omitempty" yaml:"key_usage,omitempty"`
	ExtKeyUsage     []string  `json:"ext_key_usage" yaml:"ext_key_usage"`
	Names           NameRules `json:"names" yaml:"names"`
	// DefaultValidityHours, when set, is the lifetime of a certificate
	// whose request names none, in place of max_validity_days (the person
	// profile's 12 hours within its 24).
	DefaultValidityHours int `json:"default_validity_hours,omitempty" yaml:"default_validity_hours,omitempty"`
	// SubjectFields lists the subject attributes a request may carry; any
	// other attribute, including unknown OIDs, is a violation.
	SubjectFields   []string `json:"subject_fields,omitempty" yaml:"subject_fields,omitempty"`
	RequireApproval bool     `json:"require_approval" yaml:"require_approval"`
	// KeyExport is KeyExportOnce or KeyExportRetain; empty means once.
	KeyExport string `json:"key_export" yaml:"key_export"`
	// AllowKeyReuse lets a renewal certify the same public key again
	// (auto_renew of a CSR certificate, cert renew --reuse-key). Off by
	// default: every renewal rotates the key.
	AllowKeyReuse bool `json:"allow_key_reuse,omitempty" yaml:"allow_key_reuse,omitempty"`
	// AllowTimeStamping permits ext_key_usage [time_stamping] (alone). Off
	// by default: use it only on a profile reserved, by role scopes, for a
	// CA dedicated to time stamping.
	AllowTimeStamping bool `json:"allow_time_stamping,omitempty" yaml:"allow_time_stamping,omitempty"`
	// SilentExpiry raises no expiring or expired alert for the profile's
	// certificates: they lapse by design, and their holder asks for a new
	// one (a person's certificate after a sign-in) rather than anyone
	// renewing them.
	SilentExpiry bool `json:"silent_expiry,omitempty" yaml:"silent_expiry,omitempty"`
	// CABFLints also runs the CA/Browser Forum lints before issuance.
	CABFLints bool `json:"cabf_lints" yaml:"cabf_lints"`
	// Builtin marks the profiles from Builtins. Parse always clears it.
	Builtin bool `json:"builtin" yaml:"-"`
}

// KeyRule allows one key family at a minimum size. MinBits is the RSA
// modulus size (2048-4096), the ECDSA curve size (256 or 384), or 0/256 for
// Ed25519.
type KeyRule struct {
	Algorithm string `json:"algorithm" yaml:"algorithm"`
	MinBits   int    `json:"min_bits" yaml:"min_bits"`
}

// NameRules governs the subject alternative names of a request.
type NameRules struct {
	DNS        DNSRule   `json:"dns" yaml:"dns"`
	IP         IPRule    `json:"ip" yaml:"ip"`
	Email      EmailRule `json:"email" yaml:"email"`
	URI        URIRule   `json:"uri" yaml:"uri"`
	RequireSAN bool      `json:"require_san" yaml:"require_san"`
	// MaxSANs caps the total number of SANs; 0 means DefaultMaxSANs.
	MaxSANs int `json:"max_sans" yaml:"max_sans"`
}

// DNSRule allows DNS names. With no Suffixes any name is allowed; a suffix
// matches itself and every name below it on a label boundary.
type DNSRule struct {
	Allow         bool     `json:"allow" yaml:"allow"`
	Suffixes      []string `json:"suffixes,omitempty" yaml:"suffixes,omitempty"`
	AllowWildcard bool     `json:"allow_wildcard" yaml:"allow_wildcard"`
}

// IPRule allows IP addresses. With no Ranges (CIDRs) any address is allowed.
type IPRule struct {
	Allow  bool     `json:"allow" yaml:"allow"`
	Ranges []string `json:"ranges,omitempty" yaml:"ranges,omitempty"`
}

// EmailRule allows email addresses. With no Domains any domain is allowed;
// a domain matches itself and its subdomains, like a DNS suffix.
type EmailRule struct {
	Allow   bool     `json:"allow" yaml:"allow"`
	Domains []string `json:"domains,omitempty" yaml:"domains,omitempty"`
}

// URIRule allows URIs. With no Prefixes any absolute URI is allowed. A prefix
// such as "spiffe://example.org/ns/" matches by scheme, host and path
// segments, so "spiffe://example.org" never matches "spiffe://example.org.evil/".
type URIRule struct {
	Allow    bool     `json:"allow" yaml:"allow"`
	Prefixes []string `json:"prefixes,omitempty" yaml:"prefixes,omitempty"`
}

// Marshal returns the JSON definition of p; Parse accepts it back.
func (p *Profile) Marshal() ([]byte, error) {
	return json.Marshal(p)
}

// Clone returns a deep copy of p.
func (p *Profile) Clone() *Profile {
	c := *p
	c.Keys = slices.Clone(p.Keys)
	c.KeyUsage = slices.Clone(p.KeyUsage)
	c.ExtKeyUsage = slices.Clone(p.ExtKeyUsage)
	c.SubjectFields = slices.Clone(p.SubjectFields)
	c.Names.DNS.Suffixes = slices.Clone(p.Names.DNS.Suffixes)
	c.Names.IP.Ranges = slices.Clone(p.Names.IP.Ranges)
	c.Names.Email.Domains = slices.Clone(p.Names.Email.Domains)
	c.Names.URI.Prefixes = slices.Clone(p.Names.URI.Prefixes)
	return &c
}

// Builtins returns fresh copies of the built-in profiles, which callers may
// modify freely.
func Builtins() []*Profile {
	locationFields := []string{"common_name", "organization", "organizational_unit", "country", "province", "locality"}
	return []*Profile{
		{
			Name:        "web_server",
			Description: "TLS server certificate for web and API endpoints",
			// ECDSA first so managed keys default to P-256.
			Keys:            []KeyRule{{pki.FamilyECDSA, 256}, {pki.FamilyRSA, 2048}},
			MaxValidityDays: 365,
			RenewBeforeDays: 30,
			KeyUsage:        []string{"digital_signature", "key_encipherment"},
			ExtKeyUsage:     []string{"server_auth"},
			Names: NameRules{
				DNS:        DNSRule{Allow: true},
				IP:         IPRule{Allow: true},
				RequireSAN: true,
				MaxSANs:    DefaultMaxSANs,
			},
			SubjectFields: slices.Clone(locationFields),
			KeyExport:     KeyExportOnce,
			Builtin:       true,
		},
		{
			Name:            "client_auth",
			Description:     "TLS client certificate for people, devices and services",
			Keys:            []KeyRule{{pki.FamilyRSA, 2048}, {pki.FamilyECDSA, 256}},
			MaxValidityDays: 180,
			RenewBeforeDays: 14,
			KeyUsage:        []string{"digital_signature", "key_agreement"},
			ExtKeyUsage:     []string{"client_auth"},
			Names: NameRules{
				DNS:     DNSRule{Allow: true},
				Email:   EmailRule{Allow: true},
				URI:     URIRule{Allow: true},
				MaxSANs: DefaultMaxSANs,
			},
			SubjectFields: slices.Clone(locationFields),
			KeyExport:     KeyExportOnce,
			Builtin:       true,
		},
		{
			Name:            "code_signing",
			Description:     "Code signing certificate for software publishers",
			Keys:            []KeyRule{{pki.FamilyRSA, 3072}, {pki.FamilyECDSA, 256}},
			MaxValidityDays: 1095,
			RenewBeforeDays: 90,
			KeyUsage:        []string{"digital_signature"},
			ExtKeyUsage:     []string{"code_signing"},
			Names: NameRules{
				Email:   EmailRule{Allow: true},
				MaxSANs: DefaultMaxSANs,
			},
			SubjectFields: slices.Clone(locationFields),
			KeyExport:     KeyExportOnce,
			Builtin:       true,
		},
		{
			Name:            "internal_service",
			Description:     "Short-lived mutual-TLS certificate for internal services",
			Keys:            []KeyRule{{pki.FamilyECDSA, 256}},
			MaxValidityDays: 90,
			RenewBeforeDays: 7,
			KeyUsage:        []string{"digital_signature", "key_agreement"},
			ExtKeyUsage:     []string{"server_auth", "client_auth"},
			Names: NameRules{
				DNS:        DNSRule{Allow: true},
				IP:         IPRule{Allow: true},
				URI:        URIRule{Allow: true},
				RequireSAN: true,
				MaxSANs:    DefaultMaxSANs,
			},
			SubjectFields: []string{"common_name", "organization", "organizational_unit"},
			KeyExport:     KeyExportOnce,
			Builtin:       true,
		},
		{
			Name: Person,
			Description: "Short-lived TLS client certificate of a person signed in through single sign-on: " +
				"the e-mail address the identity provider verified, nothing else",
			Keys:                 []KeyRule{{pki.FamilyECDSA, 256}, {pki.FamilyRSA, 2048}},
			MaxValidityDays:      1,
			DefaultValidityHours: 12,
			KeyUsage:             []string{"digital_signature"},
			ExtKeyUsage:          []string{"client_auth"},
			Names: NameRules{
				Email:      EmailRule{Allow: true},
				RequireSAN: true,
				MaxSANs:    10,
			},
			SubjectFields: []string{"common_name"},
			KeyExport:     KeyExportOnce,
			SilentExpiry:  true,
			Builtin:       true,
		},
	}
}

// Builtin returns a fresh copy of the built-in profile with this name.
func Builtin(name string) (*Profile, bool) {
	for _, p := range Builtins() {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}
