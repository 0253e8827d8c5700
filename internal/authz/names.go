package authz

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// maxPattern bounds a name pattern, as DNS bounds a name.
const maxPattern = 253

// ValidatePattern checks a scope name pattern. A pattern is one of:
//
//	a.example.internal    that name exactly (case-insensitive)
//	spiffe://td/path      that URI exactly (scheme and host case-insensitive,
//	                      the path case-sensitive)
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

// canonName returns the form in which names and patterns compare: a URI
// keeps its path, query and fragment as written (SPIFFE IDs and most URI
// paths are case-sensitive, RFC 3986 section 6.2.2.1) and lower-cases only
// its scheme and host; anything else (DNS names, e-mail addresses, IPs) is
// lower-cased whole, a trailing dot ignored.
func canonName(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return strings.ToLower(strings.TrimSuffix(s, "."))
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(rest[:end]) + rest[end:]
}

// MatchName reports whether name falls under pattern (see ValidatePattern).
func MatchName(pattern, name string) bool {
	name = canonName(name)
	pattern = canonName(pattern)
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

// PatternCovers reports whether every name pattern inner matches is also
// matched by outer: the same pattern, a literal outer matches, a wildcard
// below outer's wildcard, or a network inside outer's network. Anything
// else is not covered (fail closed).
func PatternCovers(outer, inner string) bool {
	outer, inner = canonName(outer), canonName(inner)
	if outer == "" || inner == "" {
		return false
	}
	if outer == inner {
		return true
	}
	isCIDR := func(p string) bool { return strings.Contains(p, "/") && !strings.Contains(p, "://") }
	switch {
	case isCIDR(inner):
		if !isCIDR(outer) {
			return false
		}
		_, on, err1 := net.ParseCIDR(outer)
		_, in, err2 := net.ParseCIDR(inner)
		if err1 != nil || err2 != nil {
			return false
		}
		oOnes, oBits := on.Mask.Size()
		iOnes, iBits := in.Mask.Size()
		return oBits == iBits && oOnes <= iOnes && on.Contains(in.IP)
	case strings.HasPrefix(inner, "*."):
		suffix, ok := strings.CutPrefix(outer, "*.")
		if !ok {
			return false
		}
		rest := strings.TrimPrefix(inner, "*.")
		return rest == suffix || strings.HasSuffix(rest, "."+suffix)
	case strings.HasPrefix(inner, "*@"):
		return false // only the same pattern covers it (above)
	}
	return MatchName(outer, inner)
}

// Covers reports whether every resource t admits, s admits too: on each
// dimension s is unlimited, or t is limited to a subset of it. CAs compare
// as written (ID or name): a scope naming a CA by ID does not cover one
// naming it by name (fail closed).
func (s Scope) Covers(t Scope) bool {
	subset := func(outer, inner []string, in func(o, i string) bool) bool {
		if len(outer) == 0 {
			return true
		}
		if len(inner) == 0 {
			return false
		}
		for _, i := range inner {
			if !slices.ContainsFunc(outer, func(o string) bool { return in(o, i) }) {
				return false
			}
		}
		return true
	}
	eq := func(a, b string) bool { return a == b }
	return subset(s.CAs, t.CAs, eq) && subset(s.Profiles, t.Profiles, eq) && subset(s.Names, t.Names, PatternCovers)
}
