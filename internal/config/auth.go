package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
)

// AuthConfig configures how people sign in besides API tokens and client
// certificates.
type AuthConfig struct {
	// OIDC lists the OpenID Connect identity providers people may sign in
	// with, to the console and (through certwright login --sso) the CLI.
	OIDC []OIDCProvider `yaml:"oidc,omitempty"`
	// ServerURLs are the https://host[:port] URLs (port 443 when none)
	// CLIs reach the HTTPS API at other than the server's own: a proxy or
	// load balancer in front of it on another port. A CLI sign-in is
	// bound to the server's origin; besides these, the origins accepted
	// are each of tls_names at https_listen's port and acme.base_url's.
	ServerURLs []string `yaml:"server_urls,omitempty"`
}

// MaxServerURLs bounds auth.server_urls.
const MaxServerURLs = 20

// OIDCProvider is one OpenID Connect identity provider. Its endpoints and
// signing keys are discovered from ISSUER/.well-known/openid-configuration
// when first needed, so the server starts while the provider is down.
type OIDCProvider struct {
	// Name is how the console, the CLI (--provider NAME) and the audit log
	// call the provider.
	Name string `yaml:"name"`
	// Issuer is the provider's issuer URL, exactly as its ID tokens carry
	// it: https, or http on a loopback address only.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's client at the provider; console ID tokens
	// must name it as audience.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the console client's secret (relative paths
	// are in the data directory; mode 0600 or stricter). Empty for a public
	// client, which then relies on PKCE alone.
	ClientSecretFile string `yaml:"client_secret_file,omitempty"`
	// CLIClientID is the public client (no secret; loopback redirects and
	// the device grant) that certwright login --sso uses; it must not be
	// ClientID. Empty: no CLI sign-in through this provider.
	CLIClientID string `yaml:"cli_client_id,omitempty"`
	// CLIRequireBinding refuses CLI sign-ins whose ID token carries no
	// nonce binding it to this server. The browser (loopback) sign-in
	// always carries one; the device grant carries one only at providers
	// that take a nonce in the device authorization request, so with this
	// set, certwright login --sso --device works only at those. Unbound
	// tokens are otherwise accepted (and audited as unbound): whichever
	// server the CLI showed one to could exchange it here first.
	CLIRequireBinding bool `yaml:"cli_require_binding,omitempty"`
	// Scopes requested at sign-in (default openid, email, profile); openid
	// is required.
	Scopes []string `yaml:"scopes,omitempty"`
	// CABundle is a PEM file of certificates trusted, in addition to the
	// system roots, for the connections to the provider.
	CABundle string `yaml:"ca_bundle,omitempty"`
	// SubjectClaim names the ID-token claim that identifies the person at
	// this issuer (default sub).
	SubjectClaim string `yaml:"subject_claim,omitempty"`
	// GroupsClaim names the ID-token claim listing the person's groups
	// (default groups), which Roles map to role bindings.
	GroupsClaim string `yaml:"groups_claim,omitempty"`
	// CreatePrincipals creates a human principal with no roles at a
	// person's first sign-in; otherwise an administrator creates it first.
	CreatePrincipals bool `yaml:"create_principals,omitempty"`
	// EmailDomains, when set, are the domains this provider speaks for:
	// an address it verifies in another domain is treated as unverified
	// (no e-mail identity, no principal named after it), so a second
	// provider cannot claim a first one's addresses. Empty: any domain.
	EmailDomains []string `yaml:"email_domains,omitempty"`
	// TokenLifetime is the lifetime of the Certwright token the CLI gets in
	// exchange for an ID token (default 8h, 5m to 7d).
	TokenLifetime string `yaml:"token_lifetime,omitempty"`
	// Roles map groups to role bindings, evaluated at every sign-in: a
	// binding from a group disappears when the group does.
	Roles []OIDCRoleMapping `yaml:"roles,omitempty"`
}

// OIDCRoleMapping binds Role, narrowed by Scope, to the members of Group.
type OIDCRoleMapping struct {
	Group string    `yaml:"group"`
	Role  string    `yaml:"role"`
	Scope OIDCScope `yaml:"scope,omitempty"`
}

// OIDCScope narrows a mapped binding like a binding's scope: empty lists
// place no limit.
type OIDCScope struct {
	CAs      []string `yaml:"cas,omitempty"`
	Profiles []string `yaml:"profiles,omitempty"`
	Names    []string `yaml:"names,omitempty"`
}

// AuthzScope returns the scope as the authorization model's value.
func (s OIDCScope) AuthzScope() authz.Scope {
	return authz.Scope{CAs: slices.Clone(s.CAs), Profiles: slices.Clone(s.Profiles), Names: slices.Clone(s.Names)}
}

// Lifetime returns the parsed token lifetime (after Validate).
func (p OIDCProvider) Lifetime() time.Duration {
	d, _ := inventory.ParseWindow(p.TokenLifetime)
	return d
}

// Bounds of the auth section: generous for real deployments, small enough
// that a mistaken file cannot make sign-in slow.
const (
	MaxOIDCProviders = 16
	MaxOIDCRoles     = 256
	maxOIDCScopes    = 32
	maxOIDCText      = 256
	maxIssuerLen     = 512
)

var (
	oidcName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
	scopeToken = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,128}$`)
	// Claim names are JSON member names; some providers use URLs.
	claimName = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
	// Client IDs are opaque to us, but they go into URLs and messages.
	clientID = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
)

func (c *Config) authDefaults() {
	for i := range c.Auth.OIDC {
		p := &c.Auth.OIDC[i]
		if len(p.Scopes) == 0 {
			p.Scopes = []string{"openid", "email", "profile"}
		}
		if p.SubjectClaim == "" {
			p.SubjectClaim = "sub"
		}
		if p.GroupsClaim == "" {
			p.GroupsClaim = "groups"
		}
		if p.TokenLifetime == "" {
			p.TokenLifetime = "8h"
		}
	}
}

func (a *AuthConfig) validate() error {
	if len(a.ServerURLs) > MaxServerURLs {
		return invalid("auth.server_urls", "%d URLs: at most %d", len(a.ServerURLs), MaxServerURLs)
	}
	for i, s := range a.ServerURLs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || !validPort(u.Port()) {
			return invalid(fmt.Sprintf("auth.server_urls[%d]", i), "%q must be https://host[:port]", s)
		}
	}
	if len(a.OIDC) > MaxOIDCProviders {
		return invalid("auth.oidc", "%d providers: at most %d", len(a.OIDC), MaxOIDCProviders)
	}
	names, clients := map[string]bool{}, map[string]string{}
	for i, p := range a.OIDC {
		field := fmt.Sprintf("auth.oidc[%d]", i)
		if !oidcName.MatchString(p.Name) {
			return invalid(field+".name", "%q: use 1-32 lowercase letters, digits, '-' or '_', starting with a letter or digit", p.Name)
		}
		if names[p.Name] {
			return invalid(field+".name", "%q is used twice", p.Name)
		}
		names[p.Name] = true
		// One client at one issuer is one provider: two entries for it
		// would let a person pick the more generous role mapping.
		if other, dup := clients[p.Issuer+" "+p.ClientID]; dup {
			return invalid(field+".client_id", "%q at %s is provider %s's already: one entry per client", p.ClientID, p.Issuer, other)
		}
		clients[p.Issuer+" "+p.ClientID] = p.Name
		if err := ValidateIssuer(p.Issuer); err != nil {
			return invalid(field+".issuer", "%v", err)
		}
		if p.CLIClientID != "" && p.CLIClientID == p.ClientID {
			return invalid(field+".cli_client_id", "%q is the console's client_id: register a public client of its own for the CLI"+
				" (loopback redirects, device grant), so that an ID token issued to the console can never be exchanged for a token", p.CLIClientID)
		}
		if p.CLIRequireBinding && p.CLIClientID == "" {
			return invalid(field+".cli_require_binding", "is set, but there is no CLI sign-in through this provider: set cli_client_id, or remove cli_require_binding")
		}
		for _, id := range []struct{ key, v string }{{"client_id", p.ClientID}, {"cli_client_id", p.CLIClientID}} {
			if id.key == "cli_client_id" && id.v == "" {
				continue // no CLI sign-in through this provider
			}
			if !clientID.MatchString(id.v) {
				return invalid(field+"."+id.key, "%q: want the client ID registered at the provider (1-256 printable characters, no spaces)", id.v)
			}
		}
		if err := validateScopes(p.Scopes); err != nil {
			return invalid(field+".scopes", "%v", err)
		}
		for _, c := range []struct{ key, v string }{{"subject_claim", p.SubjectClaim}, {"groups_claim", p.GroupsClaim}} {
			if !claimName.MatchString(c.v) {
				return invalid(field+"."+c.key, "%q: want a claim name such as sub or groups (1-128 printable characters, no spaces)", c.v)
			}
		}
		for _, f := range []struct{ key, v string }{{"client_secret_file", p.ClientSecretFile}, {"ca_bundle", p.CABundle}} {
			if f.v != "" && strings.TrimSpace(f.v) != f.v {
				return invalid(field+"."+f.key, "%q: a file path without surrounding spaces", f.v)
			}
		}
		for j, d := range p.EmailDomains {
			if d == "" || len(d) > 253 || d != strings.ToLower(d) || strings.ContainsAny(d, "@ *") || strings.HasPrefix(d, ".") {
				return invalid(fmt.Sprintf("%s.email_domains[%d]", field, j), "%q: want a lower-case domain such as example.com (no @, no wildcard)", d)
			}
		}
		if err := checkDuration(field+".token_lifetime", p.TokenLifetime, 5*time.Minute, 7*24*time.Hour); err != nil {
			return err
		}
		if len(p.Roles) > MaxOIDCRoles {
			return invalid(field+".roles", "%d mappings: at most %d", len(p.Roles), MaxOIDCRoles)
		}
		for j, m := range p.Roles {
			rf := fmt.Sprintf("%s.roles[%d]", field, j)
			if m.Group == "" || len(m.Group) > maxOIDCText || strings.TrimSpace(m.Group) != m.Group {
				return invalid(rf+".group", "%q: want the group's name as the provider sends it (1-%d bytes, no surrounding spaces)", m.Group, maxOIDCText)
			}
			if _, ok := authz.BuiltinRole(m.Role); !ok {
				return invalid(rf+".role", "%q: want one of the built-in roles %s", m.Role, strings.Join(builtinRoleNames(), ", "))
			}
			if err := m.Scope.AuthzScope().Validate(); err != nil {
				return invalid(rf+".scope", "%v", err)
			}
		}
	}
	return nil
}

// ValidateIssuer checks an OpenID Connect issuer URL: https, or http when
// the host is a loopback address (a provider on the same machine, as in
// tests), with no query, fragment or credentials (OpenID Connect
// Discovery 1.0 section 3).
func ValidateIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > maxIssuerLen || u.Host == "" || u.Hostname() == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%q: want an https URL such as https://login.example.com (http only on loopback), without query or fragment", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%q: want an https URL (http only on loopback)", s)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validateScopes(scopes []string) error {
	if len(scopes) > maxOIDCScopes {
		return fmt.Errorf("%d scopes: at most %d", len(scopes), maxOIDCScopes)
	}
	if !slices.Contains(scopes, "openid") {
		return fmt.Errorf("[%s] lacks openid, without which the provider sends no ID token", strings.Join(scopes, ", "))
	}
	for _, s := range scopes {
		if !scopeToken.MatchString(s) {
			return fmt.Errorf("%q is not a scope (RFC 6749 section 3.3: printable characters, no spaces, quotes or backslashes)", s)
		}
	}
	return nil
}

func builtinRoleNames() []string {
	var out []string
	for _, r := range authz.BuiltinRoles() {
		out = append(out, r.Name)
	}
	return out
}

// VouchesFor reports whether the provider speaks for email's domain: any,
// when EmailDomains is empty; else the domain exactly (ASCII case aside).
func (p OIDCProvider) VouchesFor(email string) bool {
	if len(p.EmailDomains) == 0 {
		return true
	}
	_, domain, ok := strings.Cut(email, "@")
	if !ok {
		return false
	}
	domain = strings.ToLower(domain)
	for _, d := range p.EmailDomains {
		if domain == d {
			return true
		}
	}
	return false
}

// validPort accepts an empty port (the scheme's) or 1-65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
