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
	"github.com/certwright/certwright/internal/dirlock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/est"
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
	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/pkipub"
)

// Files inside the data directory.
const (
	KEKFile    = config.KEKFileName
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
	cfg   *config.Config
	log   *slog.Logger
	clock clock.Clock
	store *store.DB
	// keys routes every key to the provider holding it (keys.Router);
	// soft is the software provider among them, for the re-wrap of keys
	// in the legacy format.
	keys *keys.Router
	soft *software.Provider
	// closeHSM closes the PKCS#11 token (nil: none configured).
	closeHSM func() error
	// kekStore keeps the KEK at rest (a file, or sealed by the token);
	// nil in an App that Init wired.
	kekStore *kekStore
	issuer   *issue.Service
	revoker  *revoke.Service
	cas      *ca.Manager
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
	est      *est.Service
	scep     *scep.Service
	// validator checks ACME challenges; a reload changes its deny list.
	validator *validate.Validator
	tls       *serverTLS
	// health answers /healthz and /readyz on both listeners; ready is
	// this replica's own part of /readyz (replicas.go).
	health *pkipub.Health
	ready  readiness
	// self is this process in the replica registry (replicas.go).
	self *replicaSelf
	// cursorKey seals the API's list cursors alike on every replica.
	cursorKey []byte
	// kekID is the KEK's fingerprint (keys.KEKFingerprint), checked
	// against the one the database records.
	kekID string
	// dirLock is serve's shared lock on the data directory (nil when
	// the file system has none), which keeps a KEK rotation out.
	dirLock *dirlock.Lock

	lifecycle *lifecycle.Service
	metrics   *metrics.Metrics
	scheduler *lifecycle.Scheduler
	// locker leases the jobs that run on one replica at a time (the
	// scheduled jobs, the server certificate's renewal); replica is this
	// replica's name in them.
	locker     *store.JobLocker
	replica    string
	imports    *compliance.Importer
	compliance *compliance.Reporter
	// discovery records the network scans (scan.go).
	discovery *discovery.Monitor
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
	lock, err := lockServe(cfg, log)
	if err != nil {
		return nil, err
	}
	ks, tok, err := openKEKStore(ctx, cfg, log, false)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	kek, err := ks.load(ctx, cfg.KEKPath())
	if err != nil {
		lock.Unlock()
		return nil, errors.Join(fmt.Errorf("app: refusing to start: %w", err), tok.Close())
	}
	a, err := wire(ctx, cfg, log, clk, kek, tok)
	clear(kek)
	if err != nil {
		lock.Unlock()
		return nil, errors.Join(err, tok.Close())
	}
	a.dirLock = lock
	a.kekStore = ks
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
	if err := a.checkRecordedKEK(ctx); err != nil {
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
	if err := a.claimKEK(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// wrongKEK is the start-up refusal when the KEK file does not open the CA
// keys the database holds.
func wrongKEK(cfg *config.Config, err error) error {
	return fmt.Errorf("app: refusing to start: the key-encryption key %s does not unwrap the CA keys in the database (wrong or replaced KEK file, or a CA key record altered in the database?): %w",
		cfg.KEKPath(), err)
}

// wire builds the App around kek. tok is the token when the caller opened
// it already (to open the KEK sealed there); the App closes it from then
// on, and wire leaves it to the caller on failure. A token keys.pkcs11
// names that tok is not is opened here.
func wire(ctx context.Context, cfg *config.Config, log *slog.Logger, clk clock.Clock, kek []byte, tok *hsmToken) (_ *App, err error) {
	soft, err := software.New(kek, nil)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	// Every secret derived from the KEK comes from the one provider that
	// holds it (keys.Derivations).
	derived := map[keys.Derivation][]byte{}
	for _, d := range []keys.Derivation{keys.DeriveReplicaSettings, keys.DeriveBus, keys.DeriveSSOState, keys.DeriveListCursor} {
		if derived[d], err = soft.DeriveKey(d); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	kekID, err := keys.KEKFingerprint(soft)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	// The App's copy of cfg carries the key of the replica registry's
	// digests; the caller's is untouched.
	keyed := *cfg
	keyed.ReplicaSettingsKey = derived[keys.DeriveReplicaSettings]
	cfg = &keyed
	// CA keys (and their OCSP responders' keys) may be in a PKCS#11
	// token; every other key is a software key, so the software provider
	// stays the default.
	providers := map[string]keys.Provider{software.Name: soft}
	var closeHSM func() error
	if tok == nil && cfg.Keys.PKCS11.Configured() {
		if tok, err = openHSM(ctx, cfg, log); err != nil {
			return nil, err
		}
		// The module is opened once per process: a failed wiring
		// closes it, so the next attempt can open it again.
		defer func() {
			if err != nil {
				tok.close()
			}
		}()
	}
	if tok != nil {
		providers[config.KeyProviderPKCS11] = tok.keys
		closeHSM = tok.close
	}
	kp, err := keys.NewRouter(software.Name, providers)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	st, err := store.Open(ctx, DBURL(cfg), log)
	if err != nil {
		return nil, fmt.Errorf("app: open store: %w", err)
	}
	// The replicas' notices are signed under a key each derives from the
	// shared KEK: any database role can send on the channel.
	if err := st.SetBusKey(derived[keys.DeriveBus]); err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
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
	iss, err := issue.New(issue.Config{
		PublicHTTPBase: cfg.PublicHTTPURL, Clock: clk, Log: log, ApprovalLifetime: cfg.Approval.Lifetime(), Observer: mx, CAs: caCache,
		CAKeyProvider: cfg.Keys.CAKeyProvider,
	}, cw, profiles, kp, linter)
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
	if err := mx.RegisterBus(st); err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	acc, err := access.New(st, clk, log, signInCerts{store: st, rv: rv, clock: clk})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	var signOn *sso
	if len(cfg.Auth.OIDC) > 0 {
		reg, err := oidc.New(cfg.Auth.OIDC, cfg.DataDir, clk, log.With("component", "oidc"), st)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("app: %w", err)
		}
		// Console sign-ins begun are sealed into the browser's cookie
		// under a key every replica derives from the shared KEK.
		seal, err := oidc.NewSealer(derived[keys.DeriveSSOState])
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("app: %w", err)
		}
		if signOn, err = newSSO(reg, seal, acc, cfg); err != nil {
			st.Close()
			return nil, err
		}
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
		ValidAuthzLifetime: as.ValidAuthzLifetime, Workers: ac.Workers, Limits: as.Limits, Replica: cfg.Replica(),
	}, st, iss, rv, profiles, validator, soft) // ACME secrets are sealed under the KEK
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	estSvc, err := est.New(est.Config{Clock: clk, Log: log.With("component", "est")}, st, iss, profiles)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	scepSvc, err := scep.New(scep.Config{Clock: clk, Log: log.With("component", "scep"), RAName: cfg.TLSNames[0], Refusals: refusals, Revoker: rv}, st, iss, profiles, kp)
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
		acme: acmeSvc, validator: validator, est: estSvc, scep: scepSvc,
		cfg: cfg, log: log, clock: clk, store: st, keys: kp, soft: soft, closeHSM: closeHSM, issuer: iss, profiles: profiles, revoker: rv,
		cas:     ca.NewManager(cw, clk, log, time.Duration(cfg.RestoreWindowDays)*24*time.Hour),
		caCache: caCache,
		auth:    authz.NewAuthenticator(st, &clientCerts{store: st}, clk.Now),
		access:  acc, sso: signOn, audit: cp, anchor: anchor, refusals: refusals, metrics: mx,
	}
	a.tls = &serverTLS{app: a}
	a.cursorKey = derived[keys.DeriveListCursor]
	a.kekID = kekID
	a.self = newReplicaSelf(cfg)
	// The health checks' cache bounds the load they put on the store, in
	// wall time whatever clock the instance runs on.
	a.health = pkipub.NewHealth(st, log.With("component", "health"), time.Now)
	if err := a.wireLifecycle(revocationHealth{rv}, mx); err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// Close releases the store, logs out of the PKCS#11 token and releases
// the data directory.
func (a *App) Close() error {
	err := a.store.Close()
	if a.closeHSM != nil {
		err = errors.Join(err, a.closeHSM())
	}
	return errors.Join(err, a.dirLock.Unlock())
}

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
	if cfg.Keys.KEKInToken() && pinInDataDir(cfg) {
		return nil, fmt.Errorf("app: keys.pkcs11.pin_file %s is inside the data directory %s: with the KEK sealed in the token, a copy of the data directory would hold the PIN too, and with the token open every key; keep the PIN file outside it (mode 0600, e.g. /etc/certwright/token.pin) or use keys.pkcs11.pin_env",
			cfg.Keys.PKCS11.PINPath(dir), dir)
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
	// With keys.kek_provider pkcs11 the token's KEK is generated (or,
	// asked to, adopted) and the instance KEK written sealed by it.
	ks, tok, err := openKEKStore(ctx, cfg, log, !cfg.Init.AdoptTokenKEK)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && a == nil {
			tok.Close()
		}
	}()
	if ks.inToken() && !cfg.Init.AdoptTokenKEK {
		// A token KEK made for a directory that was not created is
		// destroyed, so that init can run again under the same label.
		defer func() {
			if err != nil {
				if derr := ks.tk.Destroy(context.WithoutCancel(ctx)); derr != nil {
					log.Error("init failed, and the KEK it generated in the token could not be destroyed: delete it before init runs again under the same label", "label", ks.label, "err", derr)
				}
			}
		}()
	}
	kekPath := cfg.KEKPath()
	if err := ks.create(ctx, kekPath); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if !isIn(dir, kekPath) {
		// Outside the data directory removed on failure.
		defer func() {
			if err != nil {
				os.Remove(kekPath)
			}
		}()
	}
	kek, err := ks.load(ctx, kekPath)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	defer clear(kek)
	// A new directory holds no legacy keys, and never opens any.
	if err := software.WriteLegacyMarker(filepath.Join(dir, KeysMarkerFile)); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a, err = wire(ctx, cfg, log, clk, kek, tok)
	if err != nil {
		return nil, err
	}
	a.soft.CloseLegacy()
	// Two inits against one empty PostgreSQL database (two data
	// directories) take turns: the second finds the first's CAs and is
	// refused before writing anything.
	var root *ca.CA
	var token string
	if err := a.store.Exclusive(ctx, initLock, func(ctx context.Context) error {
		root, token, err = a.initDatabase(ctx)
		return err
	}); err != nil {
		return nil, err
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

// initLock is the Exclusive key init holds while it checks that the
// database holds no CA and creates the first ones.
const initLock = "init"

// initDatabase fills an empty database: root and issuing CA, the server
// certificate, the first administrator and token, the default ACME
// provisioner, the audit key and first checkpoint. It refuses a database
// that already holds CAs, before writing anything.
func (a *App) initDatabase(ctx context.Context) (*ca.CA, string, error) {
	cfg := a.cfg
	if cas, err := a.store.ListCAs(ctx); err != nil {
		return nil, "", fmt.Errorf("app: %w", err)
	} else if len(cas) > 0 {
		return nil, "", fmt.Errorf("app: the database %s already holds CAs; to add a replica, copy the existing data directory (with its kek) instead of running init", redactURL(DBURL(cfg)))
	}
	if err := a.checkInstance(ctx); err != nil {
		return nil, "", err
	}
	in := cfg.Init
	org := []string{in.Organization}
	rootAlg, _ := pki.ParseKeyAlgorithm(in.RootKey)
	root, err := a.issuer.CreateRoot(ctx, authz.System(), &ca.Spec{
		Name: in.RootName, Subject: pkix.Name{CommonName: in.RootCommonName, Organization: org},
		KeyAlg: rootAlg, Validity: days(in.RootValidityDays), MaxPathLen: 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("app: create root CA: %w", err)
	}
	intAlg, _ := pki.ParseKeyAlgorithm(in.IssuingKey)
	if _, err := a.issuer.CreateIntermediate(ctx, authz.System(), root.ID, &ca.Spec{
		Name: in.IssuingName, Subject: pkix.Name{CommonName: in.IssuingCommonName, Organization: org},
		KeyAlg: intAlg, Validity: days(in.IssuingValidityDays), MaxPathLen: 0,
	}); err != nil {
		return nil, "", fmt.Errorf("app: create issuing CA: %w", err)
	}
	if _, err := a.tls.issue(ctx); err != nil {
		return nil, "", err
	}
	if err := a.notePublicURL(ctx); err != nil {
		return nil, "", err
	}
	// The first administrator: a person, bound to admin, with one token.
	sys := authz.System()
	admin, err := a.access.CreatePrincipal(ctx, sys, "admin", authz.KindHuman, "created by init")
	if err != nil {
		return nil, "", fmt.Errorf("app: create admin principal: %w", err)
	}
	if _, err := a.access.Bind(ctx, sys, admin.ID, authz.RoleAdmin, authz.Scope{}); err != nil {
		return nil, "", fmt.Errorf("app: bind admin role: %w", err)
	}
	token, _, err := a.access.CreateToken(ctx, sys, admin.ID, "created by init", 0)
	if err != nil {
		return nil, "", fmt.Errorf("app: create admin token: %w", err)
	}
	// ACME works right after the first start: a provisioner on the
	// issuing CA for web servers, offering every challenge type; unless
	// the operator asked for none (init --acme=false).
	if !in.SkipACMEProvisioner {
		if _, err := a.acme.CreateProvisioner(ctx, sys, acme.ProvisionerSpec{
			Name: DefaultACMEProvisioner, CA: in.IssuingName, Profile: "web_server",
		}); err != nil {
			return nil, "", fmt.Errorf("app: create ACME provisioner: %w", err)
		}
	}
	if _, err := a.ensureAuditKey(ctx); err != nil {
		return nil, "", fmt.Errorf("app: create audit key: %w", err)
	}
	if _, err := a.audit.Checkpoint(ctx); err != nil {
		return nil, "", fmt.Errorf("app: first audit checkpoint: %w", err)
	}
	return root, token, nil
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
