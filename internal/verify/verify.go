// Package verify owns standalone certificate chain verification: it checks a
// certificate against roots, a purpose and a host name without a server, and
// reports every problem it finds in plain words.
package verify

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Problem codes, stable for scripts reading --json output.
const (
	CodeExpired          = "expired"
	CodeNotYetValid      = "not_yet_valid"
	CodeUntrusted        = "untrusted"
	CodeWrongPurpose     = "wrong_purpose"
	CodeHostnameMismatch = "hostname_mismatch"
	CodeWeakSignature    = "weak_signature"
	CodeWeakKey          = "weak_key"
	CodeMissingSKI       = "missing_ski"
	CodeMissingAKI       = "missing_aki"
	CodeCAAsLeaf         = "ca_as_leaf"
	CodeBadOption        = "bad_option"
	// Revocation codes; the command line fills them when asked to check
	// revocation (fetching CRLs and OCSP is network work the core does not do).
	CodeRevoked                = "revoked"
	CodeRevocationUndetermined = "revocation_undetermined"
)

// CodeInfo describes one problem code.
type CodeInfo struct {
	Code    string `json:"code"`
	Summary string `json:"summary"`
}

// codeTable is the one list of problem codes, in the order Text reports them.
var codeTable = []CodeInfo{
	{CodeBadOption, "the verification options are invalid"},
	{CodeRevoked, "the certificate or a certificate in its chain is revoked (CRL or OCSP)"},
	{CodeRevocationUndetermined, "revocation was to be checked, but no CRL or OCSP source gave an answer"},
	{CodeExpired, "the certificate or a certificate in its chain has expired"},
	{CodeNotYetValid, "the certificate or a certificate in its chain is not valid yet"},
	{CodeUntrusted, "no chain leads from the certificate to a trusted root"},
	{CodeHostnameMismatch, "the certificate does not name the requested host"},
	{CodeCAAsLeaf, "a CA certificate is used as an end-entity certificate"},
	{CodeWrongPurpose, "key usage or extended key usage does not allow the requested purpose"},
	{CodeWeakSignature, "a certificate is signed with MD5 or SHA-1"},
	{CodeWeakKey, "a key is smaller than RSA-2048 or a 256-bit curve, or of a deprecated type"},
	{CodeMissingSKI, "a leaf or intermediate lacks the subject key identifier extension"},
	{CodeMissingAKI, "a certificate that is not self-signed lacks the authority key identifier extension"},
}

// Codes lists every problem code with a one-line summary.
func Codes() []CodeInfo { return slices.Clone(codeTable) }

// Purposes accepted in Options.Purpose.
const (
	PurposeServer = "server"
	PurposeClient = "client"
	PurposeCode   = "code"
)

type purposeInfo struct {
	eku  x509.ExtKeyUsage
	name string // as it reads in a sentence
	// strictEKU: the extended key usage must be present and name eku
	// itself. TLS stacks (crypto/tls, OpenSSL, browsers) treat a missing
	// EKU or anyExtendedKeyUsage as "any purpose"; code-signing verifiers
	// (Authenticode, sigstore) do not.
	strictEKU bool
}

var purposes = map[string]purposeInfo{
	PurposeServer: {x509.ExtKeyUsageServerAuth, "TLS server authentication (serverAuth)", false},
	PurposeClient: {x509.ExtKeyUsageClientAuth, "TLS client authentication (clientAuth)", false},
	PurposeCode:   {x509.ExtKeyUsageCodeSigning, "code signing (codeSigning)", true},
}

// weakSignatures maps signature algorithms with broken hashes to the hash name.
var weakSignatures = map[x509.SignatureAlgorithm]string{
	x509.MD2WithRSA:    "MD2",
	x509.MD5WithRSA:    "MD5",
	x509.SHA1WithRSA:   "SHA-1",
	x509.DSAWithSHA1:   "SHA-1",
	x509.ECDSAWithSHA1: "SHA-1",
}

// minKeyBits is the smallest acceptable key per family.
var minKeyBits = map[string]int{
	pki.FamilyRSA:     2048,
	pki.FamilyECDSA:   256,
	pki.FamilyEd25519: 256,
}

// maxChainLen bounds the fallback chain walk.
const maxChainLen = 10

// Options says what to verify against. The zero value verifies against the
// system roots at the current time with no purpose or host check.
type Options struct {
	// Roots are the trust anchors; nil means the system pool. A non-nil
	// empty slice trusts nothing.
	Roots []*x509.Certificate
	// Intermediates may be used to build a chain; they are not trusted.
	Intermediates []*x509.Certificate
	// Purpose is "", "server", "client" or "code".
	Purpose string
	// Host, when set, must be named by the certificate (DNS name or IP).
	Host string
	// Now is the verification time; zero means time.Now().
	Now time.Time
}

// Problem is one reason a certificate is not valid.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Report is the outcome of Verify.
type Report struct {
	Valid    bool       `json:"valid"`
	Subject  string     `json:"subject"`
	Issuer   string     `json:"issuer"`
	NotAfter time.Time  `json:"not_after"`
	Chains   [][]string `json:"chains,omitempty"` // subjects, leaf first
	Problems []Problem  `json:"problems,omitempty"`
}

// Text renders the report for a terminal: a short header, one line per
// problem, and a final line "valid" or "NOT valid: N problem(s)".
func (r Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "subject:   %s\n", r.Subject)
	fmt.Fprintf(&b, "issuer:    %s\n", r.Issuer)
	if !r.NotAfter.IsZero() {
		fmt.Fprintf(&b, "not after: %s\n", stamp(r.NotAfter))
	}
	for _, c := range r.Chains {
		fmt.Fprintf(&b, "chain:     %s\n", strings.Join(c, " <- "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem:   [%s] %s\n", p.Code, p.Message)
	}
	if r.Valid {
		b.WriteString("valid\n")
	} else {
		fmt.Fprintf(&b, "NOT valid: %d problem(s)\n", len(r.Problems))
	}
	return b.String()
}

// Verify checks leaf and reports every problem found, not just the first.
// Path building uses crypto/x509; expiry, purpose, host name, algorithms and
// key identifiers are checked here so that each is reported on its own.
func Verify(leaf *x509.Certificate, opts Options) Report {
	if leaf == nil {
		return Report{Problems: []Problem{{CodeBadOption, "no certificate to verify"}}}
	}
	v := &verifier{opts: opts, now: opts.Now}
	if v.now.IsZero() {
		v.now = time.Now()
	}
	v.report = Report{Subject: label(leaf), Issuer: issuerLabel(leaf), NotAfter: leaf.NotAfter}

	purpose, ok := purposes[opts.Purpose]
	if !ok && opts.Purpose != "" {
		v.add(CodeBadOption, "unknown purpose %q (want server, client or code)", opts.Purpose)
	}

	v.checkValidity(leaf, "certificate")
	chain := v.checkTrust(leaf)
	if opts.Host != "" {
		v.checkHost(leaf)
	}
	if ok {
		v.checkLeafPurpose(leaf, purpose)
	}
	v.checkAlgorithms(leaf, "certificate")
	v.checkKeyIDs(leaf, "certificate", true)
	for _, c := range chain {
		role := roleOf(c)
		v.checkValidity(c, role)
		if ok {
			v.checkCAPurpose(c, role, purpose)
		}
		v.checkAlgorithms(c, role)
		v.checkKeyIDs(c, role, false)
	}

	slices.SortStableFunc(v.report.Problems, func(a, b Problem) int {
		return codeRank(a.Code) - codeRank(b.Code)
	})
	v.report.Valid = len(v.report.Problems) == 0
	return v.report
}

func codeRank(code string) int {
	return slices.IndexFunc(codeTable, func(c CodeInfo) bool { return c.Code == code })
}

type verifier struct {
	opts   Options
	now    time.Time
	report Report
	// anchors are the trust anchors of the verified chains; like
	// self-signed roots, their own signatures are never checked.
	anchors map[*x509.Certificate]bool
}

func (v *verifier) add(code, format string, args ...any) {
	v.report.Problems = append(v.report.Problems, Problem{Code: code, Message: fmt.Sprintf(format, args...)})
}

// checkTrust builds chains with crypto/x509 and returns the CA certificates
// on them, or on a best-effort chain when none verifies, for the per-cert
// checks. Purpose is left out of path building (checkLeafPurpose and
// checkCAPurpose report it), and a chain that fails only because a
// certificate is outside its validity period is not called untrusted
// (checkValidity reports that).
func (v *verifier) checkTrust(leaf *x509.Certificate) []*x509.Certificate {
	vo := x509.VerifyOptions{
		Intermediates: x509.NewCertPool(),
		CurrentTime:   v.now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, c := range v.opts.Intermediates {
		vo.Intermediates.AddCert(c)
	}
	if v.opts.Roots != nil {
		vo.Roots = x509.NewCertPool()
		for _, c := range v.opts.Roots {
			vo.Roots.AddCert(c)
		}
	}

	chains, err := leaf.Verify(vo)
	var guess []*x509.Certificate
	if err != nil {
		guess = guessChain(leaf, append(slices.Clone(v.opts.Intermediates), v.opts.Roots...))
		// A certificate outside its validity period fails path building,
		// as an invalid leaf or as an unusable parent. Retry at an instant
		// when the whole best-effort chain is valid to learn whether the
		// chain is otherwise sound.
		if t, ok := validInstant(guess, v.now); ok && !t.Equal(v.now) {
			vo.CurrentTime = t
			chains, err = leaf.Verify(vo)
		}
	}
	if err == nil {
		v.anchors = map[*x509.Certificate]bool{}
		for _, chain := range chains {
			v.anchors[chain[len(chain)-1]] = true
		}
		return v.recordChains(chains)
	}
	v.add(CodeUntrusted, "%s", v.describeVerifyError(err, leaf, guess))
	return guess[1:]
}

func (v *verifier) recordChains(chains [][]*x509.Certificate) []*x509.Certificate {
	var cas []*x509.Certificate
	seen := map[string]bool{}
	for _, chain := range chains {
		names := make([]string, len(chain))
		for i, c := range chain {
			names[i] = label(c)
			if i == 0 {
				continue
			}
			if fp := pki.Fingerprint(c.Raw); !seen[fp] {
				seen[fp] = true
				cas = append(cas, c)
			}
		}
		v.report.Chains = append(v.report.Chains, names)
	}
	return cas
}

// validInstant returns the instant closest to now at which every
// certificate in chain is within its validity period, if there is one.
func validInstant(chain []*x509.Certificate, now time.Time) (time.Time, bool) {
	lo, hi := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if lo.After(hi) {
		return time.Time{}, false
	}
	switch {
	case now.Before(lo):
		return lo, true
	case now.After(hi):
		return hi, true
	}
	return now, true
}

// guessChain follows issuer names (and key identifiers, when both are
// present) from leaf through candidates. It is used only to explain a
// failure and to check the CA certificates that would have been used.
func guessChain(leaf *x509.Certificate, candidates []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	for cur := leaf; len(chain) < maxChainLen && !selfSigned(cur); {
		var next *x509.Certificate
		for _, c := range candidates {
			if !issuedBy(cur, c) || slices.ContainsFunc(chain, func(x *x509.Certificate) bool { return x.Equal(c) }) {
				continue
			}
			if next == nil || cur.CheckSignatureFrom(c) == nil {
				next = c
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

func issuedBy(child, parent *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	return len(child.AuthorityKeyId) == 0 || len(parent.SubjectKeyId) == 0 ||
		bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
}

// selfSigned is decided by names and key identifiers only: checking the
// signature would call a SHA-1 root "not self-signed".
func selfSigned(c *x509.Certificate) bool {
	return issuedBy(c, c)
}

func roleOf(c *x509.Certificate) string {
	if selfSigned(c) {
		return fmt.Sprintf("root %q", label(c))
	}
	return fmt.Sprintf("intermediate %q", label(c))
}

func (v *verifier) describeVerifyError(err error, leaf *x509.Certificate, guess []*x509.Certificate) string {
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		sre x509.SystemRootsError
		uce x509.UnhandledCriticalExtension
	)
	switch {
	case errors.As(err, &ua):
		// A certificate on the best-effort chain signed with a hash that
		// crypto/x509 refuses explains the failure better than "unknown".
		for i, c := range guess {
			if alg, weak := weakSignatures[c.SignatureAlgorithm]; weak && i+1 < len(guess) {
				return fmt.Sprintf("no trusted chain: the signature on %s by %q uses %s, which crypto/x509 refuses to verify",
					describeCert(c, leaf), label(guess[i+1]), alg)
			}
		}
		for i, c := range guess[1:] {
			if !canSign(c) {
				return fmt.Sprintf("no trusted chain: %q issued %s but is not a CA certificate (it needs basicConstraints CA:TRUE and, if key usage is present, keyCertSign)",
					label(c), describeCert(guess[i], leaf))
			}
		}
		last := guess[len(guess)-1]
		if v.opts.Roots != nil && slices.ContainsFunc(v.opts.Roots, last.Equal) && last != leaf {
			return fmt.Sprintf("no trusted chain: a certificate on the path to the trusted root %q could not be used (%v)", label(last), err)
		}
		if selfSigned(last) {
			return fmt.Sprintf("no trusted chain: the chain ends at %q, which is not among the trusted roots", label(last))
		}
		if last == leaf {
			return fmt.Sprintf("no trusted chain: the issuer %q was not found among the intermediates or trusted roots (supply it with --chain or --roots)", issuerLabel(leaf))
		}
		return fmt.Sprintf("no trusted chain: the chain stops at %q, whose issuer %q was not found among the intermediates or trusted roots", label(last), issuerLabel(last))
	case errors.As(err, &ci):
		what := describeCert(ci.Cert, leaf)
		switch ci.Reason {
		case x509.NotAuthorizedToSign:
			return fmt.Sprintf("no trusted chain: %s is not a CA certificate (or its key usage lacks keyCertSign) yet signs another certificate", what)
		case x509.CANotAuthorizedForThisName:
			return fmt.Sprintf("no trusted chain: name constraints forbid a name in %s: %s", what, ci.Detail)
		case x509.TooManyIntermediates:
			return fmt.Sprintf("no trusted chain: the path length constraint of %s is exceeded", what)
		case x509.CANotAuthorizedForExtKeyUsage:
			return fmt.Sprintf("no trusted chain: %s is not allowed to issue for this purpose", what)
		case x509.NameMismatch:
			return fmt.Sprintf("no trusted chain: the issuer name of %s does not match its issuer's subject", what)
		case x509.NameConstraintsWithoutSANs, x509.UnconstrainedName:
			return fmt.Sprintf("no trusted chain: a CA has name constraints that cannot be checked against %s", what)
		case x509.TooManyConstraints:
			return "no trusted chain: checking name constraints would take too long"
		}
		return fmt.Sprintf("no trusted chain: %s is invalid: %v", what, err)
	case errors.As(err, &sre):
		return fmt.Sprintf("no trusted chain: the system root certificates could not be loaded (%v); pass --roots", err)
	case errors.As(err, &uce):
		return "no trusted chain: a certificate has a critical extension that crypto/x509 does not understand"
	}
	return fmt.Sprintf("no trusted chain: %v", err)
}

// canSign mirrors the CA test of x509.Certificate.CheckSignatureFrom.
func canSign(c *x509.Certificate) bool {
	if c.Version == 3 && !c.BasicConstraintsValid || c.BasicConstraintsValid && !c.IsCA {
		return false
	}
	return c.KeyUsage == 0 || c.KeyUsage&x509.KeyUsageCertSign != 0
}

func describeCert(c, leaf *x509.Certificate) string {
	if c == nil || c.Equal(leaf) {
		return "the certificate"
	}
	return roleOf(c)
}

func (v *verifier) checkValidity(c *x509.Certificate, what string) {
	switch {
	case v.now.After(c.NotAfter):
		v.add(CodeExpired, "%s expired on %s (%s ago)", what, stamp(c.NotAfter), Span(v.now.Sub(c.NotAfter)))
	case v.now.Before(c.NotBefore):
		v.add(CodeNotYetValid, "%s is not valid until %s (in %s)", what, stamp(c.NotBefore), Span(c.NotBefore.Sub(v.now)))
	}
}

func (v *verifier) checkHost(leaf *x509.Certificate) {
	if err := leaf.VerifyHostname(v.opts.Host); err == nil {
		return
	}
	var names []string
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		msg := fmt.Sprintf("certificate is not valid for host %s: it has no DNS or IP subject alternative names", v.opts.Host)
		if leaf.Subject.CommonName != "" {
			msg += fmt.Sprintf(" (the common name %q is not used for host matching)", leaf.Subject.CommonName)
		}
		v.add(CodeHostnameMismatch, "%s", msg)
		return
	}
	v.add(CodeHostnameMismatch, "certificate is not valid for host %s: it names %s", v.opts.Host, strings.Join(names, ", "))
}

func (v *verifier) checkLeafPurpose(leaf *x509.Certificate, p purposeInfo) {
	if leaf.IsCA {
		v.add(CodeCAAsLeaf, "certificate is a CA certificate (basicConstraints CA:TRUE), not an end-entity certificate for %s", p.name)
	}
	if msg := ekuProblem(leaf, p); msg != "" {
		v.add(CodeWrongPurpose, "certificate is not valid for %s: %s", p.name, msg)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		v.add(CodeWrongPurpose, "certificate is not valid for %s: its key usage lacks digitalSignature", p.name)
	}
}

// checkCAPurpose reports a CA whose own EKU excludes the purpose: relying
// parties (and crypto/x509) treat a CA's EKU as a limit on what it issues.
func (v *verifier) checkCAPurpose(c *x509.Certificate, role string, p purposeInfo) {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return
	}
	if slices.Contains(c.ExtKeyUsage, p.eku) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return
	}
	v.add(CodeWrongPurpose, "%s may not issue for %s: its extended key usage allows only %s", role, p.name, ekuList(c))
}

func ekuProblem(c *x509.Certificate, p purposeInfo) string {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		if p.strictEKU {
			return "it has no extended key usage extension"
		}
		return ""
	}
	if slices.Contains(c.ExtKeyUsage, p.eku) {
		return ""
	}
	if !p.strictEKU && slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return ""
	}
	return "its extended key usage allows only " + ekuList(c)
}

func ekuList(c *x509.Certificate) string {
	return strings.Join(pki.ExtKeyUsageNames(c), ", ")
}

func (v *verifier) checkAlgorithms(c *x509.Certificate, what string) {
	// A self-signed certificate's own signature protects nothing: roots
	// are trusted by presence, not by signature.
	if hash, weak := weakSignatures[c.SignatureAlgorithm]; weak && !selfSigned(c) && !v.anchors[c] {
		v.add(CodeWeakSignature, "%s is signed with %s (%s), which is broken", what, c.SignatureAlgorithm, hash)
	}
	fam, bits, err := pki.DescribeKey(c.PublicKey)
	if err != nil {
		v.add(CodeWeakKey, "%s has a %s key, which is not acceptable", what, c.PublicKeyAlgorithm)
		return
	}
	if want := minKeyBits[fam]; bits < want {
		v.add(CodeWeakKey, "%s has a %d-bit %s key; at least %d bits are needed", what, bits, fam, want)
	}
}

func (v *verifier) checkKeyIDs(c *x509.Certificate, what string, isLeaf bool) {
	self := selfSigned(c)
	// RFC 5280 4.2.1.2: CA certificates MUST and end-entity certificates
	// SHOULD carry an SKI; roots are exempt here as many long-lived
	// trust anchors predate the rule.
	if len(c.SubjectKeyId) == 0 && (isLeaf || !self) {
		v.add(CodeMissingSKI, "%s has no subject key identifier", what)
	}
	// RFC 5280 4.2.1.1: required in all but self-signed certificates.
	if len(c.AuthorityKeyId) == 0 && !self {
		v.add(CodeMissingAKI, "%s has no authority key identifier", what)
	}
}

func label(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	switch {
	case len(c.DNSNames) > 0:
		return "(no subject) DNS:" + c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		return "(no subject) IP:" + c.IPAddresses[0].String()
	case len(c.URIs) > 0:
		return "(no subject) URI:" + c.URIs[0].String()
	case len(c.EmailAddresses) > 0:
		return "(no subject) email:" + c.EmailAddresses[0]
	}
	return "(no subject) serial " + pki.SerialHex(c.SerialNumber)
}

func issuerLabel(c *x509.Certificate) string {
	if s := c.Issuer.String(); s != "" {
		return s
	}
	return "(empty issuer name)"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Span renders a duration the way a person would say it, as problem
// messages do here and in revcheck: the largest whole unit, rounded down
// ("3 days", "1 hour").
func Span(d time.Duration) string {
	unit := func(n int, s string) string {
		if n == 1 {
			return "1 " + s
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	switch {
	case d >= 24*time.Hour:
		return unit(int(d/(24*time.Hour)), "day")
	case d >= time.Hour:
		return unit(int(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int(d/time.Minute), "minute")
	}
	return unit(int(d/time.Second), "second")
}
