package cli

// Revocation checking for "certwright verify --check-revocation". It lives
// in the CLI rather than in internal/verify because it fetches CRLs and
// OCSP responses over HTTP, and the core never imports net/http.

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

// Defaults of revChecker, used where a field is zero.
const (
	defaultRevTimeout = 10 * time.Second
	// A CRL with a million entries is about 50 MB of DER.
	defaultMaxCRL   = 128 << 20
	defaultMaxOCSP  = 64 << 10
	defaultRevSkew  = 5 * time.Minute
	maxRevRedirects = 3
	// maxRevURLs bounds the URLs of one kind tried per certificate, so
	// that a certificate listing hundreds cannot stall the command.
	maxRevURLs = 4
	// maxAgeWithoutNextUpdate is how long a CRL or OCSP response that has
	// no nextUpdate counts as fresh after its thisUpdate (mozilla::pkix
	// applies the same rule to OCSP).
	maxAgeWithoutNextUpdate = 24 * time.Hour
	// maxRevChainLen bounds the chain walked when crypto/x509 builds none.
	maxRevChainLen = 10
)

// Problem codes that --check-revocation adds to the verify report.
const (
	codeRevoked                = verify.CodeRevoked
	codeRevocationUndetermined = verify.CodeRevocationUndetermined
)

// Statuses of a source (one CRL or OCSP URL) and of a certificate, stable
// for scripts reading --json.
const (
	revGood    = "good"
	revRevoked = "revoked"
	// revUnknown: the OCSP responder does not know the certificate.
	revUnknown = "unknown"
	// revUnchecked: the source gave no usable answer; Failure says why.
	revUnchecked = "unchecked"
	// revUndetermined: no source of the certificate gave an answer.
	revUndetermined = "undetermined"
	// revNotChecked: an intermediate that names no URL, or a trust anchor.
	revNotChecked = "not_checked"
)

// Why a source could not be used, stable for scripts reading --json.
const (
	failNoURL                 = "no_url"
	failNoIssuer              = "no_issuer"
	failUnsupported           = "unsupported"
	failUnreachable           = "unreachable"
	failTimeout               = "timeout"
	failHTTP                  = "http_error"
	failTooLarge              = "too_large"
	failMalformed             = "malformed"
	failWrongIssuer           = "wrong_issuer"
	failBadSignature          = "bad_signature"
	failUnauthorizedResponder = "unauthorized_responder"
	failStale                 = "stale"
	failNotYetValid           = "not_yet_valid"
	failResponderError        = "responder_error"
)

const (
	sourceCRL  = "crl"
	sourceOCSP = "ocsp"
)

// sourceNames are the kinds of source as they read before a URL, and as
// they read on their own.
var (
	sourceNames = map[string]string{sourceCRL: "CRL", sourceOCSP: "OCSP"}
	sourceNouns = map[string]string{sourceCRL: "the CRL", sourceOCSP: "the OCSP responder"}
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

// revChecker looks up revocation status over HTTP. The zero value uses the
// defaults; tests set small limits.
type revChecker struct {
	// timeout bounds one HTTP exchange, redirects and body included.
	timeout time.Duration
	// maxCRL and maxOCSP bound the bodies read, in bytes.
	maxCRL, maxOCSP int64
	// skew is the clock difference tolerated on thisUpdate and nextUpdate.
	skew  time.Duration
	clock clock.Clock
}

func (rc *revChecker) limits() (timeout time.Duration, maxCRL, maxOCSP int64, skew time.Duration) {
	timeout, maxCRL, maxOCSP, skew = rc.timeout, rc.maxCRL, rc.maxOCSP, rc.skew
	if timeout <= 0 {
		timeout = defaultRevTimeout
	}
	if maxCRL <= 0 {
		maxCRL = defaultMaxCRL
	}
	if maxOCSP <= 0 {
		maxOCSP = defaultMaxOCSP
	}
	if skew <= 0 {
		skew = defaultRevSkew
	}
	return timeout, maxCRL, maxOCSP, skew
}

func (rc *revChecker) now() time.Time {
	if rc.clock == nil {
		return time.Now().UTC()
	}
	return rc.clock.Now()
}

// revReport is the outcome of a revocation check.
type revReport struct {
	// Status is good, revoked or undetermined.
	Status       string          `json:"status"`
	Certificates []revCertResult `json:"certificates"`
	Warnings     []string        `json:"warnings,omitempty"`
}

// revCertResult is the revocation status of one certificate of the chain.
type revCertResult struct {
	// Role is "certificate" for the one verified, else "intermediate".
	Role    string `json:"role"`
	Subject string `json:"subject"`
	Serial  string `json:"serial"`
	Issuer  string `json:"issuer"`
	// Status is good, revoked, undetermined or not_checked.
	Status string `json:"status"`
	// Note says why the certificate was not checked or, when no source
	// was tried, why its status is undetermined.
	Note    string      `json:"note,omitempty"`
	Sources []revSource `json:"sources,omitempty"`
}

// revSource is the answer of one CRL distribution point or OCSP responder.
type revSource struct {
	Source string `json:"source"` // crl or ocsp
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
	// Failure is a stable code and Error a sentence when Status is unchecked.
	Failure string `json:"failure,omitempty"`
	Error   string `json:"error,omitempty"`
}

// revError says why one source could not be used: kind is one of the
// fail* codes, msg the sentence shown, err the cause.
type revError struct {
	kind, msg string
	err       error
}

func (e *revError) Error() string { return e.msg }
func (e *revError) Unwrap() error { return e.err }

// revErrorf formats the message like fmt.Errorf, %w included.
func revErrorf(kind, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &revError{kind: kind, msg: err.Error(), err: errors.Unwrap(err)}
}

func uncheckedSource(source, u string, err error) revSource {
	s := revSource{Source: source, URL: u, Status: revUnchecked, Failure: failMalformed, Error: err.Error()}
	var re *revError
	if errors.As(err, &re) {
		s.Failure = re.kind
	}
	return s
}

// check looks up the revocation status of leaf and of every intermediate
// above it. Issuers are found among opts.Intermediates and opts.Roots (or
// the system roots); opts.Roots are also trusted for https URLs.
func (rc *revChecker) check(ctx context.Context, leaf *x509.Certificate, opts verify.Options) *revReport {
	now := rc.now()
	hc := rc.httpClient(opts.Roots)
	defer hc.CloseIdleConnections()

	chain, anchored := issuerChain(leaf, opts, now)
	rep := &revReport{}
	for i, c := range chain {
		last := i == len(chain)-1
		if last && anchored && i > 0 {
			// Trust anchors are trusted by presence; nothing revokes them.
			break
		}
		res := revCertResult{
			Role: "certificate", Subject: revCertLabel(c), Serial: pki.SerialHex(c.SerialNumber), Issuer: c.Issuer.String(),
		}
		if i > 0 {
			res.Role = "intermediate"
		}
		switch {
		case last && anchored:
			res.Status = revNotChecked
			res.Note = "it is a trust anchor (or self-signed): no issuer can revoke it"
		case last:
			res.Status = revNotChecked
			if i == 0 || hasRevocationURLs(c) {
				res.Status = revUndetermined
			}
			res.Note = fmt.Sprintf("its issuer %q was not found among the certificate file, --chain and the roots (add it with --chain)", c.Issuer.String())
		default:
			rc.checkCert(ctx, hc, &res, c, chain[i+1], i == 0, now)
		}
		rep.Certificates = append(rep.Certificates, res)
	}
	rep.Status = revGood
	for _, c := range rep.Certificates {
		switch c.Status {
		case revRevoked:
			rep.Status = revRevoked
		case revUndetermined:
			if rep.Status != revRevoked {
				rep.Status = revUndetermined
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
func (rc *revChecker) checkCert(ctx context.Context, hc *http.Client, res *revCertResult, cert, issuer *x509.Certificate, isLeaf bool, now time.Time) {
	if !isLeaf && !hasRevocationURLs(cert) {
		res.Status = revNotChecked
		res.Note = "it names no CRL distribution point and no OCSP responder"
		return
	}
	var crls, ocsps []revSource
	var wg sync.WaitGroup
	wg.Go(func() {
		crls = rc.trySources(sourceCRL, cert.CRLDistributionPoints, "the certificate names no CRL distribution point",
			func(u string) revSource { return rc.checkCRL(ctx, hc, cert, issuer, u, now) })
	})
	wg.Go(func() {
		ocsps = rc.trySources(sourceOCSP, cert.OCSPServer, "the certificate names no OCSP responder",
			func(u string) revSource { return rc.checkOCSP(ctx, hc, cert, issuer, u, now) })
	})
	wg.Wait()
	res.Sources = append(crls, ocsps...)

	res.Status = revUndetermined
	for _, s := range res.Sources {
		if s.Status == revRevoked {
			res.Status = revRevoked
			return
		}
		if s.Status == revGood {
			res.Status = revGood
		}
	}
}

// trySources tries the URLs of one kind in order until one answers.
func (rc *revChecker) trySources(source string, urls []string, none string, check func(string) revSource) []revSource {
	if len(urls) == 0 {
		return []revSource{{Source: source, Status: revUnchecked, Failure: failNoURL, Error: none}}
	}
	var out []revSource
	for _, u := range urls[:min(len(urls), maxRevURLs)] {
		var s revSource
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" {
			s = revSource{Source: source, URL: u, Status: revUnchecked, Failure: failUnsupported,
				Error: "only http:// and https:// URLs are fetched"}
		} else {
			s = check(u)
		}
		out = append(out, s)
		if s.Status != revUnchecked {
			break
		}
	}
	return out
}

// warnings name the sources that failed when another said good. A kind of
// source the certificate does not offer is not a failure.
func (c revCertResult) warnings() []string {
	if c.Status != revGood {
		return nil
	}
	var good []string
	for _, s := range c.Sources {
		if s.Status == revGood && !slices.Contains(good, sourceNouns[s.Source]) {
			good = append(good, sourceNouns[s.Source])
		}
	}
	relying := fmt.Sprintf("relying on %s, which says good", strings.Join(good, " and "))
	var out []string
	for _, kind := range []string{sourceCRL, sourceOCSP} {
		var answered bool
		var failed []string
		for _, s := range c.Sources {
			if s.Source != kind {
				continue
			}
			switch {
			case s.Status == revGood:
				answered = true
			case s.Failure == failNoURL:
			case s.Status == revUnknown:
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
func (c revCertResult) describe() string {
	if c.Role == "certificate" {
		return "serial " + c.Serial
	}
	return fmt.Sprintf("intermediate %q (serial %s)", c.Subject, c.Serial)
}

func (s revSource) describeFailure() string {
	name := sourceNames[s.Source]
	if s.URL == "" {
		return fmt.Sprintf("%s: %s", name, s.Error)
	}
	return fmt.Sprintf("%s %s: %s", name, s.URL, s.Error)
}

// problems turns the report into verify problems: one per certificate
// that is revoked or whose status could not be determined.
func (rep *revReport) problems() []verify.Problem {
	var out []verify.Problem
	for _, c := range rep.Certificates {
		switch c.Status {
		case revRevoked:
			out = append(out, verify.Problem{Code: codeRevoked, Message: c.revokedMessage()})
		case revUndetermined:
			out = append(out, verify.Problem{Code: codeRevocationUndetermined, Message: c.undeterminedMessage()})
		}
	}
	return out
}

func (c revCertResult) revokedMessage() string {
	var first *revSource
	var by []string
	for i, s := range c.Sources {
		if s.Status != revRevoked {
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
	return fmt.Sprintf("%s revoked at %s, reason %s (%s)", c.describe(), revStamp(first.RevokedAt), first.Reason, strings.Join(by, "; "))
}

func (c revCertResult) undeterminedMessage() string {
	var why []string
	if c.Note != "" {
		why = append(why, c.Note)
	}
	noURL := 0
	for _, s := range c.Sources {
		switch {
		case s.Failure == failNoURL:
			noURL++
		case s.Status == revUnknown:
			why = append(why, fmt.Sprintf("%s %s does not know this certificate (status unknown)", sourceNames[s.Source], s.URL))
		case s.Status == revUnchecked:
			why = append(why, s.describeFailure())
		}
	}
	if noURL == 2 {
		why = append(why, "the certificate names no CRL distribution point and no OCSP responder")
	} else if noURL == 1 {
		for _, s := range c.Sources {
			if s.Failure == failNoURL {
				why = append(why, s.Error)
			}
		}
	}
	return fmt.Sprintf("revocation status of %s could not be determined: %s", c.describe(), strings.Join(why, "; "))
}

// text renders the report for a terminal, one block per certificate.
func (rep *revReport) text() string {
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

func (s revSource) text() string {
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
		details = append(details, "next update "+revStamp(s.NextUpdate))
	}
	paren := ""
	if len(details) > 0 {
		paren = " (" + strings.Join(details, ", ") + ")"
	}
	switch {
	case s.Failure == failNoURL:
		return "not offered: " + s.Error
	case s.Status == revGood:
		return "good" + paren
	case s.Status == revRevoked:
		return fmt.Sprintf("revoked at %s, reason %s%s", revStamp(s.RevokedAt), s.Reason, paren)
	case s.Status == revUnknown:
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
	for cur := leaf; len(chain) < maxRevChainLen; {
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

func revCertLabel(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "(no subject)"
}

// revSpan renders a duration as a person would say it: the largest whole
// unit, rounded down.
func revSpan(d time.Duration) string {
	unit := func(n int64, s string) string {
		if n == 1 {
			return "1 " + s
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	switch {
	case d >= 24*time.Hour:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(int64(d/time.Second), "second")
}

func revStamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// revSizeLabel renders a byte limit the way it was configured.
func revSizeLabel(n int64) string {
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
func (rc *revChecker) httpClient(roots []*x509.Certificate) *http.Client {
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
	dialer := &net.Dialer{Timeout: timeout}
	return &http.Client{
		Timeout: timeout,
		// No Proxy: Main reads the environment only through its env
		// function, so HTTP_PROXY is deliberately not consulted.
		Transport: &http.Transport{
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			IdleConnTimeout:        30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRevRedirects {
				return revErrorf(failHTTP, "more than %d redirects", maxRevRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return revErrorf(failUnsupported, "redirected to a %s: URL; only http and https are followed", req.URL.Scheme)
			}
			return nil
		},
	}
}

// fetch sends one request and reads at most max bytes of a 200 answer.
func (rc *revChecker) fetch(ctx context.Context, hc *http.Client, method, u string, body []byte, contentType, accept, what string, max int64) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, revErrorf(failUnsupported, "bad URL: %w", err)
	}
	req.Header.Set("User-Agent", "certwright/"+version)
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
		return nil, revErrorf(failHTTP, "HTTP %s", resp.Status)
	}
	if resp.ContentLength > max {
		return nil, revErrorf(failTooLarge, "the %s is %d bytes, larger than the %s limit", what, resp.ContentLength, revSizeLabel(max))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, rc.transportError(ctx, err)
	}
	if int64(len(data)) > max {
		return nil, revErrorf(failTooLarge, "the %s is larger than the %s limit", what, revSizeLabel(max))
	}
	return data, nil
}

// transportError explains a request that got no complete answer.
func (rc *revChecker) transportError(ctx context.Context, err error) error {
	timeout, _, _, _ := rc.limits()
	var (
		re     *revError
		netErr net.Error
		ue     *url.Error
	)
	switch {
	case errors.As(err, &re):
		return re
	case ctx.Err() != nil:
		return &revError{kind: failTimeout, msg: "interrupted: " + ctx.Err().Error(), err: err}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &revError{kind: failTimeout, msg: fmt.Sprintf("timed out: no complete answer within %s", timeout), err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &revError{kind: failUnreachable, msg: "cannot connect: connection refused", err: err}
	case errors.As(err, &ue):
		return &revError{kind: failUnreachable, msg: "cannot fetch: " + ue.Err.Error(), err: err}
	}
	return &revError{kind: failUnreachable, msg: "cannot fetch: " + err.Error(), err: err}
}

// checkCRL fetches one CRL and looks cert up in it.
func (rc *revChecker) checkCRL(ctx context.Context, hc *http.Client, cert, issuer *x509.Certificate, u string, now time.Time) revSource {
	_, maxCRL, _, skew := rc.limits()
	data, err := rc.fetch(ctx, hc, http.MethodGet, u, nil, "", "application/pkix-crl", "CRL", maxCRL)
	if err != nil {
		return uncheckedSource(sourceCRL, u, err)
	}
	crl, err := parseRevCRL(data)
	if err != nil {
		return uncheckedSource(sourceCRL, u, err)
	}
	partial, err := checkCRLFrom(crl, cert, issuer, u)
	if err != nil {
		return uncheckedSource(sourceCRL, u, err)
	}
	if err := checkFreshness("CRL", crl.ThisUpdate, crl.NextUpdate, now, skew); err != nil {
		return uncheckedSource(sourceCRL, u, err)
	}
	s := revSource{Source: sourceCRL, URL: u, Status: revGood, ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate}
	if crl.Number != nil {
		s.CRLNumber = crl.Number.String()
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			s.Status, s.RevokedAt, s.Reason = revRevoked, e.RevocationTime, pki.Reason(e.ReasonCode).String()
			return s
		}
	}
	if partial {
		return uncheckedSource(sourceCRL, u, revErrorf(failUnsupported, "the CRL covers only some revocation reasons, so absence from it proves nothing"))
	}
	return s
}

// parseRevCRL reads a DER CRL, or a PEM "X509 CRL" block as a courtesy.
func parseRevCRL(data []byte) (*x509.RevocationList, error) {
	if trimmed := bytes.TrimSpace(data); bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, revErrorf(failMalformed, "not a CRL: malformed PEM")
		}
		if block.Type != "X509 CRL" {
			return nil, revErrorf(failMalformed, "not a CRL: the PEM block is %q, not \"X509 CRL\"", block.Type)
		}
		data = block.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, revErrorf(failMalformed, "not a CRL: %w", err)
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
		return false, revErrorf(failWrongIssuer, "the CRL is issued by %q, not by the certificate's issuer %q", crl.Issuer.String(), issuer.Subject.String())
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return false, revErrorf(failBadSignature, "bad signature: the CRL is not signed by the issuer %q: %w", issuer.Subject.String(), err)
	}
	for _, ext := range crl.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator):
			return false, revErrorf(failUnsupported, "it is a delta CRL, which does not list every revoked certificate")
		case ext.Id.Equal(oidIssuingDP):
			if partial, err = checkIssuingDP(ext.Value, cert, fetchedFrom); err != nil {
				return false, err
			}
		case ext.Critical && !slices.ContainsFunc([]asn1.ObjectIdentifier{oidCRLNumber, oidAuthorityKeyID, oidFreshestCRL, oidAuthorityInfo}, ext.Id.Equal):
			return false, revErrorf(failUnsupported, "the CRL has a critical extension %s that certwright does not understand", ext.Id)
		}
	}
	for _, e := range crl.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			switch {
			case ext.Id.Equal(oidCertificateIssuer):
				return false, revErrorf(failUnsupported, "it is an indirect CRL (an entry names another certificate issuer)")
			case ext.Critical && !ext.Id.Equal(oidReasonCode) && !ext.Id.Equal(oidInvalidityDate):
				return false, revErrorf(failUnsupported, "a CRL entry has a critical extension %s that certwright does not understand", ext.Id)
			}
		}
	}
	return partial, nil
}

func checkIssuingDP(der []byte, cert *x509.Certificate, fetchedFrom string) (partial bool, err error) {
	var idp issuingDistributionPoint
	if rest, err := asn1.Unmarshal(der, &idp); err != nil || len(rest) > 0 {
		return false, revErrorf(failMalformed, "the CRL's issuing distribution point extension is malformed")
	}
	switch {
	case idp.IndirectCRL:
		return false, revErrorf(failUnsupported, "it is an indirect CRL")
	case idp.OnlyContainsAttributeCerts:
		return false, revErrorf(failWrongIssuer, "the CRL covers only attribute certificates")
	case idp.OnlyContainsUserCerts && cert.IsCA:
		return false, revErrorf(failWrongIssuer, "the CRL covers only end-entity certificates, and this one is a CA")
	case idp.OnlyContainsCACerts && !cert.IsCA:
		return false, revErrorf(failWrongIssuer, "the CRL covers only CA certificates, and this one is not a CA")
	case len(idp.DistributionPoint.RelativeName) > 0:
		return false, revErrorf(failUnsupported, "the CRL's distribution point is a relative name, which certwright does not match")
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
	return false, revErrorf(failWrongIssuer, "the CRL's issuing distribution point is not one the certificate names")
}

// checkFreshness checks thisUpdate and nextUpdate against now, allowing skew.
func checkFreshness(what string, thisUpdate, nextUpdate, now time.Time, skew time.Duration) error {
	if thisUpdate.After(now.Add(skew)) {
		return revErrorf(failNotYetValid, "not valid yet: the %s was produced for %s, %s from now (is the clock right?)", what, revStamp(thisUpdate), revSpan(thisUpdate.Sub(now)))
	}
	if nextUpdate.IsZero() {
		if now.Sub(thisUpdate) > maxAgeWithoutNextUpdate+skew {
			return revErrorf(failStale, "stale: the %s has no next update and was produced %s ago, at %s", what, revSpan(now.Sub(thisUpdate)), revStamp(thisUpdate))
		}
		return nil
	}
	if now.After(nextUpdate.Add(skew)) {
		return revErrorf(failStale, "stale: the %s's next update was due %s (%s ago)", what, revStamp(nextUpdate), revSpan(now.Sub(nextUpdate)))
	}
	return nil
}

// checkOCSP asks one OCSP responder about cert (RFC 6960, RFC 5019).
func (rc *revChecker) checkOCSP(ctx context.Context, hc *http.Client, cert, issuer *x509.Certificate, u string, now time.Time) revSource {
	_, _, maxOCSP, skew := rc.limits()
	// SHA-1 CertID, as RFC 5019 clients send and every responder accepts.
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return uncheckedSource(sourceOCSP, u, revErrorf(failUnsupported, "cannot build the OCSP request: %w", err))
	}
	data, err := rc.fetch(ctx, hc, http.MethodPost, u, req, "application/ocsp-request", "application/ocsp-response", "OCSP response", maxOCSP)
	if err != nil {
		return uncheckedSource(sourceOCSP, u, err)
	}
	resp, err := ocsp.ParseResponseForCert(data, cert, issuer)
	if err != nil {
		return uncheckedSource(sourceOCSP, u, classifyOCSPError(data, cert, err))
	}
	s := revSource{Source: sourceOCSP, URL: u, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate}
	if resp.Certificate != nil && !resp.Certificate.Equal(issuer) {
		if err := checkOCSPResponder(resp.Certificate, issuer, now, skew); err != nil {
			return uncheckedSource(sourceOCSP, u, err)
		}
		s.Responder = revCertLabel(resp.Certificate)
	}
	if err := checkFreshness("OCSP response", resp.ThisUpdate, resp.NextUpdate, now, skew); err != nil {
		return uncheckedSource(sourceOCSP, u, err)
	}
	switch resp.Status {
	case ocsp.Good:
		s.Status = revGood
	case ocsp.Revoked:
		s.Status, s.RevokedAt, s.Reason = revRevoked, resp.RevokedAt, pki.Reason(resp.RevocationReason).String()
	case ocsp.Unknown:
		s.Status = revUnknown
	default:
		return uncheckedSource(sourceOCSP, u, revErrorf(failMalformed, "the OCSP response has status %d", resp.Status))
	}
	return s
}

// classifyOCSPError tells an error answer, a bad signature and a
// malformed response apart: a response that parses when its signature is
// not checked failed on the signature.
func classifyOCSPError(data []byte, cert *x509.Certificate, err error) error {
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return revErrorf(failResponderError, "the responder answered %q instead of a status: %w", re.Status.String(), err)
	}
	if _, err2 := ocsp.ParseResponseForCert(data, cert, nil); err2 == nil {
		return revErrorf(failBadSignature, "bad signature: the OCSP response is not signed by the issuer or a responder it delegated to: %w", err)
	}
	return revErrorf(failMalformed, "not a usable OCSP response: %w", err)
}

// checkOCSPResponder checks a delegated responder certificate: issued by the
// issuer (x/crypto checked the signature), valid now, and authorised for
// OCSP signing by its extended key usage (RFC 6960 section 4.2.2.2).
func checkOCSPResponder(responder, issuer *x509.Certificate, now time.Time, skew time.Duration) error {
	name := revCertLabel(responder)
	if !bytes.Equal(responder.RawIssuer, issuer.RawSubject) {
		return revErrorf(failUnauthorizedResponder, "the OCSP responder certificate %q is not issued by %q", name, issuer.Subject.String())
	}
	if !slices.Contains(responder.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return revErrorf(failUnauthorizedResponder, "the OCSP responder certificate %q lacks the OCSPSigning extended key usage", name)
	}
	if now.Add(skew).Before(responder.NotBefore) || now.Add(-skew).After(responder.NotAfter) {
		return revErrorf(failUnauthorizedResponder, "the OCSP responder certificate %q is not valid now (valid %s to %s)", name, revStamp(responder.NotBefore), revStamp(responder.NotAfter))
	}
	return nil
}
