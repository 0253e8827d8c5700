// Package lint owns pre-issuance linting: it signs a to-be-issued
// certificate with a throwaway key and issuer, runs zlint over the result and
// reports the lints that would fail, so a bad certificate is never signed by
// a real CA key.
package lint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	_ "github.com/zmap/zlint/v3" // registers zlint's lints in its global registry
	zl "github.com/zmap/zlint/v3/lint"

	"github.com/certwright/certwright/internal/pki"
)

// privateSources are the zlint sources that hold for any X.509 PKI, public
// or private: the RFCs every relying party implements and the community
// lints for encoding mistakes.
var privateSources = zl.SourceList{
	zl.RFC5280,
	zl.RFC3279,
	zl.RFC5480,
	zl.RFC5891,
	zl.RFC6962,
	zl.RFC8813,
	zl.Community,
}

// cabfSources are added when a profile asks for CA/Browser Forum rules: the
// TLS Baseline Requirements and the root programs that enforce them. EV,
// S/MIME, code-signing BRs and ETSI stay out: Certwright issues none of
// those certificate policies.
var cabfSources = zl.SourceList{
	zl.CABFBaselineRequirements,
	zl.MozillaRootStorePolicy,
	zl.AppleRootStorePolicy,
	zl.ChromeRootStorePolicy,
}

// alwaysExcluded are lints that cannot say anything about a lint
// certificate, so running them is pure cost.
var alwaysExcluded = []string{
	// Checks whether the certificate's signature verifies under any of eight
	// compromised eMudhra P-384 CA keys. A lint certificate is always signed
	// by our throwaway key, so it can never fire — yet it costs eight ECDSA
	// verifications, about 90% of a Check on an ECDSA issuer.
	"e_cert_issued_by_compromised_emudhra_ca",
	// Run by the Linter itself, faster and to the same effect (smallkey.go,
	// fermat.go, extder.go).
	smallKeyLint,
	fermatLint,
	extDERLint,
}

// No other lint is excluded. Surveyed against the certificates a private CA
// issues (names under .internal, .lan, .corp, .home.arpa, single labels,
// localhost, RFC 1918 and loopback IPs, SPIFFE URIs, empty subjects with
// SANs, 10-year leaves, no AIA/CRL DP), only CABF_BR lints fire:
// e_dnsname_not_valid_tld, e_ext_san_contains_reserved_ip,
// w_sub_cert_aia_contains_internal_names, e_sub_cert_certificate_policies_missing,
// e_sub_cert_cert_policy_empty, w_subject_common_name_included and
// w_ext_subject_key_identifier_not_recommended_subscriber. The private set
// already leaves those out by source, and they are right for the CA/B Forum
// set. n_san_iana_pub_suffix_empty, the obvious suspect, flags only names
// that are themselves a bare public suffix, so it stays.

// Options configures a Linter. The zero value is ready to use.
type Options struct {
	// ExcludeNames names further zlint lints to skip in both sets, for a
	// deployment that knowingly departs from one. Unknown names are an error.
	ExcludeNames []string
}

// Finding is one lint that did not pass.
type Finding struct {
	Name    string // zlint name, e.g. "e_sub_cert_aia_does_not_contain_ocsp_url"
	Status  string // "error" or "fatal"
	Details string // zlint's explanation; may be empty
}

func (f Finding) String() string {
	if f.Details == "" {
		return f.Name
	}
	return fmt.Sprintf("%s (%s)", f.Name, f.Details)
}

// Error is returned by Check when one or more lints fail with status error
// or fatal. The certificate must not be issued.
type Error struct {
	Lints []Finding
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Lints))
	for i, f := range e.Lints {
		parts[i] = f.String()
	}
	return "lint: certificate failed " + strings.Join(parts, ", ")
}

// Linter lints to-be-signed certificates. It is safe for concurrent use.
type Linter struct {
	private zl.Registry
	cabf    zl.Registry

	// placeholders holds, per key type and signer options, one signature
	// by that type's throwaway key over a fixed message (see
	// placeholderSignature); values are []byte.
	placeholders sync.Map

	// signers holds one throwaway key per key type (see keySpec), each
	// created on first use; values are *throwawayKey.
	signers sync.Map

	mu      sync.Mutex
	issuers map[string]*x509.Certificate // real issuer fingerprint → throwaway issuer

	// smallKeyLint is zlint's e_ecdsa_small_private_key, nil when the
	// deployment excludes it; the Linter runs its own equivalent
	// (smallKey), and zlint's only for a curve it has no table for.
	smallKeyLint *zl.CertificateLint

	// fermatOn is false when the deployment excludes zlint's
	// e_rsa_fermat_factorization, which the Linter runs itself (fermat).
	fermatOn bool
	// extDERMeta is zlint's e_cert_ext_invalid_der, nil when the
	// deployment excludes it; the Linter runs its own equivalent (extDER)
	// under the lint's metadata.
	extDERMeta *zl.CertificateLint
}

// maxIssuers bounds the throwaway-issuer cache. A CA server has a handful
// of issuers; the bound only matters if a caller lints against arbitrary ones.
const maxIssuers = 256

type throwawayKey struct {
	once   sync.Once
	signer crypto.Signer
	err    error
}

// New builds the two lint registries once; filtering the global registry
// per call would dominate the cost of a check.
func New(opts Options) (*Linter, error) {
	exclude := append(append([]string(nil), alwaysExcluded...), opts.ExcludeNames...)
	private, err := zl.GlobalRegistry().Filter(zl.FilterOptions{
		IncludeSources: privateSources,
		ExcludeNames:   exclude,
	})
	if err != nil {
		return nil, fmt.Errorf("lint: build private registry: %w", err)
	}
	both := append(append(zl.SourceList(nil), privateSources...), cabfSources...)
	cabf, err := zl.GlobalRegistry().Filter(zl.FilterOptions{
		IncludeSources: both,
		ExcludeNames:   exclude,
	})
	if err != nil {
		return nil, fmt.Errorf("lint: build CA/B Forum registry: %w", err)
	}
	l := &Linter{
		private:  private,
		cabf:     cabf,
		issuers:  make(map[string]*x509.Certificate),
		fermatOn: !slices.Contains(opts.ExcludeNames, fermatLint),
	}
	if !slices.Contains(opts.ExcludeNames, smallKeyLint) {
		if l.smallKeyLint = zl.GlobalRegistry().CertificateLints().ByName(smallKeyLint); l.smallKeyLint == nil {
			return nil, fmt.Errorf("lint: zlint has no lint %s", smallKeyLint)
		}
	}
	if !slices.Contains(opts.ExcludeNames, extDERLint) {
		if l.extDERMeta = zl.GlobalRegistry().CertificateLints().ByName(extDERLint); l.extDERMeta == nil {
			return nil, fmt.Errorf("lint: zlint has no lint %s", extDERLint)
		}
	}
	return l, nil
}

// Names lists the lints Check runs for the given set, sorted.
func (l *Linter) Names(cabf bool) []string {
	names := slices.Clone(l.registry(cabf).CertificateLints().Names())
	if l.smallKeyLint != nil {
		names = append(names, smallKeyLint)
	}
	if l.fermatOn {
		names = append(names, fermatLint)
	}
	if l.extDERMeta != nil {
		names = append(names, extDERLint)
	}
	slices.Sort(names)
	return names
}

func (l *Linter) registry(cabf bool) zl.Registry {
	if cabf {
		return l.cabf
	}
	return l.private
}

// Check lints what tmpl would become if issuer signed it for the subject
// key pub. A nil issuer means tmpl is self-signed (a root) with key pub.
// With cabf set, the CA/Browser Forum TLS lints run as well.
//
// It returns an *Error when any lint fails with status error or fatal, and
// otherwise the lints that warned, as "w_name: details". The first Check
// for an issuer key type generates that type's throwaway key, which for
// RSA-4096 takes a second or more; later checks reuse it.
func (l *Linter) Check(tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate, cabf bool) ([]string, error) {
	if tmpl == nil || pub == nil {
		return nil, errors.New("lint: template and subject public key are required")
	}
	if issuer != nil && !samePublicKey(pub, issuer.PublicKey) {
		t, err := NewTBS(tmpl, issuer, pub)
		if err != nil {
			return nil, err
		}
		return l.CheckTBS(t, cabf)
	}
	// A self-signed certificate is linted as one: re-signed whole under a
	// throwaway key, which also stands in for its subject key, so that
	// zcrypto sees a valid self-signature (roots are recognised by it).
	der, err := l.sign(tmpl, pub, issuer)
	if err != nil {
		return nil, err
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lint: parse lint certificate: %w", err)
	}
	res := l.lint(zc, cabf)
	// The lint certificate carries the throwaway key: check the real one.
	if r := l.smallKeyOf(pub); r != nil {
		res = withResult(res, smallKeyLint, r)
	}
	if r := l.fermatOf(pub); r != nil {
		res = withResult(res, fermatLint, r)
	}
	return processResults(res)
}

// CheckTBS lints the to-be-signed certificate t (see NewTBS), as Check
// does: it assembles t.Raw with the placeholder signature of the issuer's
// key type and t's signer options (placeholderSignature) and lints the
// result, whose every byte but the signature value is the certificate the
// real key will sign. The real key
// signs only after CheckTBS returns no error.
func (l *Linter) CheckTBS(t *TBS, cabf bool) ([]string, error) {
	sig, err := l.placeholderSignature(t.issuerPub, t.Opts)
	if err != nil {
		return nil, err
	}
	der, err := t.Certificate(sig)
	if err != nil {
		return nil, err
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lint: parse lint certificate: %w", err)
	}
	return processResults(l.lint(zc, cabf))
}

// lint runs the set's zlint lints and the Linter's own checks over zc and
// returns the results that warned or failed, by lint name (nil for none).
// Each zlint lint runs exactly as zlint.LintCertificateEx runs it
// (CertificateLint.Execute with the registry's configuration); what is left
// out is LintCertificateEx's record of every lint that passed or did not
// apply, which nothing here reads and which cost about a tenth of a leaf's
// lint.
func (l *Linter) lint(zc *zx509.Certificate, cabf bool) map[string]*zl.LintResult {
	reg := l.registry(cabf)
	cfg := reg.GetConfiguration()
	var res map[string]*zl.LintResult
	for _, cl := range reg.CertificateLints().Lints() {
		if r := cl.Execute(zc, cfg); r != nil && (r.Status == zl.Warn || r.Status == zl.Error || r.Status == zl.Fatal) {
			res = withResult(res, cl.Name, r)
		}
	}
	if r := l.smallKey(zc); r != nil {
		res = withResult(res, smallKeyLint, r)
	}
	if r := l.fermat(zc); r != nil {
		res = withResult(res, fermatLint, r)
	}
	if l.extDERMeta != nil {
		if r := extDER(l.extDERMeta, zc); r != nil {
			res = withResult(res, extDERLint, r)
		}
	}
	return res
}

// withResult returns res with r recorded as lint name's result.
func withResult(res map[string]*zl.LintResult, name string, r *zl.LintResult) map[string]*zl.LintResult {
	if res == nil {
		res = make(map[string]*zl.LintResult)
	}
	res[name] = r
	return res
}

func processResults(res map[string]*zl.LintResult) ([]string, error) {
	var warnings []string
	var failed []Finding
	for name, r := range res {
		switch r.Status {
		case zl.Warn:
			if r.Details == "" {
				warnings = append(warnings, name)
			} else {
				warnings = append(warnings, name+": "+r.Details)
			}
		case zl.Error, zl.Fatal:
			failed = append(failed, Finding{Name: name, Status: r.Status.String(), Details: r.Details})
		}
	}
	sort.Strings(warnings)
	if len(failed) > 0 {
		sort.Slice(failed, func(i, j int) bool { return failed[i].Name < failed[j].Name })
		return warnings, &Error{Lints: failed}
	}
	return warnings, nil
}

// sign produces the lint certificate: tmpl signed by a throwaway key of the
// same type as the real issuer's, under a throwaway issuer with the real
// issuer's subject and key identifier, so the issuer DN, AKI and signature
// algorithm come out byte-for-byte as the real signature will make them.
func (l *Linter) sign(tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate) ([]byte, error) {
	if issuer == nil {
		signer, err := l.throwaway(pub)
		if err != nil {
			return nil, err
		}
		self := *tmpl
		self.PublicKey = nil
		der, err := x509.CreateCertificate(rand.Reader, &self, &self, signer.Public(), signer)
		if err != nil {
			return nil, fmt.Errorf("lint: sign self-signed lint certificate: %w", err)
		}
		return der, nil
	}
	parent, signer, err := l.throwawayIssuer(issuer)
	if err != nil {
		return nil, err
	}
	// A certificate for the issuer's own key (a renewed root) must stay
	// self-signed under the throwaway key, as Boulder's linter does.
	if samePublicKey(pub, issuer.PublicKey) {
		pub = signer.Public()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("lint: sign lint certificate: %w", err)
	}
	return der, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && k.Equal(b)
}

// placeholderMessage is what a throwaway key signs for the signature
// value of lint certificates.
const placeholderMessage = "certwright lint certificate: this signature covers nothing"

type placeholderKey struct {
	spec string
	hash crypto.Hash
	pss  bool
}

// placeholderSignature returns the signature value a lint certificate
// carries: a signature by the throwaway key of the issuer's key type, with
// the options the real key will sign with, made once per type and options
// and reused. No lint checks that a signature value verifies (zlint looks
// at the signature's algorithm identifier and encoding, which are the
// real ones; zcrypto checks a signature only to call a certificate with
// subject equal to issuer self-signed, and a throwaway signature over the
// real TBS would not verify under the subject key either), so signing each
// TBS with the throwaway key bought nothing but an ECDSA signature per
// certificate. The real CA key signs only after the lints pass.
func (l *Linter) placeholderSignature(issuerPub crypto.PublicKey, opts crypto.SignerOpts) ([]byte, error) {
	spec, _, err := keySpec(issuerPub)
	if err != nil {
		return nil, err
	}
	k := placeholderKey{spec: spec}
	if opts != nil {
		k.hash = opts.HashFunc()
	}
	if _, ok := opts.(*rsa.PSSOptions); ok {
		k.pss = true
	}
	if v, ok := l.placeholders.Load(k); ok {
		return v.([]byte), nil
	}
	signer, err := l.throwaway(issuerPub)
	if err != nil {
		return nil, err
	}
	sig, err := crypto.SignMessage(signer, rand.Reader, []byte(placeholderMessage), opts)
	if err != nil {
		return nil, fmt.Errorf("lint: sign lint certificate: %w", err)
	}
	v, _ := l.placeholders.LoadOrStore(k, sig)
	return v.([]byte), nil
}

// keySpec names a key type precisely enough that a throwaway key of that
// spec makes the same signature algorithm choice as the real key.
func keySpec(pub crypto.PublicKey) (string, func() (crypto.Signer, error), error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		return fmt.Sprintf("rsa-%d", bits), func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) }, nil
	case *ecdsa.PublicKey:
		curve := k.Curve
		return "ecdsa-" + curve.Params().Name, func() (crypto.Signer, error) { return ecdsa.GenerateKey(curve, rand.Reader) }, nil
	case ed25519.PublicKey:
		return "ed25519", func() (crypto.Signer, error) {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			return priv, err
		}, nil
	}
	return "", nil, fmt.Errorf("lint: unsupported issuer key type %T", pub)
}

func (l *Linter) throwaway(pub crypto.PublicKey) (crypto.Signer, error) {
	spec, gen, err := keySpec(pub)
	if err != nil {
		return nil, err
	}
	v, _ := l.signers.LoadOrStore(spec, &throwawayKey{})
	k := v.(*throwawayKey)
	k.once.Do(func() {
		k.signer, k.err = gen()
		if k.err != nil {
			k.err = fmt.Errorf("lint: generate throwaway %s key: %w", spec, k.err)
		}
	})
	return k.signer, k.err
}

func (l *Linter) throwawayIssuer(issuer *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	signer, err := l.throwaway(issuer.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	if len(issuer.Raw) == 0 {
		return nil, nil, errors.New("lint: issuer certificate has no DER (Raw is empty)")
	}
	fp := pki.Fingerprint(issuer.Raw)

	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.issuers[fp]; ok {
		return c, signer, nil
	}
	c, err := makeIssuer(issuer, signer)
	if err != nil {
		return nil, nil, err
	}
	if len(l.issuers) >= maxIssuers {
		clear(l.issuers)
	}
	l.issuers[fp] = c
	return c, signer, nil
}

// makeIssuer creates a self-signed stand-in for real. x509.CreateCertificate
// reads three things from a parent: its subject (the child's issuer DN),
// its SubjectKeyId (the child's AKI) and its public key (which must match
// the signer). The first two are copied exactly; the key is the throwaway.
func makeIssuer(real *x509.Certificate, signer crypto.Signer) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		RawSubject:            real.RawSubject,
		SubjectKeyId:          real.SubjectKeyId,
		NotBefore:             real.NotBefore,
		NotAfter:              real.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("lint: create throwaway issuer: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lint: parse throwaway issuer: %w", err)
	}
	if !bytes.Equal(c.RawSubject, real.RawSubject) {
		return nil, errors.New("lint: throwaway issuer subject differs from the real issuer's")
	}
	// CreateCertificate invents an SKI for a CA template without one; an
	// issuer that really has none must not give the lint certificate an AKI.
	c.SubjectKeyId = real.SubjectKeyId
	return c, nil
}
