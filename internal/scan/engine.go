package scan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revcheck"
	"github.com/certwright/certwright/internal/scan/grade"
	"github.com/certwright/certwright/internal/scan/service"
	"github.com/certwright/certwright/internal/scan/tlsprobe"
)

// EngineConfig configures an Engine. Clock and Log are required; the
// zero values of the rest get the defaults noted.
type EngineConfig struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Allow is what may be scanned: scan.allow on the server,
	// AllowEverything() for the standalone CLI. The zero list allows
	// nothing. Every connection to a target is checked against it.
	Allow discovery.AllowList
	// Fetch is where revocation checks may connect; see FetchPolicy. The
	// zero policy allows nothing (revocation then reads undetermined).
	Fetch FetchPolicy
	// Roots are trusted beside the system roots when a served chain is
	// judged and its revocation checked: the server passes its own CAs,
	// so that what it issued is graded as trusted.
	Roots []*x509.Certificate
	// Resolver resolves target names and the hosts of revocation URLs
	// (default net.DefaultResolver).
	Resolver Resolver
	// Timeout bounds all the work on one target: detection, the TLS
	// enumeration and the revocation check (default 2m).
	Timeout time.Duration
	// IOTimeout bounds each connection and each exchange on it
	// (default 5s).
	IOTimeout time.Duration
	// BannerTimeout is how long detection waits for a server that
	// speaks first before speaking itself (default 2s).
	BannerTimeout time.Duration
	// Concurrency bounds the targets scanned at once (default 16).
	// Targets on one host are scanned one after another.
	Concurrency int
	// PerHost bounds the connections started per second to one address
	// (default 10).
	PerHost int
	// MaxConnections bounds the connections made to one target,
	// detection and TLS enumeration together (default 150; a modern TLS
	// server needs about 45, one with TLS 1.0 and 1.1 about 70).
	MaxConnections int
	// RevocationTimeout bounds one target's revocation check (default
	// 15s); SkipRevocation leaves it out.
	RevocationTimeout time.Duration
	SkipRevocation    bool
}

// Defaults of EngineConfig.
const (
	DefaultTargetTimeout     = 2 * time.Minute
	DefaultIOTimeout         = 5 * time.Second
	DefaultBannerTimeout     = 2 * time.Second
	DefaultConcurrency       = 16
	DefaultPerHost           = 10
	DefaultMaxConnections    = 150
	DefaultRevocationTimeout = 15 * time.Second
)

// Bounds of a scan's revocation checks: ScanMaxCRL on a CRL read
// (revcheck's default is 128 MiB, and Concurrency targets check
// revocation at once), ScanFetchCache on the CRLs and OCSP answers one
// scan keeps, so that each is fetched once.
const (
	ScanMaxCRL     = 16 << 20
	ScanFetchCache = 64 << 20
)

// Engine is the full scanner. Per target it detects what the endpoint
// speaks and how it encrypts (service.Detect), enumerates the TLS
// versions, suites and key exchanges of a TLS-capable one over the
// protocol's own upgrade (tlsprobe.Enumerate), judges the served chain
// (grade.CheckChain, revcheck) and grades it (grade.Grade). Every
// connection to a target goes through the allow-list Dialer, to the one
// address its name resolved to.
type Engine struct {
	cfg    EngineConfig
	dialer *Dialer
	// roots are the system roots and cfg.Roots; extra is cfg.Roots
	// alone, nil when there are none.
	roots, extra *x509.CertPool
	rev          *revcheck.Checker
}

var _ discovery.Scanner = (*Engine)(nil)

// NewEngine returns an Engine, or an error naming the bad setting.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Clock == nil || cfg.Log == nil {
		return nil, errors.New("scan: clock and logger are required")
	}
	if err := cfg.Fetch.validate(); err != nil {
		return nil, err
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&cfg.Timeout, DefaultTargetTimeout)
	def(&cfg.IOTimeout, DefaultIOTimeout)
	def(&cfg.BannerTimeout, DefaultBannerTimeout)
	def(&cfg.RevocationTimeout, DefaultRevocationTimeout)
	defInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defInt(&cfg.Concurrency, DefaultConcurrency)
	defInt(&cfg.PerHost, DefaultPerHost)
	defInt(&cfg.MaxConnections, DefaultMaxConnections)
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		cfg.Log.Warn("scan: the system roots could not be loaded; only the configured roots are trusted", "err", err)
		roots = x509.NewCertPool()
	}
	var extra *x509.CertPool
	if len(cfg.Roots) > 0 {
		extra = x509.NewCertPool()
		for _, c := range cfg.Roots {
			roots.AddCert(c)
			extra.AddCert(c)
		}
	}
	return &Engine{
		cfg:    cfg,
		dialer: &Dialer{Allow: cfg.Allow, Resolver: cfg.Resolver, Timeout: cfg.IOTimeout},
		roots:  roots, extra: extra,
		rev: &revcheck.Checker{
			Timeout: cfg.IOTimeout, Clock: cfg.Clock, UserAgent: "certwright-scan", MaxCRL: ScanMaxCRL,
			DialContext:   cfg.Fetch.dialer(cfg.Resolver, cfg.IOTimeout),
			IssuerSources: "the served chain and the trusted roots",
		},
	}, nil
}

// Scan observes every target: at most Concurrency at once, the targets
// of one host one after another, PerHost connections per second to one
// address. One target's failure (refused, unreachable, a peer that
// misbehaves, even a bug) is its observation's Error and never stops the
// others. It returns the observations in the order of targets; when ctx
// ends it returns those finished, without the interrupted ones, and
// ctx's error.
func (e *Engine) Scan(ctx context.Context, targets []discovery.Target) ([]discovery.Observation, error) {
	out := make([]discovery.Observation, len(targets))
	done := make([]bool, len(targets))
	run := e.newRun()
	groups := byHost(targets)
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(e.cfg.Concurrency, len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for group := range work {
				for _, i := range group {
					if ended(ctx) {
						break
					}
					o := e.observeSafely(ctx, targets[i], run)
					if !ended(ctx) {
						out[i], done[i] = o, true
					}
				}
			}
		}()
	}
feed:
	for _, g := range groups {
		select {
		case work <- g:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	kept := out[:0]
	for i, o := range out {
		if done[i] {
			kept = append(kept, o)
		}
	}
	if ended(ctx) {
		return kept, cmpOr(ctx.Err(), context.DeadlineExceeded)
	}
	return kept, nil
}

// scanRun is what the targets of one Scan share: the pace of the
// connections to each address, and the revocation checker with the CRLs
// and OCSP answers fetched so far.
type scanRun struct {
	pace *pacer
	rev  *revcheck.Checker
}

func (e *Engine) newRun() *scanRun {
	rev := *e.rev
	rev.Cache = revcheck.NewFetchCache(ScanFetchCache)
	return &scanRun{pace: newPacer(time.Second / time.Duration(e.cfg.PerHost)), rev: &rev}
}

// ended reports whether ctx is done or past its deadline: a read that
// timed out at the deadline can return before ctx's own timer fires, and
// what it cut short must count as interrupted.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// byHost groups the indexes of targets by host, in order of appearance.
func byHost(targets []discovery.Target) [][]int {
	var groups [][]int
	at := map[string]int{}
	for i, t := range targets {
		g, ok := at[t.Host]
		if !ok {
			g = len(groups)
			at[t.Host] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// observeSafely is observe, turning a panic into the target's error: the
// scan reads what untrusted peers send, and one peer must not bring
// down a server. The observation's text is made printable on the way out.
func (e *Engine) observeSafely(ctx context.Context, t discovery.Target, run *scanRun) (o discovery.Observation) {
	defer func() {
		if r := recover(); r != nil {
			e.cfg.Log.Error("scan: internal error on one target", "target", t.String(), "panic", r, "stack", string(debug.Stack()))
			o = newObservation(t, e.cfg.Clock.Now())
			o.Error = fmt.Sprintf("internal error while scanning %s: %v", t, r)
		}
		printableText(&o)
	}()
	return e.observe(ctx, t, run)
}

// printableText escapes the control characters of o's sentences: they
// quote what the peer chose (a certificate's names, a revocation URL, an
// HTTP status, an error it provoked), and they reach terminals, logs and
// the store.
func printableText(o *discovery.Observation) {
	for i := range o.Findings {
		o.Findings[i].Message = pki.Printable(o.Findings[i].Message)
	}
	if o.Grade != nil {
		for i := range o.Grade.Reasons {
			o.Grade.Reasons[i].Message = pki.Printable(o.Grade.Reasons[i].Message)
		}
	}
	o.Error = pki.Printable(o.Error)
}

func newObservation(t discovery.Target, now time.Time) discovery.Observation {
	o := discovery.Observation{Address: t.String(), Encryption: discovery.EncUnknown, ObservedAt: now.UTC()}
	if t.IsName() {
		o.Host, o.ServerName = t.Host, t.Host
	}
	return o
}

// target is one target's scan in progress: the address its connections
// go to, their budget, and what is being learned.
type target struct {
	e    *Engine
	t    discovery.Target
	ip   netip.Addr
	pace *pacer
	rev  *revcheck.Checker
	o    *discovery.Observation
	errs []string

	mu      sync.Mutex
	used    int
	reached bool
}

// dial opens one connection to the target, within its budget and pace.
func (x *target) dial(ctx context.Context) (net.Conn, error) {
	x.mu.Lock()
	if x.used >= x.e.cfg.MaxConnections {
		x.mu.Unlock()
		return nil, fmt.Errorf("scan: %s: the budget of %d connections per target is spent", x.o.Address, x.e.cfg.MaxConnections)
	}
	x.used++
	x.mu.Unlock()
	if err := x.pace.wait(ctx, x.ip.String()); err != nil {
		return nil, err
	}
	conn, err := x.e.dialer.DialAddr(ctx, x.t, x.ip)
	if err == nil {
		x.mu.Lock()
		x.reached = true
		x.mu.Unlock()
	}
	return conn, err
}

func (x *target) remaining() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.e.cfg.MaxConnections - x.used
}

func (x *target) fail(format string, a ...any) { x.errs = append(x.errs, fmt.Sprintf(format, a...)) }

func (x *target) add(code string, sev discovery.Severity, format string, a ...any) {
	x.o.Findings = append(x.o.Findings, discovery.Finding{Code: code, Severity: sev, Message: fmt.Sprintf(format, a...)})
}

// observe makes one target's observation.
func (e *Engine) observe(ctx context.Context, t discovery.Target, run *scanRun) (o discovery.Observation) {
	o = newObservation(t, e.cfg.Clock.Now())
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	ip, err := e.dialer.Resolve(ctx, t)
	if err != nil {
		o.Error = err.Error()
		if errors.Is(err, discovery.ErrNotAllowed) {
			e.cfg.Log.Warn("scan target refused", "target", t.String(), "err", err)
		}
		return o
	}
	o.Address = netip.AddrPortFrom(ip, t.Port).String()
	x := &target{e: e, t: t, ip: ip, pace: run.pace, rev: run.rev, o: &o}
	defer func() {
		x.mu.Lock()
		o.Reachable = x.reached
		x.mu.Unlock()
		if ended(ctx) {
			x.fail("the scan of this target timed out after %s; what is shown was seen before", e.cfg.Timeout)
		}
		o.Error = strings.Join(x.errs, "; ")
	}()
	res, err := service.Detect(ctx, o.Address, service.Options{
		Dial:          func(ctx context.Context, _, _ string) (net.Conn, error) { return x.dial(ctx) },
		ServerName:    o.ServerName,
		IOTimeout:     e.cfg.IOTimeout,
		BannerTimeout: e.cfg.BannerTimeout,
	})
	if err != nil {
		x.fail("%s", strings.TrimPrefix(err.Error(), "service: "))
		return o
	}
	x.fromService(res)
	if res.TLSDialer != nil {
		e.scanTLS(ctx, x, res)
	}
	return o
}

// encryptions maps the service package's modes to the observation's.
var encryptions = map[service.Encryption]discovery.Encryption{
	service.EncryptionImplicitTLS: discovery.EncImplicitTLS,
	service.EncryptionStartTLS:    discovery.EncSTARTTLS,
	service.EncryptionOptional:    discovery.EncOptional,
	service.EncryptionNone:        discovery.EncNone,
	service.EncryptionUnknown:     discovery.EncUnknown,
}

// severities maps the service package's four levels to the three of
// findings: high (plaintext, unauthenticated access) is critical.
var severities = map[service.Severity]discovery.Severity{
	service.SeverityInfo:   discovery.SeverityInfo,
	service.SeverityLow:    discovery.SeverityWarning,
	service.SeverityMedium: discovery.SeverityWarning,
	service.SeverityHigh:   discovery.SeverityCritical,
}

func (x *target) fromService(res *service.Result) {
	o := x.o
	o.Protocol = res.Protocol
	if o.Protocol == service.ProtoUnknown {
		o.Protocol = ""
	}
	o.Encryption = encryptions[res.Encryption]
	if o.Encryption == "" {
		o.Encryption = discovery.EncUnknown
	}
	if res.Protocol == service.ProtoHTTP && res.Encryption == service.EncryptionImplicitTLS {
		o.Protocol = "https"
	}
	for _, f := range res.Findings {
		sev, ok := severities[f.Severity]
		if !ok {
			sev = discovery.SeverityWarning
		}
		o.Findings = append(o.Findings, discovery.Finding{Code: f.Code, Severity: sev, Message: f.Message})
	}
	if res.HSTS != nil {
		o.HSTS = &discovery.HSTS{MaxAge: res.HSTS.MaxAge, IncludeSubDomains: res.HSTS.IncludeSubDomains, Preload: res.HSTS.Preload}
	}
}

// Finding codes the engine adds to the service's. Stable.
const (
	CodeTLSScanIncomplete   = "tls-scan-incomplete"
	CodeTLSNothingOffered   = "tls-nothing-offered"
	CodeCertMissing         = "certificate-missing"
	CodeCertUnreadable      = "certificate-unreadable"
	CodeCertWeakKey         = "certificate-weak-key"
	CodeCertChainIncomplete = "certificate-chain-incomplete"
	CodeCertRevoked         = "certificate-revoked"
	CodeRevocationUnknown   = "revocation-undetermined"
	CodeCertKeyNotProven    = "certificate-key-not-proven"
)

// scanTLS enumerates the TLS of an endpoint that speaks it, judges the
// served chain and grades it.
func (e *Engine) scanTLS(ctx context.Context, x *target, res *service.Result) {
	o := x.o
	dial := res.TLSDialer
	var sni string
	if x.t.IsName() {
		sni = x.t.Host
	}
	// One ordinary handshake: what a client gets by default, and the
	// chain it is served (with the name it asked for).
	var negotiated bool
	var unproven error
	if conn, err := dial(ctx); err == nil {
		hctx, cancel := context.WithTimeout(ctx, e.cfg.IOTimeout)
		if dl, ok := hctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		cs, chain, err := handshake(hctx, conn, sni)
		cancel()
		_ = conn.Close()
		o.Chain = chain
		unproven = err
		if err == nil {
			negotiated = true
			o.KeyProven = true
			o.Negotiated = versionName(cs.Version)
			o.Suite = tls.CipherSuiteName(cs.CipherSuite)
			o.Versions = []string{o.Negotiated}
			o.WeakSuites = insecureSuite(cs.CipherSuite)
		}
	}
	var rep *tlsprobe.Report
	var enumErr error
	if left := x.remaining(); left > 0 {
		rep, enumErr = tlsprobe.Enumerate(ctx, tlsprobe.Dialer(dial), tlsprobe.Options{
			ServerName: sni, Timeout: e.cfg.IOTimeout, MaxConnections: left,
		})
	} else {
		enumErr = fmt.Errorf("%w: detection used the whole budget of %d connections", tlsprobe.ErrConnectionLimit, e.cfg.MaxConnections)
	}
	if enumErr != nil {
		x.add(CodeTLSScanIncomplete, discovery.SeverityWarning,
			"The TLS scan stopped before trying every version and cipher suite (%s): versions, suites and the grade cover only what was seen.",
			strings.TrimPrefix(enumErr.Error(), "tlsprobe: "))
	}
	if rep != nil {
		fromReport(o, rep, enumErr == nil, negotiated)
	}
	if len(o.Chain) == 0 && rep != nil && len(rep.Chains) > 0 {
		o.Chain = rep.Chains[0].Certificates
	}
	if len(o.Chain) > 0 && !o.KeyProven {
		e.proveKey(ctx, x, dial, sni, unproven)
	}
	cert := e.checkCert(ctx, x)
	if rep == nil {
		return
	}
	in := grade.FromReport(rep, cert)
	if o.Protocol == "https" && o.HSTS != nil {
		age := o.HSTS.MaxAge
		in.HSTSMaxAge = &age
	}
	g, err := grade.Grade(in)
	if errors.Is(err, grade.ErrNothingOffered) {
		if enumErr == nil {
			x.add(CodeTLSNothingOffered, discovery.SeverityWarning,
				"The server answers as a TLS server but accepted none of the protocol versions and cipher suites offered (SSL 3.0 to TLS 1.3): no grade.")
		}
		return
	}
	if err != nil {
		x.fail("grade: %v", err)
		return
	}
	o.Grade = &discovery.Grade{Letter: string(g.Letter), Score: g.Score, RulesVersion: g.RulesVersion}
	if enumErr != nil {
		o.Grade.Reasons = append(o.Grade.Reasons, discovery.Reason{Code: "scan_incomplete",
			Message: "the TLS scan stopped early, so the grade covers only what was seen and may be too high"})
	}
	for _, r := range g.Reasons {
		o.Grade.Reasons = append(o.Grade.Reasons, discovery.Reason{Code: r.Code, Message: r.Message})
	}
}

// proveKey completes a handshake offering every suite crypto/tls
// implements, with a server whose chain no completed handshake came
// with (the enumeration reads only the Certificate message, and the
// default handshake offers no RSA key exchange): a completed handshake
// proves the server holds the key of the chain it sends, which then
// replaces o.Chain. Otherwise the chain stays as presented, unproven,
// and a finding says so: anyone can present a public certificate.
func (e *Engine) proveKey(ctx context.Context, x *target, dial service.Dialer, sni string, why error) {
	o := x.o
	if x.remaining() > 0 {
		if conn, err := dial(ctx); err != nil {
			why = err
		} else {
			hctx, cancel := context.WithTimeout(ctx, e.cfg.IOTimeout)
			if dl, ok := hctx.Deadline(); ok {
				_ = conn.SetDeadline(dl)
			}
			_, chain, err := handshakeWith(hctx, conn, sni, everySuite())
			cancel()
			_ = conn.Close()
			if err == nil && len(chain) > 0 {
				o.Chain, o.KeyProven = chain, true
				return
			}
			why = cmpOr(err, why)
		}
	}
	reason := "no connection was left in the budget to try"
	if why != nil {
		reason = strings.TrimPrefix(why.Error(), "tls: ")
	}
	x.add(CodeCertKeyNotProven, discovery.SeverityWarning,
		"The server presented this certificate, but no handshake with it completed (%s), so the server did not prove it holds the certificate's private key: "+
			"anyone can present a public certificate. It is not matched to the inventory, raises no served-certificate alert and is not added as discovered. "+
			"Go's TLS client, which makes the proof, does not speak SSL 3.0, DHE key exchange or SHA-1 handshake signatures: a server offering only those cannot prove its key to this scanner.",
		reason)
}

// fromReport fills the versions, suites and forward secrecy of o from an
// enumeration; complete says it tried everything.
func fromReport(o *discovery.Observation, rep *tlsprobe.Report, complete, negotiated bool) {
	var versions, suites []string
	var fs, noFS, weak bool
	var best *tlsprobe.VersionResult
	for i, vr := range rep.Versions {
		if !vr.Offered {
			continue
		}
		best = &rep.Versions[i]
		versions = append(versions, versionName(uint16(vr.Version)))
		for _, s := range vr.Suites {
			if !slices.Contains(suites, s.Name) {
				suites = append(suites, s.Name)
			}
			if s.ForwardSecret() {
				fs = true
			} else {
				noFS = true
			}
			weak = weak || weakSuite(vr.Version, s)
		}
	}
	if complete || len(versions) > len(o.Versions) {
		o.Versions = versions
	}
	o.VersionsComplete, o.SuitesComplete = complete, complete
	o.Suites = suites
	o.Protocols = protocolDetails(rep)
	o.DHBits = slices.Clone(rep.DHPrimeBits)
	o.WeakSuites = o.WeakSuites || weak
	switch {
	case fs && noFS:
		o.ForwardSecrecy = discovery.FSSome
	case complete && fs:
		o.ForwardSecrecy = discovery.FSAll
	case complete && noFS:
		o.ForwardSecrecy = discovery.FSNone
	}
	if !negotiated && best != nil && len(best.Suites) > 0 {
		// Go's client could not agree with the server (it offers no RSA
		// key exchange, 3DES or SSL 3.0): say what the server picks at
		// its best version instead.
		o.Negotiated = versionName(uint16(best.Version))
		o.Suite = best.Suites[0].Name
	}
}

// protocolDetails are the versions an enumeration found offered, each
// with its suites (in the server's order when it enforces one) and the
// groups accepted at it.
func protocolDetails(rep *tlsprobe.Report) []discovery.ProtocolDetail {
	var out []discovery.ProtocolDetail
	for _, vr := range rep.Versions {
		if !vr.Offered {
			continue
		}
		p := discovery.ProtocolDetail{Version: versionName(uint16(vr.Version))}
		if vr.ServerOrder != nil {
			order := *vr.ServerOrder
			p.ServerOrder = &order
		}
		for _, s := range vr.Suites {
			d := discovery.SuiteDetail{Name: s.Name, KeyExchange: kexName(s.Suite), Cipher: cipherName(s.Suite), Bits: s.Bits,
				Weak: weakSuite(vr.Version, s)}
			if s.Kex == tlsprobe.KexDHE && s.KexBits > 0 {
				d.DHBits = s.KexBits
			} else {
				d.Group = s.Group
			}
			p.Suites = append(p.Suites, d)
		}
		for _, g := range rep.Groups {
			if g.Version == vr.Version {
				p.Groups = append(p.Groups, g.Name)
			}
		}
		out = append(out, p)
	}
	return out
}

// kexName is the suite's key exchange as observations name it: the
// anonymous ones as IANA names them.
func kexName(s tlsprobe.Suite) string {
	switch {
	case s.Anonymous() && s.Kex == tlsprobe.KexECDHE:
		return "ECDH_anon"
	case s.Anonymous():
		return "DH_anon"
	}
	return string(s.Kex)
}

// cipherName is the bulk cipher with its construction: AES-GCM,
// ChaCha20-Poly1305, AES-CBC, 3DES-CBC, RC4, NULL.
func cipherName(s tlsprobe.Suite) string {
	switch s.Mode {
	case tlsprobe.ModeAEAD:
		switch {
		case s.Cipher == "CHACHA20":
			return "ChaCha20-Poly1305"
		case strings.Contains(s.Name, "_CCM"):
			return s.Cipher + "-CCM"
		default:
			return s.Cipher + "-GCM"
		}
	case tlsprobe.ModeCBC:
		return s.Cipher + "-CBC"
	}
	return s.Cipher
}

// weakSuite is the observation's notion of weak: RC4, 64-bit blocks
// (3DES, DES, IDEA), export, NULL, anonymous, under 112 bits, or CBC with
// SHA-1 in SSL 3.0 and TLS 1.0 (BEAST, Lucky13).
func weakSuite(v tlsprobe.Version, s tlsprobe.AcceptedSuite) bool {
	return s.Export || s.Bits < 112 || s.Anonymous() || s.Cipher == "RC4" || s.BlockBits == 64 || s.Mode == tlsprobe.ModeNull ||
		(v <= tlsprobe.VersionTLS10 && s.Mode == tlsprobe.ModeCBC && s.MAC == "SHA1")
}

// certFindings are the findings of certificate problems.
var certFindings = map[grade.CertProblem]struct {
	code string
	sev  discovery.Severity
	text string
}{
	grade.CertExpired:           {"certificate-expired", discovery.SeverityCritical, "The certificate (or one in its chain) has expired: clients refuse it."},
	grade.CertNotYetValid:       {"certificate-not-yet-valid", discovery.SeverityCritical, "The certificate (or one in its chain) is not valid yet: clients refuse it (or the server's clock is wrong)."},
	grade.CertUntrusted:         {"certificate-untrusted", discovery.SeverityWarning, "The certificate does not chain to a trusted root: clients that do not trust its issuer refuse it."},
	grade.CertSelfSigned:        {"certificate-self-signed", discovery.SeverityWarning, "The certificate is self-signed: only clients told to trust this very certificate accept it."},
	grade.CertNameMismatch:      {"certificate-name-mismatch", discovery.SeverityWarning, "The certificate does not cover the name that was scanned: clients using that name refuse it."},
	grade.CertSHA1Signature:     {"certificate-sha1-signature", discovery.SeverityWarning, "The chain is signed with SHA-1, which browsers no longer trust."},
	grade.CertInsecureSignature: {"certificate-insecure-signature", discovery.SeverityCritical, "The chain is signed with MD2 or MD5, which can be forged."},
}

// checkCert judges the served chain: trust, validity, name, key, and
// revocation; it adds the findings and returns what the grade needs.
func (e *Engine) checkCert(ctx context.Context, x *target) grade.Cert {
	o := x.o
	if len(o.Chain) == 0 {
		x.add(CodeCertMissing, discovery.SeverityInfo, "No certificate was read from the server, so it was not checked.")
		return grade.Cert{}
	}
	now := e.cfg.Clock.Now()
	cert, err := grade.CheckChain(o.Chain, grade.CheckOptions{ServerName: o.Host, Roots: e.roots, Now: now})
	if err != nil {
		x.add(CodeCertUnreadable, discovery.SeverityWarning, "The served certificate chain could not be read: %s.", strings.TrimPrefix(err.Error(), "grade: "))
		return cert
	}
	certs := make([]*x509.Certificate, len(o.Chain))
	for i, der := range o.Chain {
		certs[i], _ = x509.ParseCertificate(der) // CheckChain parsed them all
	}
	for _, p := range cert.Problems {
		if f, ok := certFindings[p]; ok {
			x.add(f.code, f.sev, "%s", f.text+certDetail(p, certs, o.Host, now))
		}
	}
	if cert.KeyStrength > 0 && cert.KeyStrength < 2048 {
		x.add(CodeCertWeakKey, discovery.SeverityWarning, "The certificate key (%s %d-bit) is weaker than 2048-bit RSA.", cert.KeyType, cert.KeyBits)
	}
	if slices.Contains(cert.Problems, grade.CertUntrusted) {
		if top := certs[len(certs)-1]; !selfIssued(top) && !slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return issuedBy(top, c) }) {
			x.add(CodeCertChainIncomplete, discovery.SeverityWarning,
				"The chain ends with %q, whose issuer %q the server does not send and no trusted root is: the server leaves out an intermediate, or the issuer is a CA this scan does not trust.",
				top.Subject.String(), top.Issuer.String())
		}
	}
	if !e.cfg.SkipRevocation {
		if e.checkRevocation(ctx, x, certs) {
			cert.Problems = append(cert.Problems, grade.CertRevoked)
		}
	}
	return cert
}

// certDetail adds what a reader needs to act on a problem.
func certDetail(p grade.CertProblem, certs []*x509.Certificate, host string, now time.Time) string {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }
	switch p {
	case grade.CertExpired:
		for _, c := range certs {
			if now.After(c.NotAfter) {
				return fmt.Sprintf(" %q expired at %s.", c.Subject.String(), stamp(c.NotAfter))
			}
		}
	case grade.CertNotYetValid:
		for _, c := range certs {
			if now.Before(c.NotBefore) {
				return fmt.Sprintf(" %q is valid from %s.", c.Subject.String(), stamp(c.NotBefore))
			}
		}
	case grade.CertNameMismatch:
		names := slices.Clone(certs[0].DNSNames)
		for _, ip := range certs[0].IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 {
			names = []string{"none"}
		}
		return fmt.Sprintf(" Scanned as %s; it names %s.", host, strings.Join(names, ", "))
	case grade.CertUntrusted:
		return fmt.Sprintf(" Its issuer is %q.", certs[0].Issuer.String())
	}
	return ""
}

func selfIssued(c *x509.Certificate) bool { return string(c.RawIssuer) == string(c.RawSubject) }

func issuedBy(c, issuer *x509.Certificate) bool {
	return c != issuer && string(c.RawIssuer) == string(issuer.RawSubject) && c.CheckSignatureFrom(issuer) == nil
}

// checkRevocation asks the chain's CRLs and OCSP responders, within
// RevocationTimeout and the fetch policy, adds the findings and reports
// whether a certificate of the chain is revoked.
func (e *Engine) checkRevocation(ctx context.Context, x *target, certs []*x509.Certificate) bool {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RevocationTimeout)
	defer cancel()
	rep := x.rev.CheckChain(ctx, certs, e.revocationRoots(certs))
	for _, c := range rep.Certificates {
		switch c.Status {
		case revcheck.StatusRevoked:
			x.add(CodeCertRevoked, discovery.SeverityCritical, "The served chain holds a revoked certificate: %s.", revocationText(c))
		case revcheck.StatusUndetermined:
			x.add(CodeRevocationUnknown, discovery.SeverityInfo, "%s.", capitalise(revocationText(c)))
		}
	}
	return rep.Status == revcheck.StatusRevoked
}

// revocationText is revcheck's sentence for one certificate.
func revocationText(c revcheck.CertResult) string {
	one := &revcheck.Report{Status: c.Status, Certificates: []revcheck.CertResult{c}}
	if ps := one.Problems(); len(ps) > 0 {
		return ps[0].Message
	}
	return c.Status
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// revocationRoots are the trust anchors of a revocation check: the
// configured roots when the chain leads to one of them, else the system
// roots (nil), so that a chain of the server's own CA finds its root.
func (e *Engine) revocationRoots(certs []*x509.Certificate) []*x509.Certificate {
	if e.extra == nil {
		return nil
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: e.extra, Intermediates: inter, CurrentTime: mid, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err == nil {
		return e.cfg.Roots
	}
	return nil
}
