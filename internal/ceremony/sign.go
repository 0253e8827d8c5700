package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
)

// IntermediateSpec is how the root signs a subordinate CA's CSR.
type IntermediateSpec struct {
	Validity time.Duration
	// PathLen is the number of CAs allowed below the subordinate: 0 for an
	// issuing CA.
	PathLen int
	// CRLURL is the CRL distribution point of the subordinate certificate:
	// where the online server serves the root's CRL once it is uploaded
	// (certwright ca import-root prints it). Required: a relying party
	// checking revocation needs it.
	CRLURL string
	// CAIssuersURL, optional, is the AIA caIssuers URL: where the root
	// certificate is served.
	CAIssuersURL string
}

// maxURL bounds a URL put into a certificate.
const maxURL = 1024

// checkURL accepts an absolute http or https URL with a host.
func checkURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > maxURL || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: %s %q: want an absolute http:// URL (https:// also accepted) with a host, at most %d characters", ErrInvalid, flag, s, maxURL)
	}
	return nil
}

func (sp *IntermediateSpec) check() error {
	if err := checkValidity(sp.Validity); err != nil {
		return err
	}
	if sp.PathLen < -1 || sp.PathLen > 8 {
		return fmt.Errorf("%w: path length %d: want -1 (unlimited) to 8", ErrInvalid, sp.PathLen)
	}
	if sp.CRLURL == "" {
		return fmt.Errorf("%w: the CRL URL is required: the URL the online server serves the root's CRL at (certwright ca import-root prints it)", ErrInvalid)
	}
	if err := checkURL("CRL URL", sp.CRLURL); err != nil {
		return err
	}
	if sp.CAIssuersURL != "" {
		if err := checkURL("caIssuers URL", sp.CAIssuersURL); err != nil {
			return err
		}
	}
	return nil
}

// Plan is a subordinate CA certificate ready to be signed: what it will
// say is checked, linted and shown to the operators before the root key is
// opened.
type Plan struct {
	d    *Dir
	s    Session
	csr  *x509.CertificateRequest
	tmpl *x509.Certificate

	Subject      string
	KeyAlgorithm pki.KeyAlgorithm
	SPKISHA256   string
	CSRSHA256    string
	Serial       string
	NotBefore    time.Time
	NotAfter     time.Time
	// Capped is true when the requested validity ran past the root's
	// expiry and NotAfter is the root's.
	Capped       bool
	PathLen      int
	CRLURL       string
	CAIssuersURL string
	// LintWarnings are the lints that warned (none failed).
	LintWarnings []string
}

// PlanIntermediate checks a subordinate CA's CSR (its signature, its key,
// a non-empty subject) and builds the certificate the root would sign: the
// server's CA template (ca.Template) with the CSR's subject and key, the
// given validity (never past the root's), path length (which the root's
// must allow) and URLs, linted as the server lints the intermediates it
// signs. Nothing is signed and the key is not opened.
func (d *Dir) PlanIntermediate(s Session, csrData []byte, spec IntermediateSpec) (*Plan, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := spec.check(); err != nil {
		return nil, err
	}
	csr, err := pki.ParseCSR(csrData)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	alg, err := pki.AlgorithmOf(csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: the CSR's key: %w", ErrInvalid, err)
	}
	if len(csr.Subject.ToRDNSequence()) == 0 {
		return nil, fmt.Errorf("%w: the CSR has an empty subject; a CA's subject names it (RFC 5280 4.1.2.6)", ErrInvalid)
	}
	if bytes.Equal(csr.RawSubjectPublicKeyInfo, d.root.RawSubjectPublicKeyInfo) {
		return nil, fmt.Errorf("%w: the CSR is for the root's own key", ErrInvalid)
	}
	now := s.now()
	if !now.Before(d.root.NotAfter) {
		return nil, fmt.Errorf("%w: the root expired on %s", ErrInvalid, d.root.NotAfter.Format(time.RFC3339))
	}
	serial, err := pki.NewSerialAt(s.Rand, now)
	if err != nil {
		return nil, err
	}
	tmpl, err := ca.Template(&ca.Spec{Subject: csr.Subject, KeyAlg: alg, Validity: spec.Validity, MaxPathLen: spec.PathLen},
		csr.PublicKey, serial, now, d.root, ca.URLs{CRL: spec.CRLURL, CAIssuers: spec.CAIssuersURL})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// The subject exactly as requested: the CA's issued certificates name
	// it as their issuer byte for byte.
	tmpl.RawSubject = csr.RawSubject
	tmpl.AuthorityKeyId = d.root.SubjectKeyId
	tmpl.SignatureAlgorithm = pki.SignatureAlgorithmFor(d.root.PublicKey)
	warnings, err := s.Linter.Check(tmpl, csr.PublicKey, d.root, false)
	if err != nil {
		return nil, fmt.Errorf("ceremony: the subordinate CA certificate fails lint: %w", err)
	}
	return &Plan{
		d: d, s: s, csr: csr, tmpl: tmpl,
		Subject: csr.Subject.String(), KeyAlgorithm: alg, SPKISHA256: spkiSHA256(csr.RawSubjectPublicKeyInfo),
		CSRSHA256: pki.Fingerprint(csr.Raw), Serial: pki.SerialHex(serial),
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, Capped: tmpl.NotAfter.Equal(d.root.NotAfter) && tmpl.NotAfter.Sub(tmpl.NotBefore) < spec.Validity,
		PathLen: spec.PathLen, CRLURL: spec.CRLURL, CAIssuersURL: spec.CAIssuersURL, LintWarnings: warnings,
	}, nil
}

// Signed is a subordinate CA certificate the root signed.
type Signed struct {
	Cert *x509.Certificate
	// File is the copy kept in the ceremony directory.
	File  string
	Entry *Entry
}

// Sign opens the root key from keys (checked against the root
// certificate), signs the plan, checks the result chains to the root, keeps
// a copy in issued/NNNN-SERIAL.pem, counts it in the state and appends the
// transcript entry.
func (p *Plan) Sign(ctx context.Context, keys KeySource) (*Signed, error) {
	d := p.d
	signer, err := d.openSigner(ctx, keys)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(p.s.Rand, p.tmpl, d.root, p.csr.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("ceremony: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ceremony: parse the signed certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(d.root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.NotBefore.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("ceremony: the signed certificate does not chain to the root: %w", err)
	}
	st := d.State()
	seq := len(st.Issued) + 1
	name := fmt.Sprintf("%04d-%s.pem", seq, pki.SerialHex(cert.SerialNumber))
	rel := filepath.Join(IssuedDirName, name)
	if err := atomicfile.WriteNew(filepath.Join(d.path, rel), pki.CertPEM(der), 0o644); err != nil {
		return nil, err
	}
	now := p.s.now()
	st.Issued = append(st.Issued, Issued{
		Seq: seq, Serial: pki.SerialHex(cert.SerialNumber), Subject: cert.Subject.String(), SHA256: pki.Fingerprint(der),
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), File: rel, SignedAt: now,
	})
	if err := d.save(st); err != nil {
		return nil, err
	}
	e := d.entry(&p.s, ActionIntermediateSign, now, keys.Ref())
	e.Certificate = certInfo(cert)
	e.CSR = &CSRInfo{Subject: p.Subject, SHA256: p.CSRSHA256, SPKISHA256: p.SPKISHA256}
	if err := appendEntry(d.path, &d.tail, e); err != nil {
		return nil, fmt.Errorf("%w (the certificate was signed and kept in %s)", err, rel)
	}
	return &Signed{Cert: cert, File: rel, Entry: e}, nil
}
