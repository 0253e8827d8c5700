package acme

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/gencache"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
)

// ErrInvalid marks an operator request that is malformed or breaks a rule.
var ErrInvalid = errors.New("acme: invalid request")

// Issuer is the issuance path ACME finalizes orders through.
type Issuer interface {
	Issue(ctx context.Context, req issue.Request) (*issue.Result, error)
	Chain(ctx context.Context, caID string) ([]*x509.Certificate, error)
}

// Revoker revokes certificates.
type Revoker interface {
	Revoke(ctx context.Context, req revoke.Request) (*inventory.Revocation, bool, error)
}

// Profiles resolves profile names.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
}

// Validator proves control of an identifier. A failure it attributes to the
// client returns an error with an ACMEType() string method naming the ACME
// error type. targets lists what the attempt talked to ("ip:port", or
// the name looked up), for the audit trail.
type Validator interface {
	ValidateAttempt(ctx context.Context, challengeType, identType, value, token, keyAuth string) (targets []string, err error)
}

// EABSealAAD is the additional data an EAB HMAC key with key ID id is
// sealed with: it binds the sealed key to its record. A KEK rotation
// re-seals the keys with the same.
func EABSealAAD(id string) []byte { return []byte("acme-eab:" + id) }

// Sealer encrypts small secrets (EAB HMAC keys) under the key-encryption
// key; aad binds the ciphertext to its record.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Limits bound what one account or address may ask for. Zero fields take
// the defaults in brackets.
type Limits struct {
	// OrdersPerHour is the new orders one account may create per hour (300).
	OrdersPerHour int
	// AccountsPerHour is the new accounts one IP address may register per
	// provisioner per hour (50).
	AccountsPerHour int
	// FailedValidationsPerHour is the failed validations per account per
	// hour after which challenges are refused (60).
	FailedValidationsPerHour int
	// PendingAuthorizations caps an account's pending authorizations (1000).
	PendingAuthorizations int
	// ValidationsInFlight caps an account's challenges waiting for or in
	// validation (100, an order's maximum identifiers); past it a
	// challenge is refused with rateLimited and stays pending.
	ValidationsInFlight int
	// TargetValidationsInFlight caps the challenges waiting for or in
	// validation against one identifier, across accounts (100).
	TargetValidationsInFlight int
	// ConcurrentValidations is how many of one account's validations run at
	// once (a quarter of the workers, at least 1), so that one account's
	// slow targets leave workers free for the others; TargetConcurrency is
	// the same for one identifier (2).
	ConcurrentValidations int
	TargetConcurrency     int
	// SourceValidationsInFlight caps the challenges waiting for or in
	// validation that accounts without external account binding answered
	// from one address (IPv6: one /64), across accounts (200), so that
	// accounts made by the dozen cannot fill the queue. Those accounts
	// together also fill at most three quarters of the queue.
	SourceValidationsInFlight int
}

func (l *Limits) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.OrdersPerHour, 300)
	def(&l.AccountsPerHour, 50)
	def(&l.FailedValidationsPerHour, 60)
	def(&l.PendingAuthorizations, 1000)
	def(&l.ValidationsInFlight, 100)
	def(&l.TargetValidationsInFlight, 100)
	def(&l.SourceValidationsInFlight, 200)
}

// DefaultQueueSize is the validation queue's size when Config.QueueSize
// is zero; config.MaxValidationsQueued must equal it (a test checks).
const DefaultQueueSize = 4096

// Config holds the ACME service's settings; zero durations take the
// defaults in brackets.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Rand is the source of IDs, tokens and nonces; nil means crypto/rand.
	Rand io.Reader
	// NonceLifetime is how long a nonce may be used (1h).
	NonceLifetime time.Duration
	// OrderLifetime is how long an order may take to complete (7 days).
	OrderLifetime time.Duration
	// PendingAuthzLifetime is how long a pending authorization waits
	// for its challenge (7 days); ValidAuthzLifetime is how long a valid
	// one is reused for new orders (30 days).
	PendingAuthzLifetime time.Duration
	ValidAuthzLifetime   time.Duration
	// RenewalInfoRetry is the Retry-After of renewal information (6h).
	RenewalInfoRetry time.Duration
	// Workers validate challenges concurrently (8); QueueSize bounds the
	// challenges waiting for a worker (4096).
	Workers   int
	QueueSize int
	// RespondWait is how long a challenge response waits for the
	// validation it starts to end before answering processing (1s, the
	// Retry-After a processing answer carries); negative: no wait.
	RespondWait time.Duration
	Limits      Limits
	// Replica names this process in the claims it holds on challenges
	// and orders in processing (README "Several replicas"). It should
	// stay the same across restarts and differ between replicas: a
	// replica takes back the claims of its previous life at start-up.
	// Default: the host name.
	Replica string
	// ClaimTimeout is how long a claim holds without an outcome (90s:
	// the validation timeout and a margin); past it any replica takes
	// the work over. SweepInterval is how often each replica looks for
	// such work (5s).
	ClaimTimeout  time.Duration
	SweepInterval time.Duration
}

// Service runs the ACME protocol's state machines.
type Service struct {
	cfg       Config
	store     Store
	issuer    Issuer
	revoker   Revoker
	profiles  Profiles
	validator Validator
	sealer    Sealer

	queue *queue
	// started is when New ran, on cfg.Clock: the start-up sweep takes
	// back this replica's claims taken until then only (Claim.Started).
	started time.Time
	// life begins every claim token of this process (Claim.Life).
	life string

	nonceMu  sync.Mutex
	nonceKey []byte

	// provisioners and accounts cache what requests resolve, under the
	// store's ACME generation (account_cache.go).
	provisioners *gencache.Cache[*Provisioner]
	accounts     *gencache.Cache[*Account]

	// live holds the settings a reload may change.
	live atomic.Pointer[Settings]
}

// provisionerCacheSize bounds the cached provisioners.
const provisionerCacheSize = 1024

// New wires the ACME service; every dependency is required.
func New(cfg Config, st Store, iss Issuer, rv Revoker, profiles Profiles, v Validator, sealer Sealer) (*Service, error) {
	if cfg.Clock == nil || cfg.Log == nil || st == nil || iss == nil || rv == nil || profiles == nil || v == nil || sealer == nil {
		return nil, errors.New("acme: clock, logger, store, issuer, revoker, profiles, validator and sealer are required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defDur(&cfg.NonceLifetime, time.Hour)
	defDur(&cfg.RenewalInfoRetry, 6*time.Hour)
	defDur(&cfg.ClaimTimeout, validationTimeout+30*time.Second)
	defDur(&cfg.SweepInterval, 5*time.Second)
	if cfg.Replica == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "certwright"
		}
		cfg.Replica = host
	}
	if cfg.RespondWait == 0 {
		cfg.RespondWait = time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	set := Settings{
		OrderLifetime: cfg.OrderLifetime, PendingAuthzLifetime: cfg.PendingAuthzLifetime,
		ValidAuthzLifetime: cfg.ValidAuthzLifetime, Limits: cfg.Limits,
	}
	if err := set.normalise(cfg.Workers); err != nil {
		return nil, err
	}
	// The settings live in s.live from now on.
	cfg.OrderLifetime, cfg.PendingAuthzLifetime, cfg.ValidAuthzLifetime, cfg.Limits = 0, 0, 0, Limits{}
	s := &Service{
		cfg: cfg, store: st, issuer: iss, revoker: rv, profiles: profiles, validator: v, sealer: sealer,
		queue:        newQueue(set.queueLimits(cfg.QueueSize)),
		started:      cfg.Clock.Now(),
		life:         rand.Text()[:16] + ".",
		provisioners: gencache.New(AccountCacheMaxAge, provisionerCacheSize, cloneProvisioner),
		accounts:     gencache.New(AccountCacheMaxAge, AccountCacheSize, cloneAccount),
	}
	s.live.Store(&set)
	return s, nil
}

// Settings are the ACME settings a running service can change
// (SetSettings, on a configuration reload): object lifetimes and limits.
// Zero values get the defaults.
type Settings struct {
	OrderLifetime        time.Duration
	PendingAuthzLifetime time.Duration
	ValidAuthzLifetime   time.Duration
	Limits               Limits
}

// normalise fills the defaults; the running-at-once limits default from,
// and may not exceed, workers.
func (set *Settings) normalise(workers int) error {
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defDur(&set.OrderLifetime, 7*24*time.Hour)
	defDur(&set.PendingAuthzLifetime, 7*24*time.Hour)
	defDur(&set.ValidAuthzLifetime, 30*24*time.Hour)
	l := &set.Limits
	l.defaults()
	// The same defaults config applies (config.ACMEConfig), from workers.
	if l.ConcurrentValidations <= 0 {
		l.ConcurrentValidations = max(1, workers/4)
	}
	if l.TargetConcurrency <= 0 {
		l.TargetConcurrency = min(2, workers)
	}
	if l.ConcurrentValidations > workers || l.TargetConcurrency > workers {
		return fmt.Errorf("acme: concurrent validations (%d per account, %d per target) cannot exceed the %d workers", l.ConcurrentValidations, l.TargetConcurrency, workers)
	}
	return nil
}

func (set *Settings) queueLimits(total int) queueLimits {
	l := set.Limits
	return queueLimits{
		total: total, perAccount: l.ValidationsInFlight, perTarget: l.TargetValidationsInFlight,
		runningAccount: l.ConcurrentValidations, runningPerTarget: l.TargetConcurrency,
		perSource: l.SourceValidationsInFlight,
	}
}

// SetSettings replaces the running lifetimes and limits: orders and
// challenges from now on are judged by set (objects already made keep
// their expiry). Invalid settings are refused and the running ones kept.
func (s *Service) SetSettings(set Settings) error {
	if err := set.normalise(s.cfg.Workers); err != nil {
		return err
	}
	s.queue.setLimits(set.queueLimits(s.cfg.QueueSize))
	s.live.Store(&set)
	return nil
}

// settings returns the running settings; callers must not modify them.
func (s *Service) settings() *Settings { return s.live.Load() }

// NonceLifetime is how long a nonce stays usable.
func (s *Service) NonceLifetime() time.Duration { return s.cfg.NonceLifetime }

// Provisioner returns the provisioner named name (an error matching
// ErrNotFound when there is none). It is cached as accounts are
// (AccountCacheMaxAge), except for challenge responses and finalization,
// which always read the provisioner afresh.
func (s *Service) Provisioner(ctx context.Context, name string) (*Provisioner, error) {
	gen, now := s.store.ACMEGeneration(), s.cfg.Clock.Now()
	if p, ok := s.provisioners.Get(name, gen, now); ok {
		return p, nil
	}
	p, err := s.store.GetProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	if p.Name != name { // matched by ID: the directory is addressed by name only
		return nil, fmt.Errorf("acme: provisioner %q: %w", name, ErrNotFound)
	}
	s.provisioners.Put(name, gen, now, p)
	return p, nil
}

// randomID returns n random bytes, base64url-encoded.
func (s *Service) randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("acme: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// orderedID returns the time in Unix milliseconds (6 bytes) then n random
// bytes, base64url-encoded: IDs of orders, authorizations and challenges,
// written several times per order, cluster by creation time in the store's
// indexes (as certificate serials do, pki.NewSerialAt) instead of landing
// on a random page each. The random part alone makes them unguessable.
func (s *Service) orderedID(n int) (string, error) {
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint64(b, uint64(max(s.cfg.Clock.Now().UnixMilli(), 0))<<16)
	if _, err := io.ReadFull(s.cfg.Rand, b[6:]); err != nil {
		return "", fmt.Errorf("acme: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:6+n]), nil
}

// accountName is how an account appears as a requester and in the audit log.
func accountName(prov *Provisioner, acct *Account) string {
	return "acme:" + prov.Name + "/" + acct.ID
}

// principal is the authority an account acts with. An account bound to a
// principal by its EAB key inherits that principal's roles and scopes;
// any other account may issue (cert:issue only) on its provisioner's CA and
// profile; the provisioner's name rules and the challenges bound it further.
func (s *Service) principal(ctx context.Context, prov *Provisioner, acct *Account) (authz.Principal, error) {
	name := accountName(prov, acct)
	if acct.PrincipalID != "" {
		p, rec, err := s.store.LoadPrincipal(ctx, acct.PrincipalID)
		if err != nil {
			return authz.Principal{}, fmt.Errorf("acme: account %s: principal %s: %w", acct.ID, acct.PrincipalID, err)
		}
		if rec != nil && rec.DisabledAt != nil {
			return authz.Principal{}, NewProblem(ErrUnauthorized, "the principal %s this account is bound to is disabled", rec.Name)
		}
		out := *p
		out.Name = name + " (principal " + p.Name + ")"
		out.Auth = "acme"
		return out, nil
	}
	return authz.Principal{
		ID: "acme:" + acct.ID, Name: name, Kind: authz.KindMachine, Auth: "acme",
		Bindings: []authz.Binding{{
			ID: "acme:" + prov.ID, PrincipalID: "acme:" + acct.ID, Principal: name,
			Role:  authz.Role{Name: "acme_account", Description: "ACME account of provisioner " + prov.Name, Permissions: []authz.Permission{authz.PermCertIssue}},
			Scope: authz.Scope{CAs: []string{prov.CAID}, Profiles: []string{prov.Profile}},
		}},
	}, nil
}

// DirectoryURL is where ACME clients find provisioner prov on host (the
// host a request reached, which the server answers on).
func DirectoryURL(host, prov string) string {
	return "https://" + host + "/acme/" + url.PathEscape(prov) + "/directory"
}
