package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/discovery"
)

// FetchPolicy says where the revocation checks of a scan may connect.
//
// A scan checks revocation through the CRL and OCSP URLs written in the
// certificates it finds, and whoever runs a scanned endpoint chose those
// URLs. Fetched unchecked, a certificate could make the scanner send
// requests anywhere it can reach: the cloud metadata service, an admin
// interface on loopback, the rest of the private network (server-side
// request forgery). So every connection of a fetch, redirects included,
// goes to an address this policy allows, resolved once and dialled by
// address, so a name cannot change its answer between check and connect.
//
// The server's policy: Public (public CAs' responders, any port), Allow =
// scan.allow on ports 80 and 443 only (the network it may already scan,
// where an internal CA publishes; not every service listening there), and
// never a cloud metadata or link-local address unless scan.allow lists
// one itself, and Hosts = the host:port of its own public URL (where its
// own CAs' CRLs and OCSP answers are, even when that name resolves to a
// private address). The standalone CLI allows public addresses and its
// targets' own addresses and names on any port (Addrs, Hosts: a loopback
// Certwright publishes its CRLs on its HTTP port), or everything with
// --fetch-anywhere (Everywhere). The zero policy allows nothing:
// revocation is then reported undetermined.
type FetchPolicy struct {
	// Public allows globally routable addresses. Loopback, private,
	// link-local, shared (CGNAT), documentation, benchmarking, reserved
	// and IPv6 transition ranges that embed an IPv4 address are never
	// public (see nonPublic).
	Public bool
	// Allow admits the ranges and names of an allow-list.
	Allow discovery.AllowList
	// Hosts admit these names wherever they resolve: "host" on any port,
	// "host:port" on that port only.
	Hosts []string
	// Addrs admit these addresses on any port: the standalone CLI's
	// targets.
	Addrs []netip.Addr
	// Everywhere admits every address but the unspecified and multicast
	// ones, on any port: the standalone CLI's --fetch-anywhere.
	Everywhere bool
}

// AllowEverything is the allow-list of the standalone CLI: every unicast
// address and every name.
func AllowEverything() discovery.AllowList {
	a, err := discovery.ParseAllowList([]string{"0.0.0.0/0", "::/0"})
	if err != nil {
		panic("scan: the allow-everything list does not parse: " + err.Error())
	}
	return a
}

// ErrFetchNotAllowed marks a revocation fetch the FetchPolicy refused.
var ErrFetchNotAllowed = errors.New("scan: revocation fetch not allowed")

// nonPublic lists the special-purpose ranges (IANA IPv4 and IPv6
// Special-Purpose Address Registries, RFC 6890) that are not globally
// reachable, beside what netip classifies itself (loopback, private,
// link-local, multicast, unspecified).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT): embeds an IPv4 address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: embeds any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/32"),       // Teredo: embeds an IPv4 address
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID (deprecated)
	netip.MustParsePrefix("2001:20::/28"),    // ORCHIDv2
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// metadata lists where cloud instance metadata services (and the rest of
// link-local) answer: a revocation fetch reaches them only when scan.allow
// lists a range inside one of these itself.
var metadata = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local; AWS, GCP, Azure, OCI metadata
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
}

// fetchPorts are the ports scan.allow admits revocation fetches to: the
// HTTP ports CRLs and OCSP are published on, not whatever else listens
// in the network the server may scan.
var fetchPorts = []uint16{80, 443}

// publicAddr reports whether ip is globally routable.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	return !slices.ContainsFunc(nonPublic, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// validate checks the Hosts entries.
func (p FetchPolicy) validate() error {
	for _, h := range p.Hosts {
		if _, _, err := splitHostEntry(h); err != nil {
			return err
		}
	}
	return nil
}

// splitHostEntry reads "host" or "host:port" ("[v6]:port"); port 0 is
// any port.
func splitHostEntry(e string) (string, uint16, error) {
	host, port := e, uint16(0)
	if h, ps, err := net.SplitHostPort(e); err == nil {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("scan: revocation fetch host %q: port %q is not a number from 1 to 65535", e, ps)
		}
		host, port = h, uint16(n)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || strings.ContainsAny(host, " /") {
		return "", 0, fmt.Errorf("scan: revocation fetch host %q: want a host name or host:port, like ca.example.com:8443", e)
	}
	return host, port, nil
}

// listed reports whether host:port is among Hosts.
func (p FetchPolicy) listed(host string, port uint16) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, e := range p.Hosts {
		h, hp, err := splitHostEntry(e)
		if err == nil && h == host && (hp == 0 || hp == port) {
			return true
		}
	}
	return false
}

// allows reports whether a fetch from host (as the URL names it) may
// connect to ip:port. Allow admits only ports 80 and 443, and a metadata
// address only when it lists a range inside that address's own block.
func (p FetchPolicy) allows(host string, port uint16, ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast():
		return false
	case p.Everywhere, p.Public && publicAddr(ip), p.listed(host, port), slices.Contains(p.Addrs, ip):
		return true
	case !slices.Contains(fetchPorts, port):
		return false
	}
	if i := slices.IndexFunc(metadata, func(m netip.Prefix) bool { return m.Contains(ip) }); i >= 0 {
		return p.Allow.AllowsAddrWithin(ip, metadata[i])
	}
	if p.Allow.AllowsAddr(ip) {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err != nil && p.Allow.AllowsName(host)
}

// dialer returns the DialContext of revocation fetches: it resolves the
// host once and connects to the first address the policy allows.
func (p FetchPolicy) dialer(res Resolver, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, ps, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("scan: revocation fetch address %q: %w", addr, err)
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("scan: revocation fetch address %q: bad port", addr)
		}
		var addrs []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{ip}
		} else if addrs, err = res.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("scan: resolve %s for a revocation fetch: %w", host, err)
		}
		for _, ip := range addrs {
			if p.allows(host, uint16(port), ip) {
				nd := net.Dialer{Timeout: timeout}
				return nd.DialContext(ctx, "tcp", netip.AddrPortFrom(ip.Unmap().WithZone(""), uint16(port)).String())
			}
		}
		return nil, fmt.Errorf("%w: %s (%s) is not a public address, nor in the scan allow-list on port 80 or 443, nor the server's own URL or a scanned target", ErrFetchNotAllowed, addr, joinAddrs(addrs))
	}
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	if len(s) == 0 {
		return "no addresses"
	}
	return strings.Join(s, ", ")
}

// standaloneFetch is the standalone CLI's policy for targets: public
// addresses, and the targets' own addresses and names on any port (a
// loopback Certwright publishes its CRLs on its HTTP port); anywhere
// admits everything.
func standaloneFetch(targets []discovery.Target, anywhere bool) FetchPolicy {
	p := FetchPolicy{Public: true, Everywhere: anywhere}
	for _, t := range targets {
		if t.IsName() {
			if !slices.Contains(p.Hosts, t.Host) {
				p.Hosts = append(p.Hosts, t.Host)
			}
		} else if !slices.Contains(p.Addrs, t.Addr) {
			p.Addrs = append(p.Addrs, t.Addr)
		}
	}
	return p
}
