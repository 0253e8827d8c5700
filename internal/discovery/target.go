package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is one host and port to scan: an IP address (Addr set) or a
// hostname, resolved when it is dialled.
type Target struct {
	// Host is the hostname, or the IP address as text.
	Host string `json:"host"`
	Port uint16 `json:"port"`
	// Addr is set when Host is an IP address.
	Addr netip.Addr `json:"-"`
}

// String is host:port ([v6]:port for IPv6).
func (t Target) String() string { return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port))) }

// IsName reports whether the target is a hostname, not an address.
func (t Target) IsName() bool { return !t.Addr.IsValid() }

// Limits of target expansion.
const (
	// MaxCIDRAddresses bounds the addresses one CIDR range expands to
	// (an IPv4 /20, an IPv6 /116).
	MaxCIDRAddresses = 4096
	// MaxTargets bounds the host:port pairs of one scan.
	MaxTargets = 65536
	// MaxPorts bounds one target's port list.
	MaxPorts = 64
)

// DefaultPorts returns the ports scanned on a target given without any.
func DefaultPorts() []uint16 { return []uint16{443} }

// ErrInvalid marks a malformed target, allow-list entry or window.
var ErrInvalid = errors.New("discovery: invalid")

// ParseTargets reads target specifications, each one of
//
//	host:port, 192.0.2.1:443, [2001:db8::1]:443   one endpoint
//	host, 192.0.2.1, 2001:db8::1                   the default ports
//	host:443,8443                                  a port list
//	192.0.2.0/24:443,8443, [2001:db8::/120]:443    a CIDR range and ports
//
// where a bare CIDR range takes the default ports (ports nil: 443). A
// range expands to at most MaxCIDRAddresses addresses (an IPv4 range
// wider than /31 skips its network and broadcast addresses), the whole
// list to at most MaxTargets; duplicates are dropped.
func ParseTargets(specs []string, ports []uint16) ([]Target, error) {
	if len(ports) == 0 {
		ports = DefaultPorts()
	}
	var out []Target
	seen := map[string]bool{}
	for _, spec := range specs {
		ts, err := parseTarget(strings.TrimSpace(spec), ports)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if k := t.String(); !seen[k] {
				seen[k] = true
				out = append(out, t)
			}
		}
		if len(out) > MaxTargets {
			return nil, fmt.Errorf("%w: targets expand to more than %d host:port pairs; scan narrower ranges or fewer ports", ErrInvalid, MaxTargets)
		}
	}
	return out, nil
}

func parseTarget(spec string, defPorts []uint16) ([]Target, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: target %q: %s", ErrInvalid, spec, fmt.Sprintf(format, a...))
	}
	if spec == "" {
		return nil, bad("empty")
	}
	host, portList := spec, ""
	switch {
	case strings.HasPrefix(spec, "["):
		end := strings.Index(spec, "]")
		if end < 0 {
			return nil, bad("missing ]")
		}
		host = spec[1:end]
		rest := spec[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return nil, bad("want [address]:port")
			}
			portList = rest[1:]
		}
	case strings.Count(spec, ":") == 1:
		host, portList, _ = strings.Cut(spec, ":")
	case strings.Count(spec, ":") > 1:
		// An unbracketed IPv6 address or range: no ports.
	}
	ports := defPorts
	if portList != "" || strings.HasSuffix(spec, ":") {
		var err error
		if ports, err = parsePorts(portList); err != nil {
			return nil, bad("%v", err)
		}
	}
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return nil, bad("not a CIDR range: %v", err)
		}
		addrs, err := expand(p.Masked())
		if err != nil {
			return nil, bad("%v", err)
		}
		if len(addrs)*len(ports) > MaxTargets {
			return nil, bad("%d addresses × %d ports is more than %d targets", len(addrs), len(ports), MaxTargets)
		}
		out := make([]Target, 0, len(addrs)*len(ports))
		for _, a := range addrs {
			for _, port := range ports {
				out = append(out, Target{Host: a.String(), Port: port, Addr: a})
			}
		}
		return out, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, bad("zoned IPv6 addresses are not scanned")
		}
		a = a.Unmap()
		out := make([]Target, 0, len(ports))
		for _, port := range ports {
			out = append(out, Target{Host: a.String(), Port: port, Addr: a})
		}
		return out, nil
	}
	name, err := hostname(host)
	if err != nil {
		return nil, bad("%v", err)
	}
	out := make([]Target, 0, len(ports))
	for _, port := range ports {
		out = append(out, Target{Host: name, Port: port})
	}
	return out, nil
}

// hostname checks a DNS name and returns it lower-cased.
func hostname(s string) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 253 {
		return "", errors.New("not a hostname")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", fmt.Errorf("%q is not a hostname", s)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", fmt.Errorf("%q is not a hostname (character %q)", s, r)
			}
		}
	}
	return s, nil
}

func parsePorts(s string) ([]uint16, error) {
	parts := strings.Split(s, ",")
	if len(parts) > MaxPorts {
		return nil, fmt.Errorf("%d ports: at most %d", len(parts), MaxPorts)
	}
	var out []uint16
	for _, p := range parts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("port %q: want 1 to 65535", p)
		}
		if !slices.Contains(out, uint16(n)) {
			out = append(out, uint16(n))
		}
	}
	return out, nil
}

// expand lists the addresses of p, refusing more than MaxCIDRAddresses.
func expand(p netip.Prefix) ([]netip.Addr, error) {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > 12 {
		return nil, fmt.Errorf("%s holds more than %d addresses: split it (at most /%d)", p, MaxCIDRAddresses, p.Addr().BitLen()-12)
	}
	n := 1 << hostBits
	out := make([]netip.Addr, 0, n)
	a := p.Addr()
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	if p.Addr().Is4() && hostBits >= 2 {
		out = out[1 : len(out)-1]
	}
	return out, nil
}

// AllowList is what the server may scan: CIDR ranges (a single address
// is a /32 or /128) and hostnames (exact, or "*.example.com" for every
// name below it). Everything else is refused. The zero value allows
// nothing.
type AllowList struct {
	prefixes []netip.Prefix
	names    []string
}

// ParseAllowList reads allow-list entries.
func ParseAllowList(entries []string) (AllowList, error) {
	var a AllowList
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			ip = ip.Unmap()
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		rest, wild := strings.CutPrefix(e, "*.")
		name, err := hostname(rest)
		if err != nil {
			return AllowList{}, fmt.Errorf("%w: allow-list entry %q: want a CIDR range, an IP address or a hostname (*.example.com for every name below it)", ErrInvalid, e)
		}
		if wild {
			name = "*." + name
		}
		a.names = append(a.names, name)
	}
	return a, nil
}

// Empty reports whether the list allows nothing.
func (a AllowList) Empty() bool { return len(a.prefixes) == 0 && len(a.names) == 0 }

// String lists the entries, comma-separated.
func (a AllowList) String() string {
	var s []string
	for _, p := range a.prefixes {
		s = append(s, p.String())
	}
	return strings.Join(append(s, a.names...), ", ")
}

// AllowsAddr reports whether ip is inside an allowed range. Unspecified
// and multicast addresses are never allowed.
func (a AllowList) AllowsAddr(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// AllowsAddrWithin reports whether ip is inside an allowed range that
// lies itself within scope: listed on purpose, not merely covered by a
// wide range such as 0.0.0.0/0.
func (a AllowList) AllowsAddrWithin(ip netip.Addr, scope netip.Prefix) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(ip) && p.Bits() >= scope.Bits() && scope.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// AllowsName reports whether the hostname is listed by name.
func (a AllowList) AllowsName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, n := range a.names {
		if n == name {
			return true
		}
		if suffix, ok := strings.CutPrefix(n, "*"); ok && strings.HasSuffix(name, suffix) && len(name) > len(suffix) {
			return true
		}
	}
	return false
}

// ErrNotAllowed marks a target or an address outside the allow-list.
var ErrNotAllowed = errors.New("discovery: not in the scan allow-list")

// Check refuses a target the list does not allow: an address outside
// every range, or a hostname when the list has neither that name nor any
// range its addresses could fall in. A name admitted here is checked
// again, address by address, when it is dialled (CheckDial).
func (a AllowList) Check(t Target) error {
	if t.IsName() {
		if a.AllowsName(t.Host) || len(a.prefixes) > 0 {
			return nil
		}
	} else if a.AllowsAddr(t.Addr) {
		return nil
	}
	return fmt.Errorf("%w: %s (allowed: %s); add it to scan.allow to scan it", ErrNotAllowed, t, a.describe())
}

// CheckDial is the check at connect time: the address a target resolved
// to must be inside an allowed range, unless the target's hostname is
// itself listed (the operator trusts that name wherever it points).
func (a AllowList) CheckDial(t Target, ip netip.Addr) error {
	if a.AllowsAddr(ip) || (t.IsName() && a.AllowsName(t.Host) && !ip.Unmap().IsUnspecified() && !ip.IsMulticast()) {
		return nil
	}
	return fmt.Errorf("%w: %s resolves to %s, outside the allowed ranges (%s)", ErrNotAllowed, t, ip, a.describe())
}

func (a AllowList) describe() string {
	if a.Empty() {
		return "nothing: scan.allow is empty"
	}
	return a.String()
}

// QuietHours is a daily window in which no scheduled scan starts. The
// zero value has no window.
type QuietHours struct {
	// Start and End are offsets into the day; End before Start wraps
	// past midnight.
	Start, End time.Duration
	Loc        *time.Location
	set        bool
}

// ParseQuietHours reads "HH:MM-HH:MM" in zone (IANA name, "" for UTC);
// "" is no window.
func ParseQuietHours(window, zone string) (QuietHours, error) {
	if window == "" {
		return QuietHours{}, nil
	}
	from, to, ok := strings.Cut(window, "-")
	bad := fmt.Errorf("%w: quiet hours %q: want HH:MM-HH:MM, like 22:00-06:00", ErrInvalid, window)
	if !ok {
		return QuietHours{}, bad
	}
	start, err1 := clockTime(from)
	end, err2 := clockTime(to)
	if err1 != nil || err2 != nil || start == end {
		return QuietHours{}, bad
	}
	loc := time.UTC
	if zone != "" {
		var err error
		if loc, err = time.LoadLocation(zone); err != nil {
			return QuietHours{}, fmt.Errorf("%w: quiet hours time zone %q: %v", ErrInvalid, zone, err)
		}
	}
	return QuietHours{Start: start, End: end, Loc: loc, set: true}, nil
}

func clockTime(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Contains reports whether t is inside the window.
func (q QuietHours) Contains(t time.Time) bool {
	if !q.set {
		return false
	}
	lt := t.In(q.Loc)
	off := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second
	if q.Start < q.End {
		return off >= q.Start && off < q.End
	}
	return off >= q.Start || off < q.End
}

// String is the window as configured, with its zone.
func (q QuietHours) String() string {
	if !q.set {
		return ""
	}
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return f(q.Start) + "-" + f(q.End) + " " + q.Loc.String()
}
