package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Rules a Violation can name.
const (
	RuleKeys          = "keys"
	RuleDNS           = "names.dns"
	RuleIP            = "names.ip"
	RuleEmail         = "names.email"
	RuleURI           = "names.uri"
	RuleRequireSAN    = "names.require_san"
	RuleMaxSANs       = "names.max_sans"
	RuleSubjectFields = "subject_fields"
	RuleMaxValidity   = "max_validity_days"
)

// Request is what a certificate request asks for, from a CSR or from an API
// call with a server-generated key.
type Request struct {
	PublicKey      crypto.PublicKey
	Subject        pkix.Name
	DNSNames       []string
	IPAddresses    []net.IP
	EmailAddresses []string
	URIs           []*url.URL
	// ValidityDays is the requested lifetime; 0 means the profile's
	// default (DefaultValidityHours, else the maximum).
	ValidityDays int
	// Validity is a requested lifetime finer than days, in place of
	// ValidityDays (which is then 0).
	Validity time.Duration
}

// Violation is a request that breaks a profile rule. Rule is one of the Rule
// constants and Value the offending key, name, attribute or number as text.
type Violation struct {
	Profile string
	Rule    string
	Value   string
	Message string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("profile %s: rule %s: %s", v.Profile, v.Rule, v.Message)
}

func (p *Profile) violation(rule, value, format string, args ...any) *Violation {
	return &Violation{Profile: p.Name, Rule: rule, Value: value, Message: fmt.Sprintf(format, args...)}
}

// Check evaluates r against a validated profile and returns the first
// *Violation, in the order keys, max_validity_days, names.max_sans,
// names.require_san, names.dns, names.ip, names.email, names.uri,
// subject_fields. DNS names and email domains compare case-insensitively.
// The subject common name is not a SAN here: callers that treat it as one
// must add it to DNSNames or IPAddresses before calling Check.
func (p *Profile) Check(r Request) error {
	checks := []func(*Request) *Violation{
		p.checkKey,
		p.checkValidity,
		p.checkSANCount,
		p.checkDNS,
		p.checkIP,
		p.checkEmail,
		p.checkURI,
		p.checkSubject,
	}
	for _, c := range checks {
		if v := c(&r); v != nil {
			return v
		}
	}
	return nil
}

// CheckNames evaluates only r's names (names.max_sans, names.dns, names.ip,
// names.email, names.uri), for callers that learn the key later, such as
// an ACME order.
func (p *Profile) CheckNames(r Request) error {
	for _, c := range []func(*Request) *Violation{p.checkSANCount, p.checkDNS, p.checkIP, p.checkEmail, p.checkURI} {
		if v := c(&r); v != nil {
			return v
		}
	}
	return nil
}

func (p *Profile) checkKey(r *Request) *Violation {
	fam, bits, err := describeKey(r.PublicKey)
	if err != nil {
		return p.violation(RuleKeys, fmt.Sprintf("%T", r.PublicKey), "%v", err)
	}
	return p.checkKeyShape(fam, bits)
}

// describeKey is pki.DescribeKey made safe for keys built in code: a nil
// modulus or curve is an error rather than a panic, and an ECDSA curve must
// be the NIST curve its size names.
func describeKey(pub crypto.PublicKey) (string, int, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", 0, errors.New("empty RSA public key")
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.Curve.Params() == nil {
			return "", 0, errors.New("empty ECDSA public key")
		}
		if name, want := k.Curve.Params().Name, fmt.Sprintf("P-%d", k.Curve.Params().BitSize); name != want {
			return "", 0, fmt.Errorf("ECDSA curve %q is not supported", name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", 0, fmt.Errorf("Ed25519 public key of %d bytes", len(k))
		}
	}
	fam, bits, err := pki.DescribeKey(pub)
	if err != nil {
		return "", 0, fmt.Errorf("unsupported public key type %T", pub)
	}
	return fam, bits, nil
}

// checkKeyShape checks a key family and size against the profile's rules.
func (p *Profile) checkKeyShape(fam string, bits int) *Violation {
	value := fmt.Sprintf("%s-%d", fam, bits)
	if f, ok := lookupFamily(fam); ok && f.sizes != nil && !slices.Contains(f.sizes, bits) {
		return p.violation(RuleKeys, value, "%s %d-bit key is not supported (%s)", fam, bits, f.sizeHint)
	}
	for _, k := range p.Keys {
		if k.Algorithm != fam {
			continue
		}
		if bits < k.MinBits {
			return p.violation(RuleKeys, value, "%s %d-bit key below minimum %d", fam, bits, k.MinBits)
		}
		return nil
	}
	return p.violation(RuleKeys, value, "%s keys are not allowed (allowed: %s)", fam, p.describeKeys())
}

func (p *Profile) describeKeys() string {
	parts := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		parts[i] = fmt.Sprintf("%s>=%d", k.Algorithm, k.MinBits)
		if k.Algorithm == pki.FamilyEd25519 {
			parts[i] = k.Algorithm
		}
	}
	return strings.Join(parts, ", ")
}

func (p *Profile) checkValidity(r *Request) *Violation {
	if r.Validity != 0 {
		_, v := p.validityOf(r.Validity)
		return v
	}
	_, v := p.validity(r.ValidityDays)
	return v
}

// Validity returns the certificate lifetime for requestedDays, where 0 means
// the profile's default (DefaultValidityHours, else the maximum), or a
// *Violation of max_validity_days.
func (p *Profile) Validity(requestedDays int) (time.Duration, error) {
	d, v := p.validity(requestedDays)
	if v != nil {
		return 0, v
	}
	return d, nil
}

// ValidityOf is Validity for a lifetime finer than days: 0 means the
// profile's default, and more than max_validity_days is a *Violation.
func (p *Profile) ValidityOf(requested time.Duration) (time.Duration, error) {
	d, v := p.validityOf(requested)
	if v != nil {
		return 0, v
	}
	return d, nil
}

func (p *Profile) validity(days int) (time.Duration, *Violation) {
	switch {
	case days == 0 && p.DefaultValidityHours > 0:
		return time.Duration(p.DefaultValidityHours) * time.Hour, nil
	case days == 0:
		days = p.MaxValidityDays
	case days < 0:
		return 0, p.violation(RuleMaxValidity, strconv.Itoa(days), "validity of %d days is not positive", days)
	case days > p.MaxValidityDays:
		return 0, p.violation(RuleMaxValidity, strconv.Itoa(days), "validity of %d days exceeds the maximum %d", days, p.MaxValidityDays)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func (p *Profile) validityOf(d time.Duration) (time.Duration, *Violation) {
	maxD := time.Duration(p.MaxValidityDays) * 24 * time.Hour
	switch {
	case d == 0:
		return p.validity(0)
	case d < 0:
		return 0, p.violation(RuleMaxValidity, d.String(), "validity of %s is not positive", d)
	case d > maxD:
		return 0, p.violation(RuleMaxValidity, d.String(), "validity of %s exceeds the maximum %s (%d days)", d, maxD, p.MaxValidityDays)
	}
	return d, nil
}

func (p *Profile) checkSANCount(r *Request) *Violation {
	n := len(r.DNSNames) + len(r.IPAddresses) + len(r.EmailAddresses) + len(r.URIs)
	limit := p.Names.MaxSANs
	if limit == 0 {
		limit = DefaultMaxSANs
	}
	if n > limit {
		return p.violation(RuleMaxSANs, strconv.Itoa(n), "%d SANs exceed the maximum %d", n, limit)
	}
	if n == 0 && p.Names.RequireSAN {
		return p.violation(RuleRequireSAN, "", "at least one subject alternative name is required")
	}
	return nil
}

func (p *Profile) checkDNS(r *Request) *Violation {
	rule := p.Names.DNS
	for _, raw := range r.DNSNames {
		if !rule.Allow {
			return p.violation(RuleDNS, raw, "DNS names are not allowed (got %q)", raw)
		}
		name := lowerASCII(raw)
		if prob := dnsNameProblem(name, true); prob != "" {
			return p.violation(RuleDNS, raw, "malformed DNS name %q: %s", raw, prob)
		}
		base, wild := strings.CutPrefix(name, "*.")
		if wild && !rule.AllowWildcard {
			return p.violation(RuleDNS, raw, "wildcard name %q is not allowed", raw)
		}
		if len(rule.Suffixes) > 0 && !underAnyDomain(base, rule.Suffixes) {
			return p.violation(RuleDNS, raw, "DNS name %q is not under an allowed suffix (%s)", raw, strings.Join(rule.Suffixes, ", "))
		}
	}
	return nil
}

func (p *Profile) checkIP(r *Request) *Violation {
	rule := p.Names.IP
	for _, ip := range r.IPAddresses {
		if !rule.Allow {
			return p.violation(RuleIP, ip.String(), "IP addresses are not allowed (got %s)", ip)
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return p.violation(RuleIP, ip.String(), "malformed IP address of %d bytes", len(ip))
		}
		addr = addr.Unmap()
		if len(rule.Ranges) == 0 {
			continue
		}
		in := false
		for _, s := range rule.Ranges {
			if pfx, err := netip.ParsePrefix(s); err == nil && pfx.Contains(addr) {
				in = true
				break
			}
		}
		if !in {
			return p.violation(RuleIP, addr.String(), "IP address %s is not in an allowed range (%s)", addr, strings.Join(rule.Ranges, ", "))
		}
	}
	return nil
}

func (p *Profile) checkEmail(r *Request) *Violation {
	rule := p.Names.Email
	for _, addr := range r.EmailAddresses {
		if !rule.Allow {
			return p.violation(RuleEmail, addr, "email addresses are not allowed (got %q)", addr)
		}
		domain, prob := emailProblem(addr)
		if prob != "" {
			return p.violation(RuleEmail, addr, "malformed email address %q: %s", addr, prob)
		}
		if len(rule.Domains) > 0 && !underAnyDomain(domain, rule.Domains) {
			return p.violation(RuleEmail, addr, "email address %q is not in an allowed domain (%s)", addr, strings.Join(rule.Domains, ", "))
		}
	}
	return nil
}

func (p *Profile) checkURI(r *Request) *Violation {
	rule := p.Names.URI
	for _, u := range r.URIs {
		s := "<nil>"
		if u != nil {
			s = u.String()
		}
		if !rule.Allow {
			return p.violation(RuleURI, s, "URIs are not allowed (got %q)", s)
		}
		if prob := uriProblem(u); prob != "" {
			return p.violation(RuleURI, s, "malformed URI %q: %s", s, prob)
		}
		if len(rule.Prefixes) == 0 {
			continue
		}
		in := false
		for _, ps := range rule.Prefixes {
			if pu, prob := uriPrefixProblem(ps); prob == "" && uriHasPrefix(u, pu) {
				in = true
				break
			}
		}
		if !in {
			return p.violation(RuleURI, s, "URI %q does not start with an allowed prefix (%s)", s, strings.Join(rule.Prefixes, ", "))
		}
	}
	return nil
}

// checkSubject refuses any subject attribute outside SubjectFields, whether
// set through pkix.Name's fields (a request built in code) or present in
// Names and ExtraNames (a parsed CSR, including attributes with OIDs no
// profile can allow).
func (p *Profile) checkSubject(r *Request) *Violation {
	allowed := func(name string) bool { return slices.Contains(p.SubjectFields, name) }
	attrs := subjectAttrs()
	for _, a := range attrs {
		if vals := a.values(&r.Subject); len(vals) > 0 && !allowed(a.name) {
			return p.violation(RuleSubjectFields, a.name, "subject attribute %s (%q) is not allowed (allowed: %s)", a.name, vals[0], p.allowedSubject())
		}
	}
	for _, atv := range slices.Concat(r.Subject.Names, r.Subject.ExtraNames) {
		i := slices.IndexFunc(attrs, func(a subjectAttr) bool { return a.oid.Equal(atv.Type) })
		if i < 0 {
			return p.violation(RuleSubjectFields, atv.Type.String(), "subject attribute %s (%v) is not allowed (allowed: %s)", atv.Type, atv.Value, p.allowedSubject())
		}
		if !allowed(attrs[i].name) {
			return p.violation(RuleSubjectFields, attrs[i].name, "subject attribute %s (%v) is not allowed (allowed: %s)", attrs[i].name, atv.Value, p.allowedSubject())
		}
	}
	return nil
}

func (p *Profile) allowedSubject() string {
	if len(p.SubjectFields) == 0 {
		return "none"
	}
	return strings.Join(p.SubjectFields, ", ")
}

// Usages returns the key usage bits and extended key usages for a
// certificate with key pub. key_encipherment and data_encipherment are set
// only for RSA keys and key_agreement only for ECDSA keys (never Ed25519,
// never RSA): those bits are meaningless for other key types and zlint
// flags them, so one profile serves every allowed key type cleanly. An
// unrecognised key gets only the type-independent bits.
func (p *Profile) Usages(pub crypto.PublicKey) (x509.KeyUsage, []x509.ExtKeyUsage) {
	fam, _, _ := describeKey(pub)
	var ku x509.KeyUsage
	for _, name := range p.KeyUsage {
		u, ok := lookupKeyUsage(name)
		if ok && (u.families == nil || slices.Contains(u.families, fam)) {
			ku |= u.bit
		}
	}
	var eku []x509.ExtKeyUsage
	for _, name := range p.ExtKeyUsage {
		// A refused EKU (from a profile that skipped Validate) is passed
		// on: CheckIssuableEKU, on the issuance path, refuses it by name
		// rather than signing a certificate without it.
		if u, ok := lookupExtKeyUsage(name); ok {
			eku = append(eku, u.eku)
		}
	}
	return ku, eku
}

// DefaultKeyAlgorithm returns the algorithm for a server-generated key: the
// smallest generatable key of the family of Keys[0] at or above its minimum
// (RSA 2048/3072/4096, ECDSA P-256/P-384, Ed25519). It returns "" only for a
// profile that fails Validate.
func (p *Profile) DefaultKeyAlgorithm() pki.KeyAlgorithm {
	if len(p.Keys) == 0 {
		return ""
	}
	rule := p.Keys[0]
	var best pki.KeyAlgorithm
	for _, a := range pki.KeyAlgorithms() {
		if a.Family() == rule.Algorithm && a.Bits() >= rule.MinBits && (best == "" || a.Bits() < best.Bits()) {
			best = a
		}
	}
	return best
}

// AllowsAlgorithm reports whether a server-generated key of algorithm a
// satisfies the profile, as a *Violation of rule keys when it does not.
func (p *Profile) AllowsAlgorithm(a pki.KeyAlgorithm) error {
	if a.Family() == "" {
		return p.violation(RuleKeys, string(a), "unknown key algorithm %q", string(a))
	}
	if v := p.checkKeyShape(a.Family(), a.Bits()); v != nil {
		return v
	}
	return nil
}
