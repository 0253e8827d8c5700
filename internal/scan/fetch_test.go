package scan

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFetchPolicy: which addresses a revocation fetch may reach. The
// URLs come from certificates the scanner did not choose, so loopback,
// private, link-local (cloud metadata) and the IPv6 forms that embed an
// IPv4 address are refused unless the operator allowed them.
func TestFetchPolicy(t *testing.T) {
	t.Parallel()
	server := FetchPolicy{Public: true, Allow: allowList(t, "10.20.0.0/16", "crl.corp.test"), Hosts: []string{"ca.example.com:8443", "pki.example.com"}}
	wide := FetchPolicy{Public: true, Allow: allowList(t, "0.0.0.0/0", "::/0")}
	target := standaloneFetch(targets(t, "127.0.0.1:8443", "ca.test:443"), false)
	tests := []struct {
		name   string
		policy FetchPolicy
		host   string
		port   uint16
		ip     string
		want   bool
	}{
		{"public address", server, "crl.public.test", 80, "8.8.8.8", true},
		{"public IPv6", server, "crl.public.test", 80, "2606:4700::1", true},
		{"loopback", server, "evil.test", 80, "127.0.0.1", false},
		{"IPv4-mapped loopback", server, "evil.test", 80, "::ffff:127.0.0.1", false},
		{"IPv6 loopback", server, "evil.test", 80, "::1", false},
		{"private", server, "evil.test", 80, "192.168.1.1", false},
		{"cloud metadata", server, "evil.test", 80, "169.254.169.254", false},
		{"CGNAT", server, "evil.test", 80, "100.64.0.1", false},
		{"NAT64 of loopback", server, "evil.test", 80, "64:ff9b::7f00:1", false},
		{"6to4 of a private address", server, "evil.test", 80, "2002:c0a8:101::1", false},
		{"unique local IPv6", server, "evil.test", 80, "fd00::1", false},
		{"unspecified", server, "evil.test", 80, "0.0.0.0", false},
		{"SIIT of metadata", server, "evil.test", 80, "::ffff:0:a9fe:a9fe", false},
		{"SIIT of loopback", server, "evil.test", 80, "::ffff:0:7f00:1", false},
		{"6to4 relay anycast", server, "evil.test", 80, "192.88.99.1", false},
		{"IPv6 benchmarking", server, "evil.test", 80, "2001:2::1", false},
		{"ORCHID", server, "evil.test", 80, "2001:10::1", false},
		{"ORCHIDv2", server, "evil.test", 80, "2001:20::1", false},
		{"SRv6 SIDs", server, "evil.test", 80, "5f00::1", false},
		{"IPv6 documentation 3fff::/20", server, "evil.test", 80, "3fff::1", false},
		{"in scan.allow", server, "crl.internal", 80, "10.20.3.4", true},
		{"name in scan.allow", server, "crl.corp.test", 80, "192.168.9.9", true},
		{"own URL host and port", server, "ca.example.com", 8443, "192.168.9.9", true},
		{"own URL host, another port", server, "ca.example.com", 22, "192.168.9.9", false},
		{"own host on any port", server, "PKI.example.com.", 80, "10.99.0.1", true},
		{"zero policy, public", FetchPolicy{}, "crl.public.test", 80, "8.8.8.8", false},
		{"public, any port", server, "crl.public.test", 8080, "8.8.8.8", true},
		// scan.allow admits the HTTP ports only, and never a metadata
		// service or a link-local address it does not list itself.
		{"scan.allow, https", server, "crl.internal", 443, "10.20.3.4", true},
		{"scan.allow, another port", server, "crl.internal", 8080, "10.20.3.4", false},
		{"name in scan.allow, another port", server, "crl.corp.test", 22, "192.168.9.9", false},
		{"wide scan.allow, loopback on 80", wide, "evil.test", 80, "127.0.0.1", true},
		{"wide scan.allow, loopback Redis", wide, "evil.test", 6379, "127.0.0.1", false},
		{"wide scan.allow, cloud metadata", wide, "evil.test", 80, "169.254.169.254", false},
		{"wide scan.allow, AWS IPv6 metadata", wide, "evil.test", 80, "fd00:ec2::254", false},
		{"wide scan.allow, Alibaba metadata", wide, "evil.test", 80, "100.100.100.200", false},
		{"wide scan.allow, link-local IPv6", wide, "evil.test", 80, "fe80::1", false},
		{"metadata listed itself", FetchPolicy{Allow: allowList(t, "169.254.169.254")}, "x.test", 80, "169.254.169.254", true},
		{"link-local range listed", FetchPolicy{Allow: allowList(t, "169.254.0.0/16")}, "x.test", 80, "169.254.169.254", true},
		{"listed name resolving to metadata", FetchPolicy{Allow: allowList(t, "crl.corp.test")}, "crl.corp.test", 80, "169.254.169.254", false},
		// The standalone CLI: public addresses and the targets' own.
		{"target address, another port", target, "localhost", 8080, "127.0.0.1", true},
		{"not a target", target, "localhost", 80, "127.0.0.2", false},
		{"target name, any address", target, "ca.test", 8080, "10.9.9.9", true},
		{"anywhere, loopback", FetchPolicy{Everywhere: true}, "localhost", 22, "127.0.0.1", true},
		{"anywhere, multicast", FetchPolicy{Everywhere: true}, "x.test", 80, "224.0.0.1", false},
	}
	for _, tt := range tests {
		if got := tt.policy.allows(tt.host, tt.port, netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("%s: allows(%s, %d, %s) = %v, want %v", tt.name, tt.host, tt.port, tt.ip, got, tt.want)
		}
	}
}

// TestFetchDialerPinsCheckedAddress: a name is resolved once and only an
// allowed address is dialled; a name resolving only to refused
// addresses is not dialled at all.
func TestFetchDialerPinsCheckedAddress(t *testing.T) {
	t.Parallel()
	res := staticResolver{netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("127.0.0.1")}
	dial := FetchPolicy{Public: true}.dialer(res, time.Second)
	_, err := dial(t.Context(), "tcp", "rebind.test:80")
	if !errors.Is(err, ErrFetchNotAllowed) || !strings.Contains(err.Error(), "10.1.1.1, 127.0.0.1") {
		t.Errorf("dial = %v, want ErrFetchNotAllowed naming the addresses", err)
	}
	if _, err := dial(t.Context(), "tcp", "169.254.169.254:80"); !errors.Is(err, ErrFetchNotAllowed) {
		t.Errorf("dial metadata address = %v, want ErrFetchNotAllowed", err)
	}
	if err := (FetchPolicy{Hosts: []string{"ca.example.com:0"}}).validate(); err == nil {
		t.Error("port 0 in Hosts accepted")
	}
	if err := (FetchPolicy{Hosts: []string{"https://ca.example.com/"}}).validate(); err == nil {
		t.Error("a URL in Hosts accepted; want host or host:port")
	}
}
