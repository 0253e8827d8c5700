package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Spec describes a CA certificate to create.
type Spec struct {
	Name    string // the CA's short name in this instance
	Subject pkix.Name
	KeyAlg  pki.KeyAlgorithm
	// KeyProvider names where the key is generated: "software" (wrapped
	// under the KEK file), "pkcs11" (in the configured token) or "" for
	// the server's keys.ca_key_provider.
	KeyProvider string
	Validity    time.Duration
	// MaxPathLen: the number of CAs allowed below this one; -1 for no limit.
	MaxPathLen int
	// Name constraints (RFC 5280 4.2.1.10), all optional.
	PermittedDNS   []string
	ExcludedDNS    []string
	PermittedIP    []*net.IPNet
	ExcludedIP     []*net.IPNet
	PermittedEmail []string
	PermittedURI   []string
}

// Defaults of a new CA where its request leaves a field out (the API's,
// and so the CLI's, and the console's form): key algorithm, validity in
// days and path length.
const (
	DefaultRootKey             = pki.ECDSAP384
	DefaultRootDays            = 3650
	DefaultRootPathLen         = 1
	DefaultIntermediateKey     = pki.ECDSAP256
	DefaultIntermediateDays    = 1825
	DefaultIntermediatePathLen = 0
)

// keyProviders are the key providers a CA's key may be generated in, and
// the algorithms each cannot make (a token makes ECDSA and RSA keys only).
var keyProviders = map[string][]pki.KeyAlgorithm{
	"software": nil,
	"pkcs11":   {pki.Ed25519},
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ErrSpec is returned for an invalid CA spec.
var ErrSpec = errors.New("ca: invalid CA definition")

// ValidateName checks a CA short name.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1-63 lower-case letters, digits, '-' or '_'", ErrSpec, name)
	}
	return nil
}

// Validate checks a spec before any key is generated.
func (s *Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Subject.CommonName == "" {
		return fmt.Errorf("%w: subject common name is required", ErrSpec)
	}
	if _, err := pki.ParseKeyAlgorithm(string(s.KeyAlg)); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if s.KeyProvider != "" {
		refused, ok := keyProviders[s.KeyProvider]
		if !ok {
			return fmt.Errorf("%w: key provider %q: want software or pkcs11", ErrSpec, s.KeyProvider)
		}
		if slices.Contains(refused, s.KeyAlg) {
			return fmt.Errorf("%w: key algorithm %s is not available in a %s token: use ECDSA or RSA", ErrSpec, s.KeyAlg, s.KeyProvider)
		}
	}
	if s.Validity < 24*time.Hour || s.Validity > 30*365*24*time.Hour {
		return fmt.Errorf("%w: validity %s: want 1 day to 30 years", ErrSpec, s.Validity)
	}
	if s.MaxPathLen < -1 || s.MaxPathLen > 8 {
		return fmt.Errorf("%w: path length %d: want -1 (unlimited) to 8", ErrSpec, s.MaxPathLen)
	}
	for _, d := range append(append([]string{}, s.PermittedDNS...), s.ExcludedDNS...) {
		if d == "" || strings.ContainsAny(d, " */") {
			return fmt.Errorf("%w: name constraint DNS %q is not a domain", ErrSpec, d)
		}
	}
	for _, u := range s.PermittedURI {
		if u == "" || strings.Contains(u, "://") {
			return fmt.Errorf("%w: URI name constraint %q: give a host or domain (e.g. example.org or .example.org), as RFC 5280 requires", ErrSpec, u)
		}
	}
	return nil
}

// Template builds the certificate for a CA key. parent is nil for a
// self-signed root. urls, when set, are the parent's revocation and
// caIssuers URLs.
func Template(s *Spec, pub crypto.PublicKey, serial *big.Int, now time.Time, parent *x509.Certificate, urls URLs) (*x509.Certificate, error) {
	ski, err := pki.SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-time.Minute).Truncate(time.Second)
	notAfter := notBefore.Add(s.Validity)
	t := &x509.Certificate{
		SerialNumber:            serial,
		Subject:                 s.Subject,
		NotBefore:               notBefore,
		NotAfter:                notAfter,
		KeyUsage:                x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid:   true,
		IsCA:                    true,
		SubjectKeyId:            ski,
		PermittedDNSDomains:     s.PermittedDNS,
		ExcludedDNSDomains:      s.ExcludedDNS,
		PermittedIPRanges:       s.PermittedIP,
		ExcludedIPRanges:        s.ExcludedIP,
		PermittedEmailAddresses: s.PermittedEmail,
		PermittedURIDomains:     s.PermittedURI,
	}
	closeUnpermittedTypes(t)
	if len(s.PermittedDNS)+len(s.ExcludedDNS)+len(s.PermittedIP)+len(s.ExcludedIP)+len(s.PermittedEmail)+len(s.PermittedURI) > 0 {
		t.PermittedDNSDomainsCritical = true
	}
	switch {
	case s.MaxPathLen < 0:
		t.MaxPathLen = -1
	case s.MaxPathLen == 0:
		t.MaxPathLen, t.MaxPathLenZero = 0, true
	default:
		t.MaxPathLen = s.MaxPathLen
	}
	if parent != nil {
		if err := CheckChild(parent, s.MaxPathLen, notAfter); err != nil {
			return nil, err
		}
		if notAfter.After(parent.NotAfter) {
			t.NotAfter = parent.NotAfter
		}
		urls.apply(t)
	}
	return t, nil
}

// unpermittedDomain is a permitted subtree nothing real falls under
// (RFC 2606 reserves .invalid). It has two labels because a URI name
// constraint must be a fully qualified domain name (RFC 5280 4.2.1.10,
// zlint e_name_constraint_not_fqdn).
const unpermittedDomain = "none.invalid"

// closeUnpermittedTypes applies the CA/Browser Forum rule for technically
// constrained CAs (TLS BR 7.1.2.10.8) to every name type: once a CA
// permits some subtree (a whitelist), a name type with no permitted
// subtree is closed rather than left open:
//
//   - dNSName: a zero-length dNSName in excludedSubtrees (matches every
//     name in Go's crypto/x509 and OpenSSL), as the BRs prescribe;
//   - iPAddress: 0.0.0.0/0 and ::/0 in excludedSubtrees, as the BRs
//     prescribe;
//   - rfc822Name: "none.invalid" in permittedSubtrees, plus a zero-length
//     rfc822Name in excludedSubtrees. Go honours either; OpenSSL reads a
//     zero-length exclusion as matching nothing, so the permitted
//     sentinel is what closes the type for OpenSSL-based relying parties;
//   - uniformResourceIdentifier: "none.invalid" in permittedSubtrees only:
//     a zero-length URI constraint is not an FQDN, which RFC 5280 requires
//     (zlint refuses it), and OpenSSL would not honour it either.
//
// An operator who wants a type open under a whitelist permits it
// explicitly, e.g. --permit-ip 0.0.0.0/0,::/0. A CA with exclusions only
// (a blacklist) is left as written.
func closeUnpermittedTypes(t *x509.Certificate) {
	if len(t.PermittedDNSDomains)+len(t.PermittedIPRanges)+len(t.PermittedEmailAddresses)+len(t.PermittedURIDomains) == 0 {
		return
	}
	if len(t.PermittedDNSDomains) == 0 && !slices.Contains(t.ExcludedDNSDomains, "") {
		t.ExcludedDNSDomains = append(slices.Clone(t.ExcludedDNSDomains), "")
	}
	if len(t.PermittedIPRanges) == 0 {
		t.ExcludedIPRanges = append(slices.Clone(t.ExcludedIPRanges),
			&net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			&net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)})
	}
	if len(t.PermittedEmailAddresses) == 0 {
		t.PermittedEmailAddresses = []string{unpermittedDomain}
		t.ExcludedEmailAddresses = append(slices.Clone(t.ExcludedEmailAddresses), "")
	}
	if len(t.PermittedURIDomains) == 0 {
		t.PermittedURIDomains = []string{unpermittedDomain}
	}
}

// CheckChild refuses a subordinate CA the parent's path length does not allow.
func CheckChild(parent *x509.Certificate, childPathLen int, _ time.Time) error {
	if !parent.IsCA {
		return fmt.Errorf("%w: parent %q is not a CA", ErrSpec, parent.Subject.CommonName)
	}
	if parent.MaxPathLen == 0 && parent.MaxPathLenZero {
		return fmt.Errorf("%w: parent %q has path length 0 and cannot sign another CA", ErrSpec, parent.Subject.CommonName)
	}
	if parent.MaxPathLen > 0 && (childPathLen < 0 || childPathLen >= parent.MaxPathLen) {
		return fmt.Errorf("%w: path length %d not allowed under parent %q (path length %d): use at most %d",
			ErrSpec, childPathLen, parent.Subject.CommonName, parent.MaxPathLen, parent.MaxPathLen-1)
	}
	return nil
}

// URLs are the relying-party URLs embedded in certificates a CA issues.
type URLs struct {
	CRL       string
	OCSP      string
	CAIssuers string
}

// URLsFor builds the stable public URLs for a CA from the plain-HTTP base URL.
func URLsFor(base, caID string) URLs {
	base = strings.TrimRight(base, "/")
	return URLs{
		CRL:       base + "/crl/" + caID + ".crl",
		OCSP:      base + "/ocsp/" + caID,
		CAIssuers: base + "/ca/" + caID + ".crt",
	}
}

func (u URLs) apply(t *x509.Certificate) {
	if u.CRL != "" {
		t.CRLDistributionPoints = []string{u.CRL}
	}
	if u.OCSP != "" {
		t.OCSPServer = []string{u.OCSP}
	}
	if u.CAIssuers != "" {
		t.IssuingCertificateURL = []string{u.CAIssuers}
	}
}

// Apply sets the CRL distribution point and AIA URLs on a template.
func (u URLs) Apply(t *x509.Certificate) { u.apply(t) }

// ErrImport is returned when a certificate offered for an external CA is unacceptable.
var ErrImport = errors.New("ca: certificate cannot be imported")

// CheckImport verifies that cert is a CA certificate for the pending CA's
// key, currently valid, and, when an issuer chain is given, signed by it.
func CheckImport(cert *x509.Certificate, pub crypto.PublicKey, chain []*x509.Certificate, now time.Time) error {
	want, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("ca: marshal key: %w", err)
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, want) {
		return fmt.Errorf("%w: its public key does not match this CA's key", ErrImport)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("%w: it is not a CA certificate (basicConstraints CA:TRUE missing)", ErrImport)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%w: its key usage lacks keyCertSign", ErrImport)
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("%w: it expired on %s", ErrImport, cert.NotAfter.Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%w: it is not valid until %s", ErrImport, cert.NotBefore.Format(time.RFC3339))
	}
	if len(chain) > 0 {
		if err := cert.CheckSignatureFrom(chain[0]); err != nil {
			return fmt.Errorf("%w: it is not signed by the first certificate of the chain given: %w", ErrImport, err)
		}
		for i := 1; i < len(chain); i++ {
			if err := chain[i-1].CheckSignatureFrom(chain[i]); err != nil {
				return fmt.Errorf("%w: chain certificate %d is not signed by certificate %d: %w", ErrImport, i, i+1, err)
			}
		}
	}
	return nil
}

// CheckImportedRoot verifies that cert can be an offline root of this
// instance: a self-signed CA certificate (basicConstraints CA:TRUE, its
// signature verifying under its own key) that may sign certificates and
// CRLs, with a key type Certwright knows, valid at now.
func CheckImportedRoot(cert *x509.Certificate, now time.Time) error {
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		return fmt.Errorf("%w: it is not self-issued (issuer %q, subject %q): import the root, not a subordinate CA", ErrImport, cert.Issuer, cert.Subject)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("%w: its self-signature does not verify: %w", ErrImport, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("%w: it is not a CA certificate (basicConstraints CA:TRUE missing)", ErrImport)
	}
	if cert.KeyUsage != 0 && (cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0) {
		return fmt.Errorf("%w: its key usage lacks keyCertSign or cRLSign (an offline root signs CA certificates and its CRL)", ErrImport)
	}
	if _, err := pki.AlgorithmOf(cert.PublicKey); err != nil {
		return fmt.Errorf("%w: its key: %w", ErrImport, err)
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("%w: it expired on %s", ErrImport, cert.NotAfter.Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%w: it is not valid until %s", ErrImport, cert.NotBefore.Format(time.RFC3339))
	}
	return nil
}
