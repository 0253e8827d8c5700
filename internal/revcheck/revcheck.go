// Package revcheck owns revocation checking as a relying party does it: it
// fetches the CRLs and asks the OCSP responders a certificate and its
// intermediates name, checks each answer against the issuer (signature,
// scope, freshness, delegated responder), and reports revoked, good or
// undetermined per certificate. Make a Checker (its zero value uses the
// defaults) and call Check for a certificate to verify, or CheckChain for
// a chain as a server presented it; the Report renders as text, as JSON
// and as verify problems. It is an adapter: it speaks HTTP, which the core
// (internal/verify) never does.
package revcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/verify"
)

// Defaults of Checker, used where a field is zero.
const (
	DefaultTimeout = 10 * time.Second
	// A CRL with a million entries is about 50 MB of DER.
	DefaultMaxCRL  = 128 << 20
	DefaultMaxOCSP = 64 << 10
	DefaultSkew    = 5 * time.Minute
	// DefaultUserAgent is sent when Checker.UserAgent is empty.
	DefaultUserAgent = "certwright"
	maxRedirects     = 3
	// maxURLs bounds the URLs of one kind tried per certificate, so
	// that a certificate listing hundreds cannot stall the check.
	maxURLs = 4
	// maxAgeWithoutNextUpdate is how long a CRL or OCSP response that has
	// no nextUpdate counts as fresh after its thisUpdate (mozilla::pkix
	// applies the same rule to OCSP).
	maxAgeWithoutNextUpdate = 24 * time.Hour
	// maxChainLen bounds the chain walked when crypto/x509 builds none.
	maxChainLen = 10
)

// Statuses of a source (one CRL or OCSP URL) and of a certificate, stable
// for scripts reading --json.
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
	// StatusUnknown: the OCSP responder does not know the certificate.
	StatusUnknown = "unknown"
	// StatusUnchecked: the source gave no usable answer; Failure says why.
	StatusUnchecked = "unchecked"
	// StatusUndetermined: no source of the certificate gave an answer.
	StatusUndetermined = "undetermined"
	// StatusNotChecked: an intermediate that names no URL, or a trust anchor.
	StatusNotChecked = "not_checked"
)

// Why a source could not be used (SourceResult.Failure), stable for
// scripts reading --json.
const (
	FailNoURL                 = "no_url"
	FailUnsupported           = "unsupported"
	FailUnreachable           = "unreachable"
	FailTimeout               = "timeout"
	FailHTTP                  = "http_error"
	FailTooLarge              = "too_large"
	FailMalformed             = "malformed"
	FailWrongIssuer           = "wrong_issuer"
	FailBadSignature          = "bad_signature"
	FailUnauthorizedResponder = "unauthorized_responder"
	FailStale                 = "stale"
	FailNotYetValid           = "not_yet_valid"
	FailResponderError        = "responder_error"
)

// Kinds of source (SourceResult.Source).
const (
	SourceCRL  = "crl"
	SourceOCSP = "ocsp"
)

// Roles of a certificate in a Report (CertResult.Role).
const (
	// RoleCertificate is the certificate checked (the leaf).
	RoleCertificate  = "certificate"
	RoleIntermediate = "intermediate"
)

// sourceNames are the kinds of source as they read before a URL, and as
// they read on their own.
var (
	sourceNames = map[string]string{SourceCRL: "CRL", SourceOCSP: "OCSP"}
	sourceNouns = map[string]string{SourceCRL: "the CRL", SourceOCSP: "the OCSP responder"}
)

// OIDs of CRL and CRL entry extensions (RFC 5280 sections 5.2 and 5.3).
var (
	oidCRLNumber         = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDP         = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidAuthorityKeyID    = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidFreshestCRL       = asn1.ObjectIdentifier{2, 5, 29, 46}
	oidAuthorityInfo     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidReasonCode        = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate    = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidCertificateIssuer = asn1.ObjectIdentifier{2, 5, 29, 29}
)

// Checker looks up revocation status over HTTP. The zero value uses the
// defaults; a Checker is not changed by a check, so one may serve
// concurrent checks.
type Checker struct {
	// Timeout bounds one HTTP exchange, redirects and body included;
	// zero: DefaultTimeout.
	Timeout time.Duration
	// MaxCRL and MaxOCSP bound the bodies read, in bytes; zero:
	// DefaultMaxCRL and DefaultMaxOCSP.
	MaxCRL, MaxOCSP int64
	// Skew is the clock difference tolerated on thisUpdate and
	// nextUpdate; zero: DefaultSkew.
	Skew time.Duration
	// Clock tells the time; nil: the system clock.
	Clock clock.Clock
	// UserAgent is sent with every request; "": DefaultUserAgent.
	UserAgent string
	// DialContext opens the connections of every fetch, redirects
	// included (a caller fetching URLs from certificates it did not
	// choose puts its deny list here); nil: a net.Dialer bounded by
	// Timeout. No proxy is used either way: the checker reads nothing
	// from the environment.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// IssuerSources ends the note on a certificate whose issuer is not
	// among the certificates given: "its issuer X was not found among "
	// + IssuerSources, naming where they came from and how to add one;
	// "": "the chain and the roots".
	IssuerSources string
	// Cache, when set, answers a fetch already made (see FetchCache).
	Cache *FetchCache
}

func (rc *Checker) limits() (timeout time.Duration, maxCRL, maxOCSP int64, skew time.Duration) {
	timeout, maxCRL, maxOCSP, skew = rc.Timeout, rc.MaxCRL, rc.MaxOCSP, rc.Skew
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if maxCRL <= 0 {
		maxCRL = DefaultMaxCRL
	}
	if maxOCSP <= 0 {
		maxOCSP = DefaultMaxOCSP
	}
	if skew <= 0 {
		skew = DefaultSkew
	}
	return timeout, maxCRL, maxOCSP, skew
}

func (rc *Checker) now() time.Time {
	if rc.Clock == nil {
		return time.Now().UTC()
	}
	return rc.Clock.Now()
}

// Report is the outcome of a revocation check; its JSON form is what
// "certwright verify --check-revocation --json" prints.
type Report struct {
	// Status is good, revoked or undetermined: revoked when any
	// certificate is, else undetermined when any certificate is.
	Status string `json:"status"`
	// Certificates are the certificate checked and then its issuers,
	// up to and without the trust anchor.
	Certificates []CertResult `json:"certificates"`
	// Warnings name sources that failed for a certificate another
	// source said good for.
	Warnings []string `json:"warnings,omitempty"`
}

// CertResult is the revocation status of one certificate of the chain.
type CertResult struct {
	// Role is RoleCertificate for the one checked, else RoleIntermediate.
	Role    string `json:"role"`
	Subject string `json:"subject"`
	Serial  string `json:"serial"`
	Issuer  string `json:"issuer"`
	// Status is good, revoked, undetermined or not_checked.
	Status string `json:"status"`
	// Note says why the certificate was not checked or, when no source
	// was tried, why its status is undetermined.
	Note    string         `json:"note,omitempty"`
	Sources []SourceResult `json:"sources,omitempty"`
}

// SourceResult is the answer of one CRL distribution point or OCSP
// responder.
type SourceResult struct {
	Source string `json:"source"` // SourceCRL or SourceOCSP
	URL    string `json:"url,omitempty"`
	// Status is good, revoked, unknown (OCSP only) or unchecked.
	Status     string    `json:"status"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	CRLNumber  string    `json:"crl_number,omitempty"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// Responder names the delegated OCSP responder that signed the
	// answer; empty when the issuer signed it.
	Responder string `json:"responder,omitempty"`
	// Failure is a stable code (Fail*) and Error a sentence when Status
	// is unchecked.
	Failure string `json:"failure,omitempty"`
	Error   string `json:"error,omitempty"`
}

// sourceError says why one source could not be used: kind is one of the
// Fail* codes, msg the sentence shown, err the cause.
type sourceError struct {
	kind, msg string
	err       error
}

func (e *sourceError) Error() string { return e.msg }
func (e *sourceError) Unwrap() error { return e.err }

// sourceErrorf formats the message like fmt.Errorf, %w included.
func sourceErrorf(kind, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &sourceError{kind: kind, msg: err.Error(), err: errors.Unwrap(err)}
}

func uncheckedSource(source, u string, err error) SourceResult {
	s := SourceResult{Source: source, URL: u, Status: StatusUnchecked, Failure: FailMalformed, Error: err.Error()}
	var se *sourceError
	if errors.As(err, &se) {
		s.Failure = se.kind
	}
	return s
}

// CheckChain looks up the revocation status of a chain as a server
// presented it: chain[0] is the leaf, the rest the intermediates it
// sent, in any order. roots are the trust anchors (nil: the system
// roots); a trust anchor is not checked. An empty chain gives an
// undetermined report with no certificates.
func (rc *Checker) CheckChain(ctx context.Context, chain, roots []*x509.Certificate) *Report {
	if len(chain) == 0 {
		return &Report{Status: StatusUndetermined}
	}
	return rc.Check(ctx, chain[0], verify.Options{Intermediates: chain[1:], Roots: roots})
}

// Check looks up the revocation status of leaf and of every intermediate
// above it. Issuers are found among opts.Intermediates and opts.Roots (or
// the system roots); opts.Roots are also trusted for https URLs. Only the
// certificates of opts are used, not its purpose, host or time: the
// Checker's clock tells the time.
func (rc *Checker) Check(ctx context.Context, leaf *x509.Certificate, opts verify.Options) *Report {
	now := rc.now()
	hc := rc.httpClient(opts.Roots)
	defer hc.CloseIdleConnections()

	chain, anchored := issuerChain(leaf, opts, now)
	rep := &Report{}
	for i, c := range chain {
		last := i == len(chain)-1
		if last && anchored && i > 0 {
			// Trust anchors are trusted by presence; nothing revokes them.
			break
		}
		res := CertResult{
			Role: RoleCertificate, Subject: certLabel(c), Serial: pki.SerialHex(c.SerialNumber), Issuer: c.Issuer.String(),
		}
		if i > 0 {
			res.Role = RoleIntermediate
		}
		switch {
		case last && anchored:
			res.Status = StatusNotChecked
			res.Note = "it is a trust anchor (or self-signed): no issuer can revoke it"
		case last:
			res.Status = StatusNotChecked
			if i == 0 || hasRevocationURLs(c) {
				res.Status = StatusUndetermined
			}
			where := rc.IssuerSources
			if where == "" {
				where = "the chain and the roots"
			}
			res.Note = fmt.Sprintf("its issuer %q was not found among %s", c.Issuer.String(), where)
		default:
			rc.checkCert(ctx, hc, &res, c, chain[i+1], i == 0, now)
		}
		rep.Certificates = append(rep.Certificates, res)
	}
	rep.Status = StatusGood
	for _, c := range rep.Certificates {
		switch c.Status {
		case StatusRevoked:
			rep.Status = StatusRevoked
		case StatusUndetermined:
			if rep.Status != StatusRevoked {
				rep.Status = StatusUndetermined
			}
		}
		rep.Warnings = append(rep.Warnings, c.warnings()...)
	}
	return rep
}

func hasRevocationURLs(c *x509.Certificate) bool {
	return len(c.CRLDistributionPoints) > 0 || len(c.OCSPServer) > 0
}

// checkCert asks the CRL distribution points and the OCSP responders of
// cert, both kinds at once, and combines their answers: any revoked wins,
// then any good; otherwise the status is undetermined.
func (rc *Checker) checkCert(ctx context.Context, hc *http.Client, res *CertResult, cert, issuer *x509.Certificate, isLeaf bool, now time.Time) {
	if !isLeaf && !hasRevocationURLs(cert) {
		res.Status = StatusNotChecked
		res.Note = "it names no CRL distribution point and no OCSP responder"
		return
	}
	var crls, ocsps []SourceResult
	var wg sync.WaitGroup
	wg.Go(func() {
		crls = rc.trySources(SourceCRL, cert.CRLDistributionPoints, "the certificate names no CRL distribution point",
			func(u string) SourceResult { return rc.checkCRL(ctx, hc, cert, issuer, u, now) })
	})
	wg.Go(func() {
		ocsps = rc.trySources(SourceOCSP, cert.OCSPServer, "the certificate names no OCSP responder",
			func(u string) SourceResult { return rc.checkOCSP(ctx, hc, cert, issuer, u, now) })
	})
	wg.Wait()
	res.Sources = append(crls, ocsps...)

	res.Status = StatusUndetermined
	for _, s := range res.Sources {
		if s.Status == StatusRevoked {
			res.Status = StatusRevoked
			return
		}
		if s.Status == StatusGood {
			res.Status = StatusGood
		}
	}
}

// trySources tries the URLs of one kind in order until one answers.
func (rc *Checker) trySources(source string, urls []string, none string, check func(string) SourceResult) []SourceResult {
	if len(urls) == 0 {
		return []SourceResult{{Source: source, Status: StatusUnchecked, Failure: FailNoURL, Error: none}}
	}
	var out []SourceResult
	for _, u := range urls[:min(len(urls), maxURLs)] {
		var s SourceResult
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" {
			s = SourceResult{Source: source, URL: u, Status: StatusUnchecked, Failure: FailUnsupported,
				Error: "only http:// and https:// URLs are fetched"}
		} else {
			s = check(u)
		}
		out = append(out, s)
		if s.Status != StatusUnchecked {
			break
		}
	}
	return out
}

// warnings name the sources that failed when another said good. A kind of
// source the certificate does not offer is not a failure.
func (c CertResult) warnings() []string {
	if c.Status != StatusGood {
		return nil
	}
	var good []string
	for _, s := range c.Sources {
		if s.Status == StatusGood && !slices.Contains(good, sourceNouns[s.Source]) {
			good = append(good, sourceNouns[s.Source])
		}
	}
	relying := fmt.Sprintf("relying on %s, which says good", strings.Join(good, " and "))
	var out []string
	for _, kind := range []string{SourceCRL, SourceOCSP} {
		var answered bool
		var failed []string
		for _, s := range c.Sources {
			if s.Source != kind {
				continue
			}
			switch {
			case s.Status == StatusGood:
				answered = true
			case s.Failure == FailNoURL:
			case s.Status == StatusUnknown:
				failed = append(failed, fmt.Sprintf("%s %s does not know this certificate (status unknown)", sourceNames[kind], s.URL))
			default:
				failed = append(failed, s.describeFailure())
			}
		}
		if !answered && len(failed) > 0 {
			out = append(out, fmt.Sprintf("%s: %s; %s", c.describe(), strings.Join(failed, "; "), relying))
		}
	}
	return out
}

// describe names the certificate in a sentence.
func (c CertResult) describe() string {
	if c.Role == RoleCertificate {
		return "serial " + c.Serial
	}
	return fmt.Sprintf("intermediate %q (serial %s)", c.Subject, c.Serial)
}

func (s SourceResult) describeFailure() string {
	name := sourceNames[s.Source]
	if s.URL == "" {
		return fmt.Sprintf("%s: %s", name, s.Error)
	}
	return fmt.Sprintf("%s %s: %s", name, s.URL, s.Error)
}

// Problems turns the report into verify problems: one per certificate
// that is revoked (verify.CodeRevoked) or whose status could not be
// determined (verify.CodeRevocationUndetermined), leaf first.
func (rep *Report) Problems() []verify.Problem {
	var out []verify.Problem
	for _, c := range rep.Certificates {
		switch c.Status {
		case StatusRevoked:
			out = append(out, verify.Problem{Code: verify.CodeRevoked, Message: c.revokedMessage()})
		case StatusUndetermined:
			out = append(out, verify.Problem{Code: verify.CodeRevocationUndetermined, Message: c.undeterminedMessage()})
		}
	}
	return out
}

func (c CertResult) revokedMessage() string {
	var first *SourceResult
	var by []string
	for i, s := range c.Sources {
		if s.Status != StatusRevoked {
			continue
		}
		if first == nil {
			first = &c.Sources[i]
		}
		d := sourceNames[s.Source] + " " + s.URL
		if s.CRLNumber != "" {
			d += ", number " + s.CRLNumber
		}
		by = append(by, d)
	}
	return fmt.Sprintf("%s revoked at %s, reason %s (%s)", c.describe(), stamp(first.RevokedAt), first.Reason, strings.Join(by, "; "))
}

func (c CertResult) undeterminedMessage() string {
	var why []string
	if c.Note != "" {
		why = append(why, c.Note)
	}
	noURL := 0
	for _, s := range c.Sources {
		switch {
		case s.Failure == FailNoURL:
			noURL++
		case s.Status == StatusUnknown:
			why = append(why, fmt.Sprintf("%s %s does not know this certificate (status unknown)", sourceNames[s.Source], s.URL))
		case s.Status == StatusUnchecked:
			why = append(why, s.describeFailure())
		}
	}
	if noURL == 2 {
		why = append(why, "the certificate names no CRL distribution point and no OCSP responder")
	} else if noURL == 1 {
		for _, s := range c.Sources {
			if s.Failure == FailNoURL {
				why = append(why, s.Error)
			}
		}
	}
	return fmt.Sprintf("revocation status of %s could not be determined: %s", c.describe(), strings.Join(why, "; "))
}

// Text renders the report for a terminal: a line per certificate, then
// an indented line per source.
func (rep *Report) Text() string {
	var b strings.Builder
	for _, c := range rep.Certificates {
		status := strings.ReplaceAll(c.Status, "_", " ")
		if c.Note != "" {
			status += ": " + c.Note
		}
		fmt.Fprintf(&b, "revocation: %s %q, serial %s: %s\n", c.Role, c.Subject, c.Serial, status)
		for _, s := range c.Sources {
			fmt.Fprintf(&b, "  %-5s %s\n", s.Source+":", s.text())
		}
	}
	return b.String()
}

func (s SourceResult) text() string {
	var details []string
	if s.URL != "" {
		details = append(details, s.URL)
	}
	if s.CRLNumber != "" {
		details = append(details, "number "+s.CRLNumber)
	}
	if s.Responder != "" {
		details = append(details, fmt.Sprintf("signed by responder %q", s.Responder))
	}
	if !s.NextUpdate.IsZero() {
		details = append(details, "next update "+stamp(s.NextUpdate))
	}
	paren := ""
	if len(details) > 0 {
		paren = " (" + strings.Join(details, ", ") + ")"
	}
	switch {
	case s.Failure == FailNoURL:
		return "not offered: " + s.Error
	case s.Status == StatusGood:
		return "good" + paren
	case s.Status == StatusRevoked:
		return fmt.Sprintf("revoked at %s, reason %s%s", stamp(s.RevokedAt), s.Reason, paren)
	case s.Status == StatusUnknown:
		return "unknown: the responder does not know this certificate" + paren
	}
	return "could not be checked: " + s.Error + paren
}

// issuerChain returns leaf followed by its issuers. It prefers a chain that
// crypto/x509 verifies; failing that, it follows signatures through the
// certificates given. anchored reports that the last certificate is a trust
// anchor or self-signed.
func issuerChain(leaf *x509.Certificate, opts verify.Options, now time.Time) (chain []*x509.Certificate, anchored bool) {
	vo := x509.VerifyOptions{
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, c := range opts.Intermediates {
		vo.Intermediates.AddCert(c)
	}
	if opts.Roots != nil {
		vo.Roots = x509.NewCertPool()
		for _, c := range opts.Roots {
			vo.Roots.AddCert(c)
		}
	}
	if chains, err := leaf.Verify(vo); err == nil && len(chains) > 0 {
		return chains[0], true
	}

	candidates := append(slices.Clone(opts.Intermediates), opts.Roots...)
	chain = []*x509.Certificate{leaf}
	for cur := leaf; len(chain) < maxChainLen; {
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) || slices.ContainsFunc(opts.Roots, cur.Equal) {
			return chain, true
		}
		i := slices.IndexFunc(candidates, func(c *x509.Certificate) bool {
			return bytes.Equal(cur.RawIssuer, c.RawSubject) && !slices.ContainsFunc(chain, c.Equal) && cur.CheckSignatureFrom(c) == nil
		})
		if i < 0 {
			break
		}
		cur = candidates[i]
		chain = append(chain, cur)
	}
	return chain, false
}

func certLabel(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "(no subject)"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// sizeLabel renders a byte limit the way it was configured.
func sizeLabel(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// httpClient bounds every exchange by time, redirects and scheme. roots,
// when given, are trusted for https URLs beside the system roots.
func (rc *Checker) httpClient(roots []*x509.Certificate) *http.Client {
	timeout, _, _, _ := rc.limits()
	var pool *x509.CertPool
	if len(roots) > 0 {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, c := range roots {
			pool.AddCert(c)
		}
	}
	dial := rc.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	return &http.Client{
		Timeout: timeout,
		// No Proxy: HTTP_PROXY is deliberately not consulted.
		Transport: &http.Transport{
			DialContext:            dial,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			IdleConnTimeout:        30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return sourceErrorf(FailHTTP, "more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return sourceErrorf(FailUnsupported, "redirected to a %s: URL; only http and https are followed", req.URL.Scheme)
			}
			return nil
		},
	}
}

// fetch sends one request and reads at most max bytes of a 200 answer,
// or answers from the Cache.
func (rc *Checker) fetch(ctx context.Context, hc *http.Client, method, u string, body []byte, contentType, accept, what string, max int64) ([]byte, error) {
	if rc.Cache != nil {
		return rc.Cache.get(ctx, cacheKey(method, u, body), func() ([]byte, error) {
			return rc.fetchNow(ctx, hc, method, u, body, contentType, accept, what, max)
		})
	}
	return rc.fetchNow(ctx, hc, method, u, body, contentType, accept, what, max)
}

func (rc *Checker) fetchNow(ctx context.Context, hc *http.Client, method, u string, body []byte, contentType, accept, what string, max int64) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, sourceErrorf(FailUnsupported, "bad URL: %w", err)
	}
	ua := rc.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", accept)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, rc.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, sourceErrorf(FailHTTP, "HTTP %s", resp.Status)
	}
	if resp.ContentLength > max {
		return nil, sourceErrorf(FailTooLarge, "the %s is %d bytes, larger than the %s limit", what, resp.ContentLength, sizeLabel(max))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, rc.transportError(ctx, err)
	}
	if int64(len(data)) > max {
		return nil, sourceErrorf(FailTooLarge, "the %s is larger than the %s limit", what, sizeLabel(max))
	}
	return data, nil
}

// transportError explains a request that got no complete answer.
func (rc *Checker) transportError(ctx context.Context, err error) error {
	timeout, _, _, _ := rc.limits()
	var (
		se     *sourceError
		netErr net.Error
		ue     *url.Error
	)
	switch {
	case errors.As(err, &se):
		return se
	case ctx.Err() != nil:
		return &sourceError{kind: FailTimeout, msg: "interrupted: " + ctx.Err().Error(), err: err}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &sourceError{kind: FailTimeout, msg: fmt.Sprintf("timed out: no complete answer within %s", timeout), err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &sourceError{kind: FailUnreachable, msg: "cannot connect: connection refused", err: err}
	case errors.As(err, &ue):
		return &sourceError{kind: FailUnreachable, msg: "cannot fetch: " + ue.Err.Error(), err: err}
	}
	return &sourceError{kind: FailUnreachable, msg: "cannot fetch: " + err.Error(), err: err}
}

// checkCRL fetches one CRL and looks cert up in it.
func (rc *Checker) checkCRL(ctx context.Context, hc *http.Client, cert, issuer *x509.Certificate, u string, now time.Time) SourceResult {
	_, maxCRL, _, skew := rc.limits()
	data, err := rc.fetch(ctx, hc, http.MethodGet, u, nil, "", "application/pkix-crl", "CRL", maxCRL)
	if err != nil {
		return uncheckedSource(SourceCRL, u, err)
	}
	crl, err := parseCRL(data)
	if err != nil {
		return uncheckedSource(SourceCRL, u, err)
	}
	partial, err := checkCRLFrom(crl, cert, issuer, u)
	if err != nil {
		return uncheckedSource(SourceCRL, u, err)
	}
	if err := checkFreshness("CRL", crl.ThisUpdate, crl.NextUpdate, now, skew); err != nil {
		return uncheckedSource(SourceCRL, u, err)
	}
	s := SourceResult{Source: SourceCRL, URL: u, Status: StatusGood, ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate}
	if crl.Number != nil {
		s.CRLNumber = crl.Number.String()
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			s.Status, s.RevokedAt, s.Reason = StatusRevoked, e.RevocationTime, pki.Reason(e.ReasonCode).String()
			return s
		}
	}
	if partial {
		return uncheckedSource(SourceCRL, u, sourceErrorf(FailUnsupported, "the CRL covers only some revocation reasons, so absence from it proves nothing"))
	}
	return s
}

// parseCRL reads a DER CRL, or a PEM "X509 CRL" block as a courtesy.
func parseCRL(data []byte) (*x509.RevocationList, error) {
	if trimmed := bytes.TrimSpace(data); bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, sourceErrorf(FailMalformed, "not a CRL: malformed PEM")
		}
		if block.Type != "X509 CRL" {
			return nil, sourceErrorf(FailMalformed, "not a CRL: the PEM block is %q, not \"X509 CRL\"", block.Type)
		}
		data = block.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, sourceErrorf(FailMalformed, "not a CRL: %w", err)
	}
	return crl, nil
}

// issuingDistributionPoint is the CRL extension of RFC 5280 section 5.2.5.
type issuingDistributionPoint struct {
	DistributionPoint          distributionPointName `asn1:"optional,tag:0"`
	OnlyContainsUserCerts      bool                  `asn1:"optional,tag:1"`
	OnlyContainsCACerts        bool                  `asn1:"optional,tag:2"`
	OnlySomeReasons            asn1.BitString        `asn1:"optional,tag:3"`
	IndirectCRL                bool                  `asn1:"optional,tag:4"`
	OnlyContainsAttributeCerts bool                  `asn1:"optional,tag:5"`
}

type distributionPointName struct {
	FullName     []asn1.RawValue  `asn1:"optional,tag:0"`
	RelativeName pkix.RDNSequence `asn1:"optional,tag:1"`
}

// checkCRLFrom checks that issuer signed crl and that crl is a complete
// CRL whose scope includes cert (RFC 5280 section 6.3.3). partial reports
// a CRL for only some revocation reasons: a serial absent from it is not
// known to be good.
func checkCRLFrom(crl *x509.RevocationList, cert, issuer *x509.Certificate, fetchedFrom string) (partial bool, err error) {
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return false, sourceErrorf(FailWrongIssuer, "the CRL is issued by %q, not by the certificate's issuer %q", crl.Issuer.String(), issuer.Subject.String())
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return false, sourceErrorf(FailBadSignature, "bad signature: the CRL is not signed by the issuer %q: %w", issuer.Subject.String(), err)
	}
	for _, ext := range crl.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator):
			return false, sourceErrorf(FailUnsupported, "it is a delta CRL, which does not list every revoked certificate")
		case ext.Id.Equal(oidIssuingDP):
			if partial, err = checkIssuingDP(ext.Value, cert, fetchedFrom); err != nil {
				return false, err
			}
		case ext.Critical && !slices.ContainsFunc([]asn1.ObjectIdentifier{oidCRLNumber, oidAuthorityKeyID, oidFreshestCRL, oidAuthorityInfo}, ext.Id.Equal):
			return false, sourceErrorf(FailUnsupported, "the CRL has a critical extension %s that certwright does not understand", ext.Id)
		}
	}
	for _, e := range crl.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			switch {
			case ext.Id.Equal(oidCertificateIssuer):
				return false, sourceErrorf(FailUnsupported, "it is an indirect CRL (an entry names another certificate issuer)")
			case ext.Critical && !ext.Id.Equal(oidReasonCode) && !ext.Id.Equal(oidInvalidityDate):
				return false, sourceErrorf(FailUnsupported, "a CRL entry has a critical extension %s that certwright does not understand", ext.Id)
			}
		}
	}
	return partial, nil
}

func checkIssuingDP(der []byte, cert *x509.Certificate, fetchedFrom string) (partial bool, err error) {
	var idp issuingDistributionPoint
	if rest, err := asn1.Unmarshal(der, &idp); err != nil || len(rest) > 0 {
		return false, sourceErrorf(FailMalformed, "the CRL's issuing distribution point extension is malformed")
	}
	switch {
	case idp.IndirectCRL:
		return false, sourceErrorf(FailUnsupported, "it is an indirect CRL")
	case idp.OnlyContainsAttributeCerts:
		return false, sourceErrorf(FailWrongIssuer, "the CRL covers only attribute certificates")
	case idp.OnlyContainsUserCerts && cert.IsCA:
		return false, sourceErrorf(FailWrongIssuer, "the CRL covers only end-entity certificates, and this one is a CA")
	case idp.OnlyContainsCACerts && !cert.IsCA:
		return false, sourceErrorf(FailWrongIssuer, "the CRL covers only CA certificates, and this one is not a CA")
	case len(idp.DistributionPoint.RelativeName) > 0:
		return false, sourceErrorf(FailUnsupported, "the CRL's distribution point is a relative name, which certwright does not match")
	}
	partial = idp.OnlySomeReasons.BitLength > 0
	if len(idp.DistributionPoint.FullName) == 0 {
		return partial, nil
	}
	// The CRL names the distribution point it is for; it must be one of
	// the certificate's, or a CRL for another partition is being passed off.
	for _, gn := range idp.DistributionPoint.FullName {
		const uriTag = 6
		if gn.Class == asn1.ClassContextSpecific && gn.Tag == uriTag &&
			(string(gn.Bytes) == fetchedFrom || slices.Contains(cert.CRLDistributionPoints, string(gn.Bytes))) {
			return partial, nil
		}
	}
	return false, sourceErrorf(FailWrongIssuer, "the CRL's issuing distribution point is not one the certificate names")
}

// checkFreshness checks thisUpdate and nextUpdate against now, allowing skew.
func checkFreshness(what string, thisUpdate, nextUpdate, now time.Time, skew time.Duration) error {
	if thisUpdate.After(now.Add(skew)) {
		return sourceErrorf(FailNotYetValid, "not valid yet: the %s was produced for %s, %s from now (is the clock right?)", what, stamp(thisUpdate), verify.Span(thisUpdate.Sub(now)))
	}
	if nextUpdate.IsZero() {
		if now.Sub(thisUpdate) > maxAgeWithoutNextUpdate+skew {
			return sourceErrorf(FailStale, "stale: the %s has no next update and was produced %s ago, at %s", what, verify.Span(now.Sub(thisUpdate)), stamp(thisUpdate))
		}
		return nil
	}
	if now.After(nextUpdate.Add(skew)) {
		return sourceErrorf(FailStale, "stale: the %s's next update was due %s (%s ago)", what, stamp(nextUpdate), verify.Span(now.Sub(nextUpdate)))
	}
	return nil
}

// checkOCSP asks one OCSP responder about cert (RFC 6960, RFC 5019).
func (rc *Checker) checkOCSP(ctx context.Context, hc *http.Client, cert, issuer *x509.Certificate, u string, now time.Time) SourceResult {
	_, _, maxOCSP, skew := rc.limits()
	// SHA-1 CertID, as RFC 5019 clients send and every responder accepts.
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return uncheckedSource(SourceOCSP, u, sourceErrorf(FailUnsupported, "cannot build the OCSP request: %w", err))
	}
	data, err := rc.fetch(ctx, hc, http.MethodPost, u, req, "application/ocsp-request", "application/ocsp-response", "OCSP response", maxOCSP)
	if err != nil {
		return uncheckedSource(SourceOCSP, u, err)
	}
	resp, err := ocsp.ParseResponseForCert(data, cert, issuer)
	if err != nil {
		return uncheckedSource(SourceOCSP, u, classifyOCSPError(data, cert, err))
	}
	s := SourceResult{Source: SourceOCSP, URL: u, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate}
	if resp.Certificate != nil && !resp.Certificate.Equal(issuer) {
		if err := checkOCSPResponder(resp.Certificate, issuer, now, skew); err != nil {
			return uncheckedSource(SourceOCSP, u, err)
		}
		s.Responder = certLabel(resp.Certificate)
	}
	if err := checkFreshness("OCSP response", resp.ThisUpdate, resp.NextUpdate, now, skew); err != nil {
		return uncheckedSource(SourceOCSP, u, err)
	}
	switch resp.Status {
	case ocsp.Good:
		s.Status = StatusGood
	case ocsp.Revoked:
		s.Status, s.RevokedAt, s.Reason = StatusRevoked, resp.RevokedAt, pki.Reason(resp.RevocationReason).String()
	case ocsp.Unknown:
		s.Status = StatusUnknown
	default:
		return uncheckedSource(SourceOCSP, u, sourceErrorf(FailMalformed, "the OCSP response has status %d", resp.Status))
	}
	return s
}

// classifyOCSPError tells an error answer, a bad signature and a
// malformed response apart: a response that parses when its signature is
// not checked failed on the signature.
func classifyOCSPError(data []byte, cert *x509.Certificate, err error) error {
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return sourceErrorf(FailResponderError, "the responder answered %q instead of a status: %w", re.Status.String(), err)
	}
	if _, err2 := ocsp.ParseResponseForCert(data, cert, nil); err2 == nil {
		return sourceErrorf(FailBadSignature, "bad signature: the OCSP response is not signed by the issuer or a responder it delegated to: %w", err)
	}
	return sourceErrorf(FailMalformed, "not a usable OCSP response: %w", err)
}

// checkOCSPResponder checks a delegated responder certificate: issued by the
// issuer (x/crypto checked the signature), valid now, and authorised for
// OCSP signing by its extended key usage (RFC 6960 section 4.2.2.2).
func checkOCSPResponder(responder, issuer *x509.Certificate, now time.Time, skew time.Duration) error {
	name := certLabel(responder)
	if !bytes.Equal(responder.RawIssuer, issuer.RawSubject) {
		return sourceErrorf(FailUnauthorizedResponder, "the OCSP responder certificate %q is not issued by %q", name, issuer.Subject.String())
	}
	if !slices.Contains(responder.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return sourceErrorf(FailUnauthorizedResponder, "the OCSP responder certificate %q lacks the OCSPSigning extended key usage", name)
	}
	if now.Add(skew).Before(responder.NotBefore) || now.Add(-skew).After(responder.NotAfter) {
		return sourceErrorf(FailUnauthorizedResponder, "the OCSP responder certificate %q is not valid now (valid %s to %s)", name, stamp(responder.NotBefore), stamp(responder.NotAfter))
	}
	return nil
}
