// Package inspect owns describing X.509 files in plain words: it reads a
// certificate, a chain, a CSR or a CRL (PEM or DER, untrusted input) into a
// Report that prints as text or JSON.
package inspect

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// MaxInput bounds the file inspect reads: large enough for a CRL with
// about a hundred thousand entries, small enough to parse in memory.
const MaxInput = 8 << 20

// maxBlocks bounds the PEM blocks of one file.
const maxBlocks = 100

// DefaultMaxEntries is how many revoked entries of a CRL a report lists
// when Options.MaxEntries is zero.
const DefaultMaxEntries = 50

// Kinds of file.
const (
	KindCertificate = "certificate"
	KindChain       = "chain"
	KindCSR         = "csr"
	KindCRL         = "crl"
)

// ErrUnreadable is returned for input that holds no certificate, CSR or CRL.
var ErrUnreadable = errors.New("inspect: not a certificate, chain, CSR or CRL")

// Options say how to read and describe. The zero value describes at the
// current time and lists DefaultMaxEntries revoked entries.
type Options struct {
	Now        time.Time
	MaxEntries int
}

// Report describes one file. Exactly one of Certificate, Certificates
// (a chain, leaf first), CSR and CRL is set, as Kind says.
type Report struct {
	Kind         string        `json:"kind"`
	Certificate  *Certificate  `json:"certificate,omitempty"`
	Certificates []Certificate `json:"certificates,omitempty"`
	CSR          *CSR          `json:"csr,omitempty"`
	CRL          *CRL          `json:"crl,omitempty"`
	// Ignored names the PEM blocks of other types (a private key in a
	// bundle, say) that were skipped.
	Ignored []string `json:"ignored,omitempty"`
}

// Certificate is what a certificate says.
type Certificate struct {
	Subject            string           `json:"subject"`
	Issuer             string           `json:"issuer"`
	Serial             string           `json:"serial"`
	NotBefore          time.Time        `json:"not_before"`
	NotAfter           time.Time        `json:"not_after"`
	DaysLeft           int              `json:"days_left"`
	Validity           string           `json:"validity"` // valid, expired or not_yet_valid
	SANs               []string         `json:"sans,omitempty"`
	Key                string           `json:"key"`
	SignatureAlgorithm string           `json:"signature_algorithm"`
	KeyUsage           []string         `json:"key_usage,omitempty"`
	ExtKeyUsage        []string         `json:"ext_key_usage,omitempty"`
	BasicConstraints   *Basic           `json:"basic_constraints,omitempty"`
	NameConstraints    *NameConstraints `json:"name_constraints,omitempty"`
	CRLURLs            []string         `json:"crl_urls,omitempty"`
	OCSPURLs           []string         `json:"ocsp_urls,omitempty"`
	IssuerURLs         []string         `json:"issuer_urls,omitempty"`
	SHA256             string           `json:"sha256_fingerprint"`
	SubjectKeyID       string           `json:"subject_key_id,omitempty"`
	AuthorityKeyID     string           `json:"authority_key_id,omitempty"`
	SelfSigned         bool             `json:"self_signed"`
	// SignedByNext, in a chain, says whether the next certificate's key
	// verifies this one's signature; SignatureProblem says why not.
	SignedByNext     *bool  `json:"signed_by_next,omitempty"`
	SignatureProblem string `json:"signature_problem,omitempty"`
}

// Basic is the basic constraints extension.
type Basic struct {
	CA bool `json:"ca"`
	// PathLen is the path length constraint, nil when there is none.
	PathLen *int `json:"path_len,omitempty"`
}

// NameConstraints is the name constraints extension of a CA.
type NameConstraints struct {
	Critical       bool     `json:"critical"`
	PermittedDNS   []string `json:"permitted_dns,omitempty"`
	ExcludedDNS    []string `json:"excluded_dns,omitempty"`
	PermittedIP    []string `json:"permitted_ip,omitempty"`
	ExcludedIP     []string `json:"excluded_ip,omitempty"`
	PermittedEmail []string `json:"permitted_email,omitempty"`
	ExcludedEmail  []string `json:"excluded_email,omitempty"`
	PermittedURI   []string `json:"permitted_uri,omitempty"`
	ExcludedURI    []string `json:"excluded_uri,omitempty"`
}

// Lines says each constraint for people, one a line: "permit DNS
// example.com", "exclude IP 10.0.0.0/8", sorted.
func (nc *NameConstraints) Lines() []string {
	if nc == nil {
		return nil
	}
	var out []string
	for _, g := range []struct {
		kind string
		vals []string
	}{
		{"permit DNS", nc.PermittedDNS}, {"exclude DNS", nc.ExcludedDNS},
		{"permit IP", nc.PermittedIP}, {"exclude IP", nc.ExcludedIP},
		{"permit e-mail", nc.PermittedEmail}, {"exclude e-mail", nc.ExcludedEmail},
		{"permit URI", nc.PermittedURI}, {"exclude URI", nc.ExcludedURI},
	} {
		for _, v := range g.vals {
			out = append(out, g.kind+" "+v)
		}
	}
	slices.Sort(out)
	return out
}

// CSR is what a certificate signing request asks for.
type CSR struct {
	Subject            string   `json:"subject"`
	SANs               []string `json:"sans,omitempty"`
	Key                string   `json:"key"`
	SignatureAlgorithm string   `json:"signature_algorithm"`
	SignatureValid     bool     `json:"signature_valid"`
	SignatureProblem   string   `json:"signature_problem,omitempty"`
}

// CRL is what a certificate revocation list says.
type CRL struct {
	Issuer             string    `json:"issuer"`
	Number             string    `json:"number,omitempty"`
	ThisUpdate         time.Time `json:"this_update"`
	NextUpdate         time.Time `json:"next_update,omitzero"`
	Stale              bool      `json:"stale"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	AuthorityKeyID     string    `json:"authority_key_id,omitempty"`
	RevokedCount       int       `json:"revoked_count"`
	// Revoked lists the first entries, at most Options.MaxEntries.
	Revoked []Revoked `json:"revoked"`
}

// Revoked is one CRL entry.
type Revoked struct {
	Serial         string     `json:"serial"`
	RevokedAt      time.Time  `json:"revoked_at"`
	Reason         string     `json:"reason,omitempty"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
}

// Inspect reads data (PEM or DER) and describes it.
func Inspect(data []byte, opts Options) (*Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if len(data) > MaxInput {
		return nil, fmt.Errorf("inspect: input of %d bytes exceeds the limit of %d", len(data), MaxInput)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the input is empty", ErrUnreadable)
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return inspectPEM(data, opts)
	}
	return inspectDER(data, opts)
}

func inspectDER(der []byte, opts Options) (*Report, error) {
	if c, err := x509.ParseCertificate(der); err == nil {
		return certReport([]*x509.Certificate{c}, nil, opts), nil
	}
	if csr, err := x509.ParseCertificateRequest(der); err == nil {
		return &Report{Kind: KindCSR, CSR: describeCSR(csr)}, nil
	}
	crl, err := x509.ParseRevocationList(der)
	if err == nil {
		return &Report{Kind: KindCRL, CRL: describeCRL(crl, opts)}, nil
	}
	return nil, fmt.Errorf("%w: the input is neither PEM nor DER of one (as a CRL: %v)", ErrUnreadable, err)
}

func inspectPEM(data []byte, opts Options) (*Report, error) {
	var (
		certs   []*x509.Certificate
		csrs    []*x509.CertificateRequest
		crls    []*x509.RevocationList
		ignored []string
	)
	rest := data
	for n := 0; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if n == maxBlocks {
			return nil, fmt.Errorf("inspect: more than %d PEM blocks; split the file", maxBlocks)
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("inspect: PEM block %d (CERTIFICATE): %w", n+1, err)
			}
			certs = append(certs, c)
		case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
			csr, err := x509.ParseCertificateRequest(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("inspect: PEM block %d (%s): %w", n+1, b.Type, err)
			}
			csrs = append(csrs, csr)
		case "X509 CRL":
			crl, err := x509.ParseRevocationList(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("inspect: PEM block %d (X509 CRL): %w", n+1, err)
			}
			crls = append(crls, crl)
		default:
			ignored = append(ignored, b.Type)
		}
	}
	found := 0
	for _, k := range []int{len(certs), len(csrs), len(crls)} {
		if k > 0 {
			found++
		}
	}
	switch {
	case found == 0 && len(ignored) > 0:
		return nil, fmt.Errorf("%w: the PEM blocks are %s", ErrUnreadable, strings.Join(ignored, ", "))
	case found == 0:
		return nil, fmt.Errorf("%w: the PEM is malformed or truncated", ErrUnreadable)
	case found > 1 || len(csrs) > 1 || len(crls) > 1:
		return nil, fmt.Errorf("inspect: the file holds %d certificate(s), %d CSR(s) and %d CRL(s); inspect one CSR or CRL, or certificates, at a time",
			len(certs), len(csrs), len(crls))
	case len(csrs) == 1:
		return &Report{Kind: KindCSR, CSR: describeCSR(csrs[0]), Ignored: ignored}, nil
	case len(crls) == 1:
		return &Report{Kind: KindCRL, CRL: describeCRL(crls[0], opts), Ignored: ignored}, nil
	}
	return certReport(certs, ignored, opts), nil
}

func certReport(certs []*x509.Certificate, ignored []string, opts Options) *Report {
	if len(certs) == 1 {
		c := describeCert(certs[0], opts.Now)
		return &Report{Kind: KindCertificate, Certificate: &c, Ignored: ignored}
	}
	out := make([]Certificate, len(certs))
	for i, c := range certs {
		out[i] = describeCert(c, opts.Now)
		if i+1 < len(certs) {
			next := certs[i+1]
			err := c.CheckSignatureFrom(next)
			ok := err == nil
			out[i].SignedByNext = &ok
			switch {
			case !bytes.Equal(c.RawIssuer, next.RawSubject):
				out[i].SignatureProblem = fmt.Sprintf("its issuer is %q, the next certificate's subject is %q (wrong order, or a certificate is missing)",
					c.Issuer.String(), next.Subject.String())
			case err != nil:
				out[i].SignatureProblem = err.Error()
			}
		}
	}
	return &Report{Kind: KindChain, Certificates: out, Ignored: ignored}
}

func describeCert(c *x509.Certificate, now time.Time) Certificate {
	d := Certificate{
		Subject:            c.Subject.String(),
		Issuer:             c.Issuer.String(),
		Serial:             serial(c.SerialNumber.Bytes(), c.SerialNumber.Sign()),
		NotBefore:          c.NotBefore.UTC(),
		NotAfter:           c.NotAfter.UTC(),
		DaysLeft:           daysLeft(c.NotAfter, now),
		SANs:               pki.SANs(c),
		Key:                describeKey(c.PublicKey, c.PublicKeyAlgorithm),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		KeyUsage:           pki.KeyUsageNames(c.KeyUsage),
		ExtKeyUsage:        pki.ExtKeyUsageNames(c),
		CRLURLs:            c.CRLDistributionPoints,
		OCSPURLs:           c.OCSPServer,
		IssuerURLs:         c.IssuingCertificateURL,
		SHA256:             pki.FingerprintColons(c.Raw),
		SubjectKeyID:       pki.ColonHex(c.SubjectKeyId),
		AuthorityKeyID:     pki.ColonHex(c.AuthorityKeyId),
		SelfSigned:         bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil,
	}
	switch {
	case now.Before(c.NotBefore):
		d.Validity = "not_yet_valid"
	case now.After(c.NotAfter):
		d.Validity = "expired"
	default:
		d.Validity = "valid"
	}
	if c.BasicConstraintsValid {
		b := &Basic{CA: c.IsCA}
		if c.IsCA && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
			n := c.MaxPathLen
			b.PathLen = &n
		}
		d.BasicConstraints = b
	}
	if nc := NameConstraintsOf(c); nc != nil {
		d.NameConstraints = nc
	}
	return d
}

// NameConstraintsOf returns c's name constraints, nil when it has none.
func NameConstraintsOf(c *x509.Certificate) *NameConstraints {
	nc := &NameConstraints{
		Critical:       c.PermittedDNSDomainsCritical,
		PermittedDNS:   c.PermittedDNSDomains,
		ExcludedDNS:    c.ExcludedDNSDomains,
		PermittedEmail: c.PermittedEmailAddresses,
		ExcludedEmail:  c.ExcludedEmailAddresses,
		PermittedURI:   c.PermittedURIDomains,
		ExcludedURI:    c.ExcludedURIDomains,
	}
	for _, n := range c.PermittedIPRanges {
		nc.PermittedIP = append(nc.PermittedIP, n.String())
	}
	for _, n := range c.ExcludedIPRanges {
		nc.ExcludedIP = append(nc.ExcludedIP, n.String())
	}
	if len(nc.PermittedDNS)+len(nc.ExcludedDNS)+len(nc.PermittedIP)+len(nc.ExcludedIP)+
		len(nc.PermittedEmail)+len(nc.ExcludedEmail)+len(nc.PermittedURI)+len(nc.ExcludedURI) == 0 {
		return nil
	}
	return nc
}

func describeCSR(csr *x509.CertificateRequest) *CSR {
	d := &CSR{
		Subject: csr.Subject.String(),
		SANs: pki.SANs(&x509.Certificate{DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses,
			EmailAddresses: csr.EmailAddresses, URIs: csr.URIs}),
		Key:                describeKey(csr.PublicKey, csr.PublicKeyAlgorithm),
		SignatureAlgorithm: csr.SignatureAlgorithm.String(),
	}
	if err := csr.CheckSignature(); err != nil {
		d.SignatureProblem = err.Error()
	} else {
		d.SignatureValid = true
	}
	return d
}

func describeCRL(crl *x509.RevocationList, opts Options) *CRL {
	d := &CRL{
		Issuer:             crl.Issuer.String(),
		ThisUpdate:         crl.ThisUpdate.UTC(),
		NextUpdate:         crl.NextUpdate.UTC(),
		Stale:              !crl.NextUpdate.IsZero() && opts.Now.After(crl.NextUpdate),
		SignatureAlgorithm: crl.SignatureAlgorithm.String(),
		AuthorityKeyID:     pki.ColonHex(crl.AuthorityKeyId),
		RevokedCount:       len(crl.RevokedCertificateEntries),
		Revoked:            []Revoked{},
	}
	if crl.Number != nil {
		d.Number = crl.Number.String()
	}
	for i, e := range crl.RevokedCertificateEntries {
		if i == opts.MaxEntries {
			break
		}
		r := Revoked{RevokedAt: e.RevocationTime.UTC()}
		if e.SerialNumber != nil {
			r.Serial = serial(e.SerialNumber.Bytes(), e.SerialNumber.Sign())
		}
		if e.ReasonCode != 0 {
			r.Reason = pki.Reason(e.ReasonCode).String()
		}
		for _, ext := range e.Extensions {
			// The invalidity date entry extension, RFC 5280 section 5.3.2.
			if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 24}) {
				if t, ok := parseGeneralizedTime(ext.Value); ok {
					r.InvalidityDate = &t
				}
			}
		}
		d.Revoked = append(d.Revoked, r)
	}
	return d
}

// describeKey says "ECDSA P-256", "RSA 3072" or "Ed25519".
func describeKey(pub any, alg x509.PublicKeyAlgorithm) string {
	fam, bits, err := pki.DescribeKey(pub)
	if err != nil {
		return alg.String() + " (unsupported)"
	}
	switch fam {
	case pki.FamilyECDSA:
		return "ECDSA " + pub.(*ecdsa.PublicKey).Curve.Params().Name
	case pki.FamilyEd25519:
		return "Ed25519"
	}
	return fmt.Sprintf("%s %d", fam, bits)
}

// daysLeft counts whole days until notAfter, negative once it has passed.
func daysLeft(notAfter, now time.Time) int {
	d := notAfter.Sub(now).Hours() / 24
	return int(math.Floor(d))
}

func serial(b []byte, sign int) string {
	s := hex.EncodeToString(b)
	if s == "" {
		s = "0"
	}
	if sign < 0 {
		s = "-" + s
	}
	return s
}

func parseGeneralizedTime(der []byte) (time.Time, bool) {
	var t time.Time
	rest, err := asn1.UnmarshalWithParams(der, &t, "generalized")
	if err != nil || len(rest) > 0 {
		return time.Time{}, false
	}
	return t.UTC(), true
}
