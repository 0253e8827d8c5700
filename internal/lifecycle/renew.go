package lifecycle

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/recovery"
	"github.com/certwright/certwright/internal/revoke"
)

// renewBatch bounds the renewals one run attempts.
const renewBatch = 200

// RenewOptions shape one renewal.
type RenewOptions struct {
	Kind inventory.RenewalKind
	// ReuseKey certifies the same key again (the profile must allow it).
	ReuseKey bool
	// ToCA issues the successor from this CA instead of the original's.
	ToCA string
	// Principal renews; zero means the original requester, reloaded now
	// so that its current permissions apply.
	Principal *authz.Principal
}

// Renew replaces c with a new certificate for the same names and profile:
// a new key held by the server unless opts.ReuseKey, linked to c. It
// records the attempt, and on failure the backoff state (automatic kinds).
func (s *Service) Renew(ctx context.Context, c *inventory.Certificate, opts RenewOptions) (*issue.Result, error) {
	start := time.Now()
	var res *issue.Result
	// A panic (one bad record) is this renewal's failure, recorded and
	// retried like any other, never the job's or the server's.
	err := recovery.CallLogged(s.cfg.Log, "renewal of "+c.Serial, func() (err error) {
		res, err = s.renew(ctx, c, opts)
		return err
	})
	if err != nil && c.RenewedBy == "" {
		// Another replica renewed it meanwhile (the issuance checks
		// before signing, the insert again after): its attempt is the
		// one recorded, and this is no failure.
		if cur, gerr := s.store.GetCertificate(ctx, c.Serial); gerr == nil && cur.RenewedBy != "" {
			s.cfg.Log.Info("certificate renewed elsewhere meanwhile", "serial", c.Serial, "new_serial", cur.RenewedBy, "kind", opts.Kind)
			return nil, fmt.Errorf("%w: %w: certificate %s was renewed by %s meanwhile", ErrConflict, ErrElsewhere, c.Serial, cur.RenewedBy)
		}
	}
	now := s.cfg.Clock.Now().UTC()
	att := inventory.RenewalAttempt{Serial: c.Serial, Kind: opts.Kind, OK: err == nil, At: now,
		DaysLeft: round2(c.NotAfter.Sub(now).Hours() / 24)}
	if err != nil {
		att.Error = err.Error()
	} else {
		att.NewSerial = res.Cert.Serial
	}
	if rerr := s.store.RecordRenewalAttempt(ctx, att); rerr != nil {
		s.cfg.Log.Error("recording a renewal attempt failed", "serial", c.Serial, "err", rerr)
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveRenewal(string(opts.Kind), time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	if after := s.settings().SupersedeAfter; after > 0 {
		if err := s.store.SetSupersedeAt(ctx, c.Serial, now.Add(after)); err != nil {
			s.cfg.Log.Error("scheduling the superseded certificate's revocation failed", "serial", c.Serial, "err", err)
		}
	}
	s.cfg.Log.Info("certificate renewed", "serial", c.Serial, "new_serial", res.Cert.Serial, "kind", opts.Kind,
		"not_after", res.Cert.NotAfter, "days_left", att.DaysLeft)
	return res, nil
}

func (s *Service) renew(ctx context.Context, c *inventory.Certificate, opts RenewOptions) (*issue.Result, error) {
	if c.Source.External() {
		return nil, fmt.Errorf("%w: certificate %s was %s, not issued here; its own issuer renews it", ErrInvalid, c.Serial, c.Source)
	}
	if c.RenewedBy != "" {
		return nil, fmt.Errorf("%w: certificate %s was already renewed by %s", ErrConflict, c.Serial, c.RenewedBy)
	}
	if c.ServerOwned() {
		return nil, fmt.Errorf("%w: certificate %s is the server's own; the server renews it itself", ErrInvalid, c.Serial)
	}
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: renew %s: parse: %w", c.Serial, err)
	}
	var p authz.Principal
	if opts.Principal != nil {
		p = *opts.Principal
	} else {
		// By ID where recorded: a name identifies no one for certain.
		rec, err := s.store.GetPrincipal(ctx, cmp.Or(c.RequesterID, c.Requester))
		if err != nil {
			return nil, fmt.Errorf("lifecycle: renew %s: its requester %s: %w", c.Serial, c.Requester, err)
		}
		lp, prec, err := s.store.LoadPrincipal(ctx, rec.ID)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: renew %s: its requester %s: %w", c.Serial, c.Requester, err)
		}
		if prec.DisabledAt != nil {
			return nil, fmt.Errorf("%w: certificate %s: its requester %s is disabled", authz.ErrForbidden, c.Serial, c.Requester)
		}
		p = *lp
	}
	caID := c.CAID
	if opts.ToCA != "" {
		caID = opts.ToCA
	}
	req := issue.Request{
		Principal: p, CA: caID, Profile: c.Profile,
		Subject: leaf.Subject, DNSNames: leaf.DNSNames, IPAddresses: leaf.IPAddresses,
		EmailAddresses: leaf.EmailAddresses, URIs: leaf.URIs,
		ValidityDays: int(math.Ceil(c.NotAfter.Sub(c.NotBefore).Hours() / 24)),
		Tags:         c.Tags, Owner: c.Owner, AutoRenew: c.AutoRenew,
		Replaces: c.Serial, RenewalKind: opts.Kind,
	}
	switch {
	case opts.ReuseKey:
		req.PublicKey = leaf.PublicKey
	case c.ManagedKey != nil:
		req.KeyAlgorithm = c.ManagedKey.Algorithm
		req.RetainKey = true
	case c.AutoRenew:
		// auto_renew on a CSR certificate renews the same key.
		req.PublicKey = leaf.PublicKey
	default:
		return nil, fmt.Errorf("%w: the server holds no key for certificate %s: renew it from the host (certwright agent, or cert sign --replaces %s), or with --reuse-key where the profile allows", ErrInvalid, c.Serial, c.Serial)
	}
	// The profile's maximum may have shrunk since the original was issued.
	if prof, err := s.profiles.Get(ctx, c.Profile); err == nil && prof.MaxValidityDays > 0 && req.ValidityDays > prof.MaxValidityDays {
		req.ValidityDays = prof.MaxValidityDays
	}
	res, err := s.issuer.Issue(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: renew %s: %w", c.Serial, err)
	}
	if res.Pending != nil {
		return nil, fmt.Errorf("%w: profile %s requires approval; request %s waits for an approver", ErrInvalid, c.Profile, res.Pending.ID)
	}
	return res, nil
}

// ErrConflict marks a certificate renewed already.
var ErrConflict = errors.New("lifecycle: conflict")

// ErrElsewhere marks work another replica did or took meanwhile: a
// certificate it renewed, a rotation item it moved on, a delivery it
// claimed once this replica's claim lapsed.
var ErrElsewhere = errors.New("lifecycle: done or taken by another replica")

// RenewByHand renews the certificate serial for principal p (cert renew).
func (s *Service) RenewByHand(ctx context.Context, p authz.Principal, serial string, reuseKey bool) (*issue.Result, error) {
	c, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	return s.Renew(ctx, c, RenewOptions{Kind: inventory.RenewalManual, ReuseKey: reuseKey, Principal: &p})
}

// RenewResult counts what one renewal run did. Elsewhere counts the
// certificates another replica renewed while this run tried to.
type RenewResult struct {
	Renewed, Failed, Elsewhere int
}

// RenewDue renews every auto-renewed certificate inside its renewal
// window (or asked to renew now); a failure backs off, is retried, and
// raises a renewal_failed alert once.
func (s *Service) RenewDue(ctx context.Context) (RenewResult, error) {
	var res RenewResult
	now := s.cfg.Clock.Now().UTC()
	profs, err := s.profiles.List(ctx)
	if err != nil {
		return res, fmt.Errorf("lifecycle: renewals: %w", err)
	}
	renewBefore := map[string]int{}
	horizon := 30 * 24 * time.Hour
	for _, p := range profs {
		renewBefore[p.Name] = p.RenewBeforeDays
		h := RenewalPeriod(time.Duration(p.MaxValidityDays)*24*time.Hour, p.RenewBeforeDays)
		if rb := time.Duration(p.RenewBeforeDays) * 24 * time.Hour; rb > h {
			h = rb
		}
		if h > horizon {
			horizon = h
		}
	}
	var due []*inventory.Certificate
	err = s.store.EachAutoRenewDue(ctx, now.Add(horizon), now, renewBatch, func(c *inventory.Certificate) error {
		if start, _ := Window(c, renewBefore[c.Profile]); !now.Before(start) {
			due = append(due, c)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("lifecycle: renewals: %w", err)
	}
	for _, c := range due {
		if ctx.Err() != nil {
			break
		}
		if _, err := s.Renew(ctx, c, RenewOptions{Kind: inventory.RenewalAuto}); errors.Is(err, ErrElsewhere) {
			res.Elsewhere++
			continue
		} else if err != nil {
			res.Failed++
			s.renewFailed(ctx, c, err)
			continue
		}
		res.Renewed++
	}
	return res, nil
}

// RenewBackoff is the wait after the n-th consecutive failed renewal.
func (s *Service) RenewBackoff(n int) time.Duration {
	return backoff(s.settings().RenewRetry, s.cfg.RenewRetryMax, n, s.cfg.Rand)
}

func (s *Service) renewFailed(ctx context.Context, c *inventory.Certificate, rerr error) {
	now := s.cfg.Clock.Now().UTC()
	failures := c.RenewFailures + 1
	retry := now.Add(s.RenewBackoff(failures))
	if lastChance := c.NotAfter.Add(-time.Hour); retry.After(lastChance) && now.Before(lastChance) {
		retry = lastChance
	}
	s.cfg.Log.Error("automatic renewal failed; will retry", "serial", c.Serial, "failures", failures, "retry_at", retry, "err", rerr)
	if err := s.store.RecordRenewalFailure(ctx, c.Serial, failures, retry, rerr.Error()); err != nil {
		s.cfg.Log.Error("recording a renewal failure failed", "serial", c.Serial, "err", err)
	}
	ref := s.ref(ctx, c, nil)
	days := c.NotAfter.Sub(now).Hours() / 24
	a := &Alert{
		Kind: AlertRenewalFailed, Severity: SeverityCritical, Subject: c.Serial, Cert: ref, DaysLeft: round2(days),
		Summary: fmt.Sprintf("Automatic renewal of %s failed (%s)", ref.PrimaryName(), FormatDays(days)),
		Detail: fmt.Sprintf("Certwright could not renew certificate %s (serial %s): %v. It retries with backoff (next attempt %s); fix the cause or renew it by hand with `certwright cert renew %s`.",
			ref.PrimaryName(), c.Serial, rerr, retry.Format("2006-01-02 15:04 MST"), c.Serial),
	}
	if _, err := s.raise(ctx, a); err != nil {
		s.cfg.Log.Error("raising a renewal alert failed", "serial", c.Serial, "err", err)
	}
}

// SupersedeDue revokes renewed certificates whose grace period is over,
// with reason superseded.
func (s *Service) SupersedeDue(ctx context.Context) (int, error) {
	now := s.cfg.Clock.Now().UTC()
	serials, err := s.store.SupersedeDue(ctx, now, 500)
	if err != nil {
		return 0, fmt.Errorf("lifecycle: supersede: %w", err)
	}
	n := 0
	var errs []error
	for _, serial := range serials {
		err := recovery.CallLogged(s.cfg.Log, "revocation of superseded "+serial, func() error {
			_, _, err := s.revoker.Revoke(ctx, revoke.Request{Principal: authz.System(), Serial: serial, Reason: pki.ReasonSuperseded})
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("revoke superseded %s: %w", serial, err))
			continue
		}
		n++
		if err := s.store.SetSupersedeAt(ctx, serial, time.Time{}); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// RenewalInfo is when a certificate should be renewed.
type RenewalInfo struct {
	Serial      string
	NotAfter    time.Time
	WindowStart time.Time
	WindowEnd   time.Time
	RenewNow    bool
	// Reason is "threshold", "requested", "revoked" or "" (not yet).
	Reason    string
	RenewedBy string
	Revoked   bool
}

// RenewalInfo tells the holder of certificate serial (an agent) when to
// renew it. It needs cert:read or cert:issue covering the certificate.
func (s *Service) RenewalInfo(ctx context.Context, p authz.Principal, serial string) (*RenewalInfo, error) {
	c, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	res := authz.Resource{CAID: c.CAID, CAName: s.caName(ctx, c.CAID), Profile: c.Profile, Names: c.SANs}
	if err := p.Allow(authz.PermCertRead, res); err != nil {
		if err2 := p.Allow(authz.PermCertIssue, res); err2 != nil {
			return nil, err
		}
	}
	rb := 0
	if prof, err := s.profiles.Get(ctx, c.Profile); err == nil {
		rb = prof.RenewBeforeDays
	}
	start, end := Window(c, rb)
	now := s.cfg.Clock.Now()
	info := &RenewalInfo{Serial: c.Serial, NotAfter: c.NotAfter, WindowStart: start.UTC(), WindowEnd: end.UTC(),
		RenewedBy: c.RenewedBy, Revoked: c.Revocation != nil}
	switch {
	case c.Revocation != nil:
		info.RenewNow, info.Reason = true, "revoked"
	case !c.RenewNowAt.IsZero() && !now.Before(c.RenewNowAt):
		info.RenewNow, info.Reason = true, "requested"
	case !now.Before(start):
		info.RenewNow, info.Reason = true, "threshold"
	}
	return info, nil
}
