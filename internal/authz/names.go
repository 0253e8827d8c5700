package authz

import (
	"fmt"
	"net"
	"strings"
)

// maxPattern bounds a name pattern, as DNS bounds a name.
const maxPattern = 253

// ValidatePattern checks a scope name pattern. A pattern is one of:
//
//	a.example.internal    that name exactly (case-insensitive)
//	*.example.internal    any name below example.internal, at any depth
//	*@example.internal    any e-mail address at example.internal
//	10.1.0.0/16           any IP address in the network
//	anything else         that exact SAN value (an IP, e-mail or URI)
func ValidatePattern(p string) error {
	if p == "" || len(p) > maxPattern || strings.TrimSpace(p) != p {
		return fmt.Errorf("authz: name pattern %q must be 1-%d characters without surrounding spaces", p, maxPattern)
	}
	if strings.Contains(p, "/") && !strings.Contains(p, "://") {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("authz: name pattern %q is not a CIDR network: %w", p, err)
		}
		return nil
	}
	rest, wild := strings.CutPrefix(p, "*.")
	if !wild {
		rest, wild = strings.CutPrefix(p, "*@")
	}
	if strings.Contains(rest, "*") {
		return fmt.Errorf("authz: name pattern %q: '*' is allowed only as a leading \"*.\" or \"*@\"", p)
	}
	if wild && (rest == "" || strings.HasPrefix(rest, ".") || !strings.Contains(rest, ".") && rest != "localhost") {
		return fmt.Errorf("authz: name pattern %q must name a domain below the wildcard, e.g. *.example.internal", p)
	}
	return nil
}

// MatchName reports whether name falls under pattern (see ValidatePattern).
func MatchName(pattern, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	if name == "" {
		return false
	}
	if strings.Contains(pattern, "/") && !strings.Contains(pattern, "://") {
		_, n, err := net.ParseCIDR(pattern)
		ip := net.ParseIP(name)
		return err == nil && ip != nil && n.Contains(ip)
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(name, "."+suffix) && !strings.ContainsAny(name, "@/:") && len(name) > len(suffix)+1
	}
	if domain, ok := strings.CutPrefix(pattern, "*@"); ok {
		local, d, found := strings.Cut(name, "@")
		return found && local != "" && d == domain
	}
	return name == pattern
}
