// Package service identifies what one TCP endpoint speaks and whether and
// how it encrypts: implicit TLS, an in-protocol upgrade (STARTTLS and its
// kin: PostgreSQL and MySQL SSLRequest, LDAP StartTLS, XMPP, NATS), or
// nothing. Detect returns the protocol, findings in plain English, and a
// Dialer that opens a new connection left where a TLS ClientHello goes next.
//
// Every exchange runs under a deadline, every read is size-limited, the
// number of connections per Detect is bounded, and peer bytes reach a
// Result only escaped and truncated.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Dialer opens a new connection ready for a TLS ClientHello. It has the
// same signature as the TLS prober's dialer so the two fit together.
type Dialer func(ctx context.Context) (net.Conn, error)

// Encryption says how an endpoint protects its traffic.
type Encryption string

// The encryption modes Detect reports.
const (
	// EncryptionImplicitTLS: TLS from the first byte.
	EncryptionImplicitTLS Encryption = "implicit-tls"
	// EncryptionStartTLS: an in-protocol upgrade is offered and the scan saw
	// no sign of the server accepting credentials or a session before it.
	EncryptionStartTLS Encryption = "starttls"
	// EncryptionOptional: the upgrade is offered, but the server was seen
	// accepting a plaintext session or offering authentication before TLS.
	EncryptionOptional Encryption = "optional"
	// EncryptionNone: the endpoint offers no TLS at all.
	EncryptionNone Encryption = "none"
	// EncryptionUnknown: the endpoint was not recognised, or refused the
	// scan before saying what it supports.
	EncryptionUnknown Encryption = "unknown"
)

// Severity ranks a finding.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo   Severity = "info"
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Finding is one observation about an endpoint. Code is stable and meant
// for machines; Message is plain English for people and quotes peer text
// only escaped and truncated.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// HSTS is a parsed Strict-Transport-Security header (RFC 6797 section 6.1).
type HSTS struct {
	Header            string `json:"header"` // as received, escaped and truncated
	MaxAge            int64  `json:"max_age"`
	IncludeSubDomains bool   `json:"include_subdomains"`
	Preload           bool   `json:"preload"`
}

// Result is what Detect learned about one endpoint.
type Result struct {
	Address string `json:"address"`
	// Protocol is the application protocol: "smtp", "imap", "pop3", "ftp",
	// "ldap", "xmpp", "postgresql", "mysql", "redis", "amqp", "mqtt", "nats",
	// "http", or "tls" when TLS was found but not what runs inside it, or
	// "unknown".
	Protocol   string     `json:"protocol"`
	Encryption Encryption `json:"encryption"`
	// Banner is the server's greeting, escaped and truncated.
	Banner string `json:"banner,omitempty"`
	// Version is the product or version the server announced, escaped and
	// truncated (MySQL server version, AMQP product, NATS/Redis version,
	// HTTP Server header).
	Version string `json:"version,omitempty"`
	// ALPN is the protocol negotiated in the implicit TLS handshake, if any.
	ALPN     string    `json:"alpn,omitempty"`
	HSTS     *HSTS     `json:"hsts,omitempty"`
	Findings []Finding `json:"findings"`
	// Connections is how many TCP connections Detect opened.
	Connections int `json:"connections"`
	// TLSDialer opens a new connection and performs whatever upgrade the
	// protocol needs, leaving the connection where the ClientHello goes
	// next. It is nil when the endpoint cannot speak TLS.
	TLSDialer Dialer `json:"-"`
}

// add records a finding. Error arguments are escaped and truncated here:
// library errors (XML, JSON, TLS) can quote peer bytes raw.
func (r *Result) add(code string, sev Severity, format string, args ...any) {
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = shown([]byte(err.Error()))
		}
	}
	r.Findings = append(r.Findings, Finding{Code: code, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// Finding codes. They are stable: tools and stored reports depend on them.
const (
	// CodeNoTLS: the endpoint speaks its protocol in plaintext and offers no TLS.
	CodeNoTLS = "no-tls"
	// CodeTLSOptional: TLS is offered but plaintext sessions are accepted too.
	CodeTLSOptional = "tls-optional"
	// CodeAuthBeforeTLS: the server offers to take credentials before TLS.
	CodeAuthBeforeTLS = "auth-before-tls"
	// CodeUpgradeRefused: the server advertised an upgrade and then refused it.
	CodeUpgradeRefused = "upgrade-refused"
	// CodeUnauthenticated: the server served an anonymous client.
	CodeUnauthenticated = "unauthenticated-access"
	// CodeServiceRefused: the server answered but refused to serve the scan.
	CodeServiceRefused = "service-refused"
	// CodeUnrecognised: the endpoint did not speak any protocol Detect knows.
	CodeUnrecognised = "unrecognised-service"
	// CodeTLSIncomplete: the endpoint answered a ClientHello as a TLS server
	// but the handshake did not complete (grading is done elsewhere).
	CodeTLSIncomplete = "tls-handshake-incomplete"
	// CodePostgresDirectTLS: PostgreSQL 17+ direct TLS (ALPN "postgresql").
	CodePostgresDirectTLS = "postgres-direct-tls"
	// CodeNoHTTPSRedirect: plain HTTP serves content instead of redirecting to https.
	CodeNoHTTPSRedirect = "http-no-https-redirect"
	// CodeHSTSMissing: an HTTPS response without Strict-Transport-Security.
	CodeHSTSMissing = "hsts-missing"
	// CodeHSTSInvalid: a Strict-Transport-Security header browsers ignore.
	CodeHSTSInvalid = "hsts-invalid"
	// CodeHSTSDisabled: max-age=0, which tells browsers to forget HSTS.
	CodeHSTSDisabled = "hsts-disabled"
	// CodeHSTSShort: max-age under one year.
	CodeHSTSShort = "hsts-short-max-age"
	// CodeHSTSNoSubdomains: includeSubDomains absent.
	CodeHSTSNoSubdomains = "hsts-no-include-subdomains"
)

// Options tune Detect. The zero value is ready to use.
type Options struct {
	// Dial opens TCP connections; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ServerName is sent as TLS SNI, HTTP Host and XMPP stream "to";
	// empty means the host part of the address.
	ServerName string
	// Protocol, when set, names the application protocol to expect instead
	// of guessing from the port ("smtp", "ldap", "postgresql", ...).
	Protocol string
	// LocalName is this side's name in SMTP EHLO; empty means "certwright-scan.invalid".
	LocalName string
	// BannerTimeout is how long to wait for a server that speaks first;
	// zero means 2 s.
	BannerTimeout time.Duration
	// IOTimeout bounds each exchange (a write and its reply); zero means 5 s.
	IOTimeout time.Duration
	// MaxConnections bounds the connections one Detect opens; zero means 4.
	MaxConnections int
}

const (
	defaultBannerTimeout  = 2 * time.Second
	defaultIOTimeout      = 5 * time.Second
	defaultMaxConnections = 4
	defaultLocalName      = "certwright-scan.invalid"
)

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.BannerTimeout < 0:
		return fmt.Errorf("service: banner timeout %v is negative; use 0 for the default", o.BannerTimeout)
	case o.IOTimeout < 0:
		return fmt.Errorf("service: I/O timeout %v is negative; use 0 for the default", o.IOTimeout)
	case o.MaxConnections < 0:
		return fmt.Errorf("service: max connections %d is negative; use 0 for the default", o.MaxConnections)
	case o.Protocol != "" && protocols[o.Protocol] == nil:
		return fmt.Errorf("service: unknown protocol %q; use one of %v", o.Protocol, protocolNames())
	case !wireSafe(o.ServerName):
		return fmt.Errorf("service: server name %q holds spaces or control characters; use a plain host name", o.ServerName)
	case !wireSafe(o.LocalName):
		return fmt.Errorf("service: local name %q holds spaces or control characters; use a plain host name", o.LocalName)
	}
	return nil
}

// wireSafe reports whether s can go into a protocol command line as one
// word: printable ASCII, no spaces, so no command injection.
func wireSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func (o Options) withDefaults() Options {
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	if o.LocalName == "" {
		o.LocalName = defaultLocalName
	}
	if o.BannerTimeout == 0 {
		o.BannerTimeout = defaultBannerTimeout
	}
	if o.IOTimeout == 0 {
		o.IOTimeout = defaultIOTimeout
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = defaultMaxConnections
	}
	return o
}

// errNotThis reports that the peer's reply does not belong to the protocol
// being tried; Detect moves on to the next candidate.
var errNotThis = errors.New("service: reply does not match the protocol")

// errBudget reports that Detect has used all its connections.
var errBudget = errors.New("service: connection budget spent")

func notThis(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNotThis}, args...)...)
}

// Detect connects to addr ("host:port"), works out what it speaks and how
// it is encrypted, and closes every connection it opened before returning.
// It returns an error only when the endpoint cannot be reached or ctx ends;
// an endpoint it cannot identify yields Protocol "unknown".
func Detect(ctx context.Context, addr string, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("service: address %q: %w; use host:port", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("service: address %q: port %q is not a number from 1 to 65535", addr, portText)
	}
	opts = opts.withDefaults()
	if opts.ServerName == "" {
		if !wireSafe(host) {
			return nil, fmt.Errorf("service: host %q holds spaces or control characters", host)
		}
		opts.ServerName = host
	}
	d := &detector{addr: addr, host: host, opts: opts}
	h := hintFor(port, opts.Protocol)
	r, err := d.detect(ctx, h)
	if err != nil {
		return nil, err
	}
	r.Connections = d.dials
	return r, nil
}

type detector struct {
	addr, host string
	opts       Options
	dials      int
}

func newResult(addr string) *Result {
	return &Result{Address: addr, Protocol: "unknown", Encryption: EncryptionUnknown, Findings: []Finding{}}
}

// open dials a new connection, counted against the budget.
func (d *detector) open(ctx context.Context) (*wire, error) {
	if d.dials >= d.opts.MaxConnections {
		return nil, errBudget
	}
	d.dials++
	conn, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	return newWire(ctx, conn, d.opts.IOTimeout), nil
}

func (d *detector) dial(ctx context.Context) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.opts.IOTimeout)
	defer cancel()
	conn, err := d.opts.Dial(dctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("service: connect to %s: %w", d.addr, err)
	}
	return conn, nil
}

// candidate is one way of talking to the endpoint once no banner came:
// implicit TLS (with the protocol expected inside) or a plaintext probe.
type candidate struct {
	tls   bool
	proto *protocol
}

func (d *detector) detect(ctx context.Context, h hint) (*Result, error) {
	w, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if w != nil {
			w.close()
		}
	}()
	if !h.implicitTLS && (h.proto == nil || h.proto.serverFirst) {
		got, err := w.waitBanner(d.opts.BannerTimeout)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("service: %s: %w", d.addr, ctx.Err())
		}
		if got {
			r := d.fromBanner(ctx, w, h)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("service: %s: %w", d.addr, ctx.Err())
			}
			return r, nil
		}
		if err != nil {
			// Closed without a word: start the candidates on a new connection.
			w.close()
			w = nil
		}
	}
	var tried []string
	for _, c := range h.candidates() {
		if w == nil {
			if w, err = d.open(ctx); err != nil {
				tried = append(tried, shown([]byte(err.Error())))
				break
			}
		}
		r := newResult(d.addr)
		if c.tls {
			err = d.implicitTLS(ctx, w, c.proto, r)
		} else {
			err = d.plain(ctx, w, c.proto, r)
		}
		w.close()
		w = nil
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("service: %s: %w", d.addr, ctx.Err())
		}
		tried = append(tried, shown([]byte(err.Error())))
	}
	r := newResult(d.addr)
	r.add(CodeUnrecognised, SeverityInfo, "No known protocol answered at %s (tried: %s).", d.addr, strings.Join(tried, "; "))
	return r, nil
}

// fromBanner handles a server that spoke first.
func (d *detector) fromBanner(ctx context.Context, w *wire, h hint) *Result {
	r := newResult(d.addr)
	p := classifyBanner(w.peekBuffered(bannerPeek), h)
	if p == nil {
		line := firstLine(w.peekBuffered(maxShown))
		r.Banner = shown(line)
		r.add(CodeUnrecognised, SeverityInfo, "The server at %s greeted with %s, which is no protocol Detect knows.", d.addr, quoted(line))
		return r
	}
	if err := d.plain(ctx, w, p, r); err != nil {
		r = newResult(d.addr)
		r.Protocol = p.name
		r.add(CodeUnrecognised, SeverityInfo, "The server at %s greeted like %s but the exchange failed: %s.", d.addr, p.title, err)
	}
	return r
}

// plain runs p over an unencrypted connection and sets TLSDialer when the
// protocol's upgrade is on offer.
func (d *detector) plain(ctx context.Context, w *wire, p *protocol, r *Result) error {
	if err := p.run(ctx, d, &session{w: w}, r); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if (r.Encryption == EncryptionStartTLS || r.Encryption == EncryptionOptional) && p.upgrade != nil {
		r.TLSDialer = d.upgradeDialer(p)
	}
	return nil
}

// upgradeDialer opens a new connection and performs p's upgrade on it.
func (d *detector) upgradeDialer(p *protocol) Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := d.dial(ctx)
		if err != nil {
			return nil, err
		}
		w := newWire(ctx, conn, d.opts.IOTimeout)
		if err := p.upgrade(ctx, d, w); err != nil {
			w.close()
			return nil, fmt.Errorf("service: %s upgrade to TLS at %s: %w", p.title, d.addr, err)
		}
		return w.detach()
	}
}

// plainDialer is the TLSDialer of an implicit-TLS endpoint.
func (d *detector) plainDialer() Dialer {
	return func(ctx context.Context) (net.Conn, error) { return d.dial(ctx) }
}

// session is one connection under a protocol handler. tls is true inside
// implicit TLS, where the handler identifies the protocol but judges nothing
// about encryption.
type session struct {
	w   *wire
	tls bool
}
