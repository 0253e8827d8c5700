// Package scan owns the network side of discovery: it dials targets,
// only within the allow-list and checked again at connect time, and
// observes what each serves. Engine is the scanner (NewEngine, or
// Standalone for "certwright scan TARGET..."): what each endpoint speaks
// and whether it encrypts, every TLS version and cipher suite it
// accepts, its chain checked for trust, name, proof of its key and
// revocation (fetched only where a FetchPolicy allows), and an SSL Labs
// style grade, printed by WriteTable or WriteJSON.
package scan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/discovery"
)

// Resolver resolves hostnames; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer connects to targets within an allow-list. It resolves a name
// once, checks each address against the list, and dials the first
// allowed one by address, so that a name cannot be made to point
// elsewhere between the check and the connection.
type Dialer struct {
	Allow    discovery.AllowList
	Resolver Resolver
	Timeout  time.Duration
}

// Dial connects to t and returns the connection and the address dialled.
// A target, or every address of a name, outside the allow-list is refused
// with an error wrapping discovery.ErrNotAllowed, before any packet is
// sent to it.
func (d *Dialer) Dial(ctx context.Context, t discovery.Target) (net.Conn, netip.Addr, error) {
	ip, err := d.Resolve(ctx, t)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	conn, err := d.DialAddr(ctx, t, ip)
	return conn, ip, err
}

// Resolve returns the address Dial would connect t to: t's own address,
// or the first of its name's addresses inside the allow-list. It refuses
// as Dial does and sends nothing to the target.
func (d *Dialer) Resolve(ctx context.Context, t discovery.Target) (netip.Addr, error) {
	if err := d.Allow.Check(t); err != nil {
		return netip.Addr{}, err
	}
	addrs := []netip.Addr{t.Addr}
	if t.IsName() {
		var err error
		if addrs, err = d.Resolver.LookupNetIP(ctx, "ip", t.Host); err != nil {
			return netip.Addr{}, fmt.Errorf("scan: resolve %s: %w", t.Host, err)
		}
		if len(addrs) == 0 {
			return netip.Addr{}, fmt.Errorf("scan: resolve %s: no addresses", t.Host)
		}
	}
	var refused error
	for _, ip := range addrs {
		ip = ip.Unmap().WithZone("")
		if err := d.Allow.CheckDial(t, ip); err != nil {
			refused = cmpOr(refused, err)
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, refused
}

// DialAddr connects to t at ip, an address Resolve returned, checking it
// against the allow-list again.
func (d *Dialer) DialAddr(ctx context.Context, t discovery.Target, ip netip.Addr) (net.Conn, error) {
	if err := d.Allow.CheckDial(t, ip); err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: d.Timeout}
	return nd.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, t.Port).String())
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// handshake runs one crypto/tls client handshake on conn, offering TLS
// 1.0 to 1.3 with server name sni, and returns what was agreed and the
// chain served, which is kept when the handshake fails after it. It
// verifies no chain and sends nothing after the handshake; a nil error
// means the server proved it holds the served leaf's key (crypto/tls
// checks the handshake signature, or the server decrypted the key
// exchange), even though the chain is not trusted.
func handshake(ctx context.Context, conn net.Conn, sni string) (tls.ConnectionState, [][]byte, error) {
	return handshakeWith(ctx, conn, sni, nil)
}

// everySuite lists every cipher suite crypto/tls implements for TLS 1.0
// to 1.2, the insecure ones included (RSA key exchange, 3DES, RC4),
// which it no longer offers by default.
func everySuite() []uint16 {
	var ids []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, s.ID)
	}
	return ids
}

// handshakeWith is handshake offering suites (nil: crypto/tls's
// defaults) in TLS 1.0 to 1.2.
func handshakeWith(ctx context.Context, conn net.Conn, sni string, suites []uint16) (tls.ConnectionState, [][]byte, error) {
	var chain [][]byte
	tc := tls.Client(conn, &tls.Config{
		ServerName: sni,
		// The scan observes what is served, trusted or not.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       suites,
		VerifyConnection: func(cs tls.ConnectionState) error {
			chain = rawChain(cs.PeerCertificates)
			return nil
		},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, chain, err
	}
	cs := tc.ConnectionState()
	_ = tc.Close()
	return cs, chain, nil
}

// insecureSuite reports whether crypto/tls counts the suite as insecure.
func insecureSuite(id uint16) bool {
	return slices.ContainsFunc(tls.InsecureCipherSuites(), func(s *tls.CipherSuite) bool { return s.ID == id })
}

func rawChain(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

// versionName names a TLS version as observations do.
func versionName(v uint16) string {
	switch v {
	case 0x0300: // SSL 3.0, which crypto/tls never negotiates
		return discovery.VersionSSL3
	case tls.VersionTLS10:
		return discovery.VersionTLS10
	case tls.VersionTLS11:
		return discovery.VersionTLS11
	case tls.VersionTLS12:
		return discovery.VersionTLS12
	case tls.VersionTLS13:
		return discovery.VersionTLS13
	}
	return "0x" + strconv.FormatUint(uint64(v), 16)
}

// pacer spaces the connections to one host: at most one per every.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  map[string]time.Time
}

func newPacer(every time.Duration) *pacer { return &pacer{every: every, next: map[string]time.Time{}} }

// wait blocks until a connection to host may start, or ctx ends.
func (p *pacer) wait(ctx context.Context, host string) error {
	p.mu.Lock()
	now := time.Now()
	at := p.next[host]
	if at.Before(now) {
		at = now
	}
	p.next[host] = at.Add(p.every)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("scan: rate limit wait for %s: %w", host, ctx.Err())
		}
	}
	return nil
}
