package scep

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/gencache"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// Config holds the service's settings.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Rand is the source of IDs, salts and challenges; nil: crypto/rand.
	Rand io.Reader
	// RAName is the DNS name or IP address in RA certificates (the
	// server's first TLS name): the RA is this server.
	RAName string
	// RAProfile is the profile RA certificates are issued under
	// ("web_server": RSA keys get keyEncipherment, which SCEP needs).
	RAProfile string
	// ChallengeTTL is a dynamic challenge's default lifetime (1h);
	// MaxChallengeTTL bounds what an operator may ask for (7 days).
	ChallengeTTL, MaxChallengeTTL time.Duration
	// Refusals counts the requests refused before a device proved a
	// challenge or a certificate, one audit event per source and minute
	// (audit.RefusalCounter): nothing is written per such request.
	Refusals Refusals
	// MaxPending bounds the requests of one provisioner waiting for
	// approval (0: DefaultMaxPending).
	MaxPending int
	// Revoker revokes an RA certificate a create or rotation issued but
	// could not store, because another server's create or rotation of
	// the same provisioner committed first.
	Revoker Revoker
}

// Revoker revokes certificates (revoke.Service).
type Revoker interface {
	Revoke(ctx context.Context, req revoke.Request) (*inventory.Revocation, bool, error)
}

// DefaultMaxPending is how many requests of one provisioner may wait for
// approval at once: past it a request that would be held is refused, so
// that devices holding a challenge (or a static one shared by a fleet)
// cannot fill the approvers' queue and the store without bound.
const DefaultMaxPending = 1000

// Refusals counts refused anonymous requests (audit.RefusalCounter).
type Refusals interface {
	Add(r audit.Refusal)
}

// Service runs SCEP provisioners and enrolments.
type Service struct {
	cfg      Config
	store    Store
	issuer   Issuer
	profiles Profiles
	keys     Keys

	// ras caches each provisioner's RA certificate and key, by the RA
	// certificate's serial (which changes when the RA is replaced).
	mu  sync.Mutex
	ras map[string]*ra
	// warned throttles the warnings of refusals anyone can provoke
	// (refuseLegacy, queueFull).
	warned throttle
	// raMu serialises CreateProvisioner from its name checks to its
	// insert, and RotateRA from its read to its update: neither issues an
	// RA certificate that a concurrent one makes useless.
	raMu sync.Mutex

	// provisioners and principals cache what every device request reads
	// first (a provisioner by name, its principal by ID) under the
	// store's access generation and for less than CacheMaxAge
	// (gencache): a change made here takes effect on the next request,
	// one another replica made within that age.
	provisioners *gencache.Cache[*Provisioner]
	principals   *gencache.Cache[*authz.Principal]
}

// CacheMaxAge bounds how long a cached provisioner or principal is used
// when no change was announced (a replica whose notifications are lost).
const CacheMaxAge = time.Second

// cacheSize bounds the provisioners (and principals) cached.
const cacheSize = 1024

// cloneProvisioner copies p, so no caller shares the cached one.
func cloneProvisioner(p *Provisioner) *Provisioner {
	c := *p
	c.StaticSalt, c.StaticHash = slices.Clone(p.StaticSalt), slices.Clone(p.StaticHash)
	return &c
}

// ra is a provisioner's registration authority: what signs CertReps and
// decrypts the requests devices encrypt to it.
type ra struct {
	cert  *x509.Certificate
	key   crypto.Decrypter
	chain []*x509.Certificate // the CA chain above the RA, nearest first
	// unusable, when set, is why the RA certificate may not be used
	// (revoked, expired): the entry holds no key then.
	unusable string
}

// New wires the service; every dependency is required.
func New(cfg Config, st Store, iss Issuer, profiles Profiles, k Keys) (*Service, error) {
	if cfg.Clock == nil || cfg.Log == nil || cfg.Refusals == nil || cfg.Revoker == nil || st == nil || iss == nil || profiles == nil || k == nil {
		return nil, errors.New("scep: clock, logger, refusal counter, revoker, store, issuer, profiles and keys are required")
	}
	if cfg.RAName == "" {
		return nil, errors.New("scep: the RA certificate's name (the server's TLS name) is required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.RAProfile == "" {
		cfg.RAProfile = "web_server"
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = time.Hour
	}
	if cfg.MaxChallengeTTL <= 0 {
		cfg.MaxChallengeTTL = 7 * 24 * time.Hour
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	return &Service{cfg: cfg, store: st, issuer: iss, profiles: profiles, keys: k, ras: map[string]*ra{},
		provisioners: gencache.New(CacheMaxAge, cacheSize, cloneProvisioner),
		principals:   gencache.New[*authz.Principal](CacheMaxAge, cacheSize, nil)}, nil
}

var provisionerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Static challenge secrets: long enough that the stored salted hash
// cannot be brute-forced, short enough to fit a device profile.
const (
	minStaticSecret = 16
	maxStaticSecret = 255
)

// ProvisionerSpec describes a provisioner to create.
type ProvisionerSpec struct {
	Name      string
	CA        string // ID or name
	Profile   string
	Challenge string // static | dynamic
	// StaticSecret is the static challenge (static mode only), read by the
	// caller from a file; only its salted hash is stored.
	StaticSecret []byte
	// AllowLegacyCrypto: see Provisioner.
	AllowLegacyCrypto bool
}

func (s *Service) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("scep: random: %w", err)
	}
	return b, nil
}

func (s *Service) randomID(prefix string) (string, error) {
	b, err := s.random(9)
	if err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// staticHash is how a static secret is stored.
func staticHash(salt, secret []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(secret)
	return h.Sum(nil)
}

func (s *Service) setStatic(p *Provisioner, secret []byte) error {
	if len(secret) < minStaticSecret || len(secret) > maxStaticSecret {
		return invalid("the static challenge has %d bytes; use %d to %d (for example: head -c 24 /dev/urandom | base64 > FILE)", len(secret), minStaticSecret, maxStaticSecret)
	}
	for _, c := range secret {
		if c < 0x20 || c > 0x7e {
			return invalid("the static challenge must be printable ASCII on one line (devices send it as a PrintableString or UTF8String)")
		}
	}
	salt, err := s.random(16)
	if err != nil {
		return err
	}
	p.StaticSalt, p.StaticHash = salt, staticHash(salt, secret)
	return nil
}

// CreateProvisioner creates a SCEP endpoint with its RA certificate and
// the machine principal "scep:NAME" its enrolments act as (role issuer,
// scoped to the CA and profile). It needs ca:manage over the CA.
func (s *Service) CreateProvisioner(ctx context.Context, p authz.Principal, spec ProvisionerSpec) (*Provisioner, error) {
	if !provisionerName.MatchString(spec.Name) {
		return nil, invalid("provisioner name %q: use 1-63 lowercase letters, digits, '-' or '_' (it is part of the URL /scep/NAME)", spec.Name)
	}
	if spec.CA == "" || spec.Profile == "" {
		return nil, invalid("a SCEP provisioner needs a CA (--ca) and a profile (--profile)")
	}
	c, err := s.store.GetCA(ctx, spec.CA)
	if err != nil {
		return nil, fmt.Errorf("scep: %w", err)
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return nil, err
	}
	if c.Status != ca.StatusActive {
		return nil, invalid("CA %s is %s; SCEP can issue from an active CA only", c.Name, c.Status)
	}
	prof, err := s.profiles.Get(ctx, spec.Profile)
	if err != nil {
		return nil, fmt.Errorf("scep: profile %q: %w", spec.Profile, err)
	}
	prov := &Provisioner{Name: spec.Name, CAID: c.ID, CAName: c.Name, Profile: prof.Name, Challenge: spec.Challenge,
		AllowLegacyCrypto: spec.AllowLegacyCrypto}
	switch spec.Challenge {
	case ChallengeStatic:
		if err := s.setStatic(prov, spec.StaticSecret); err != nil {
			return nil, err
		}
	case ChallengeDynamic:
		if len(spec.StaticSecret) > 0 {
			return nil, invalid("a static challenge file was given for a dynamic provisioner; drop --challenge-file or use --challenge static")
		}
	default:
		return nil, invalid("challenge %q: use static (a secret file shared by every device) or dynamic (one-time challenges from certwright scep challenge)", spec.Challenge)
	}
	// The names are checked before the RA certificate is issued, and
	// creates are serialised from the check to the insert, so that a
	// create refused for its name leaves no RA certificate (and key)
	// behind.
	s.raMu.Lock()
	defer s.raMu.Unlock()
	if err := s.namesFree(ctx, spec.Name); err != nil {
		return nil, err
	}
	if prov.ID, err = s.randomID("scep_"); err != nil {
		return nil, err
	}
	if err := s.issueRA(ctx, p, prov); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now().UTC()
	prov.CreatedAt, prov.CreatedBy = now, p.Name
	prov.PrincipalID, prov.PrincipalName = "scep_"+prov.ID[len("scep_"):], "scep:"+prov.Name
	rec := &authz.PrincipalRecord{
		ID: prov.PrincipalID, Name: prov.PrincipalName, Kind: authz.KindMachine,
		Description: "SCEP provisioner " + prov.Name + ": devices enrol as this principal", CreatedAt: now, CreatedBy: p.Name,
	}
	role, _ := authz.BuiltinRole(authz.RoleIssuer)
	b := &authz.Binding{
		ID: "b" + prov.ID, PrincipalID: prov.PrincipalID, Principal: prov.PrincipalName, Role: role,
		Scope:     authz.Scope{CAs: []string{c.ID}, Profiles: []string{prof.Name}},
		CreatedAt: now, CreatedBy: p.Name, Source: "scep:" + prov.ID,
	}
	ev := audit.New(p, now, "scep.provisioner.create", prov.Name, map[string]any{
		"id": prov.ID, "ca": c.Name, "ca_id": c.ID, "profile": prof.Name, "challenge": prov.Challenge,
		"principal": prov.PrincipalName, "ra_serial": prov.RASerial, "allow_legacy_crypto": prov.AllowLegacyCrypto,
	})
	if err := s.store.CreateSCEPProvisioner(ctx, prov, rec, b, ev); err != nil {
		s.discardRA(ctx, p, prov, err)
		return nil, fmt.Errorf("scep: create provisioner %s: %w", prov.Name, err)
	}
	s.cfg.Log.Info("scep provisioner created", "name", prov.Name, "ca", c.Name, "profile", prof.Name, "by", p.Name)
	return prov, nil
}

// namesFree checks that neither a provisioner nor a principal has the
// names a provisioner called name would take.
func (s *Service) namesFree(ctx context.Context, name string) error {
	if _, err := s.store.GetSCEPProvisioner(ctx, name); err == nil {
		return fmt.Errorf("%w: SCEP provisioner %q exists", ErrConflict, name)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	principal := "scep:" + name
	if _, err := s.store.GetPrincipal(ctx, principal); err == nil {
		return fmt.Errorf("%w: principal %q exists (kept from a deleted SCEP provisioner, whose certificates name it, or made by hand); choose another provisioner name", ErrConflict, principal)
	} else if !errors.Is(err, authz.ErrNotFound) {
		return err
	}
	return nil
}

// issueRA issues prov a new RA certificate and sets its serial and
// fingerprint. The RA certificate comes from the provisioner's CA through
// the one issuance path, as the server's own (its key stays wrapped,
// never exported), so that devices that check it chain it to the CA.
func (s *Service) issueRA(ctx context.Context, p authz.Principal, prov *Provisioner) error {
	raReq := issue.Request{
		Principal: withRequest(authz.System(), p), CA: prov.CAID, Profile: s.cfg.RAProfile,
		KeyAlgorithm: pki.RSA2048, Subject: pkix.Name{CommonName: s.cfg.RAName}, RetainKey: true,
		Tags: []string{"scep-ra", "scep:" + prov.Name},
	}
	if ip := net.ParseIP(s.cfg.RAName); ip != nil {
		raReq.IPAddresses = []net.IP{ip}
	} else {
		raReq.DNSNames = []string{s.cfg.RAName}
	}
	res, err := s.issuer.Issue(ctx, raReq)
	if err != nil {
		return fmt.Errorf("scep: issue the RA certificate of %s: %w", prov.Name, err)
	}
	if res.Pending != nil {
		return invalid("profile %s requires approval; the RA certificate cannot wait for it", s.cfg.RAProfile)
	}
	prov.RASerial = res.Cert.Serial
	fp := sha256.Sum256(res.Leaf.Raw)
	prov.RASHA256 = hex.EncodeToString(fp[:])
	return nil
}

// discardRA revokes prov's RA certificate (prov.RASerial), issued by a
// create or rotation whose write failed with err: most often another
// server's create or rotation of the same provisioner committed first
// (names and rotations are serialised on one server, not between
// servers). Left valid, it would be a certificate for the server's name
// whose key the server keeps, serving no one. An error other than a
// conflict may come after the write committed (a connection lost during
// COMMIT): the RA is revoked then only if the provisioner, read again,
// does not hold it, and not at all when it cannot be read; a failure to
// revoke is logged for the operator with the command that revokes it.
func (s *Service) discardRA(ctx context.Context, p authz.Principal, prov *Provisioner, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
	defer cancel()
	if !errors.Is(err, ErrConflict) {
		cur, rerr := s.store.GetSCEPProvisioner(ctx, prov.ID)
		switch {
		case rerr == nil && cur.ID == prov.ID && cur.RASerial == prov.RASerial:
			return // stored after all: it serves the provisioner
		case rerr != nil && !errors.Is(rerr, ErrNotFound):
			s.cfg.Log.Error("scep: an RA certificate was issued, and whether it was stored is unknown; revoke it if provisioner "+prov.Name+" does not serve it",
				"provisioner", prov.Name, "ra_serial", prov.RASerial, "write_err", err, "read_err", rerr,
				"fix", "certwright scep show "+prov.Name+"; certwright cert revoke "+prov.RASerial+" --reason cessation_of_operation")
			return
		}
	}
	s.revokeRA(ctx, p, prov, "RA certificate issued but not stored: "+err.Error())
}

// discardTimeout bounds discardRA, which runs while creates and
// rotations on this server wait for it.
const discardTimeout = 30 * time.Second

// revokeRA revokes prov's RA certificate as cessation_of_operation, as
// the system on behalf of p (named in the event), saying why; a failure
// is logged with the command that revokes it.
func (s *Service) revokeRA(ctx context.Context, p authz.Principal, prov *Provisioner, why string) {
	_, _, err := s.cfg.Revoker.Revoke(ctx, revoke.Request{
		Principal: withRequest(authz.System(), p), Serial: prov.RASerial, Reason: pki.ReasonCessationOfOperation,
		Details: map[string]any{"scep_provisioner": prov.Name, "requested_by": p.Name, "why": why},
	})
	if err != nil {
		s.cfg.Log.Error("scep: revoke an RA certificate no provisioner serves",
			"provisioner", prov.Name, "ra_serial", prov.RASerial, "why", why, "err", err,
			"fix", "certwright cert revoke "+prov.RASerial+" --reason cessation_of_operation")
		return
	}
	s.cfg.Log.Info("scep RA certificate revoked: no provisioner serves it", "provisioner", prov.Name, "ra_serial", prov.RASerial, "why", why)
}

// RotateRA issues provisioner name a new RA certificate and serves it
// from now on; it needs ca:manage over its CA. The provisioner, its
// principal and the certificates it issued stay, so devices renew with
// RenewalReq as before (after fetching the new RA with GetCACert; those
// that pin the RA's fingerprint need the new one). The old RA
// certificate is not revoked: revoke it with cert revoke if its key is
// compromised.
func (s *Service) RotateRA(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	// Serialised with creates: rotations on this server follow each
	// other, each from the RA the last one stored; the store's guard on
	// the RA read decides between servers.
	s.raMu.Lock()
	defer s.raMu.Unlock()
	prov, err := s.managed(ctx, p, name)
	if err != nil {
		return nil, err
	}
	old, oldSHA := prov.RASerial, prov.RASHA256
	if err := s.issueRA(ctx, p, prov); err != nil {
		return nil, err
	}
	ev := audit.New(p, s.cfg.Clock.Now().UTC(), "scep.ra.rotate", prov.Name, map[string]any{
		"id": prov.ID, "old_ra_serial": old, "old_ra_sha256": oldSHA, "ra_serial": prov.RASerial, "ra_sha256": prov.RASHA256,
	})
	// Only the RA is written: a disable or switch committed while the
	// RA was issued stays.
	if err := s.store.SetSCEPProvisionerRA(ctx, prov, old, ev); err != nil {
		s.discardRA(ctx, p, prov, err)
		return nil, fmt.Errorf("scep: rotate the RA of %s: %w", prov.Name, err)
	}
	s.mu.Lock()
	delete(s.ras, old)
	s.mu.Unlock()
	s.cfg.Log.Info("scep RA rotated", "provisioner", prov.Name, "old_ra_serial", old, "ra_serial", prov.RASerial, "by", p.Name)
	if cur, err := s.byName(ctx, prov.Name); err == nil && cur.RASerial == prov.RASerial {
		return cur, nil // with what changed meanwhile
	}
	return prov, nil
}

// RAExpiry returns when provisioner prov's RA certificate expires.
func (s *Service) RAExpiry(ctx context.Context, prov *Provisioner) (time.Time, error) {
	rec, err := s.store.GetCertificate(ctx, prov.RASerial)
	if err != nil {
		return time.Time{}, fmt.Errorf("scep: RA certificate of %s: %w", prov.Name, err)
	}
	return rec.NotAfter, nil
}

// withRequest is who with the source and request ID of the request p
// made: the server acts on an operator's behalf, traceably.
func withRequest(who, p authz.Principal) authz.Principal {
	who.Source, who.RequestID = p.Source, p.RequestID
	return who
}

// ListProvisioners lists the provisioners on CAs p may read (ca:read).
func (s *Service) ListProvisioners(ctx context.Context, p authz.Principal) ([]*Provisioner, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: listing SCEP provisioners needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	all, err := s.store.ListSCEPProvisioners(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(prov *Provisioner) bool { return !canRead(p, prov) }), nil
}

// canRead reports whether p may read prov: ca:read over its CA.
func canRead(p authz.Principal, prov *Provisioner) bool {
	return p.Allow(authz.PermCARead, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}) == nil
}

// GetProvisioner returns one provisioner by name; it needs ca:read over
// its CA.
func (s *Service) GetProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: reading SCEP provisioners needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	return s.readable(ctx, p, name)
}

// readable returns provisioner name if p may read it. An unknown name,
// or one p may not read, is ErrNotFound naming the provisioners p may
// read and no other.
func (s *Service) readable(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	prov, err := s.byName(ctx, name)
	if err == nil && canRead(p, prov) {
		return prov, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	all, err := s.ListProvisioners(ctx, p)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: no SCEP provisioner %q that you may read; there are none (create one with certwright scep create)", ErrNotFound, name)
	}
	names := make([]string, len(all))
	for i, prov := range all {
		names[i] = prov.Name
	}
	return nil, fmt.Errorf("%w: no SCEP provisioner %q that you may read; those you may read are: %s", ErrNotFound, name, strings.Join(names, ", "))
}

// byName finds a provisioner by its name only (URLs name it).
func (s *Service) byName(ctx context.Context, name string) (*Provisioner, error) {
	prov, err := s.store.GetSCEPProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	if prov.Name != name {
		return nil, fmt.Errorf("%w: SCEP provisioner %q", ErrNotFound, name)
	}
	return prov, nil
}

// managed loads provisioner name for a change by p, who needs ca:manage
// over its CA; one p may not even read is not found.
func (s *Service) managed(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	prov, err := s.byName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err == nil {
		aerr := p.Allow(authz.PermCAManage, authz.Resource{CAID: prov.CAID, CAName: prov.CAName})
		if aerr == nil {
			return prov, nil
		}
		if canRead(p, prov) {
			return nil, aerr
		}
	}
	return s.readable(ctx, p, name)
}

// Update is a change to a provisioner; nil fields stay as they are.
type Update struct {
	Profile *string
	// StaticSecret replaces a static provisioner's challenge.
	StaticSecret []byte
	// Disabled disables (true) or enables (false) the provisioner.
	Disabled *bool
	// AllowLegacyCrypto switches legacy crypto on or off (see Provisioner).
	AllowLegacyCrypto *bool
}

// UpdateProvisioner changes a provisioner's profile, static challenge,
// legacy crypto switch or state; it needs ca:manage over its CA.
func (s *Service) UpdateProvisioner(ctx context.Context, p authz.Principal, name string, u Update) (*Provisioner, error) {
	prov, err := s.managed(ctx, p, name)
	if err != nil {
		return nil, err
	}
	changed := map[string]any{"id": prov.ID}
	if u.Profile != nil {
		prof, err := s.profiles.Get(ctx, *u.Profile)
		if err != nil {
			return nil, fmt.Errorf("scep: profile %q: %w", *u.Profile, err)
		}
		changed["profile"] = map[string]string{"from": prov.Profile, "to": prof.Name}
		prov.Profile = prof.Name
	}
	if u.StaticSecret != nil {
		if prov.Challenge != ChallengeStatic {
			return nil, invalid("provisioner %s uses dynamic challenges; a static challenge file does not apply", prov.Name)
		}
		if err := s.setStatic(prov, u.StaticSecret); err != nil {
			return nil, err
		}
		changed["static_challenge"] = "replaced"
	}
	if u.AllowLegacyCrypto != nil {
		changed["allow_legacy_crypto"] = map[string]bool{"from": prov.AllowLegacyCrypto, "to": *u.AllowLegacyCrypto}
		prov.AllowLegacyCrypto = *u.AllowLegacyCrypto
	}
	now := s.cfg.Clock.Now().UTC()
	action := "scep.provisioner.update"
	if u.Disabled != nil {
		if *u.Disabled {
			prov.DisabledAt, prov.DisabledBy, action = &now, p.Name, "scep.provisioner.disable"
		} else {
			prov.DisabledAt, prov.DisabledBy, action = nil, "", "scep.provisioner.enable"
		}
	}
	if len(changed) == 1 && u.Disabled == nil {
		return nil, invalid("nothing to change: give a profile, a static challenge file, the legacy crypto switch, or disable/enable")
	}
	if err := s.store.UpdateSCEPProvisioner(ctx, prov, prov.RASerial, audit.New(p, now, action, prov.Name, changed)); err != nil {
		return nil, fmt.Errorf("scep: update provisioner %s: %w", prov.Name, err)
	}
	return prov, nil
}

// DeleteProvisioner deletes a provisioner, its challenges and held
// transactions, and disables its principal; it needs ca:manage. Its RA
// certificate, which nothing serves any more, is revoked
// (cessation_of_operation); the certificates it issued stay valid
// (revoke them with cert revoke).
func (s *Service) DeleteProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	prov, err := s.managed(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if !prov.Disabled() {
		return nil, invalid("provisioner %s is enabled; disable it first (certwright scep disable %s)", prov.Name, prov.Name)
	}
	now := s.cfg.Clock.Now().UTC()
	ev := audit.New(p, now, "scep.provisioner.delete", prov.Name, map[string]any{"id": prov.ID, "principal": prov.PrincipalName})
	if err := s.store.DeleteSCEPProvisioner(ctx, prov, now, ev); err != nil {
		return nil, fmt.Errorf("scep: delete provisioner %s: %w", prov.Name, err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
	defer cancel()
	s.revokeRA(rctx, p, prov, "its SCEP provisioner was deleted")
	return prov, nil
}

// maxIdentity bounds a challenge's identity.
const maxIdentity = 253

// NewChallenge is a dynamic challenge as handed out, once.
type NewChallenge struct {
	Challenge string
	ID        string
	Identity  string
	ExpiresAt time.Time
	// RASHA256 is the provisioner's RA fingerprint, for the device to pin.
	RASHA256 string
}

// CreateChallenge makes a one-time challenge for a dynamic provisioner,
// valid for ttl (0: the default) and, when identity is set, only for a
// CSR asking for exactly that name (common name and every subject
// alternative name). It needs
// cert:issue over the provisioner's CA and profile: the challenge lets a
// device obtain such a certificate.
func (s *Service) CreateChallenge(ctx context.Context, p authz.Principal, name string, ttl time.Duration, identity string) (*NewChallenge, error) {
	prov, err := s.byName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCertIssue, authz.Resource{CAID: prov.CAID, CAName: prov.CAName, Profile: prov.Profile}); err != nil {
		return nil, err
	}
	if prov.Challenge != ChallengeDynamic {
		return nil, invalid("provisioner %s uses a static challenge; one-time challenges are for dynamic provisioners", prov.Name)
	}
	if prov.Disabled() {
		return nil, fmt.Errorf("%w: %s", ErrDisabled, prov.Name)
	}
	if ttl == 0 {
		ttl = s.cfg.ChallengeTTL
	}
	if ttl < time.Minute || ttl > s.cfg.MaxChallengeTTL {
		return nil, invalid("ttl %s: use 1m to %s", ttl, s.cfg.MaxChallengeTTL)
	}
	if len(identity) > maxIdentity || !printable(identity) {
		return nil, invalid("identity: use at most %d printable characters", maxIdentity)
	}
	secret, err := s.random(24)
	if err != nil {
		return nil, err
	}
	id, err := s.randomID("sch_")
	if err != nil {
		return nil, err
	}
	challenge := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(challenge))
	now := s.cfg.Clock.Now().UTC()
	c := &OneTime{ID: id, ProvisionerID: prov.ID, Hash: sum[:], Identity: identity, CreatedAt: now, CreatedBy: p.Name, ExpiresAt: now.Add(ttl)}
	ev := audit.New(p, now, "scep.challenge.create", id, map[string]any{"provisioner": prov.Name, "identity": identity, "expires_at": c.ExpiresAt})
	if err := s.store.CreateSCEPChallenge(ctx, c, ev); err != nil {
		return nil, fmt.Errorf("scep: create challenge: %w", err)
	}
	return &NewChallenge{Challenge: challenge, ID: id, Identity: identity, ExpiresAt: c.ExpiresAt, RASHA256: prov.RASHA256}, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
