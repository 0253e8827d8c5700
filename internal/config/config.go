// Package config owns Certwright's configuration: the tree of settings,
// their safe defaults, strict decoding of the YAML file and Validate.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
)

// FileName is the configuration file inside the data directory.
const FileName = "config.yaml"

// KEKFileName is the key-encryption key's file in the data directory,
// where it is unless kek_file says otherwise.
const KEKFileName = "kek"

// SealedKEKFileName is, with keys.kek_provider pkcs11, the file in the
// data directory holding the key-encryption key sealed by the token's KEK
// (unless kek_file says otherwise).
const SealedKEKFileName = "kek.p11"

// Config is the whole configuration. Zero values are replaced by defaults
// in Defaults; every field can be set in DATA/config.yaml or by a flag.
type Config struct {
	// DataDir holds the KEK, admin token, root.pem and (by default) the SQLite database.
	DataDir string `yaml:"-"`
	// ReplicaSettingsKey keys the digests of secret-bearing settings in
	// the replica registry (README "Several replicas"). Never read from
	// the file: the app derives it from the KEK.
	ReplicaSettingsKey []byte `yaml:"-"`
	// DB is a store URL: empty for DATA/certwright.db (SQLite), or postgres://...
	DB string `yaml:"db,omitempty"`
	// KEKFile is the key-encryption key's file (default DATA/kek;
	// relative paths are in the data directory), so that it can sit on
	// other storage than the database and the rest of the data
	// directory. With keys.kek_provider pkcs11 it is the file holding the
	// KEK sealed by the token (default DATA/kek.p11). See KEKPath.
	KEKFile string `yaml:"kek_file,omitempty"`
	// HTTPSListen serves the API (and later ACME and the dashboard).
	HTTPSListen string `yaml:"https_listen,omitempty"`
	// HTTPListen serves /crl, /ocsp, /ca and /healthz over plain HTTP.
	HTTPListen string `yaml:"http_listen,omitempty"`
	// PublicHTTPURL is the base of the CRL, OCSP and caIssuers URLs embedded
	// in certificates; it must stay stable. Default http://HTTPListen.
	PublicHTTPURL string `yaml:"public_http_url,omitempty"`
	// DefaultCA is the CA that issues when a request names none.
	DefaultCA string `yaml:"default_ca,omitempty"`
	// RestoreWindowDays is how long a deleted CA can be restored.
	RestoreWindowDays int `yaml:"restore_window_days,omitempty"`
	// TLSValidityDays is the lifetime of the server's own TLS certificate.
	TLSValidityDays int `yaml:"tls_validity_days,omitempty"`
	// TLSNames are the server certificate's names (DNS names or IPs).
	TLSNames []string `yaml:"tls_names,omitempty"`
	// MaxBodyBytes bounds API request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// StoreTimeout bounds the store's part of an API or ACME request
	// (default 5s): a stalled database gives 503 after it, not a hung
	// request.
	StoreTimeout string `yaml:"store_timeout,omitempty"`
	// ShutdownDelay is how long, after SIGTERM, the listeners keep
	// serving while /readyz already answers 503, so that a load balancer
	// stops sending requests before they close (default 5s on PostgreSQL,
	// where replicas sit behind a load balancer; 0 on SQLite, one process).
	ShutdownDelay string `yaml:"shutdown_delay,omitempty"`
	// Revocation tunes CRLs and the OCSP responder.
	Revocation RevocationConfig `yaml:"revocation,omitempty"`
	// Audit tunes the audit log's signed checkpoints.
	Audit AuditConfig `yaml:"audit,omitempty"`
	// Approval tunes the approval workflow.
	Approval ApprovalConfig `yaml:"approval,omitempty"`
	// Console tunes the web console's sessions.
	Console ConsoleConfig `yaml:"console,omitempty"`
	// ACME tunes the ACME server's challenge validation and limits.
	ACME ACMEConfig `yaml:"acme,omitempty"`
	// Lifecycle tunes expiry monitoring, renewal and rotation.
	Lifecycle LifecycleConfig `yaml:"lifecycle,omitempty"`
	// Alerts declares alert channels and routes.
	Alerts AlertsConfig `yaml:"alerts,omitempty"`
	// Metrics places the Prometheus endpoint.
	Metrics MetricsConfig `yaml:"metrics,omitempty"`
	// Scan configures network scans for TLS endpoints (scan.go).
	Scan ScanConfig `yaml:"scan,omitempty"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level,omitempty"`
	// ReplicaName names this replica in the scheduled jobs' records and
	// leases (default HOSTNAME:PORT, the port of https_listen; see
	// Replica). It is not defaulted here, so that a config.yaml copied to
	// another replica does not carry this one's name.
	ReplicaName string `yaml:"replica_name,omitempty"`
	// Init applies only when a data directory is created.
	Init InitConfig `yaml:"init,omitempty"`
	// Auth configures single sign-on through OpenID Connect providers.
	Auth AuthConfig `yaml:"auth,omitempty"`
	// Keys says where CA keys are kept: software-wrapped under the KEK
	// file, or in a PKCS#11 token (an HSM).
	Keys KeysConfig `yaml:"keys,omitempty"`

	// src, after Decode, says where each setting was written.
	src *source
}

// ShutdownPause returns the parsed shutdown_delay (after Validate); when
// unset, 5s on PostgreSQL and none on SQLite.
func (c *Config) ShutdownPause() time.Duration {
	if c.ShutdownDelay == "" {
		if c.Postgres() {
			return 5 * time.Second
		}
		return 0
	}
	d, _ := time.ParseDuration(c.ShutdownDelay)
	return d
}

// KEKPath is the key-encryption key's file: kek_file (relative to the
// data directory), or DATA/kek; with keys.kek_provider pkcs11, the sealed
// KEK's file, DATA/kek.p11 by default.
func (c *Config) KEKPath() string {
	switch {
	case c.KEKFile == "" && c.Keys.KEKInToken():
		return filepath.Join(c.DataDir, SealedKEKFileName)
	case c.KEKFile == "":
		return filepath.Join(c.DataDir, KEKFileName)
	case filepath.IsAbs(c.KEKFile):
		return filepath.Clean(c.KEKFile)
	}
	return filepath.Join(c.DataDir, c.KEKFile)
}

// Postgres reports whether the store is PostgreSQL.
func (c *Config) Postgres() bool {
	return strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
}

// StoreDeadline returns the parsed store_timeout (after Validate).
func (c *Config) StoreDeadline() time.Duration {
	d, _ := inventory.ParseWindow(c.StoreTimeout)
	return d
}

// RevocationConfig tunes CRLs and OCSP. Durations are written like 7d,
// 2w or 12h.
type RevocationConfig struct {
	// CRLLifetime is thisUpdate to nextUpdate of every CRL (default 7d);
	// CRLs are regenerated after a third of it, and after each revocation.
	CRLLifetime string `yaml:"crl_lifetime,omitempty"`
	// OCSPLifetime is thisUpdate to nextUpdate of an OCSP response
	// (default 24h); responses are re-signed after a quarter of it.
	OCSPLifetime string `yaml:"ocsp_response_lifetime,omitempty"`
	// ResponderLifetime is the validity of each CA's delegated OCSP
	// responder certificate (default 7d); it is replaced with a third left.
	ResponderLifetime string `yaml:"ocsp_responder_lifetime,omitempty"`
	// OCSPCacheEntries bounds the pre-signed OCSP responses kept in memory
	// (about 1 KB each; default 1000000). Beyond it, responses are signed
	// per request.
	OCSPCacheEntries int `yaml:"ocsp_cache_entries,omitempty"`
	// OCSPUnknownPerSecond is each CA's rate of new signed "unknown" OCSP
	// answers for never-issued serials (default 200, burst twice it);
	// beyond it such requests get tryLater.
	OCSPUnknownPerSecond int `yaml:"ocsp_unknown_per_second,omitempty"`
	// PublicRateLimit is the requests per second each source address
	// (IPv6: each /64) may send to the plain-HTTP listener's /ocsp, /crl
	// and /ca (default 100, burst twice it; 429 beyond). -1 turns it off.
	// Loopback peers are exempt.
	PublicRateLimit int `yaml:"public_rate_limit,omitempty"`
}

// Durations returns the parsed revocation durations (after Validate).
func (r RevocationConfig) Durations() (crl, ocspResp, responder time.Duration) {
	crl, _ = inventory.ParseWindow(r.CRLLifetime)
	ocspResp, _ = inventory.ParseWindow(r.OCSPLifetime)
	responder, _ = inventory.ParseWindow(r.ResponderLifetime)
	return crl, ocspResp, responder
}

// AuditConfig says how often the audit chain's head is signed: after
// CheckpointEvents new events, or CheckpointInterval after the last
// checkpoint when there are new events, whichever comes first.
type AuditConfig struct {
	CheckpointEvents   int    `yaml:"checkpoint_events,omitempty"`   // default 1000
	CheckpointInterval string `yaml:"checkpoint_interval,omitempty"` // default 5m
	// AnchorLog, when set, is a file (relative paths are in the data
	// directory) to which every checkpoint is appended as a JSON line, for
	// shipping to storage the server cannot rewrite. The latest checkpoint
	// is always kept in DATA/audit-anchor.json as well.
	AnchorLog string `yaml:"anchor_log,omitempty"`
	// VerifyInterval is how often the audit-verify job checks the whole
	// chain, its checkpoints and the anchor (default 6h; it also runs at
	// start). The console's audit page shows the newest verification.
	VerifyInterval string `yaml:"verify_interval,omitempty"`
	// UnauthenticatedPerSecond and UnauthenticatedBurst limit, per source
	// address, the API requests refused before authentication (no or bad
	// token or client certificate): past the burst, that source gets 429
	// with Retry-After until the rate allows again. Refused requests are
	// audited as one event per source and minute with a count.
	UnauthenticatedPerSecond float64 `yaml:"unauthenticated_per_second,omitempty"` // default 10
	UnauthenticatedBurst     int     `yaml:"unauthenticated_burst,omitempty"`      // default 20
}

// Interval returns the parsed checkpoint interval (after Validate).
func (a AuditConfig) Interval() time.Duration {
	d, _ := inventory.ParseWindow(a.CheckpointInterval)
	return d
}

// VerifyEvery returns the parsed verification interval (after Validate).
func (a AuditConfig) VerifyEvery() time.Duration {
	d, _ := inventory.ParseWindow(a.VerifyInterval)
	return d
}

// ApprovalConfig tunes requests held for approval.
type ApprovalConfig struct {
	// RequestLifetime is how long a request waits for an approver (default 72h).
	RequestLifetime string `yaml:"request_lifetime,omitempty"`
}

// Lifetime returns the parsed request lifetime (after Validate).
func (a ApprovalConfig) Lifetime() time.Duration {
	d, _ := inventory.ParseWindow(a.RequestLifetime)
	return d
}

// ConsoleConfig tunes the web console's sessions. Durations are written
// like 30m or 12h.
type ConsoleConfig struct {
	// IdleTimeout ends a session not used for this long (default 30m).
	IdleTimeout string `yaml:"idle_timeout,omitempty"`
	// MaxAge ends every session this long after sign-in (default 12h).
	MaxAge string `yaml:"max_age,omitempty"`
}

// Idle returns the parsed idle timeout (after Validate).
func (c ConsoleConfig) Idle() time.Duration {
	d, _ := inventory.ParseWindow(c.IdleTimeout)
	return d
}

// Max returns the parsed maximum session age (after Validate).
func (c ConsoleConfig) Max() time.Duration {
	d, _ := inventory.ParseWindow(c.MaxAge)
	return d
}

// ACMEConfig tunes the ACME server. Durations are written like 7d or 12h.
type ACMEConfig struct {
	// BaseURL is the https://host[:port] clients reach the server at, used
	// in every ACME URL; empty means the Host of each request.
	BaseURL string `yaml:"base_url,omitempty"`
	// HTTP01Port is the port http-01 validation connects to (default 80).
	HTTP01Port int `yaml:"http01_port,omitempty"`
	// TLSALPN01Port is the port tls-alpn-01 validation connects to (default 443).
	TLSALPN01Port int `yaml:"tls_alpn01_port,omitempty"`
	// Resolver is the host:port of the DNS server validation uses; empty
	// means the servers in /etc/resolv.conf.
	Resolver string `yaml:"resolver,omitempty"`
	// DenyValidation lists address ranges (CIDR) validation never connects
	// to, in addition to the built-in default (link-local, unspecified,
	// multicast, broadcast/reserved and cloud metadata addresses; see
	// validate.DefaultDeny). Loopback and private ranges stay allowed
	// unless listed here.
	DenyValidation []string `yaml:"deny_validation,omitempty"`
	// ValidationTimeout bounds one challenge validation (default 10s).
	ValidationTimeout string `yaml:"validation_timeout,omitempty"`
	// Workers is the number of concurrent validations (default 8).
	Workers int `yaml:"workers,omitempty"`
	// OrderLifetime is how long an order may take (default 7d); pending
	// authorizations live as long.
	OrderLifetime string `yaml:"order_lifetime,omitempty"`
	// ValidAuthzLifetime is how long a valid authorization is reused (default 30d).
	ValidAuthzLifetime string `yaml:"valid_authz_lifetime,omitempty"`
	// Rate limits, stored in the database so they hold across replicas.
	OrdersPerHour            int `yaml:"orders_per_hour,omitempty"`             // per account (default 300)
	AccountsPerHour          int `yaml:"accounts_per_hour,omitempty"`           // per IP address (default 50)
	FailedValidationsPerHour int `yaml:"failed_validations_per_hour,omitempty"` // per account (default 60)
	PendingAuthorizations    int `yaml:"pending_authorizations,omitempty"`      // per account (default 1000)
	// Validation fairness, per replica (the validation queue is in memory).
	// ValidationsInFlight caps one account's challenges waiting for or in
	// validation (default 100); TargetValidationsInFlight the same for one
	// identifier across accounts (default 100). Past either a challenge is
	// refused with rateLimited and stays pending.
	ValidationsInFlight       int `yaml:"validations_in_flight,omitempty"`
	TargetValidationsInFlight int `yaml:"target_validations_in_flight,omitempty"`
	// ConcurrentValidations is how many of one account's validations run at
	// once (default a quarter of workers, at least 1); TargetConcurrency the
	// same for one identifier (default 2, at most workers). Both at most
	// workers.
	ConcurrentValidations int `yaml:"concurrent_validations,omitempty"`
	TargetConcurrency     int `yaml:"target_concurrency,omitempty"`
	// SourceValidationsInFlight caps the challenges of accounts without
	// external account binding answered from one address (IPv6: one /64),
	// across accounts (default 200). Those accounts together also fill at
	// most three quarters of the queue.
	SourceValidationsInFlight int `yaml:"source_validations_in_flight,omitempty"`
}

// MaxValidationsQueued is the ACME validation queue's size (acme.Config's
// QueueSize default): no in-flight limit above it means anything.
const MaxValidationsQueued = 4096

// Durations returns the parsed validation timeout, order lifetime and
// valid-authorization lifetime (after Validate).
func (a ACMEConfig) Durations() (timeout, order, validAuthz time.Duration) {
	timeout, _ = inventory.ParseWindow(a.ValidationTimeout)
	order, _ = inventory.ParseWindow(a.OrderLifetime)
	validAuthz, _ = inventory.ParseWindow(a.ValidAuthzLifetime)
	return
}

// DenyPrefixes returns the parsed deny_validation ranges (after Validate).
func (a ACMEConfig) DenyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a.DenyValidation {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// InitConfig shapes the CA hierarchy created by init.
type InitConfig struct {
	Organization        string `yaml:"organization,omitempty"`
	RootName            string `yaml:"root_name,omitempty"`
	RootCommonName      string `yaml:"root_common_name,omitempty"`
	RootKey             string `yaml:"root_key,omitempty"`
	RootValidityDays    int    `yaml:"root_validity_days,omitempty"`
	IssuingName         string `yaml:"issuing_name,omitempty"`
	IssuingCommonName   string `yaml:"issuing_common_name,omitempty"`
	IssuingKey          string `yaml:"issuing_key,omitempty"`
	IssuingValidityDays int    `yaml:"issuing_validity_days,omitempty"`
	// SkipACMEProvisioner leaves out the ACME provisioner "default" that
	// init otherwise creates (init --acme=false).
	SkipACMEProvisioner bool `yaml:"skip_acme_provisioner,omitempty"`
	// AdoptTokenKEK: with keys.kek_provider pkcs11, seal the KEK under
	// the AES key already in the token under keys.pkcs11.kek_label
	// instead of generating it (init --pkcs11-kek-adopt). Never saved.
	AdoptTokenKEK bool `yaml:"-"`
}

// Key providers keys.ca_key_provider names.
const (
	KeyProviderSoftware = "software"
	KeyProviderPKCS11   = "pkcs11"
)

// Where keys.kek_provider keeps the instance's key-encryption key at rest.
const (
	// KEKProviderFile: in a file of its own (kek_file), in the clear.
	KEKProviderFile = "file"
	// KEKProviderPKCS11: sealed (AES-256-GCM) by an AES key inside the
	// token of keys.pkcs11; kek_file holds only the sealed bytes.
	KEKProviderPKCS11 = "pkcs11"
)

// DefaultKEKLabel is the token KEK's label when keys.pkcs11.kek_label is
// not set.
const DefaultKEKLabel = "certwright-kek"

// KeysConfig says where CA keys are kept.
type KeysConfig struct {
	// CAKeyProvider is where a new CA's key is generated when its request
	// names no provider: software (default) or pkcs11 (needs PKCS11).
	CAKeyProvider string `yaml:"ca_key_provider,omitempty"`
	// KEKProvider is where the instance's key-encryption key is kept at
	// rest: file (the default, also when empty) or pkcs11 (sealed by
	// the token's AES key PKCS11.KEKLabel; needs PKCS11).
	KEKProvider string `yaml:"kek_provider,omitempty"`
	// PKCS11, when its module is set, is the token serve opens at start.
	PKCS11 PKCS11Config `yaml:"pkcs11,omitempty"`
}

// maxKEKLabel bounds keys.pkcs11.kek_label (the pkcs11 package's limit on
// labels).
const maxKEKLabel = 128

// KEKInToken reports whether the KEK is kept sealed by the token.
func (k KeysConfig) KEKInToken() bool { return k.KEKProvider == KEKProviderPKCS11 }

// PKCS11Config names a PKCS#11 module, one of its tokens and where the
// user PIN is (never the PIN itself).
type PKCS11Config struct {
	// Module is the absolute path of the PKCS#11 library.
	Module string `yaml:"module,omitempty"`
	// TokenLabel or TokenSerial (exactly one) selects the token.
	TokenLabel  string `yaml:"token_label,omitempty"`
	TokenSerial string `yaml:"token_serial,omitempty"`
	// PINFile (mode 0600; relative: in the data directory) or PINEnv, the
	// name of an environment variable (exactly one), holds the user PIN.
	PINFile string `yaml:"pin_file,omitempty"`
	PINEnv  string `yaml:"pin_env,omitempty"`
	// KEKLabel is the CKA_LABEL of the token's AES-256 key that seals
	// the instance KEK, with keys.kek_provider pkcs11 (default
	// certwright-kek).
	KEKLabel string `yaml:"kek_label,omitempty"`
}

// KEKLabelOrDefault is kek_label, or DefaultKEKLabel when it is unset.
func (p PKCS11Config) KEKLabelOrDefault() string {
	if p.KEKLabel == "" {
		return DefaultKEKLabel
	}
	return p.KEKLabel
}

// Configured reports whether a token is configured.
func (p PKCS11Config) Configured() bool {
	p.KEKLabel = ""
	return p != PKCS11Config{}
}

// PINPath returns pin_file, relative paths taken in dataDir.
func (p PKCS11Config) PINPath(dataDir string) string {
	if p.PINFile == "" || filepath.IsAbs(p.PINFile) {
		return p.PINFile
	}
	return filepath.Join(dataDir, p.PINFile)
}

func (k KeysConfig) validate() error {
	switch k.CAKeyProvider {
	case KeyProviderSoftware:
	case KeyProviderPKCS11:
		if !k.PKCS11.Configured() {
			return invalid("keys.ca_key_provider", "pkcs11 needs a token: set keys.pkcs11 (module, token_label or token_serial, pin_file or pin_env), or use software")
		}
	default:
		return invalid("keys.ca_key_provider", "%q: want software or pkcs11", k.CAKeyProvider)
	}
	p := k.PKCS11
	switch k.KEKProvider {
	case "", KEKProviderFile:
		if p.KEKLabel != "" {
			return invalid("keys.pkcs11.kek_label", "is for keys.kek_provider pkcs11 (the KEK sealed by the token); with the KEK in a file (keys.kek_provider %s) remove it", KEKProviderFile)
		}
	case KEKProviderPKCS11:
		if !p.Configured() {
			return invalid("keys.kek_provider", "pkcs11 needs a token: set keys.pkcs11 (module, token_label or token_serial, pin_file or pin_env), or use file")
		}
		if len(p.KEKLabel) > maxKEKLabel || strings.TrimSpace(p.KEKLabel) != p.KEKLabel || strings.ContainsFunc(p.KEKLabel, unicode.IsControl) {
			return invalid("keys.pkcs11.kek_label", "%q: want 1 to %d printable characters without surrounding spaces", p.KEKLabel, maxKEKLabel)
		}
	default:
		return invalid("keys.kek_provider", "%q: want file or pkcs11", k.KEKProvider)
	}
	if !p.Configured() {
		return nil
	}
	switch {
	case p.Module == "":
		return invalid("keys.pkcs11.module", "required: the absolute path of the PKCS#11 library (for SoftHSM2 on Debian, /usr/lib/softhsm/libsofthsm2.so)")
	case !filepath.IsAbs(p.Module):
		return invalid("keys.pkcs11.module", "%q is not an absolute path: name the library exactly (the loader would search for a bare name)", p.Module)
	case (p.TokenLabel == "") == (p.TokenSerial == ""):
		return invalid("keys.pkcs11.token_label", "give exactly one of keys.pkcs11.token_label and keys.pkcs11.token_serial")
	case (p.PINFile == "") == (p.PINEnv == ""):
		return invalid("keys.pkcs11.pin_file", "give exactly one of keys.pkcs11.pin_file (a 0600 file holding the user PIN) and keys.pkcs11.pin_env (the name of an environment variable holding it); the PIN itself is never a setting")
	}
	return nil
}

// Defaults fills every zero field with its default.
func (c *Config) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	def(&c.DataDir, "certwright-data")
	def(&c.HTTPSListen, "127.0.0.1:8443")
	def(&c.HTTPListen, "127.0.0.1:8080")
	def(&c.PublicHTTPURL, "http://"+c.HTTPListen)
	def(&c.LogLevel, "info")
	defInt(&c.RestoreWindowDays, 30)
	defInt(&c.TLSValidityDays, 90)
	if len(c.TLSNames) == 0 {
		c.TLSNames = defaultTLSNames(c.PublicHTTPURL)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	def(&c.StoreTimeout, "5s")
	rv := &c.Revocation
	def(&rv.CRLLifetime, "7d")
	def(&rv.OCSPLifetime, "24h")
	def(&rv.ResponderLifetime, "7d")
	defInt(&rv.OCSPCacheEntries, 1_000_000)
	defInt(&rv.OCSPUnknownPerSecond, 200)
	defInt(&rv.PublicRateLimit, 100)
	defInt(&c.Audit.CheckpointEvents, 1000)
	def(&c.Audit.CheckpointInterval, "5m")
	def(&c.Audit.VerifyInterval, "6h")
	if c.Audit.UnauthenticatedPerSecond == 0 {
		c.Audit.UnauthenticatedPerSecond = 10
	}
	defInt(&c.Audit.UnauthenticatedBurst, 20)
	def(&c.Approval.RequestLifetime, "72h")
	def(&c.Console.IdleTimeout, "30m")
	def(&c.Console.MaxAge, "12h")
	ac := &c.ACME
	defInt(&ac.HTTP01Port, 80)
	defInt(&ac.TLSALPN01Port, 443)
	def(&ac.ValidationTimeout, "10s")
	defInt(&ac.Workers, 8)
	def(&ac.OrderLifetime, "7d")
	def(&ac.ValidAuthzLifetime, "30d")
	defInt(&ac.OrdersPerHour, 300)
	defInt(&ac.AccountsPerHour, 50)
	defInt(&ac.FailedValidationsPerHour, 60)
	defInt(&ac.PendingAuthorizations, 1000)
	defInt(&ac.ValidationsInFlight, 100)
	defInt(&ac.TargetValidationsInFlight, 100)
	defInt(&ac.SourceValidationsInFlight, 200)
	if ac.Workers > 0 {
		defInt(&ac.ConcurrentValidations, max(1, ac.Workers/4))
		defInt(&ac.TargetConcurrency, min(2, ac.Workers))
	}
	in := &c.Init
	def(&in.Organization, "Certwright")
	def(&in.RootName, "root")
	def(&in.RootCommonName, in.Organization+" Root CA")
	def(&in.RootKey, string(pki.ECDSAP384))
	defInt(&in.RootValidityDays, 3650)
	def(&in.IssuingName, "issuing")
	def(&in.IssuingCommonName, in.Organization+" Issuing CA 1")
	def(&in.IssuingKey, string(pki.ECDSAP256))
	defInt(&in.IssuingValidityDays, 1825)
	def(&c.DefaultCA, in.IssuingName)
	def(&c.Keys.CAKeyProvider, KeyProviderSoftware)
	if c.Keys.KEKInToken() {
		def(&c.Keys.PKCS11.KEKLabel, DefaultKEKLabel)
	}
	c.lifecycleDefaults()
	c.scanDefaults()
	c.authDefaults()
}

// defaultTLSNames are the server certificate's names when tls_names is not
// set: the host of public_http_url (the name the CA is known by) and the
// loopback names the local command line uses.
func defaultTLSNames(publicURL string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return names
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() || ip.IsLoopback() {
			return names
		}
		host = ip.String()
	} else {
		host = strings.ToLower(host)
	}
	if slices.Contains(names, host) {
		return names
	}
	return append([]string{host}, names...)
}

// MaxReplicaName bounds replica_name, in characters.
const MaxReplicaName = 64

// Replica returns the name of this replica: replica_name, or else
// HOSTNAME:PORT from the machine's host name and https_listen's port.
func (c *Config) Replica() string {
	if c.ReplicaName != "" {
		return c.ReplicaName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	_, port, _ := net.SplitHostPort(c.HTTPSListen)
	name := host + ":" + port
	if validReplicaName(name) != nil {
		// A host name past the bound (or odd): keep its end, which with
		// the port tells replicas apart.
		r := []rune(strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return '_'
		}, name))
		name = string(r[max(0, len(r)-MaxReplicaName):])
	}
	return name
}

// validReplicaName checks a replica name: 1 to MaxReplicaName printable
// characters.
func validReplicaName(name string) error {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxReplicaName || !utf8.ValidString(name) {
		return fmt.Errorf("%d characters: want 1 to %d printable characters (it names this replica in `jobs list`)", n, MaxReplicaName)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("character %U is not printable: want 1 to %d printable characters", r, MaxReplicaName)
		}
	}
	return nil
}

// ErrInvalid marks a configuration error; the message names the field.
var ErrInvalid = errors.New("config: invalid configuration")

func invalid(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Validate checks a defaulted configuration. A refused setting is a
// *FieldError naming, when the setting came from a file, its line.
func (c *Config) Validate() error {
	err := c.validate()
	var fe *FieldError
	if errors.As(err, &fe) {
		c.src.locate(fe)
	}
	return err
}

func (c *Config) validate() error {
	for field, addr := range map[string]string{"https_listen": c.HTTPSListen, "http_listen": c.HTTPListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return invalid(field, "%q is not host:port", addr)
		}
	}
	if err := ValidatePublicHTTPURL(c.PublicHTTPURL); err != nil {
		return err
	}
	if c.ReplicaName != "" {
		if err := validReplicaName(c.ReplicaName); err != nil {
			return invalid("replica_name", "%v", err)
		}
	}
	if err := ValidateTLSNames(c.TLSNames); err != nil {
		return err
	}
	if err := ValidateOrganization(c.Init.Organization); err != nil {
		return err
	}
	if err := validKEKFile(c.KEKFile); err != nil {
		return invalid("kek_file", "%v", err)
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") && !strings.HasPrefix(c.DB, "sqlite:") {
		return invalid("db", "want postgres://..., postgresql://... or sqlite:PATH")
	}
	if c.RestoreWindowDays < 7 || c.RestoreWindowDays > 30 {
		return invalid("restore_window_days", "%d: want 7 to 30", c.RestoreWindowDays)
	}
	if c.TLSValidityDays < 1 || c.TLSValidityDays > 397 {
		return invalid("tls_validity_days", "%d: want 1 to 397", c.TLSValidityDays)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		return invalid("max_body_bytes", "%d: want 1 KiB to 64 MiB", c.MaxBodyBytes)
	}
	if d, err := inventory.ParseWindow(c.StoreTimeout); err != nil || d < 100*time.Millisecond || d > time.Minute {
		return invalid("store_timeout", "%q: want a duration from 100ms to 1m, like 5s", c.StoreTimeout)
	}
	if d, err := time.ParseDuration(c.ShutdownDelay); c.ShutdownDelay != "" && (err != nil || d < 0 || d > 5*time.Minute) {
		return invalid("shutdown_delay", "%q: want a duration from 0s to 5m, like 5s", c.ShutdownDelay)
	}
	if err := c.Revocation.validate(); err != nil {
		return err
	}
	if n := c.Audit.CheckpointEvents; n < 1 || n > 1_000_000 {
		return invalid("audit.checkpoint_events", "%d: want 1 to 1000000", n)
	}
	if d, err := inventory.ParseWindow(c.Audit.CheckpointInterval); err != nil {
		return invalid("audit.checkpoint_interval", "%v", err)
	} else if d < time.Second || d > 24*time.Hour {
		return invalid("audit.checkpoint_interval", "%s: want 1s to 24h", c.Audit.CheckpointInterval)
	}
	if err := checkDuration("audit.verify_interval", c.Audit.VerifyInterval, time.Minute, 7*24*time.Hour); err != nil {
		return err
	}
	if r := c.Audit.UnauthenticatedPerSecond; !(r >= 0.01 && r <= 1e6) {
		return invalid("audit.unauthenticated_per_second", "%v: want 0.01 to 1000000", r)
	}
	if n := c.Audit.UnauthenticatedBurst; n < 1 || n > 1_000_000 {
		return invalid("audit.unauthenticated_burst", "%d: want 1 to 1000000", n)
	}
	if d, err := inventory.ParseWindow(c.Approval.RequestLifetime); err != nil {
		return invalid("approval.request_lifetime", "%v", err)
	} else if d < time.Minute || d > 30*24*time.Hour {
		return invalid("approval.request_lifetime", "%s: want 1m to 30d", c.Approval.RequestLifetime)
	}
	idle, err := inventory.ParseWindow(c.Console.IdleTimeout)
	if err != nil {
		return invalid("console.idle_timeout", "%v", err)
	} else if idle < time.Minute || idle > 24*time.Hour {
		return invalid("console.idle_timeout", "%s: want 1m to 24h", c.Console.IdleTimeout)
	}
	if d, err := inventory.ParseWindow(c.Console.MaxAge); err != nil {
		return invalid("console.max_age", "%v", err)
	} else if d < 5*time.Minute || d > 30*24*time.Hour {
		return invalid("console.max_age", "%s: want 5m to 30d", c.Console.MaxAge)
	} else if d < idle {
		return invalid("console.max_age", "%s is shorter than console.idle_timeout (%s): a session would never reach its idle timeout", c.Console.MaxAge, c.Console.IdleTimeout)
	}
	if err := c.ACME.validate(); err != nil {
		return err
	}
	if err := c.validateScan(); err != nil {
		return err
	}
	if err := c.validateLifecycle(); err != nil {
		return err
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if err := c.Keys.validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return invalid("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	for _, k := range []struct{ field, v string }{{"init.root_key", c.Init.RootKey}, {"init.issuing_key", c.Init.IssuingKey}} {
		if _, err := pki.ParseKeyAlgorithm(k.v); err != nil {
			return invalid(k.field, "%v", err)
		}
	}
	if c.Init.RootValidityDays <= c.Init.IssuingValidityDays {
		return invalid("init.issuing_validity_days", "%d must be shorter than the root's %d", c.Init.IssuingValidityDays, c.Init.RootValidityDays)
	}
	return nil
}

// ValidatePublicHTTPURL checks a public_http_url value.
func ValidatePublicHTTPURL(s string) error {
	u, err := url.Parse(s)
	// The URL is the prefix of every CRL, OCSP and caIssuers URL: anything
	// beyond scheme, host and port would corrupt them, and a wildcard listen
	// address (the default's source) is not a host relying parties can reach.
	if err != nil || u.Scheme != "http" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return invalid("public_http_url", "%q must be http://host[:port] (revocation data is served over plain HTTP)", s)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		return invalid("public_http_url", "%q names no host: set it to the address relying parties use to reach this server", s)
	}
	return nil
}

// MaxTLSNames bounds tls_names.
const MaxTLSNames = 100

// ValidateTLSNames checks tls_names: host names or IP addresses, at least one.
func ValidateTLSNames(names []string) error {
	if len(names) == 0 || len(names) > MaxTLSNames {
		return invalid("tls_names", "%d names: want 1 to %d host names or IP addresses", len(names), MaxTLSNames)
	}
	for _, n := range names {
		if net.ParseIP(n) != nil {
			continue
		}
		if p := profile.HostNameProblem(n); p != "" {
			return invalid("tls_names", "%q: %s (want a host name such as pki.example.internal or an IP address)", n, p)
		}
	}
	return nil
}

// MaxOrganization is the upper bound X.520 sets on an organisation name.
const MaxOrganization = 64

// ValidateOrganization checks init.organization, which goes into the CA
// subjects: 1 to 64 printable characters.
func ValidateOrganization(s string) error {
	if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > MaxOrganization {
		return invalid("init.organization", "%q: want 1 to %d characters", s, MaxOrganization)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return invalid("init.organization", "%q: control or non-printable character %U", s, r)
		}
	}
	return nil
}

func (a *ACMEConfig) validate() error {
	if a.BaseURL != "" {
		u, err := url.Parse(a.BaseURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return invalid("acme.base_url", "%q must be https://host[:port]", a.BaseURL)
		}
		a.BaseURL = strings.TrimSuffix(a.BaseURL, "/")
	}
	for field, p := range map[string]int{"acme.http01_port": a.HTTP01Port, "acme.tls_alpn01_port": a.TLSALPN01Port} {
		if p < 1 || p > 65535 {
			return invalid(field, "%d is not a port", p)
		}
	}
	if a.Resolver != "" {
		if _, port, err := net.SplitHostPort(a.Resolver); err != nil || port == "" {
			return invalid("acme.resolver", "%q is not host:port (for example 127.0.0.1:53)", a.Resolver)
		}
	}
	for _, s := range a.DenyValidation {
		if _, err := netip.ParsePrefix(s); err != nil {
			return invalid("acme.deny_validation", "%q is not a CIDR range such as 10.0.0.0/8", s)
		}
	}
	for _, d := range []struct {
		field, v string
		min, max time.Duration
	}{
		{"acme.validation_timeout", a.ValidationTimeout, time.Second, 5 * time.Minute},
		{"acme.order_lifetime", a.OrderLifetime, time.Hour, 30 * 24 * time.Hour},
		{"acme.valid_authz_lifetime", a.ValidAuthzLifetime, time.Hour, 90 * 24 * time.Hour},
	} {
		v, err := inventory.ParseWindow(d.v)
		if err != nil {
			return invalid(d.field, "%v", err)
		}
		if v < d.min || v > d.max {
			return invalid(d.field, "%s: want %s to %s", d.v, inventory.FormatWindow(d.min), inventory.FormatWindow(d.max))
		}
	}
	for field, n := range map[string]int{
		"acme.workers": a.Workers, "acme.orders_per_hour": a.OrdersPerHour, "acme.accounts_per_hour": a.AccountsPerHour,
		"acme.failed_validations_per_hour": a.FailedValidationsPerHour, "acme.pending_authorizations": a.PendingAuthorizations,
	} {
		if n < 1 || n > 1_000_000 {
			return invalid(field, "%d: want 1 to 1000000", n)
		}
	}
	if a.Workers > 256 {
		return invalid("acme.workers", "%d: at most 256", a.Workers)
	}
	if n := a.SourceValidationsInFlight; n < 1 || n > MaxValidationsQueued {
		return invalid("acme.source_validations_in_flight", "%d: want 1 to %d (the validation queue's size); leave it out for the default 200", n, MaxValidationsQueued)
	}
	for _, q := range []struct {
		field string
		n     int
	}{{"acme.validations_in_flight", a.ValidationsInFlight}, {"acme.target_validations_in_flight", a.TargetValidationsInFlight}} {
		if q.n < 1 || q.n > MaxValidationsQueued {
			return invalid(q.field, "%d: want 1 to %d (the validation queue's size); leave it out for the default 100", q.n, MaxValidationsQueued)
		}
	}
	for _, r := range []struct {
		field string
		n     int
	}{{"acme.concurrent_validations", a.ConcurrentValidations}, {"acme.target_concurrency", a.TargetConcurrency}} {
		if r.n < 1 || r.n > a.Workers {
			return invalid(r.field, "%d: want 1 to acme.workers (%d): validations running at once cannot exceed the workers; leave it out for the default", r.n, a.Workers)
		}
	}
	return nil
}

// MaxFileSize bounds the configuration file.
const MaxFileSize = 64 << 10

// Load reads DIR/config.yaml when it exists into c (strict: unknown fields
// are errors). A missing file is not an error.
func (c *Config) Load(path string) error {
	_, err := c.load(path)
	return err
}

// load is Load, also saying whether the file exists.
func (c *Config) load(path string) (found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("config: %w", err)
	}
	if len(b) > MaxFileSize {
		return true, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, path, MaxFileSize)
	}
	return true, c.Decode(b, path)
}

// ReadFile reads the configuration file at path strictly (a missing file
// is an error here), fills the defaults and validates it, as serve would
// at start or on reload. dataDir is the data directory the file's
// relative paths belong to.
func ReadFile(path, dataDir string) (*Config, error) {
	c := &Config{DataDir: dataDir}
	found, err := c.load(path)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("config: %s: %w", path, os.ErrNotExist)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Save writes the persistent part of c to DIR/config.yaml (0600: it may hold a database URL with a password).
func (c *Config) Save() error {
	b, err := c.encode()
	if err != nil {
		return err
	}
	path := filepath.Join(c.DataDir, FileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("config: write %s: %w", path, err)
	}
	return nil
}

// Replace writes the persistent part of c over the file at path (0600),
// atomically: a crash leaves the old file or the new one.
func (c *Config) Replace(path string) error {
	b, err := c.encode()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func (c *Config) encode() ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	head := []byte("# Certwright configuration, written at init. Flags override it.\n")
	return append(head, b...), nil
}

func (r RevocationConfig) validate() error {
	limits := []struct {
		field, v string
		lo, hi   time.Duration
	}{
		{"revocation.crl_lifetime", r.CRLLifetime, time.Hour, 90 * 24 * time.Hour},
		{"revocation.ocsp_response_lifetime", r.OCSPLifetime, 10 * time.Minute, 7 * 24 * time.Hour},
		{"revocation.ocsp_responder_lifetime", r.ResponderLifetime, 2 * time.Hour, 90 * 24 * time.Hour},
	}
	for _, l := range limits {
		d, err := inventory.ParseWindow(l.v)
		if err != nil {
			return invalid(l.field, "%v", err)
		}
		if d < l.lo || d > l.hi {
			return invalid(l.field, "%s: want %s to %s", l.v, inventory.FormatWindow(l.lo), inventory.FormatWindow(l.hi))
		}
	}
	_, resp, responder := r.Durations()
	if responder < 2*resp {
		return invalid("revocation.ocsp_responder_lifetime", "%s must be at least twice ocsp_response_lifetime (%s): responses may not outlive the certificate that signs them", r.ResponderLifetime, r.OCSPLifetime)
	}
	if r.OCSPCacheEntries < 1000 || r.OCSPCacheEntries > 50_000_000 {
		return invalid("revocation.ocsp_cache_entries", "%d: want 1000 to 50000000", r.OCSPCacheEntries)
	}
	if r.OCSPUnknownPerSecond < 1 || r.OCSPUnknownPerSecond > 1_000_000 {
		return invalid("revocation.ocsp_unknown_per_second", "%d: want 1 to 1000000", r.OCSPUnknownPerSecond)
	}
	if r.PublicRateLimit != -1 && (r.PublicRateLimit < 1 || r.PublicRateLimit > 1_000_000) {
		return invalid("revocation.public_rate_limit", "%d: want 1 to 1000000 requests per second per source, or -1 for no limit", r.PublicRateLimit)
	}
	return nil
}

// validKEKFile checks the shape of kek_file (the file itself, its mode
// 0600 included, is checked when the KEK is loaded).
func validKEKFile(p string) error {
	switch base := filepath.Base(p); {
	case p == "":
		return nil
	case strings.TrimSpace(p) != p || strings.ContainsRune(p, 0):
		return fmt.Errorf("%q: a file path without surrounding spaces", p)
	case strings.HasSuffix(p, "/") || base == "." || base == "..":
		return fmt.Errorf("%q names a directory, not the KEK file", p)
	}
	return nil
}
