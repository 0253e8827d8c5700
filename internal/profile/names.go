package profile

import (
	"fmt"
	"net/url"
	"strings"
)

// lowerASCII lower-cases A-Z only. strings.ToLower would fold some non-ASCII
// letters (the Kelvin sign) into ASCII and let them pass the syntax checks.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// dnsNameProblem says why name (lower-case) is not a host name, or returns
// "". A leading "*." is accepted as a whole leftmost label when wildcard is
// set. Names whose last label is numeric are refused: "10.0.0.1" is an IP
// address and belongs in an IP SAN (RFC 3696 section 2).
func dnsNameProblem(name string, wildcard bool) string {
	if name == "" {
		return "empty DNS name"
	}
	if len(name) > 253 {
		return fmt.Sprintf("DNS name is %d characters, over 253", len(name))
	}
	rest := name
	if strings.HasPrefix(name, "*.") {
		if !wildcard {
			return "wildcard is not valid here"
		}
		rest = name[2:]
	}
	labels := strings.Split(rest, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label"
		}
		if len(l) > 63 {
			return fmt.Sprintf("label of %d characters, over 63", len(l))
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("label %q starts or ends with '-'", l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Sprintf("invalid character %q (labels are a-z, 0-9 and '-'; use the xn-- form for IDNs)", l[i:i+1])
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "last label is numeric; IP addresses belong in IP SANs"
	}
	return ""
}

// underDomain reports whether name equals domain or lies below it on a
// label boundary: "a.example.internal" is under "example.internal",
// "badexample.internal" is not.
func underDomain(name, domain string) bool {
	return name == domain || strings.HasSuffix(name, "."+domain)
}

func underAnyDomain(name string, domains []string) bool {
	for _, d := range domains {
		if underDomain(name, d) {
			return true
		}
	}
	return false
}

// emailProblem says why addr is not a plain addr-spec local@domain, or
// returns "" and the lower-case domain. Quoted local parts and non-ASCII
// addresses are refused: rfc822Name SANs are IA5String (RFC 5280 4.2.1.6).
func emailProblem(addr string) (domain, problem string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", "no '@'"
	}
	local, domain := addr[:at], lowerASCII(addr[at+1:])
	if local == "" || len(local) > 64 {
		return "", "local part must be 1-64 characters"
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", "local part has a misplaced '.'"
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; !isAtext(c) && c != '.' {
			return "", fmt.Sprintf("invalid character %q in local part", local[i:i+1])
		}
	}
	if p := dnsNameProblem(domain, false); p != "" {
		return "", "domain: " + p
	}
	return domain, ""
}

// isAtext reports RFC 5322 atext characters.
func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// printableASCII reports whether s is non-empty visible ASCII, as an
// IA5String URI SAN must be.
func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// uriPrefixProblem says why s cannot be a URI prefix, or returns "" and the
// parsed prefix.
func uriPrefixProblem(s string) (*url.URL, string) {
	if !printableASCII(s) {
		return nil, "must be visible ASCII without spaces"
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Sprintf("does not parse: %v", err)
	}
	switch {
	case u.Scheme == "":
		return nil, "has no scheme"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return nil, "must not have a query or fragment"
	case u.Opaque == "" && u.Host == "":
		return nil, "needs a host (scheme://host/...) or an opaque part (urn:...)"
	}
	return u, ""
}

// uriProblem says why a requested URI SAN is unacceptable, or returns "".
func uriProblem(u *url.URL) string {
	if u == nil {
		return "nil URI"
	}
	if u.Scheme == "" {
		return "URI has no scheme"
	}
	if !printableASCII(u.String()) {
		return "URI must be visible ASCII without spaces"
	}
	// A path that climbs with dot segments could escape an allowed prefix
	// for a relying party that normalises it.
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return "URI path has a '.' or '..' segment"
		}
	}
	return ""
}

// uriHasPrefix matches u against prefix by scheme, userinfo, host and path
// segments, or by plain prefix of the opaque part for URIs like "urn:x:".
func uriHasPrefix(u, prefix *url.URL) bool {
	if !strings.EqualFold(u.Scheme, prefix.Scheme) {
		return false
	}
	if prefix.Opaque != "" {
		return u.Opaque != "" && strings.HasPrefix(u.Opaque, prefix.Opaque)
	}
	if u.Opaque != "" || !strings.EqualFold(u.Host, prefix.Host) || u.User.String() != prefix.User.String() {
		return false
	}
	pp, up := prefix.EscapedPath(), u.EscapedPath()
	switch {
	case pp == "" || pp == "/":
		return true
	case strings.HasSuffix(pp, "/"):
		return strings.HasPrefix(up, pp)
	default:
		return up == pp || strings.HasPrefix(up, pp+"/")
	}
}

// HostNameProblem says why name is not a host name a certificate can carry
// (no wildcard), or returns "".
func HostNameProblem(name string) string {
	return dnsNameProblem(lowerASCII(name), false)
}
