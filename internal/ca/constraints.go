package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrNameConstraint is returned when a name falls outside the name
// constraints of a CA in the issuing chain (RFC 5280 4.2.1.10).
var ErrNameConstraint = errors.New("ca: name outside the issuing CA's name constraints")

// CheckNameConstraints refuses names that a CA in chain (the issuing CA
// first) does not permit or explicitly excludes, so a constrained CA never
// signs a certificate that relying parties would reject. A CA that permits
// some subtrees (a whitelist) permits no name of a type it lists no
// permitted subtree for, even when its certificate, made before Certwright
// closed such types (closeUnpermittedTypes), leaves that type open.
func CheckNameConstraints(chain []*x509.Certificate, dns []string, ips []net.IP, emails []string, uris []*url.URL) error {
	for _, c := range chain {
		who := c.Subject.CommonName
		if err := checkClosedTypes(c, dns, ips, emails, uris); err != nil {
			return err
		}
		for _, n := range dns {
			if err := checkDomain("DNS name", n, who, c.PermittedDNSDomains, c.ExcludedDNSDomains); err != nil {
				return err
			}
		}
		for _, u := range uris {
			host := u.Hostname()
			if len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0 && host == "" {
				return fmt.Errorf("%w: URI %s has no host to check against CA %q", ErrNameConstraint, u, who)
			}
			if err := checkDomain("URI", host, who, c.PermittedURIDomains, c.ExcludedURIDomains); err != nil {
				return err
			}
		}
		for _, ip := range ips {
			if len(c.PermittedIPRanges) > 0 && !inRanges(ip, c.PermittedIPRanges) {
				return fmt.Errorf("%w: IP %s is not in the ranges CA %q permits", ErrNameConstraint, ip, who)
			}
			if inRanges(ip, c.ExcludedIPRanges) {
				return fmt.Errorf("%w: IP %s is in a range CA %q excludes", ErrNameConstraint, ip, who)
			}
		}
		for _, e := range emails {
			if len(c.PermittedEmailAddresses) > 0 && !anyEmail(e, c.PermittedEmailAddresses) {
				return fmt.Errorf("%w: email %s is not permitted by CA %q", ErrNameConstraint, e, who)
			}
			if anyEmail(e, c.ExcludedEmailAddresses) {
				return fmt.Errorf("%w: email %s is excluded by CA %q", ErrNameConstraint, e, who)
			}
		}
	}
	return nil
}

// checkClosedTypes refuses a name of a type that a whitelisting CA does not
// permit at all.
func checkClosedTypes(c *x509.Certificate, dns []string, ips []net.IP, emails []string, uris []*url.URL) error {
	if len(c.PermittedDNSDomains)+len(c.PermittedIPRanges)+len(c.PermittedEmailAddresses)+len(c.PermittedURIDomains) == 0 {
		return nil
	}
	var kind, name string
	switch {
	case len(c.PermittedDNSDomains) == 0 && len(dns) > 0:
		kind, name = "DNS names", dns[0]
	case len(c.PermittedIPRanges) == 0 && len(ips) > 0:
		kind, name = "IP addresses", ips[0].String()
	case closedDomains(c.PermittedEmailAddresses) && len(emails) > 0:
		kind, name = "email addresses", emails[0]
	case closedDomains(c.PermittedURIDomains) && len(uris) > 0:
		kind, name = "URIs", uris[0].String()
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: CA %q permits only the name subtrees it lists and lists no %s; issue from a CA that permits them",
		ErrNameConstraint, name, c.Subject.CommonName, kind)
}

// closedDomains reports a permitted list that admits no real name: empty,
// or only the sentinel closeUnpermittedTypes writes.
func closedDomains(permitted []string) bool {
	return len(permitted) == 0 || len(permitted) == 1 && permitted[0] == unpermittedDomain
}

func checkDomain(kind, name, who string, permitted, excluded []string) error {
	if len(permitted) > 0 && !anyDomain(name, permitted) {
		return fmt.Errorf("%w: %s %s is not under %s, which CA %q permits", ErrNameConstraint, kind, name, strings.Join(permitted, ", "), who)
	}
	if anyDomain(name, excluded) {
		return fmt.Errorf("%w: %s %s is excluded by CA %q", ErrNameConstraint, kind, name, who)
	}
	return nil
}

// domainMatch applies RFC 5280's rule: "example.com" matches the name and
// its subdomains, ".example.com" only subdomains. Wildcard labels are
// matched as the subdomain they stand for.
func domainMatch(name, constraint string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	constraint = strings.ToLower(constraint)
	if constraint == "" {
		return true
	}
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

func anyDomain(name string, constraints []string) bool {
	for _, c := range constraints {
		if domainMatch(name, c) {
			return true
		}
	}
	return false
}

func inRanges(ip net.IP, ranges []*net.IPNet) bool {
	for _, r := range ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// anyEmail: a constraint with "@" is one mailbox, otherwise a host (or, with
// a leading dot, any subdomain).
func anyEmail(addr string, constraints []string) bool {
	at := strings.LastIndex(addr, "@")
	if at < 0 {
		return false
	}
	host := addr[at+1:]
	for _, c := range constraints {
		if c == "" {
			// A zero-length constraint matches every address (RFC 5280).
			return true
		}
		if strings.Contains(c, "@") {
			if strings.EqualFold(addr, c) {
				return true
			}
			continue
		}
		if strings.HasPrefix(c, ".") {
			if strings.HasSuffix(strings.ToLower(host), strings.ToLower(c)) {
				return true
			}
		} else if strings.EqualFold(host, c) {
			return true
		}
	}
	return false
}
