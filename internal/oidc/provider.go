package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// discoveryRetry is how long a failed discovery is remembered: a provider
// that is down costs every sign-in attempt at most one request per this.
const discoveryRetry = 10 * time.Second

// Bounds on the files New reads.
const (
	maxSecretBytes   = 4 << 10
	maxCABundleBytes = 1 << 20
)

// provider is one configured identity provider and, once discovered, its
// metadata.
type provider struct {
	cfg    config.OIDCProvider
	secret string
	client *http.Client
	clk    clock.Clock
	log    *slog.Logger

	mu      sync.Mutex
	meta    *metadata
	tried   time.Time
	lastErr *Error
}

// metadata is what discovery found.
type metadata struct {
	endpoint   oauth2.Endpoint
	endSession string
	keys       *keySet
	algs       []jose.SignatureAlgorithm
}

// discoveryDoc holds the discovery fields go-oidc does not expose
// (OpenID Connect Discovery 1.0 section 3).
type discoveryDoc struct {
	JWKSURI          string   `json:"jwks_uri"`
	EndSession       string   `json:"end_session_endpoint"`
	Algs             []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

// mutableClaims are ID-token claims a person can often change themselves
// at the provider: as the subject, a rename would make another person.
func mutableClaim(name string) bool {
	switch name {
	case "email", "preferred_username", "name", "nickname", "upn":
		return true
	}
	return false
}

func newProvider(cfg config.OIDCProvider, dataDir string, clk clock.Clock, log *slog.Logger) (*provider, error) {
	p := &provider{cfg: cfg, clk: clk, log: log}
	if mutableClaim(cfg.SubjectClaim) {
		// Not refused (some providers make these stable), but the person
		// is who this claim says, and at many providers people edit it.
		log.Warn("oidc: subject_claim names a claim people may be able to change at the provider; sub is stable",
			"provider", cfg.Name, "subject_claim", cfg.SubjectClaim)
	}
	if cfg.ClientSecretFile != "" {
		b, err := readPrivate(inDataDir(dataDir, cfg.ClientSecretFile), maxSecretBytes)
		if err != nil {
			return nil, fmt.Errorf("oidc: provider %s: client_secret_file: %w", cfg.Name, err)
		}
		p.secret = strings.TrimSpace(string(b))
		if p.secret == "" {
			return nil, fmt.Errorf("oidc: provider %s: client_secret_file %s is empty", cfg.Name, cfg.ClientSecretFile)
		}
	}
	var caPEM []byte
	if cfg.CABundle != "" {
		path := inDataDir(dataDir, cfg.CABundle)
		b, err := readBounded(path, maxCABundleBytes)
		if err != nil {
			return nil, fmt.Errorf("oidc: provider %s: ca_bundle: %w", cfg.Name, err)
		}
		caPEM = b
	}
	hc, err := HTTPClient(caPEM)
	if err != nil {
		return nil, fmt.Errorf("oidc: provider %s: ca_bundle %s: %w", cfg.Name, cfg.CABundle, err)
	}
	p.client = hc
	return p, nil
}

func inDataDir(dataDir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dataDir, path)
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("%s: want a regular file of at most %d bytes", path, limit)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// readPrivate reads a secret file, refusing one that others may read.
func readPrivate(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: others may read the client secret; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return readBounded(path, limit)
}

// discover returns the provider's metadata, fetching it on first use and,
// after a failure, again at most every discoveryRetry.
func (p *provider) discover(ctx context.Context) (*metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta != nil {
		return p.meta, nil
	}
	now := p.clk.Now()
	if p.lastErr != nil && now.Sub(p.tried) < discoveryRetry && !now.Before(p.tried) {
		e := *p.lastErr
		e.Reason += fmt.Sprintf(" (%s ago; tried again at most every %s)", now.Sub(p.tried).Round(time.Second), discoveryRetry)
		return nil, &e
	}
	p.tried = now
	meta, err := p.fetchMetadata(ctx)
	if err != nil {
		p.lastErr = err
		p.log.Warn("oidc: provider discovery failed", "provider", p.cfg.Name, "issuer", p.cfg.Issuer, "error", err.Reason)
		return nil, err
	}
	p.meta, p.lastErr = meta, nil
	p.log.Info("oidc: provider discovered", "provider", p.cfg.Name, "issuer", p.cfg.Issuer,
		"device_grant", meta.endpoint.DeviceAuthURL != "", "end_session", meta.endSession != "")
	return meta, nil
}

func (p *provider) fetchMetadata(ctx context.Context) (*metadata, *Error) {
	gp, err := gooidc.NewProvider(gooidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		if mis := (*gooidc.IssuerMismatchError)(nil); errors.As(err, &mis) {
			return nil, fail(ErrIssuer, p.cfg.Name, err, "the discovery document names issuer %s, the configuration %s: set issuer to the provider's exact issuer URL", quote(mis.Discovered), quote(mis.Provided))
		}
		return nil, fail(ErrProviderUnavailable, p.cfg.Name, err, "discovery at %s/.well-known/openid-configuration failed: %s", strings.TrimSuffix(p.cfg.Issuer, "/"), short(err))
	}
	var doc discoveryDoc
	if err := gp.Claims(&doc); err != nil {
		return nil, fail(ErrProviderUnavailable, p.cfg.Name, err, "discovery document unreadable: %s", short(err))
	}
	ep := gp.Endpoint()
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", ep.AuthURL}, {"token_endpoint", ep.TokenURL}, {"jwks_uri", doc.JWKSURI},
		{"device_authorization_endpoint", ep.DeviceAuthURL}, {"end_session_endpoint", doc.EndSession},
	} {
		if e.url == "" && (e.name == "device_authorization_endpoint" || e.name == "end_session_endpoint") {
			continue
		}
		if err := config.ValidateIssuer(e.url); err != nil {
			return nil, fail(ErrProviderUnavailable, p.cfg.Name, err, "discovery document's %s %s is not an https URL", e.name, quote(e.url))
		}
	}
	// Send the secret the way the provider asks for (RFC 8414 section 2;
	// client_secret_basic is the default when it does not say).
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if p.secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	} else if len(doc.TokenAuthMethods) > 0 && !slices.Contains(doc.TokenAuthMethods, "client_secret_basic") && slices.Contains(doc.TokenAuthMethods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	algs := announcedAlgs(doc.Algs)
	return &metadata{
		endpoint:   ep,
		endSession: doc.EndSession,
		algs:       algs,
		keys:       &keySet{provider: p.cfg.Name, url: doc.JWKSURI, client: p.client, clk: p.clk, algs: algs},
	}, nil
}

// oauth2Config is the console client's OAuth configuration.
func (p *provider) oauth2Config(meta *metadata, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.secret, Endpoint: meta.endpoint,
		RedirectURL: redirectURL, Scopes: p.cfg.Scopes,
	}
}

// validRedirect checks a redirect URL the caller passes: absolute http(s)
// without fragment (RFC 6749 section 3.1.2).
func validRedirect(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("redirect URL %s: want an absolute https URL without fragment", quote(s))
	}
	return nil
}
