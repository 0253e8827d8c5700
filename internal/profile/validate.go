package profile

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// FieldError is an invalid profile definition: Field is the path of the
// offending field as written in JSON or YAML, e.g. "keys[1].min_bits" or
// "names.ip.ranges[0]"; empty for the document as a whole.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "profile: " + e.Problem
	}
	return "profile: " + e.Field + ": " + e.Problem
}

// Limits on a profile definition.
const (
	maxDescription = 1024
	maxValidity    = 3650
	maxMaxSANs     = 1000
)

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks a profile definition and returns a *FieldError for the
// first problem found. It does not normalise: Parse lower-cases and trims
// before validating, so a profile built in code must already be canonical
// (lower-case names, CIDRs in netip.Prefix.String form).
func (p *Profile) Validate() error {
	if fe := p.validate(true); fe != nil {
		return fe
	}
	return nil
}

// validate checks the definition; policy adds the EKU policy (refused and
// opt-in EKUs), which only listing a stored profile skips.
func (p *Profile) validate(policy bool) *FieldError {
	if !validName(p.Name) {
		return fieldErr("name", "%q must be 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit", p.Name)
	}
	if !utf8.ValidString(p.Description) || len(p.Description) > maxDescription {
		return fieldErr("description", "must be valid UTF-8 of at most %d bytes", maxDescription)
	}
	if fe := p.validateKeys(); fe != nil {
		return fe
	}
	if p.MaxValidityDays < 1 || p.MaxValidityDays > maxValidity {
		return fieldErr("max_validity_days", "%d is outside 1..%d", p.MaxValidityDays, maxValidity)
	}
	if p.DefaultValidityHours < 0 || p.DefaultValidityHours > 24*p.MaxValidityDays {
		return fieldErr("default_validity_hours", "%d is outside 0..%d (max_validity_days in hours; 0 means max_validity_days)", p.DefaultValidityHours, 24*p.MaxValidityDays)
	}
	if p.RenewBeforeDays < 0 || p.RenewBeforeDays >= p.MaxValidityDays {
		return fieldErr("renew_before_days", "%d must be at least 0 and below max_validity_days %d", p.RenewBeforeDays, p.MaxValidityDays)
	}
	if fe := p.validateKeyUsage(); fe != nil {
		return fe
	}
	if len(p.ExtKeyUsage) == 0 {
		return fieldErr("ext_key_usage", "at least one extended key usage is required")
	}
	if fe := checkList("ext_key_usage", p.ExtKeyUsage, func(s string) string {
		if _, ok := lookupExtKeyUsage(s); !ok {
			return fmt.Sprintf("unknown extended key usage %q (known: %s)", s, strings.Join(extKeyUsageNames(), ", "))
		}
		return ""
	}); fe != nil {
		return fe
	}
	if policy {
		if fe := p.validateEKUPolicy(); fe != nil {
			return fe
		}
	}
	if fe := p.Names.validate(); fe != nil {
		return fe
	}
	if fe := checkList("subject_fields", p.SubjectFields, func(s string) string {
		if _, ok := lookupSubjectAttr(s); !ok {
			return fmt.Sprintf("unknown subject field %q (known: %s)", s, strings.Join(subjectAttrNames(), ", "))
		}
		return ""
	}); fe != nil {
		return fe
	}
	switch p.KeyExport {
	case "", KeyExportOnce, KeyExportRetain:
	default:
		return fieldErr("key_export", "%q must be %q or %q", p.KeyExport, KeyExportOnce, KeyExportRetain)
	}
	return nil
}

// validateEKUPolicy refuses ocsp_signing outright and time_stamping unless
// allow_time_stamping is set and time_stamping is the profile's only EKU.
// The field is always named "ext_key_usage: <eku>" so the API error says
// exactly what to remove.
func (p *Profile) validateEKUPolicy() *FieldError {
	for _, name := range p.ExtKeyUsage {
		u, _ := lookupExtKeyUsage(name)
		field := "ext_key_usage: " + name
		switch {
		case u.refused != "":
			return &FieldError{Field: field, Problem: u.refused}
		case u.optIn && !p.AllowTimeStamping:
			return &FieldError{Field: field, Problem: "a time-stamping certificate is allowed only with allow_time_stamping: true, on a profile used with a dedicated time-stamping CA"}
		case u.optIn && len(p.ExtKeyUsage) != 1:
			return &FieldError{Field: field, Problem: "must be the only extended key usage of a time-stamping profile (RFC 3161 2.3)"}
		}
	}
	if p.AllowTimeStamping && !slices.Contains(p.ExtKeyUsage, "time_stamping") {
		return fieldErr("allow_time_stamping", "set while ext_key_usage lacks time_stamping")
	}
	return nil
}

// validName reports [a-z0-9][a-z0-9_-]{0,62}.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func (p *Profile) validateKeys() *FieldError {
	if len(p.Keys) == 0 {
		return fieldErr("keys", "at least one key rule is required")
	}
	seen := map[string]bool{}
	for i, k := range p.Keys {
		f, ok := lookupFamily(k.Algorithm)
		if !ok {
			return fieldErr(fmt.Sprintf("keys[%d].algorithm", i), "unknown key family %q (known: %s)", k.Algorithm, strings.Join(familyNames(), ", "))
		}
		if seen[f.name] {
			return fieldErr(fmt.Sprintf("keys[%d].algorithm", i), "duplicate rule for %s", f.name)
		}
		seen[f.name] = true
		field := fmt.Sprintf("keys[%d].min_bits", i)
		switch {
		case f.minBits != nil && !slices.Contains(f.minBits, k.MinBits):
			return fieldErr(field, "%s minimum %d is not one of %v", f.name, k.MinBits, f.minBits)
		case f.minBits == nil && k.MinBits < f.lo:
			return fieldErr(field, "%s minimum %d is below %d", f.name, k.MinBits, f.lo)
		case f.minBits == nil && k.MinBits > f.hi:
			return fieldErr(field, "%s minimum %d is above %d, the largest key Certwright generates", f.name, k.MinBits, f.hi)
		}
	}
	return nil
}

// validateKeyUsage also refuses a usage that no allowed key family can
// carry, since Usages would silently drop it from every certificate.
func (p *Profile) validateKeyUsage() *FieldError {
	return checkList("key_usage", p.KeyUsage, func(s string) string {
		u, ok := lookupKeyUsage(s)
		if !ok {
			return fmt.Sprintf("unknown key usage %q (known: %s)", s, strings.Join(keyUsageNames(), ", "))
		}
		if u.families == nil {
			return ""
		}
		for _, k := range p.Keys {
			if slices.Contains(u.families, k.Algorithm) {
				return ""
			}
		}
		return fmt.Sprintf("%s applies only to %s keys and this profile allows none", s, strings.Join(u.families, ", "))
	})
}

func (n *NameRules) validate() *FieldError {
	if fe := requireAllow("names.dns.suffixes", n.DNS.Allow, len(n.DNS.Suffixes) > 0); fe != nil {
		return fe
	}
	if n.DNS.AllowWildcard && !n.DNS.Allow {
		return fieldErr("names.dns.allow_wildcard", "set while names.dns.allow is false")
	}
	if fe := checkList("names.dns.suffixes", n.DNS.Suffixes, func(s string) string {
		if p := dnsNameProblem(s, false); p != "" {
			return fmt.Sprintf("%q is not a DNS name: %s", s, p)
		}
		return ""
	}); fe != nil {
		return fe
	}
	if fe := requireAllow("names.ip.ranges", n.IP.Allow, len(n.IP.Ranges) > 0); fe != nil {
		return fe
	}
	if fe := checkList("names.ip.ranges", n.IP.Ranges, cidrProblem); fe != nil {
		return fe
	}
	if fe := requireAllow("names.email.domains", n.Email.Allow, len(n.Email.Domains) > 0); fe != nil {
		return fe
	}
	if fe := checkList("names.email.domains", n.Email.Domains, func(s string) string {
		if p := dnsNameProblem(s, false); p != "" {
			return fmt.Sprintf("%q is not a domain name: %s", s, p)
		}
		return ""
	}); fe != nil {
		return fe
	}
	if fe := requireAllow("names.uri.prefixes", n.URI.Allow, len(n.URI.Prefixes) > 0); fe != nil {
		return fe
	}
	if fe := checkList("names.uri.prefixes", n.URI.Prefixes, func(s string) string {
		if _, p := uriPrefixProblem(s); p != "" {
			return fmt.Sprintf("%q %s", s, p)
		}
		return ""
	}); fe != nil {
		return fe
	}
	if n.RequireSAN && !n.DNS.Allow && !n.IP.Allow && !n.Email.Allow && !n.URI.Allow {
		return fieldErr("names.require_san", "a SAN is required but no SAN type is allowed")
	}
	if n.MaxSANs < 0 || n.MaxSANs > maxMaxSANs {
		return fieldErr("names.max_sans", "%d is outside 0..%d (0 means %d)", n.MaxSANs, maxMaxSANs, DefaultMaxSANs)
	}
	return nil
}

func requireAllow(field string, allow, set bool) *FieldError {
	if set && !allow {
		parent := field[:strings.LastIndexByte(field, '.')]
		return fieldErr(field, "set while %s.allow is false", parent)
	}
	return nil
}

// cidrProblem accepts canonical CIDRs only: host bits set or an IPv4 range
// written as IPv4-mapped IPv6 is almost certainly a mistake in a policy.
func cidrProblem(s string) string {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Sprintf("%q is not a CIDR: %v", s, err)
	}
	if pfx.Addr().Is4In6() {
		return fmt.Sprintf("%q is IPv4-mapped IPv6; write the IPv4 range", s)
	}
	if m := pfx.Masked(); m != pfx {
		return fmt.Sprintf("%q has host bits set; did you mean %s?", s, m)
	}
	return ""
}

// checkList reports the first empty, invalid or duplicate entry of list.
func checkList(field string, list []string, problem func(string) string) *FieldError {
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		if s == "" {
			return fieldErr(f, "empty entry")
		}
		if p := problem(s); p != "" {
			return &FieldError{Field: f, Problem: p}
		}
		if seen[s] {
			return fieldErr(f, "duplicate entry %q", s)
		}
		seen[s] = true
	}
	return nil
}

func familyNames() []string {
	var out []string
	for _, f := range keyFamilies() {
		out = append(out, f.name)
	}
	return out
}

func keyUsageNames() []string {
	var out []string
	for _, u := range keyUsages() {
		out = append(out, u.name)
	}
	return out
}

func extKeyUsageNames() []string {
	var out []string
	for _, u := range extKeyUsages() {
		out = append(out, u.name)
	}
	return out
}

func subjectAttrNames() []string {
	var out []string
	for _, a := range subjectAttrs() {
		out = append(out, a.name)
	}
	return out
}
