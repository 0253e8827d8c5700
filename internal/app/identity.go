package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store"
)

// settingPublicURL records the public_http_url certificates were last
// issued under, so a start-up can tell that it changed.
const settingPublicURL = "public_http_url"

// EnsureServerCertificate makes the server's own TLS certificate carry
// names (tls_names): when the certificate in effect names others, a new
// one is issued, served from the next handshake on, and the change is
// logged. It also renews a certificate that is due. Start-up calls it with
// the configured names; a configuration reload calls it with the new ones.
func (a *App) EnsureServerCertificate(ctx context.Context, names []string) error {
	if err := config.ValidateTLSNames(names); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	names = slices.Clone(names)
	a.tls.names.Store(&names)
	return a.tls.refresh(ctx, true)
}

// notePublicURL compares public_http_url with the one certificates were
// last issued under and logs a change: the URLs are embedded in each
// certificate, so only certificates issued from now on carry the new ones.
func (a *App) notePublicURL(ctx context.Context) error {
	cur := strings.TrimRight(a.cfg.PublicHTTPURL, "/")
	b, err := a.store.GetSetting(ctx, settingPublicURL)
	prev := string(b)
	if errors.Is(err, store.ErrNotFound) {
		// Recorded from this version on; before, the server certificate
		// carries the URL in effect when it was issued.
		prev = a.servedURLBase()
	} else if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if prev == cur {
		return nil
	}
	if prev != "" {
		a.log.Warn("public_http_url changed: certificates issued from now on carry CRL, OCSP and caIssuers URLs under the new URL; certificates issued before keep the old URLs, so keep the old URL answering (for example a DNS name or proxy for this server) until they expire",
			"old", prev, "new", cur)
	}
	if err := a.store.PutSetting(ctx, settingPublicURL, []byte(cur)); err != nil {
		return fmt.Errorf("app: record public_http_url: %w", err)
	}
	return nil
}

// servedURLBase is the scheme and host of the CRL URL in the server
// certificate being served, or "".
func (a *App) servedURLBase() string {
	c := a.tls.cert.Load()
	if c == nil || c.Leaf == nil {
		return ""
	}
	return urlBase(c.Leaf)
}

// urlBase is the scheme://host[:port] of c's first CRL distribution point.
func urlBase(c *x509.Certificate) string {
	if len(c.CRLDistributionPoints) == 0 {
		return ""
	}
	u, err := url.Parse(c.CRLDistributionPoints[0])
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// StoreLocation names the store for people: the SQLite file, or the
// PostgreSQL URL without its password.
func StoreLocation(cfg *config.Config) string {
	if path := sqlitePath(cfg); path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "SQLite " + path
	}
	return "PostgreSQL " + redactURL(DBURL(cfg))
}

// IsTrial reports whether cfg describes a local trial CA: the default
// organisation, and revocation URLs only this machine can reach.
func IsTrial(cfg *config.Config) bool {
	def := config.Config{}
	def.Defaults()
	if cfg.Init.Organization != def.Init.Organization {
		return false
	}
	u, err := url.Parse(cfg.PublicHTTPURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// ACMEDirectories returns the directory URL of every ACME provisioner, as
// reached at httpsURL (or acme.base_url when set).
func (a *App) ACMEDirectories(ctx context.Context, httpsURL string) ([]string, error) {
	provs, err := a.acme.ListProvisioners(ctx, authz.System())
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	base := httpsURL
	if a.cfg.ACME.BaseURL != "" {
		base = a.cfg.ACME.BaseURL
	}
	out := make([]string, 0, len(provs))
	for _, p := range provs {
		out = append(out, strings.TrimRight(base, "/")+"/acme/"+url.PathEscape(p.Name)+"/directory")
	}
	return out, nil
}

// clientHost picks the host:port a local client dials for a listener on
// addr. On a loopback or wildcard address it is the loopback address when
// the server certificate names it, else "localhost" when named, so the URL
// in server.json and the banner passes the client's host name check.
func clientHost(addr net.Addr, names []string) string {
	host, port, _ := net.SplitHostPort(addr.String())
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if !ip.IsLoopback() {
		return net.JoinHostPort(host, port)
	}
	for _, n := range names {
		if nip := net.ParseIP(n); nip != nil && nip.Equal(ip) {
			return net.JoinHostPort(ip.String(), port)
		}
	}
	for _, n := range names {
		if strings.EqualFold(n, "localhost") {
			return net.JoinHostPort("localhost", port)
		}
	}
	return net.JoinHostPort(ip.String(), port)
}
