// Package validate proves control of an identifier for ACME
// challenges: http-01, dns-01 (RFC 8555 §8.3, §8.4) and tls-alpn-01 (RFC 8737),
// for dns and ip identifiers (RFC 8738).
//
// Build one Validator with New at start-up and call Validate once per
// challenge attempt. Every failure is an *Error whose Type is the short name
// of the ACME problem type to report.
package validate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Config configures a Validator. The zero value is usable: it validates
// against ports 80 and 443 using the resolvers in /etc/resolv.conf.
type Config struct {
	HTTPPort int // port http-01 connects to; 0 means 80
	TLSPort  int // port tls-alpn-01 connects to (and https redirects for http-01); 0 means 443
	// Resolver is "host:port" of the DNS server used for A/AAAA lookups of
	// http-01/tls-alpn-01 targets and for dns-01 TXT lookups. "" means the
	// hosts in /etc/hosts, then the servers in /etc/resolv.conf (if that
	// fails fall back to 127.0.0.1:53).
	Resolver string
	// Deny lists address ranges validation never connects to, in addition
	// to DefaultDeny (which always applies). They are checked on every
	// resolved address, on every redirect target and again on the address
	// each connection is made to.
	Deny    []netip.Prefix
	Timeout time.Duration // whole validation attempt; 0 means 10s
	// ConnectTimeout bounds each TCP connect; 0 means 5s (never more
	// than Timeout).
	ConnectTimeout time.Duration
	MaxRedirects   int          // http-01; 0 means 10
	MaxBody        int64        // http-01 response bytes read; 0 means 8 KiB
	Log            *slog.Logger // nil discards
}

// Validator runs ACME challenge validations. It is safe for concurrent use.
type Validator struct {
	httpPort  uint16
	tlsPort   uint16
	resolvers []string
	// hostsFile is consulted before DNS when no resolver is configured,
	// as the system resolver does.
	hostsFile      string
	deny           atomic.Pointer[[]netip.Prefix] // DefaultDeny plus Config.Deny; SetDeny replaces it
	timeout        time.Duration
	connectTimeout time.Duration
	maxRedirects   int
	maxBody        int64
	log            *slog.Logger
}

const (
	defaultTimeout      = 10 * time.Second
	defaultConnect      = 5 * time.Second
	defaultMaxRedirects = 10
	defaultMaxBody      = 8 << 10
	resolvConf          = "/etc/resolv.conf"
	hostsPath           = "/etc/hosts"
	fallbackResolver    = "127.0.0.1:53"
)

// SetDeny replaces the operator's deny list (Config.Deny) while the
// validator runs: every connection from now on is judged by DefaultDeny
// plus extra. An invalid prefix is refused and the running list kept.
func (v *Validator) SetDeny(extra []netip.Prefix) error {
	deny := DefaultDeny()
	for _, p := range extra {
		if !p.IsValid() {
			return fmt.Errorf("validate: invalid Deny prefix %q", p)
		}
		deny = append(deny, p.Masked())
	}
	v.deny.Store(&deny)
	return nil
}

// New checks cfg and returns a Validator. Negative values, ports above 65535,
// invalid Deny prefixes and a Resolver that is not "ip:port" are rejected.
func New(cfg Config) (*Validator, error) {
	v := &Validator{
		timeout:        cfg.Timeout,
		connectTimeout: cfg.ConnectTimeout,
		maxRedirects:   cfg.MaxRedirects,
		maxBody:        cfg.MaxBody,
		log:            cfg.Log,
	}
	var err error
	if v.httpPort, err = port("HTTPPort", cfg.HTTPPort, 80); err != nil {
		return nil, err
	}
	if v.tlsPort, err = port("TLSPort", cfg.TLSPort, 443); err != nil {
		return nil, err
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("validate: Timeout %s is negative", cfg.Timeout)
	case cfg.ConnectTimeout < 0:
		return nil, fmt.Errorf("validate: ConnectTimeout %s is negative", cfg.ConnectTimeout)
	case cfg.MaxRedirects < 0:
		return nil, fmt.Errorf("validate: MaxRedirects %d is negative", cfg.MaxRedirects)
	case cfg.MaxBody < 0:
		return nil, fmt.Errorf("validate: MaxBody %d is negative", cfg.MaxBody)
	}
	if v.timeout == 0 {
		v.timeout = defaultTimeout
	}
	if v.connectTimeout == 0 {
		v.connectTimeout = defaultConnect
	}
	v.connectTimeout = min(v.connectTimeout, v.timeout)
	if v.maxRedirects == 0 {
		v.maxRedirects = defaultMaxRedirects
	}
	if v.maxBody == 0 {
		v.maxBody = defaultMaxBody
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if err := v.SetDeny(cfg.Deny); err != nil {
		return nil, err
	}
	if cfg.Resolver != "" {
		if err := checkResolver(cfg.Resolver); err != nil {
			return nil, err
		}
		v.resolvers = []string{cfg.Resolver}
	} else {
		v.resolvers = systemResolvers()
		v.hostsFile = hostsPath
	}
	return v, nil
}

func port(field string, p, def int) (uint16, error) {
	switch {
	case p == 0:
		return uint16(def), nil
	case p < 0 || p > 65535:
		return 0, fmt.Errorf("validate: %s %d out of range 1-65535", field, p)
	}
	return uint16(p), nil
}

// checkResolver insists on an IP literal: resolving the resolver's own name
// would need the system resolver, which validation never uses.
func checkResolver(s string) error {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("validate: Resolver %q: %w", s, err)
	}
	if addr, err := netip.ParseAddr(host); err != nil || addr.Zone() != "" {
		return fmt.Errorf("validate: Resolver %q: host must be an IP address", s)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("validate: Resolver %q: port must be 1-65535", s)
	}
	return nil
}

func systemResolvers() []string {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil || len(cc.Servers) == 0 {
		return []string{fallbackResolver}
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out
}

// identifier is a checked ACME identifier (RFC 8555 §7.1.3, RFC 8738 §3).
type identifier struct {
	typ   string     // "dns" or "ip"
	value string     // lower-case DNS name, or the IP in canonical text form
	ip    netip.Addr // set for "ip"
}

func parseIdentifier(identType, value string) (identifier, error) {
	switch identType {
	case "dns":
		name := strings.ToLower(value)
		if _, err := netip.ParseAddr(name); err == nil {
			return identifier{}, newError(typeMalformed, nil, "dns identifier %q is an IP address; use an ip identifier", clip(value))
		}
		if !validDNSName(name) {
			return identifier{}, newError(typeMalformed, nil, "invalid dns identifier %q", clip(value))
		}
		return identifier{typ: "dns", value: name}, nil
	case "ip":
		addr, err := netip.ParseAddr(value)
		if err != nil || addr.Zone() != "" || addr.Is4In6() {
			return identifier{}, newError(typeMalformed, nil, "invalid ip identifier %q", clip(value))
		}
		return identifier{typ: "ip", value: addr.String(), ip: addr}, nil
	}
	return identifier{}, newError(typeMalformed, nil, "unsupported identifier type %q", clip(identType))
}

// validDNSName accepts a fully qualified name without the trailing dot and
// without wildcard labels; policy on which names may be issued lives elsewhere.
func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// challenge is one row of the challenge table.
type challenge struct {
	ipOK bool // whether the challenge is defined for ip identifiers
	run  func(v *Validator, ctx context.Context, at *attempt, id identifier, token, keyAuth string) error
}

var challenges = map[string]challenge{
	"http-01":     {ipOK: true, run: (*Validator).http01},
	"dns-01":      {ipOK: false, run: (*Validator).dns01}, // RFC 8738 §7: no dns-01 for ip
	"tls-alpn-01": {ipOK: true, run: (*Validator).tlsALPN01},
}

// Validate runs one challenge. identType is "dns" or "ip"; value is the identifier
// value (for a wildcard order the caller passes the base name without "*.").
// keyAuth is the key authorization "token.thumbprint". nil means validated.
//
// Any other result is an *Error. When ctx is cancelled by the caller the
// *Error wraps ctx.Err(), so errors.Is(err, context.Canceled) tells an
// interrupted attempt from a failed one.
func (v *Validator) Validate(ctx context.Context, challengeType, identType, value, token, keyAuth string) error {
	_, err := v.ValidateAttempt(ctx, challengeType, identType, value, token, keyAuth)
	return err
}

// attempt collects what one validation talked to.
type attempt struct {
	targets []string
}

// maxTargets bounds the targets one attempt records (redirects times
// addresses).
const maxTargets = 32

func (at *attempt) add(target string) {
	if len(at.targets) < maxTargets {
		at.targets = append(at.targets, target)
	}
}

// ValidateAttempt is Validate that also returns what the attempt talked to,
// for the audit trail: every "ip:port" it connected or tried to connect to,
// in order (for dns-01, the TXT name looked up).
func (v *Validator) ValidateAttempt(ctx context.Context, challengeType, identType, value, token, keyAuth string) ([]string, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	at := &attempt{}
	err := v.validate(ctx, at, challengeType, identType, value, token, keyAuth)

	attrs := []slog.Attr{
		slog.String("challenge", challengeType),
		slog.String("identifier_type", identType),
		slog.String("identifier", clip(value)),
		slog.Duration("duration", time.Since(start)),
		slog.Any("targets", at.targets),
	}
	if err != nil {
		e, _ := errors.AsType[*Error](err)
		attrs = append(attrs, slog.String("result", "invalid"), slog.String("problem", e.Type), slog.String("detail", e.Detail))
	} else {
		attrs = append(attrs, slog.String("result", "valid"))
	}
	v.log.LogAttrs(ctx, slog.LevelInfo, "acme validation", attrs...)
	return at.targets, err
}

func (v *Validator) validate(ctx context.Context, at *attempt, challengeType, identType, value, token, keyAuth string) error {
	c, ok := challenges[challengeType]
	if !ok {
		return newError(typeMalformed, nil, "unsupported challenge type %q", clip(challengeType))
	}
	id, err := parseIdentifier(identType, value)
	if err != nil {
		return err
	}
	if id.typ == "ip" && !c.ipOK {
		return newError(typeMalformed, nil, "%s is not defined for ip identifiers", challengeType)
	}
	if keyAuth == "" {
		return newError(typeMalformed, nil, "empty key authorization")
	}
	if err := c.run(v, ctx, at, id, token, keyAuth); err != nil {
		if e, ok := errors.AsType[*Error](err); ok {
			return e
		}
		return newError(typeServerInternal, err, "%s for %s: %v", challengeType, id.value, err)
	}
	return nil
}
