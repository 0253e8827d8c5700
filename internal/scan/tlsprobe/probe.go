package tlsprobe

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

// Dialer returns a connection ready for a ClientHello: for STARTTLS the
// caller has already performed the upgrade. The prober never dials itself
// and closes every connection it gets.
type Dialer func(ctx context.Context) (net.Conn, error)

// Options bound a scan. The zero value is usable.
type Options struct {
	// ServerName is sent as SNI (omitted for IP literals and when empty).
	ServerName string
	// Timeout bounds each connection, dial included. Default 10 s.
	Timeout time.Duration
	// MaxConnections caps the connections one Enumerate makes; past it the
	// report is returned incomplete with ErrConnectionLimit. Default 250.
	MaxConnections int
	// MinInterval is the least time between two connection starts, to be
	// gentle with a target. Default 0.
	MinInterval time.Duration
	// Rand feeds ClientHello randoms and key shares. Default crypto/rand.
	Rand io.Reader
}

// Defaults for Options.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxConnections = 250
)

// ErrConnectionLimit is returned (with the partial report) when the scan
// needed more connections than Options.MaxConnections allows.
var ErrConnectionLimit = errors.New("tlsprobe: connection limit reached")

// Report is what a server offers.
type Report struct {
	// Versions has one entry per probed version, SSLv3 to TLS 1.3.
	Versions []VersionResult `json:"versions"`
	// Groups lists the named groups the server accepted: ECDHE curves for
	// TLS 1.2 and earlier, key-exchange groups for TLS 1.3.
	Groups []GroupResult `json:"groups,omitempty"`
	// DHPrimeBits lists the distinct DHE prime sizes seen, smallest first.
	DHPrimeBits []int `json:"dh_prime_bits,omitempty"`
	// ExportRSABits lists temporary RSA key sizes of export suites seen.
	ExportRSABits  []int          `json:"export_rsa_bits,omitempty"`
	ForwardSecrecy ForwardSecrecy `json:"forward_secrecy"`
	// SecureRenegotiation tells whether the server acknowledged RFC 5746
	// renegotiation_info; nil when no version below TLS 1.3 is offered.
	SecureRenegotiation *bool `json:"secure_renegotiation,omitempty"`
	// FallbackSCSV tells whether the server refused a downgraded hello
	// carrying TLS_FALLBACK_SCSV (RFC 7507); nil when it offers only one
	// version or answered unclearly.
	FallbackSCSV *bool `json:"fallback_scsv,omitempty"`
	// Chains are the certificate chains served, leaf first, distinct by
	// leaf; the TLS 1.3 chain (from a crypto/tls handshake) comes first.
	Chains []Chain `json:"chains,omitempty"`
	// Connections is how many connections the scan made.
	Connections int `json:"connections"`
	// Notes record server behaviour the scan worked around (quoted, short).
	Notes []string `json:"notes,omitempty"`
}

// VersionResult is one protocol version's outcome.
type VersionResult struct {
	Version Version `json:"version"`
	Offered bool    `json:"offered"`
	// ServerOrder is true when the server picks by its own preference,
	// false when it follows the client's; nil when fewer than two suites
	// are accepted. With server order, Suites is in the server's order.
	ServerOrder *bool           `json:"server_order,omitempty"`
	Suites      []AcceptedSuite `json:"suites,omitempty"`
}

// AcceptedSuite is a suite the server chose, with the key exchange
// parameters it used for it (from ServerKeyExchange or the TLS 1.3
// key_share), when there were any.
type AcceptedSuite struct {
	Suite
	Group   string `json:"group,omitempty"`
	KexBits int    `json:"kex_bits,omitempty"` // DH prime or curve size
	// KexStrength is the RSA-equivalent strength of that key exchange.
	KexStrength int `json:"kex_strength,omitempty"`
}

// GroupResult is a named group the server accepted at a version.
type GroupResult struct {
	Group
	Version Version `json:"version"`
}

// ForwardSecrecy summarises forward secrecy. Offered: some accepted suite
// is forward secret. Preferred: at the best version offered, a client that
// offers forward-secret suites gets one (the server's first choice is
// forward secret, or it follows the client's order and has one).
type ForwardSecrecy struct {
	Offered   bool `json:"offered"`
	Preferred bool `json:"preferred"`
}

// Chain is one certificate chain as served, DER, leaf first.
type Chain struct {
	Sources      []string `json:"sources"` // the handshakes that served it
	Certificates [][]byte `json:"certificates"`
}

// Version returns the result for v, or a zero result.
func (r *Report) Version(v Version) VersionResult {
	for _, vr := range r.Versions {
		if vr.Version == v {
			return vr
		}
	}
	return VersionResult{Version: v}
}

// prober holds one Enumerate call's state.
type prober struct {
	dial      Dialer
	opts      Options
	rep       *Report
	lastStart time.Time
}

// Enumerate probes what the server behind dial offers. It returns the
// report, which is partial when err is not nil.
//
// Connections: one per accepted suite plus one per version (the refusal
// that ends the version's enumeration), one per version with two or more
// suites (server order), one per probed group (7 curves for TLS 1.2
// ECDHE, 9 groups for TLS 1.3), one for TLS_FALLBACK_SCSV and one
// crypto/tls handshake for the TLS 1.3 chain. A typical modern server (TLS
// 1.2 with 8 suites, TLS 1.3 with 3) needs about 40; one that also keeps
// TLS 1.0 and 1.1 with a dozen suites each about 65. The worst case, a
// server accepting all of the table's suites at every version, is bounded
// by Options.MaxConnections.
func Enumerate(ctx context.Context, dial Dialer, opts Options) (*Report, error) {
	if dial == nil {
		return nil, errors.New("tlsprobe: no dialer given")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	p := &prober{dial: dial, opts: opts, rep: &Report{}}
	err := p.run(ctx)
	return p.rep, err
}

func (p *prober) run(ctx context.Context) error {
	for _, v := range probedVersions {
		vr, err := p.enumerateVersion(ctx, v)
		p.rep.Versions = append(p.rep.Versions, vr)
		if err != nil {
			return err
		}
	}
	for _, step := range []func(context.Context) error{p.probeTLS13Groups, p.probeECDHECurves, p.probeFallbackSCSV, p.fetchTLS13Chain} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	p.summarise()
	return nil
}

// outcome is one probe's result: the server's flight, or a refusal.
type outcome struct {
	f       *flight
	refused bool   // alert, close or reset before a ServerHello
	why     string // for notes
	odd     bool   // refused in a way worth a note: silence or not TLS
}

// probe sends one ClientHello on a fresh connection and reads the answer.
func (p *prober) probe(ctx context.Context, h *clientHello) (outcome, error) {
	if p.rep.Connections >= p.opts.MaxConnections {
		return outcome{}, fmt.Errorf("%w (%d)", ErrConnectionLimit, p.opts.MaxConnections)
	}
	if err := p.pace(ctx); err != nil {
		return outcome{}, err
	}
	if _, err := io.ReadFull(p.opts.Rand, h.random[:]); err != nil {
		return outcome{}, fmt.Errorf("tlsprobe: read randomness: %w", err)
	}
	if h.version == VersionTLS13 {
		h.sessionID = make([]byte, 32)
		if _, err := io.ReadFull(p.opts.Rand, h.sessionID); err != nil {
			return outcome{}, fmt.Errorf("tlsprobe: read randomness: %w", err)
		}
	}
	msg, err := h.marshal()
	if err != nil {
		return outcome{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	p.rep.Connections++
	conn, err := p.dial(cctx)
	if err != nil {
		return outcome{}, fmt.Errorf("tlsprobe: connect for %s probe: %w", h.version, err)
	}
	defer conn.Close()
	deadline, _ := cctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return outcome{}, fmt.Errorf("tlsprobe: set deadline: %w", err)
	}
	stop := context.AfterFunc(cctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(msg); err != nil {
		if ctx.Err() != nil {
			return outcome{}, ctx.Err()
		}
		return outcome{refused: true, why: "write failed: " + err.Error()}, nil
	}
	f, err := readFlight(conn)
	if ctx.Err() != nil {
		return outcome{}, ctx.Err()
	}
	switch {
	case f.alert != nil:
		return outcome{f: f, refused: f.hello == nil, why: f.alert.Error()}, nil
	case err == nil:
		return outcome{f: f}, nil
	case f.hello != nil:
		// The hello answered the question; a fault after it is only noted.
		return outcome{f: f, why: err.Error()}, nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
		return outcome{refused: true, why: "connection closed without a ServerHello"}, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return outcome{refused: true, odd: true, why: fmt.Sprintf("no answer within %s", p.opts.Timeout)}, nil
	default:
		return outcome{refused: true, odd: true, why: err.Error()}, nil
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// pace waits until MinInterval has passed since the last connection.
func (p *prober) pace(ctx context.Context) error {
	if p.opts.MinInterval > 0 && !p.lastStart.IsZero() {
		if wait := time.Until(p.lastStart.Add(p.opts.MinInterval)); wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	p.lastStart = time.Now()
	return nil
}

func (p *prober) note(format string, args ...any) {
	if len(p.rep.Notes) < 50 {
		p.rep.Notes = append(p.rep.Notes, fmt.Sprintf(format, args...))
	}
}

// x25519Share makes a fresh X25519 key share for a TLS 1.3 hello.
func (p *prober) x25519Share() (keyShare, error) {
	k, err := ecdh.X25519().GenerateKey(p.opts.Rand)
	if err != nil {
		return keyShare{}, fmt.Errorf("tlsprobe: generate X25519 key share: %w", err)
	}
	return keyShare{group: 29, data: k.PublicKey().Bytes()}, nil
}

// hello builds a probe ClientHello for v offering suites.
func (p *prober) hello(v Version, suites []uint16) (*clientHello, error) {
	h := &clientHello{version: v, suites: suites, serverName: p.opts.ServerName}
	if v == VersionTLS13 {
		h.groups = groupIDs(func(g Group) bool { return g.TLS13 })
		ks, err := p.x25519Share()
		if err != nil {
			return nil, err
		}
		h.keyShares = []keyShare{ks}
	} else {
		h.groups = groupIDs(func(g Group) bool { return g.EC || g.FF })
	}
	return h, nil
}

// enumerateVersion offers every candidate suite for v, removes the one the
// server chose and repeats until the server refuses: at most
// len(candidates)+1 connections, plus one to learn the server's order.
func (p *prober) enumerateVersion(ctx context.Context, v Version) (VersionResult, error) {
	vr := VersionResult{Version: v}
	remaining := candidates(v)
	for len(remaining) > 0 {
		h, err := p.hello(v, remaining)
		if err != nil {
			return vr, err
		}
		out, err := p.probe(ctx, h)
		if err != nil {
			return vr, err
		}
		if out.refused {
			if out.odd {
				p.note("%s probe: %s", v, out.why)
			}
			break
		}
		sh := out.f.hello
		if sh.Version != v {
			if sh.Version > v || len(vr.Suites) > 0 {
				p.note("%s probe: server answered with version %s", v, sh.Version)
			}
			break
		}
		if !slices.Contains(remaining, sh.Suite) {
			p.note("%s probe: server chose suite 0x%04x, which was not offered", v, sh.Suite)
			break
		}
		if out.why != "" {
			p.note("%s probe: %s", v, out.why)
		}
		vr.Offered = true
		vr.Suites = append(vr.Suites, p.accepted(v, out.f))
		remaining = slices.DeleteFunc(remaining, func(id uint16) bool { return id == sh.Suite })
		if v < VersionTLS13 { // versions go up: the best one's answer stays
			sr := sh.SecureReneg
			p.rep.SecureRenegotiation = &sr
		}
	}
	if len(vr.Suites) >= 2 {
		order, err := p.serverOrder(ctx, v, vr.Suites)
		if err != nil {
			return vr, err
		}
		vr.ServerOrder = order
	}
	return vr, nil
}

// accepted records a chosen suite and what its key exchange used.
func (p *prober) accepted(v Version, f *flight) AcceptedSuite {
	s, _ := LookupSuite(f.hello.Suite)
	as := AcceptedSuite{Suite: s}
	if v == VersionTLS13 {
		if g, ok := LookupGroup(f.hello.Group); ok {
			as.Group, as.KexBits, as.KexStrength = g.Name, g.Bits, g.Strength
		}
		return as
	}
	if len(f.chain) > 0 {
		p.addChain(v.String()+" Certificate message", f.chain)
	}
	if f.ske == nil {
		return as
	}
	ske, err := ParseServerKeyExchange(f.ske, s.Kex, s.Export)
	if err != nil {
		p.note("%s %s: %v", v, s.Name, err)
		return as
	}
	switch {
	case ske.DHPrimeBits > 0:
		as.Group, as.KexBits, as.KexStrength = fmt.Sprintf("DH %d", ske.DHPrimeBits), ske.DHPrimeBits, ske.DHPrimeBits
		if !slices.Contains(p.rep.DHPrimeBits, ske.DHPrimeBits) {
			p.rep.DHPrimeBits = append(p.rep.DHPrimeBits, ske.DHPrimeBits)
			slices.Sort(p.rep.DHPrimeBits)
		}
	case ske.Curve != 0:
		if g, ok := LookupGroup(ske.Curve); ok {
			as.Group, as.KexBits, as.KexStrength = g.Name, g.Bits, g.Strength
		} else {
			as.Group = fmt.Sprintf("curve %d", ske.Curve)
		}
	case ske.RSAModulusBits > 0:
		as.Group, as.KexBits, as.KexStrength = fmt.Sprintf("RSA %d", ske.RSAModulusBits), ske.RSAModulusBits, ske.RSAModulusBits
		if !slices.Contains(p.rep.ExportRSABits, ske.RSAModulusBits) {
			p.rep.ExportRSABits = append(p.rep.ExportRSABits, ske.RSAModulusBits)
			slices.Sort(p.rep.ExportRSABits)
		}
	}
	return as
}

// serverOrder offers the accepted suites in reverse discovery order. A
// server following the client's order now picks the first of that list;
// one enforcing its own picks what it picked first before.
func (p *prober) serverOrder(ctx context.Context, v Version, suites []AcceptedSuite) (*bool, error) {
	rev := make([]uint16, 0, len(suites))
	for i := len(suites) - 1; i >= 0; i-- {
		rev = append(rev, suites[i].ID)
	}
	h, err := p.hello(v, rev)
	if err != nil {
		return nil, err
	}
	out, err := p.probe(ctx, h)
	if err != nil {
		return nil, err
	}
	if out.refused || out.f.hello.Version != v {
		p.note("%s: server refused the suites it had accepted when offered in another order (%s)", v, out.why)
		return nil, nil
	}
	order := out.f.hello.Suite != rev[0]
	return &order, nil
}

// probeTLS13Groups offers one group at a time with no key share, so the
// server answers with a HelloRetryRequest naming it if it supports it
// (RFC 8446 4.2.8); x25519 is offered with a real share.
func (p *prober) probeTLS13Groups(ctx context.Context) error {
	vr := p.rep.Version(VersionTLS13)
	if !vr.Offered {
		return nil
	}
	suites := make([]uint16, 0, len(vr.Suites))
	for _, s := range vr.Suites {
		suites = append(suites, s.ID)
	}
	for _, g := range groupTable {
		if !g.TLS13 {
			continue
		}
		h := &clientHello{version: VersionTLS13, suites: suites, groups: []uint16{g.ID}, serverName: p.opts.ServerName}
		if g.ID == 29 {
			ks, err := p.x25519Share()
			if err != nil {
				return err
			}
			h.keyShares = []keyShare{ks}
		}
		out, err := p.probe(ctx, h)
		if err != nil {
			return err
		}
		if out.refused {
			continue
		}
		if sh := out.f.hello; sh.Version == VersionTLS13 && sh.Group == g.ID {
			p.rep.Groups = append(p.rep.Groups, GroupResult{Group: g, Version: VersionTLS13})
		} else {
			p.note("TLS 1.3 group %s probe: server answered version %s group %d", g.Name, sh.Version, sh.Group)
		}
	}
	return nil
}

// probeECDHECurves offers the ECDHE suites accepted at the best version
// below TLS 1.3 with one curve at a time, and reads the curve back from
// the ServerKeyExchange.
func (p *prober) probeECDHECurves(ctx context.Context) error {
	var v Version
	var suites []uint16
	for _, vr := range slices.Backward(p.rep.Versions) {
		if vr.Version == VersionTLS13 || !vr.Offered {
			continue
		}
		for _, s := range vr.Suites {
			if s.Kex == KexECDHE {
				suites = append(suites, s.ID)
			}
		}
		if len(suites) > 0 {
			v = vr.Version
			break
		}
	}
	if len(suites) == 0 {
		return nil
	}
	for _, g := range groupTable {
		if !g.EC {
			continue
		}
		h := &clientHello{version: v, suites: suites, groups: []uint16{g.ID}, serverName: p.opts.ServerName}
		out, err := p.probe(ctx, h)
		if err != nil {
			return err
		}
		if out.refused || out.f.ske == nil {
			continue
		}
		s, _ := LookupSuite(out.f.hello.Suite)
		ske, err := ParseServerKeyExchange(out.f.ske, s.Kex, s.Export)
		if err != nil {
			p.note("%s curve %s probe: %v", v, g.Name, err)
			continue
		}
		if ske.Curve == g.ID {
			p.rep.Groups = append(p.rep.Groups, GroupResult{Group: g, Version: v})
		} else {
			p.note("%s curve %s probe: server used curve %d instead", v, g.Name, ske.Curve)
		}
	}
	return nil
}

// probeFallbackSCSV offers the second-best version with TLS_FALLBACK_SCSV;
// a server that knows better must refuse with inappropriate_fallback.
func (p *prober) probeFallbackSCSV(ctx context.Context) error {
	var offered []VersionResult
	for _, vr := range p.rep.Versions {
		if vr.Offered {
			offered = append(offered, vr)
		}
	}
	if len(offered) < 2 {
		return nil
	}
	lower := offered[len(offered)-2]
	suites := []uint16{}
	for _, s := range lower.Suites {
		suites = append(suites, s.ID)
	}
	h, err := p.hello(lower.Version, append(suites, suiteFallbackSCSV))
	if err != nil {
		return err
	}
	out, err := p.probe(ctx, h)
	if err != nil {
		return err
	}
	var ok bool
	switch {
	case out.f != nil && out.f.alert != nil && out.f.alert.Description == alertInappropriateFallbak:
		ok = true
	case out.f != nil && out.f.hello != nil:
		ok = false
	default:
		p.note("TLS_FALLBACK_SCSV probe at %s: %s", lower.Version, out.why)
		return nil
	}
	p.rep.FallbackSCSV = &ok
	return nil
}

// fetchTLS13Chain runs one ordinary crypto/tls handshake to read the
// certificate chain, which TLS 1.3 encrypts. Nothing is verified: the
// chain is only recorded.
func (p *prober) fetchTLS13Chain(ctx context.Context) error {
	if !p.rep.Version(VersionTLS13).Offered {
		return nil
	}
	if p.rep.Connections >= p.opts.MaxConnections {
		return fmt.Errorf("%w (%d)", ErrConnectionLimit, p.opts.MaxConnections)
	}
	if err := p.pace(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	p.rep.Connections++
	conn, err := p.dial(cctx)
	if err != nil {
		return fmt.Errorf("tlsprobe: connect for the TLS 1.3 certificate: %w", err)
	}
	var chain [][]byte
	cfg := &tls.Config{
		ServerName:         p.opts.ServerName,
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		Rand:               p.opts.Rand,
		InsecureSkipVerify: true, // we only record the chain; trust is judged elsewhere
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				chain = append(chain, bytes.Clone(c.Raw))
			}
			return nil
		},
	}
	if net.ParseIP(cfg.ServerName) != nil {
		cfg.ServerName = ""
	}
	tc := tls.Client(conn, cfg)
	defer tc.Close()
	if err := tc.HandshakeContext(cctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.note("TLS 1.3 handshake for the certificate failed: %v", err)
		return nil
	}
	if len(chain) > 0 {
		// The TLS 1.3 chain is what current clients see: list it first.
		i := p.addChain("TLS 1.3 handshake", chain)
		if i > 0 {
			c := p.rep.Chains[i]
			p.rep.Chains = slices.Insert(slices.Delete(p.rep.Chains, i, i+1), 0, c)
		}
	}
	return nil
}

const maxChains = 4

// addChain records a chain unless one with the same leaf is recorded,
// and returns its index (-1 when the list is full).
func (p *prober) addChain(source string, chain [][]byte) int {
	for i, c := range p.rep.Chains {
		if bytes.Equal(c.Certificates[0], chain[0]) {
			if !slices.Contains(c.Sources, source) {
				p.rep.Chains[i].Sources = append(c.Sources, source)
			}
			return i
		}
	}
	if len(p.rep.Chains) >= maxChains {
		return -1
	}
	p.rep.Chains = append(p.rep.Chains, Chain{Sources: []string{source}, Certificates: chain})
	return len(p.rep.Chains) - 1
}

// summarise fills the forward secrecy verdict.
func (p *prober) summarise() {
	var best *VersionResult
	for i := range p.rep.Versions {
		vr := &p.rep.Versions[i]
		for _, s := range vr.Suites {
			if s.ForwardSecret() {
				p.rep.ForwardSecrecy.Offered = true
			}
		}
		if vr.Offered {
			best = vr
		}
	}
	if best == nil || len(best.Suites) == 0 {
		return
	}
	if best.ServerOrder != nil && *best.ServerOrder {
		p.rep.ForwardSecrecy.Preferred = best.Suites[0].ForwardSecret()
		return
	}
	p.rep.ForwardSecrecy.Preferred = slices.ContainsFunc(best.Suites, func(s AcceptedSuite) bool { return s.ForwardSecret() })
}
