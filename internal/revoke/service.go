package revoke

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// Errors the edge maps to client errors.
var (
	// ErrInvalid marks a revocation request that breaks a rule: an unknown
	// reason, a future invalidity date, an empty selector.
	ErrInvalid = errors.New("revoke: invalid request")
	// ErrNoMatch is returned by bulk revocation when the selector matches
	// no unexpired, unrevoked certificate.
	ErrNoMatch = errors.New("revoke: no certificate matches")
	// ErrForbidden marks a principal not allowed to revoke; it is authz.ErrForbidden.
	ErrForbidden = authz.ErrForbidden
	// ErrNoCA is returned for revocation data of a CA this server does not
	// serve (unknown, purged, or without a certificate yet).
	ErrNoCA = errors.New("revoke: no such CA")
)

// Linter checks a to-be-signed certificate before the real signature (the
// delegated OCSP responder certificates).
type Linter interface {
	Check(tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate, cabf bool) ([]string, error)
}

// Defaults.
const (
	// DefaultCRLLifetime is thisUpdate to nextUpdate of a CRL (the seeds'
	// seven days).
	DefaultCRLLifetime = 7 * 24 * time.Hour
	// DefaultOCSPLifetime is thisUpdate to nextUpdate of an OCSP response.
	DefaultOCSPLifetime = 24 * time.Hour
	// DefaultResponderLifetime is the validity of a delegated OCSP responder
	// certificate. It cannot be revoked (id-pkix-ocsp-nocheck), so it is short.
	DefaultResponderLifetime = 7 * 24 * time.Hour
	// DefaultOCSPCacheEntries bounds the pre-signed response cache per server.
	DefaultOCSPCacheEntries = 1_000_000
	// DefaultCoalesce is how long CRL regeneration waits after a revocation
	// for more to arrive, so that a burst costs one rebuild, not one each.
	DefaultCoalesce = 250 * time.Millisecond
)

// Config holds revocation settings; zero values mean the defaults.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	Rand  io.Reader

	CRLLifetime       time.Duration
	OCSPLifetime      time.Duration
	ResponderLifetime time.Duration
	OCSPCacheEntries  int
	Coalesce          time.Duration
	// OCSPUnknownCacheEntries bounds the signed "unknown" answers kept for
	// never-issued serials (default DefaultOCSPUnknownCacheEntries).
	OCSPUnknownCacheEntries int
	// OCSPUnknownPerSecond is each CA's rate of new "unknown" answers
	// signed; past it such requests get tryLater (default
	// DefaultOCSPUnknownPerSecond).
	OCSPUnknownPerSecond int

	// Observer, when set, hears the outcome of every revocation (metrics).
	Observer Observer
}

// Service records revocations and keeps every CA's CRL and OCSP responses.
type Service struct {
	cfg    Config
	store  Store
	keys   keys.Provider
	linter Linter

	mu      sync.RWMutex // guards cas and dirtyCAs
	signers *keys.SignerCache
	cas     map[string]*caState // by CA ID

	dirtyCAs map[string]bool // CAs whose CRL must be rebuilt (under mu)
	cached   atomic.Int64    // OCSP responses cached across all CAs
	// unknownCached counts the signed "unknown" answers kept (unknown.go).
	unknownCached atomic.Int64
	pass          atomic.Uint64 // pre-signing pass counter

	dirty chan struct{} // a CRL needs regenerating (buffer 1)
	warm  chan string   // a CA whose OCSP responses to pre-sign (buffered)
	// firstPass is closed once Run's first CRL pass has ended (Loaded).
	firstPass     chan struct{}
	firstPassOnce sync.Once

	refreshes freshLog // refresh failures per CA, for Freshness
	live      atomic.Pointer[Timings]
}

// New wires the revocation service. Clock, Log, the store, the key provider
// and the linter are required.
func New(cfg Config, st Store, kp keys.Provider, linter Linter) (*Service, error) {
	if cfg.Clock == nil || cfg.Log == nil || st == nil || kp == nil || linter == nil {
		return nil, errors.New("revoke: clock, logger, store, key provider and linter are required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Coalesce <= 0 {
		cfg.Coalesce = DefaultCoalesce
	}
	if cfg.OCSPUnknownCacheEntries <= 0 {
		cfg.OCSPUnknownCacheEntries = DefaultOCSPUnknownCacheEntries
	}
	t := Timings{
		CRLLifetime: cfg.CRLLifetime, OCSPLifetime: cfg.OCSPLifetime, ResponderLifetime: cfg.ResponderLifetime,
		OCSPCacheEntries: cfg.OCSPCacheEntries, OCSPUnknownPerSecond: cfg.OCSPUnknownPerSecond,
	}
	if err := t.normalise(); err != nil {
		return nil, err
	}
	// The timings live in s.timings from now on.
	cfg.CRLLifetime, cfg.OCSPLifetime, cfg.ResponderLifetime, cfg.OCSPCacheEntries, cfg.OCSPUnknownPerSecond = 0, 0, 0, 0, 0
	s := &Service{
		cfg: cfg, store: st, keys: kp, linter: linter,
		signers:   keys.NewSignerCache(kp),
		cas:       map[string]*caState{},
		dirtyCAs:  map[string]bool{},
		dirty:     make(chan struct{}, 1),
		warm:      make(chan string, 64),
		firstPass: make(chan struct{}),
	}
	s.live.Store(&t)
	return s, nil
}

// Timings are the revocation settings a running service can change
// (SetTimings, on a configuration reload). Zero values mean the defaults.
type Timings struct {
	CRLLifetime       time.Duration
	OCSPLifetime      time.Duration
	ResponderLifetime time.Duration
	OCSPCacheEntries  int
	// OCSPUnknownPerSecond is each CA's rate of new signed "unknown" answers.
	OCSPUnknownPerSecond int
}

// normalise fills the defaults and checks the lifetimes' minimums.
func (t *Timings) normalise() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.CRLLifetime, DefaultCRLLifetime)
	def(&t.OCSPLifetime, DefaultOCSPLifetime)
	def(&t.ResponderLifetime, DefaultResponderLifetime)
	if t.OCSPCacheEntries <= 0 {
		t.OCSPCacheEntries = DefaultOCSPCacheEntries
	}
	if t.OCSPUnknownPerSecond <= 0 {
		t.OCSPUnknownPerSecond = DefaultOCSPUnknownPerSecond
	}
	if t.CRLLifetime < time.Hour {
		return fmt.Errorf("revoke: CRL lifetime %s is below the minimum of 1h", t.CRLLifetime)
	}
	if t.OCSPLifetime < 10*time.Minute {
		return fmt.Errorf("revoke: OCSP response lifetime %s is below the minimum of 10m", t.OCSPLifetime)
	}
	if t.ResponderLifetime < 2*t.OCSPLifetime {
		return fmt.Errorf("revoke: OCSP responder lifetime %s must be at least twice the response lifetime %s", t.ResponderLifetime, t.OCSPLifetime)
	}
	return nil
}

// SetTimings replaces the running timings: CRLs and OCSP responses signed
// from now on, and the refresh schedule, follow t. Invalid timings are
// refused and the running ones kept.
func (s *Service) SetTimings(t Timings) error {
	if err := t.normalise(); err != nil {
		return err
	}
	s.live.Store(&t)
	return nil
}

// timings returns the running timings; callers must not modify them.
func (s *Service) timings() *Timings { return s.live.Load() }

// Request asks for one certificate to be revoked.
type Request struct {
	Principal authz.Principal
	Serial    string
	Reason    pki.Reason
	// InvalidityDate is when the key is known or suspected to have been
	// compromised; zero for none. It may not be in the future.
	InvalidityDate time.Time
	// Details are added to the audit event: why the server revoked the
	// certificate (the token whose sign-in ended). They do not replace
	// the reason, CA or invalidity date.
	Details map[string]any
}

// template checks the parts of a request every kind of revocation shares
// and returns the record to store.
func (s *Service) template(p authz.Principal, reason pki.Reason, invalidity time.Time) (inventory.Revocation, error) {
	if !reason.Valid() {
		return inventory.Revocation{}, fmt.Errorf("%w: revocation reason code %d is not supported (one of %v)", ErrInvalid, int(reason), pki.ReasonNames())
	}
	now := s.cfg.Clock.Now().UTC().Truncate(time.Second)
	if !invalidity.IsZero() {
		invalidity = invalidity.UTC().Truncate(time.Second)
		if invalidity.After(now) {
			return inventory.Revocation{}, fmt.Errorf("%w: invalidity date %s is in the future (now %s)", ErrInvalid, invalidity.Format(time.RFC3339), now.Format(time.RFC3339))
		}
	}
	return inventory.Revocation{RevokedAt: now, Reason: reason, InvalidityDate: invalidity, RevokedBy: p.Name}, nil
}

// Revoke revokes one certificate. Revocation is permanent and idempotent:
// revoking a revoked certificate changes nothing and returns the first
// record with created false. When Revoke returns, OCSP already answers
// revoked; the CA's CRL follows within the coalescing delay.
func (s *Service) Revoke(ctx context.Context, req Request) (rec *inventory.Revocation, created bool, err error) {
	defer func(start time.Time) { s.observe(req.Reason, one(created), start, err) }(time.Now())
	t, err := s.template(req.Principal, req.Reason, req.InvalidityDate)
	if err != nil {
		return nil, false, err
	}
	serial, err := pki.NormalizeSerial(req.Serial)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	t.Serial = serial
	cert, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, false, fmt.Errorf("revoke: certificate %s: %w", serial, err)
	}
	res := authz.Resource{CAID: cert.CAID, Profile: cert.Profile, Names: cert.SANs}
	if c, err := s.store.GetCA(ctx, cert.CAID); err == nil {
		res.CAName = c.Name
	}
	if err := req.Principal.Allow(authz.PermCertRevoke, res); err != nil {
		return nil, false, err
	}
	details := revDetails(&t, res.CAName, "")
	for k, v := range req.Details {
		if _, set := details[k]; !set {
			details[k] = v
		}
	}
	ev := audit.New(req.Principal, t.RevokedAt, "certificate.revoke", serial, details)
	rec, created, err = s.store.RevokeCertificate(ctx, &t, ev)
	if err != nil {
		return nil, false, fmt.Errorf("revoke: certificate %s: %w", serial, err)
	}
	if created {
		s.revoked(ctx, rec.CAID, []*inventory.Revocation{rec})
		s.cfg.Log.Info("certificate revoked", "serial", serial, "ca", rec.CAID, "reason", rec.Reason.String(), "by", rec.RevokedBy)
	}
	return rec, created, nil
}

// BulkRequest asks for every unexpired certificate matching Selector to be
// revoked.
type BulkRequest struct {
	Principal      authz.Principal
	Selector       inventory.Selector
	Reason         pki.Reason
	InvalidityDate time.Time
	// DryRun reports what would be revoked and changes nothing.
	DryRun bool
}

// RevokeMatching revokes, in one transaction, every unexpired and not yet
// revoked certificate the selector matches, and returns the new records.
// A selector that matches nothing is ErrNoMatch.
func (s *Service) RevokeMatching(ctx context.Context, req BulkRequest) (recs []*inventory.Revocation, err error) {
	if !req.DryRun {
		defer func(start time.Time) { s.observe(req.Reason, len(recs), start, err) }(time.Now())
	}
	t, err := s.template(req.Principal, req.Reason, req.InvalidityDate)
	if err != nil {
		return nil, err
	}
	sel := req.Selector
	if sel.Empty() {
		return nil, fmt.Errorf("%w: give at least one selector (CA, profile, SAN or public key)", ErrInvalid)
	}
	res := authz.Resource{Profile: sel.Profile}
	if sel.CAID != "" {
		c, err := s.store.GetCA(ctx, sel.CAID)
		if err != nil {
			return nil, fmt.Errorf("revoke: %w", err)
		}
		sel.CAID = c.ID
		res.CAID, res.CAName = c.ID, c.Name
	}
	// A binding limited to names cannot cover a selector: fail closed.
	if err := req.Principal.Allow(authz.PermCertRevoke, res); err != nil {
		return nil, err
	}
	ev := audit.New(req.Principal, t.RevokedAt, "certificate.revoke", "", revDetails(&t, res.CAName, describe(req.Selector)))
	recs, err = s.store.RevokeMatching(ctx, sel, s.cfg.Clock.Now(), t, req.DryRun, ev)
	if err != nil {
		return nil, fmt.Errorf("revoke: bulk: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w the selector %s", ErrNoMatch, describe(req.Selector))
	}
	if req.DryRun {
		return recs, nil
	}
	byCA := map[string][]*inventory.Revocation{}
	for _, r := range recs {
		byCA[r.CAID] = append(byCA[r.CAID], r)
	}
	for id, rs := range byCA {
		s.revoked(ctx, id, rs)
	}
	s.cfg.Log.Info("bulk revocation", "count", len(recs), "selector", describe(req.Selector), "reason", t.Reason.String(), "by", t.RevokedBy)
	return recs, nil
}

func describe(sel inventory.Selector) string {
	out := ""
	add := func(k, v string) {
		if v != "" {
			if out != "" {
				out += " "
			}
			out += k + "=" + v
		}
	}
	add("ca", sel.CAID)
	add("profile", sel.Profile)
	add("san", sel.SAN)
	add("spki_sha256", sel.SPKISHA256)
	return "(" + out + ")"
}

// CARequest asks for a subordinate CA's own certificate to be revoked.
type CARequest struct {
	Principal authz.Principal
	CA        string // id or name
	// Reason defaults to ca_compromise when zero (unspecified).
	Reason         pki.Reason
	InvalidityDate time.Time
}

// RevokeCA revokes a subordinate CA's certificate: it is listed on its
// parent's CRL and OCSP, and the CA is disabled in the same transaction.
// A root has no issuer here to revoke it, and an externally signed CA's
// certificate belongs to its external issuer: both are refused.
func (s *Service) RevokeCA(ctx context.Context, req CARequest) (rec *inventory.Revocation, created bool, err error) {
	reason := req.Reason
	if reason == pki.ReasonUnspecified {
		reason = pki.ReasonCACompromise
	}
	defer func(start time.Time) { s.observe(reason, one(created), start, err) }(time.Now())
	t, err := s.template(req.Principal, reason, req.InvalidityDate)
	if err != nil {
		return nil, false, err
	}
	c, err := s.store.GetCA(ctx, req.CA)
	if err != nil {
		return nil, false, fmt.Errorf("revoke: %w", err)
	}
	if err := req.Principal.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return nil, false, err
	}
	if c.Kind == ca.KindRoot || c.ParentID == "" {
		what := "a root CA"
		if c.Kind != ca.KindRoot {
			what = "an externally signed CA (revoke it at its issuer)"
		}
		return nil, false, fmt.Errorf("%w: CA %s is %s; only a subordinate CA signed here can be revoked — disable it instead", ErrInvalid, c.Name, what)
	}
	if len(c.CertDER) == 0 {
		return nil, false, fmt.Errorf("%w: CA %s has no certificate to revoke", ErrInvalid, c.Name)
	}
	// An unreadable parent fails the revocation: it may be an offline
	// root, whose CAs are revoked at its ceremony only. A parent that is
	// gone (purged) signs nothing and has no CRL to take it back.
	parent, err := s.store.GetCA(ctx, c.ParentID)
	if err != nil && !errors.Is(err, authz.ErrNotFound) {
		return nil, false, fmt.Errorf("revoke: parent CA %q of CA %s: %w", c.ParentID, c.Name, err)
	}
	if err == nil && parent.Offline() {
		return nil, false, fmt.Errorf("%w: CA %s was signed by the offline root %s: revoke it at the root's ceremony (certwright ceremony crl --revoke SERIAL --reason REASON) and upload that CRL (certwright ca import-crl --ca %s), which revokes and disables it here", ErrInvalid, c.Name, parent.Name, parent.Name)
	}
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, false, fmt.Errorf("revoke: parse certificate of CA %s: %w", c.Name, err)
	}
	t.Serial = pki.SerialHex(cert.SerialNumber)
	t.CAID = c.ParentID
	t.NotAfter = cert.NotAfter.UTC()
	t.CA = true
	if c.Status == ca.StatusActive {
		if err := c.Disable(t.RevokedAt); err != nil {
			return nil, false, err
		}
	}
	d := revDetails(&t, c.Name, "")
	d["serial"], d["parent_id"] = t.Serial, c.ParentID
	ev := audit.New(req.Principal, t.RevokedAt, "ca.revoke", c.ID, d)
	rec, created, err = s.store.RevokeCA(ctx, &t, c, ev)
	if err != nil {
		return nil, false, fmt.Errorf("revoke: CA %s: %w", c.Name, err)
	}
	if created {
		s.revoked(ctx, rec.CAID, []*inventory.Revocation{rec})
		s.cfg.Log.Warn("CA certificate revoked", "ca", c.Name, "id", c.ID, "serial", rec.Serial, "parent", c.ParentID, "reason", rec.Reason.String(), "by", rec.RevokedBy)
	}
	return rec, created, nil
}

// revDetails is the audit detail of a revocation.
func revDetails(t *inventory.Revocation, caName, selector string) map[string]any {
	d := map[string]any{"reason": t.Reason.String()}
	if caName != "" {
		d["ca"] = caName
	}
	if !t.InvalidityDate.IsZero() {
		d["invalidity_date"] = t.InvalidityDate
	}
	if selector != "" {
		d["selector"] = selector
	}
	return d
}

// revoked makes new revocations under caID visible: OCSP at once, the CRL
// after the coalescing delay.
func (s *Service) revoked(ctx context.Context, caID string, recs []*inventory.Revocation) {
	if st := s.loaded(caID); st != nil {
		st.revoked(ctx, s, recs)
	}
	s.markDirty(caID)
}

// caSigner returns the signer of st's CA: its key unwrapped for that CA (a
// key copied from another record does not unwrap) and checked against the
// CA certificate's public key.
func (s *Service) caSigner(ctx context.Context, st *caState) (crypto.Signer, error) {
	sg, err := s.signers.Signer(ctx, st.key, keys.CAPurpose(st.id))
	if err != nil {
		return nil, fmt.Errorf("revoke: load key %s of CA %s: %w", st.key.ID, st.name, err)
	}
	if err := keys.CheckPublic(sg, st.cert.PublicKey); err != nil {
		return nil, fmt.Errorf("revoke: key %s of CA %s: %w", st.key.ID, st.name, err)
	}
	return sg, nil
}
