// Package app is the one wiring point: it turns a configuration into a
// store, a key provider, the core services and the listeners, creates a data
// directory on first start, and runs everything until its context ends.
package app

import (
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/acme/validate"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/metrics"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/pkipub"
)

// Files inside the data directory.
const (
	KEKFile    = "kek"
	TokenFile  = "admin.token"
	RootFile   = "root.pem"
	ServerFile = "server.json"
	DBFile     = "certwright.db"
	// AnchorFile keeps the latest audit checkpoint outside the database.
	AnchorFile = "audit-anchor.json"
)

// DefaultACMEProvisioner is the ACME provisioner init creates.
const DefaultACMEProvisioner = "default"

// App is a wired Certwright instance.
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	clock   clock.Clock
	store   *store.DB
	keys    *software.Provider
	issuer  *issue.Service
	revoker *revoke.Service
	cas     *ca.Manager
	// caCache is the issuance path's CA cache; see caWrites.
	caCache  *ca.Cache
	profiles *profile.Catalog
	auth     *authz.Authenticator
	access   *access.Service
	// sso signs people in through identity providers (nil: none configured).
	sso      *sso
	audit    *audit.Checkpointer
	anchor   *audit.FileAnchor
	refusals *audit.RefusalCounter
	acme     *acme.Service
	// validator checks ACME challenges; a reload changes its deny list.
	validator *validate.Validator
	tls       *serverTLS
	// health answers /healthz and /readyz on both listeners; serving is
	// true while Run's listeners accept requests.
	health  *pkipub.Health
	serving atomic.Bool

	lifecycle  *lifecycle.Service
	metrics    *metrics.Metrics
	scheduler  *lifecycle.Scheduler
	imports    *compliance.Importer
	compliance *compliance.Reporter
}

// DBURL returns the store URL for cfg.
func DBURL(cfg *config.Config) string {
	if cfg.DB != "" {
		return cfg.DB
	}
	return "sqlite:" + filepath.Join(cfg.DataDir, DBFile)
}

// Open wires an instance from an existing data directory. It refuses to
// start when the key-encryption key does not unwrap the CA keys.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock) (*App, error) {
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := checkDatabaseFile(cfg); err != nil {
		return nil, err
	}
	kek, err := software.LoadKEK(filepath.Join(cfg.DataDir, KEKFile))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a, err := wire(ctx, cfg, log, clk, kek)
	if err != nil {
		return nil, err
	}
	cas, err := a.store.ListCAs(ctx)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: list CAs: %w", err)
	}
	if len(cas) == 0 {
		a.Close()
		return nil, fmt.Errorf("app: the database %s holds no CAs, but the data directory %s exists: was it created against another database?", redactURL(DBURL(cfg)), cfg.DataDir)
	}
	if err := a.checkInstance(ctx); err != nil {
		a.Close()
		return nil, err
	}
	a.warnDurability(ctx)
	err = a.rewrapLegacyKeys(ctx)
	a.caCache.Invalidate() // CA key blobs may have been re-wrapped
	if err != nil {
		a.Close()
		if errors.Is(err, keys.ErrWrongKEK) {
			return nil, wrongKEK(cfg, err)
		}
		return nil, err
	}
	// The records as re-wrapped.
	if cas, err = a.store.ListCAs(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("app: list CAs: %w", err)
	}
	if err := a.issuer.VerifyKeys(ctx, cas); err != nil {
		a.Close()
		if errors.Is(err, keys.ErrLegacyFormat) {
			return nil, fmt.Errorf("app: refusing to start: a CA key in the database is still in the legacy format (refused by the re-wrap, or written into the database after this data directory's keys were made purpose-bound: see the errors logged above); legacy keys are not opened once %s exists. If, and only if, the whole database was restored from a backup made before the upgrade, delete that file to migrate again: %w",
				filepath.Join(cfg.DataDir, KeysMarkerFile), err)
		}
		if errors.Is(err, keys.ErrWrongKEK) {
			return nil, wrongKEK(cfg, err)
		}
		return nil, fmt.Errorf("app: %w", err)
	}
	return a, nil
}

// wrongKEK is the start-up refusal when the KEK file does not open the CA
// keys the database holds.
func wrongKEK(cfg *config.Config, err error) error {
	return fmt.Errorf("app: refusing to start: the key-encryption key %s does not unwrap the CA keys in the database (wrong or replaced KEK file, or a CA key record altered in the database?): %w",
		filepath.Join(cfg.DataDir, KEKFile), err)
}

func wire(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock, kek []byte) (*App, error) {
	kp, err := software.New(kek, nil)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	st, err := store.Open(ctx, DBURL(cfg), log)
	if err != nil {
		return nil, fmt.Errorf("app: open store: %w", err)
	}
	linter, err := lint.New(lint.Options{})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	profiles := profile.NewCatalog(st, clk.Now)
	warnShadowedProfiles(ctx, log, profiles)
	caCache := ca.NewCache(st, clk)
	cw := caWrites{DB: st, cas: caCache}
	mx, err := metrics.New(metrics.Config{Clock: clk, Log: log.With("component", "metrics"), MaxCertificates: cfg.Metrics.MaxCertificates}, st, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	iss, err := issue.New(issue.Config{PublicHTTPBase: cfg.PublicHTTPURL, Clock: clk, Log: log, ApprovalLifetime: cfg.Approval.Lifetime(), Observer: mx, CAs: caCache}, cw, profiles, kp, linter)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	rt := revocationTimings(cfg)
	rv, err := revoke.New(revoke.Config{
		Clock: clk, Log: log, CRLLifetime: rt.CRLLifetime, OCSPLifetime: rt.OCSPLifetime,
		ResponderLifetime: rt.ResponderLifetime, OCSPCacheEntries: rt.OCSPCacheEntries, Observer: mx,
		OCSPUnknownPerSecond: rt.OCSPUnknownPerSecond,
	}, cw, kp, linter)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	if err := mx.RegisterRevocation(rv); err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	acc, err := access.New(st, clk, log)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	var signOn *sso
	if len(cfg.Auth.OIDC) > 0 {
		reg, err := oidc.New(cfg.Auth.OIDC, cfg.DataDir, clk, log.With("component", "oidc"))
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("app: %w", err)
		}
		signOn = newSSO(reg, acc, cfg.Auth.OIDC)
	}
	anchor := &audit.FileAnchor{Path: filepath.Join(cfg.DataDir, AnchorFile)}
	if cfg.Audit.AnchorLog != "" {
		anchor.LogPath = cfg.Audit.AnchorLog
		if !filepath.IsAbs(anchor.LogPath) {
			anchor.LogPath = filepath.Join(cfg.DataDir, anchor.LogPath)
		}
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointConfig{
		Clock: clk, Log: log, Every: int64(cfg.Audit.CheckpointEvents), Interval: cfg.Audit.Interval(),
		Anchor: anchor,
	}, st, kp)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	refusals, err := audit.NewRefusalCounter(audit.RefusalCounterConfig{Clock: clk, Log: log}, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	ac := &cfg.ACME
	timeout, _, _ := ac.Durations()
	validator, err := validate.New(validate.Config{
		HTTPPort: ac.HTTP01Port, TLSPort: ac.TLSALPN01Port, Resolver: ac.Resolver,
		Deny: ac.DenyPrefixes(), Timeout: timeout, Log: log.With("component", "acme-validate"),
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	as := acmeSettings(cfg)
	acmeSvc, err := acme.New(acme.Config{
		Clock: clk, Log: log.With("component", "acme"), OrderLifetime: as.OrderLifetime, PendingAuthzLifetime: as.PendingAuthzLifetime,
		ValidAuthzLifetime: as.ValidAuthzLifetime, Workers: ac.Workers, Limits: as.Limits,
	}, st, iss, rv, profiles, validator, kp)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	importer, err := compliance.NewImporter(st, clk, log.With("component", "import"))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	reporter, err := compliance.NewReporter(compliance.ReporterConfig{Clock: clk, Log: log.With("component", "compliance")}, st, profiles, linter)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	a := &App{
		imports: importer, compliance: reporter,
		acme: acmeSvc, validator: validator,
		cfg: cfg, log: log, clock: clk, store: st, keys: kp, issuer: iss, profiles: profiles, revoker: rv,
		cas:     ca.NewManager(cw, clk, log, time.Duration(cfg.RestoreWindowDays)*24*time.Hour),
		caCache: caCache,
		auth:    authz.NewAuthenticator(st, &clientCerts{store: st}, clk.Now),
		access:  acc, sso: signOn, audit: cp, anchor: anchor, refusals: refusals, metrics: mx,
	}
	a.tls = &serverTLS{app: a}
	// The health checks' cache bounds the load they put on the store, in
	// wall time whatever clock the instance runs on.
	a.health = pkipub.NewHealth(st, log.With("component", "health"), time.Now)
	if err := a.wireLifecycle(revocationHealth{rv}, mx); err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// Close releases the store.
func (a *App) Close() error { return a.store.Close() }

// InitResult reports what Init created.
type InitResult struct {
	DataDir         string
	RootFingerprint string
	TokenPath       string
}

// ErrExists is returned by Init for an existing data directory.
var ErrExists = errors.New("app: data directory already exists")

// Exists reports whether dir exists (as anything).
func Exists(dir string) bool {
	_, err := os.Lstat(dir)
	return err == nil
}

// Init creates a data directory: KEK, database, root and issuing CA, the
// server's TLS certificate, the admin token and root.pem. It never
// overwrites anything, and on failure removes what it created.
func Init(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock) (res *InitResult, err error) {
	dir := cfg.DataDir
	if Exists(dir) {
		return nil, fmt.Errorf("%w: %s (init never overwrites; use another --data-dir or remove it)", ErrExists, dir)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("app: create data directory: %w", err)
	}
	var a *App
	defer func() {
		if err != nil {
			if a != nil {
				a.Close()
			}
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	kekPath := filepath.Join(dir, KEKFile)
	if err := software.GenerateKEK(kekPath); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	kek, err := software.LoadKEK(kekPath)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	// A new directory holds no legacy keys, and never opens any.
	if err := software.WriteLegacyMarker(filepath.Join(dir, KeysMarkerFile)); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a, err = wire(ctx, cfg, log, clk, kek)
	if err != nil {
		return nil, err
	}
	a.keys.CloseLegacy()
	if cas, err := a.store.ListCAs(ctx); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	} else if len(cas) > 0 {
		return nil, fmt.Errorf("app: the database %s already holds CAs; to add a replica, copy the existing data directory (with its kek) instead of running init", redactURL(DBURL(cfg)))
	}
	if err := a.checkInstance(ctx); err != nil {
		return nil, err
	}
	in := cfg.Init
	org := []string{in.Organization}
	rootAlg, _ := pki.ParseKeyAlgorithm(in.RootKey)
	root, err := a.issuer.CreateRoot(ctx, authz.System(), &ca.Spec{
		Name: in.RootName, Subject: pkix.Name{CommonName: in.RootCommonName, Organization: org},
		KeyAlg: rootAlg, Validity: days(in.RootValidityDays), MaxPathLen: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("app: create root CA: %w", err)
	}
	intAlg, _ := pki.ParseKeyAlgorithm(in.IssuingKey)
	if _, err := a.issuer.CreateIntermediate(ctx, authz.System(), root.ID, &ca.Spec{
		Name: in.IssuingName, Subject: pkix.Name{CommonName: in.IssuingCommonName, Organization: org},
		KeyAlg: intAlg, Validity: days(in.IssuingValidityDays), MaxPathLen: 0,
	}); err != nil {
		return nil, fmt.Errorf("app: create issuing CA: %w", err)
	}
	if _, err := a.tls.issue(ctx); err != nil {
		return nil, err
	}
	if err := a.notePublicURL(ctx); err != nil {
		return nil, err
	}
	// The first administrator: a person, bound to admin, with one token.
	sys := authz.System()
	admin, err := a.access.CreatePrincipal(ctx, sys, "admin", authz.KindHuman, "created by init")
	if err != nil {
		return nil, fmt.Errorf("app: create admin principal: %w", err)
	}
	if _, err := a.access.Bind(ctx, sys, admin.ID, authz.RoleAdmin, authz.Scope{}); err != nil {
		return nil, fmt.Errorf("app: bind admin role: %w", err)
	}
	token, _, err := a.access.CreateToken(ctx, sys, admin.ID, "created by init", 0)
	if err != nil {
		return nil, fmt.Errorf("app: create admin token: %w", err)
	}
	// ACME works right after the first start: a provisioner on the
	// issuing CA for web servers, offering every challenge type; unless
	// the operator asked for none (init --acme=false).
	if !in.SkipACMEProvisioner {
		if _, err := a.acme.CreateProvisioner(ctx, sys, acme.ProvisionerSpec{
			Name: DefaultACMEProvisioner, CA: in.IssuingName, Profile: "web_server",
		}); err != nil {
			return nil, fmt.Errorf("app: create ACME provisioner: %w", err)
		}
	}
	if _, err := a.audit.EnsureKey(ctx); err != nil {
		return nil, fmt.Errorf("app: create audit key: %w", err)
	}
	if _, err := a.audit.Checkpoint(ctx); err != nil {
		return nil, fmt.Errorf("app: first audit checkpoint: %w", err)
	}
	tokenPath := filepath.Join(dir, TokenFile)
	if err := writeFileExcl(tokenPath, []byte(token+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileExcl(filepath.Join(dir, RootFile), pki.CertPEM(root.CertDER), 0o644); err != nil {
		return nil, err
	}
	if err := cfg.Save(); err != nil {
		return nil, err
	}
	if err := a.Close(); err != nil {
		return nil, fmt.Errorf("app: close store: %w", err)
	}
	log.Info("data directory initialised", "dir", dir)
	return &InitResult{DataDir: dir, RootFingerprint: pki.FingerprintColons(root.CertDER), TokenPath: tokenPath}, nil
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func writeFileExcl(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("app: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("app: sync %s: %w", path, err)
	}
	return f.Close()
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	q := u.Query()
	for _, k := range secretURLParams() {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// secretURLParams are the query parameters of a PostgreSQL URL that hold
// a password (pgx reads both).
func secretURLParams() []string { return []string{"password", "sslpassword"} }

// withoutSecrets is the database URL s without its passwords (user info
// and query), for a file that may be copied elsewhere.
func withoutSecrets(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for _, k := range secretURLParams() {
		if q.Has(k) {
			q.Del(k)
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// ClientInfo is written to DATA/server.json so the CLI finds the server.
type ClientInfo struct {
	URL string `json:"url"`
}

func (a *App) writeClientInfo(url string) error {
	b, _ := json.MarshalIndent(ClientInfo{URL: url}, "", "  ")
	path := filepath.Join(a.cfg.DataDir, ServerFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return os.Rename(tmp, path)
}

// RootFingerprint returns the SHA-256 fingerprint of the first root CA.
func (a *App) RootFingerprint(ctx context.Context) (string, error) {
	cas, err := a.store.ListCAs(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range cas {
		if c.Kind == ca.KindRoot && len(c.CertDER) > 0 && c.Status != ca.StatusDeleted {
			return pki.FingerprintColons(c.CertDER), nil
		}
	}
	return "", errors.New("app: no root CA")
}
