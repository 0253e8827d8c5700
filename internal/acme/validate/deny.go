package validate

import (
	"net/netip"
	"syscall"
)

// DefaultDeny returns the address ranges validation never connects to,
// whatever the operator configures (Config.Deny adds to them): addresses
// no ACME client can legitimately be reached at, and the cloud metadata
// services an SSRF would aim for.
//
// Loopback and private ranges are not in the list: a private PKI validates
// names on its own networks, and the quick start validates on localhost.
// Operators who want them refused add them with acme.deny_validation.
func DefaultDeny() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),          // "this network", unspecified
		netip.MustParsePrefix("169.254.0.0/16"),     // link-local, incl. 169.254.169.254 (AWS, GCP, Azure metadata)
		netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
		netip.MustParsePrefix("192.0.0.192/32"),     // Oracle Cloud metadata
		netip.MustParsePrefix("224.0.0.0/4"),        // multicast
		netip.MustParsePrefix("240.0.0.0/4"),        // reserved, incl. 255.255.255.255 broadcast
		netip.MustParsePrefix("::/128"),             // unspecified
		netip.MustParsePrefix("fe80::/10"),          // link-local
		netip.MustParsePrefix("ff00::/8"),           // multicast
		netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6
	}
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach the
// IPv4 address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// allowed refuses addresses in a denied range. An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) and a NAT64 address are judged by the IPv4 address they
// reach as well.
func (v *Validator) allowed(addr netip.Addr) error {
	shown := addr
	addr = addr.WithZone("")
	check := []netip.Addr{addr, addr.Unmap()}
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		check = append(check, netip.AddrFrom4([4]byte(b[12:16])))
	}
	for _, a := range check {
		for _, p := range *v.deny.Load() {
			if p.Contains(a) {
				return newError(typeRejectedIdentifier, nil, "validation to %s is denied by policy", shown)
			}
		}
	}
	return nil
}

// control is the net.Dialer Control hook: it judges the address each
// connection is actually made to, after every lookup, so that no path
// (a redirect, a second DNS answer, a rebinding resolver) reaches a denied
// range.
func (v *Validator) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return newError(typeConnection, nil, "refusing to connect to unparsable address %q", clip(address))
	}
	if err := v.allowed(ap.Addr()); err != nil {
		return err
	}
	return nil
}
