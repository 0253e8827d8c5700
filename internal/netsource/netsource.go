// Package netsource names where a request comes from for per-source
// limits: an IPv4 address, or the /64 network of an IPv6 address (one
// host's share of a subnet), with IPv4-mapped IPv6 read as IPv4 and zones
// dropped, so one client cannot multiply its budget by changing spellings
// or the low bits of its IPv6 address.
package netsource

import (
	"net"
	"net/netip"
)

// Addr is the source a is counted as: a itself for IPv4 (mapped forms
// unmapped), the first address of its /64 for IPv6.
func Addr(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Key is the source key of an address in text: "192.0.2.1" or
// "2001:db8:1:2::/64". Text that is not an address is its own key, so
// every unparsable source shares one budget rather than escaping it.
func Key(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	a = Addr(a)
	if a.Is6() {
		return netip.PrefixFrom(a, 64).String()
	}
	return a.String()
}

// RemoteHost is the host of a request's remote address ("192.0.2.1:4711"
// reads "192.0.2.1"), or the address itself when it has no port.
func RemoteHost(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}
