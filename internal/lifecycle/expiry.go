package lifecycle

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
)

// firstRunLookback is how far back the first expiry check looks for
// certificates that expired before it ever ran.
const firstRunLookback = 7 * 24 * time.Hour

// createdOverlap widens the look at newly added certificates: one inserted
// while a check ran is seen by the next. De-duplication absorbs repeats.
const createdOverlap = 10 * time.Minute

// ThresholdLabel names a threshold in alerts and de-duplication keys: "7d",
// or "12h" for thresholds that are not whole days.
func ThresholdLabel(d time.Duration) string {
	if d == 0 {
		return "expired"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// ExpiryResult counts what one expiry check did.
type ExpiryResult struct {
	Examined int // certificates read from the store
	Raised   int // new alerts
	CAs      int // CA certificates examined
}

// crossing is the alert a certificate's time left calls for, if any.
type crossing struct {
	kind      AlertKind
	threshold time.Duration
	at        time.Time // when the threshold was crossed
}

// Crossing returns the tightest threshold c is inside at now: expiry
// (threshold 0), one of thresholds, or the profile's renewal period
// renewBefore (0: none). ok is false when c is inside none.
func Crossing(c *inventory.Certificate, now time.Time, thresholds []time.Duration, renewBefore time.Duration) (kind AlertKind, threshold time.Duration, at time.Time, ok bool) {
	cr, ok := crossingOf(c, now, thresholds, renewBefore)
	return cr.kind, cr.threshold, cr.at, ok
}

func crossingOf(c *inventory.Certificate, now time.Time, thresholds []time.Duration, renewBefore time.Duration) (crossing, bool) {
	left := c.NotAfter.Sub(now)
	if left <= 0 {
		return crossing{kind: AlertExpired, at: c.NotAfter}, true
	}
	best := time.Duration(-1)
	kind := AlertExpiring
	for _, t := range thresholds {
		if left <= t && (best < 0 || t < best) {
			best = t
		}
	}
	if renewBefore > 0 && left <= renewBefore && (best < 0 || renewBefore < best) {
		best, kind = renewBefore, AlertRenewalDue
	}
	if best < 0 {
		return crossing{}, false
	}
	return crossing{kind: kind, threshold: best, at: c.NotAfter.Add(-best)}, true
}

// CheckExpiry raises the alerts certificates and CAs call for since the
// previous check (prev; zero for the first). It reads only certificates
// whose expiry lies in the ranges a threshold crossed since prev, or that
// were added since prev: index range scans, never the whole inventory.
func (s *Service) CheckExpiry(ctx context.Context, prev time.Time) (ExpiryResult, error) {
	now := s.cfg.Clock.Now().UTC()
	var res ExpiryResult
	profs, err := s.profiles.List(ctx)
	if err != nil {
		return res, fmt.Errorf("lifecycle: expiry check: %w", err)
	}
	renewBefore := map[string]time.Duration{}
	// Certificates that lapse by design (a person's, from a sign-in)
	// would otherwise raise an alert a day per person.
	silent := map[string]bool{}
	thresholds := slices.Clone(s.settings().Thresholds)
	for _, p := range profs {
		silent[p.Name] = p.SilentExpiry
		if p.RenewBeforeDays > 0 {
			d := time.Duration(p.RenewBeforeDays) * 24 * time.Hour
			renewBefore[p.Name] = d
			thresholds = append(thresholds, d)
		}
	}
	slices.Sort(thresholds)
	thresholds = slices.Compact(thresholds)
	maxT := thresholds[len(thresholds)-1]

	caNames := map[string]string{}
	seen := map[string]bool{}
	batch := &alertBatch{s: s}
	visit := func(c *inventory.Certificate) error {
		res.Examined++
		if seen[c.Serial] {
			return nil
		}
		seen[c.Serial] = true
		if silent[c.Profile] {
			return nil
		}
		if a := s.certAlert(ctx, c, now, renewBefore[c.Profile], caNames); a != nil {
			return batch.add(ctx, a)
		}
		return nil
	}

	var ranges [][2]time.Time
	if prev.IsZero() || now.Sub(prev) > maxT+firstRunLookback {
		ranges = [][2]time.Time{{now.Add(-firstRunLookback), now.Add(maxT)}}
	} else {
		if prev.After(now) {
			prev = now // the clock went back: look at the present only
		}
		// Threshold t was crossed in (prev, now] by certificates expiring
		// in (prev+t, now+t]; t = 0 is expiry itself.
		for _, t := range append([]time.Duration{0}, thresholds...) {
			ranges = append(ranges, [2]time.Time{prev.Add(t), now.Add(t)})
		}
		ranges = mergeRanges(ranges)
		// Certificates added since the last run may already be inside a
		// threshold. The overlap covers rows committed after that run read
		// (their created_at is earlier than their commit).
		if err := s.store.EachCreatedBetween(ctx, prev.Add(-createdOverlap), now.Add(createdOverlap), now.Add(maxT), visit); err != nil {
			return res, fmt.Errorf("lifecycle: expiry check: %w", err)
		}
	}
	for _, r := range ranges {
		if err := s.store.EachExpiringBetween(ctx, r[0], r[1], visit); err != nil {
			return res, fmt.Errorf("lifecycle: expiry check: %w", err)
		}
	}
	if err := batch.flush(ctx); err != nil {
		return res, fmt.Errorf("lifecycle: expiry check: %w", err)
	}
	res.Raised = batch.raised
	n, raised, err := s.checkCAs(ctx, now)
	res.CAs, res.Raised = n, res.Raised+raised
	if err != nil {
		return res, err
	}
	res.Raised += s.checkRevocationHealth(ctx, now)
	return res, nil
}

// mergeRanges sorts and joins overlapping (from, to] ranges.
func mergeRanges(rs [][2]time.Time) [][2]time.Time {
	slices.SortFunc(rs, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && !r[0].After(out[n-1][1]) {
			if r[1].After(out[n-1][1]) {
				out[n-1][1] = r[1]
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// certAlert returns the alert c's time left calls for, or nil.
func (s *Service) certAlert(ctx context.Context, c *inventory.Certificate, now time.Time, renewBefore time.Duration, caNames map[string]string) *Alert {
	cr, ok := crossingOf(c, now, s.settings().Thresholds, renewBefore)
	if !ok {
		return nil
	}
	managed := Managed(c)
	if cr.kind == AlertRenewalDue && managed {
		// Something renews it; say nothing unless that is late.
		return nil
	}
	if managed && cr.kind == AlertExpiring {
		rb := 0
		if renewBefore > 0 {
			rb = int(renewBefore / (24 * time.Hour))
		}
		if _, end := Window(c, rb); now.Before(end) {
			return nil // the renewal window is still open
		}
	}
	days := c.NotAfter.Sub(now).Hours() / 24
	ref := s.ref(ctx, c, caNames)
	a := &Alert{Kind: cr.kind, Subject: c.Serial, Threshold: ThresholdLabel(cr.threshold), Cert: ref, DaysLeft: round2(days)}
	name := ref.PrimaryName()
	when := c.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	switch cr.kind {
	case AlertExpired:
		a.Severity = SeverityCritical
		a.Summary = fmt.Sprintf("Certificate %s expired (%s)", name, when)
		a.Detail = fmt.Sprintf("Certificate %s (serial %s) expired at %s and was not replaced.", name, c.Serial, when)
	case AlertRenewalDue:
		a.Severity = SeverityWarning
		a.Summary = fmt.Sprintf("Certificate %s is due for renewal: %s", name, FormatDays(days))
		a.Detail = fmt.Sprintf("Certificate %s (serial %s) expires %s, inside its profile %s's renewal threshold (%s); nothing renews it automatically.", name, c.Serial, when, c.Profile, ThresholdLabel(cr.threshold))
	default:
		a.Severity = SeverityWarning
		if cr.threshold <= 7*24*time.Hour {
			a.Severity = SeverityCritical
		}
		a.Summary = fmt.Sprintf("Certificate %s expires in %s", name, formatSpan(days))
		a.Detail = fmt.Sprintf("Certificate %s (serial %s) expires %s: %s (threshold %s).", name, c.Serial, when, FormatDays(days), ThresholdLabel(cr.threshold))
		if managed {
			a.Detail += " It is renewed automatically, but its renewal is late."
		}
	}
	if c.RenewError != "" {
		a.Detail += " Last renewal error: " + c.RenewError
	}
	return a
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// checkCAs raises ca_expiring alerts for CA certificates.
func (s *Service) checkCAs(ctx context.Context, now time.Time) (int, int, error) {
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("lifecycle: expiry check: %w", err)
	}
	n, raised := 0, 0
	var errs []error
	for _, c := range cas {
		if c.Status == ca.StatusDeleted || c.CertDER == nil {
			continue
		}
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			continue
		}
		n++
		rec := &inventory.Certificate{NotAfter: cert.NotAfter}
		cr, ok := crossingOf(rec, now, s.settings().CAThresholds, 0)
		if !ok {
			continue
		}
		days := cert.NotAfter.Sub(now).Hours() / 24
		when := cert.NotAfter.UTC().Format("2006-01-02 15:04 MST")
		a := &Alert{
			Kind: AlertCAExpiring, Severity: SeverityCritical, Subject: "ca:" + c.ID, Threshold: ThresholdLabel(cr.threshold),
			DaysLeft: round2(days),
			Cert: &CertRef{Serial: fmt.Sprintf("%x", cert.SerialNumber), CAID: c.ID, CA: c.Name, Subject: cert.Subject.String(),
				SANs: []string{}, Tags: []string{}, NotAfter: cert.NotAfter.UTC(), Source: "ca"},
		}
		if cr.kind == AlertExpired {
			a.Summary = fmt.Sprintf("CA %s expired (%s)", c.Name, when)
			a.Detail = fmt.Sprintf("The certificate of CA %s expired at %s: everything it issued no longer validates.", c.Name, when)
		} else {
			a.Summary = fmt.Sprintf("CA %s expires in %s", c.Name, formatSpan(days))
			a.Detail = fmt.Sprintf("The certificate of CA %s expires %s (threshold %s). Plan its replacement: certificates it issues cannot outlive it, and everything it issued stops validating when it expires.", c.Name, when, ThresholdLabel(cr.threshold))
		}
		created, err := s.raise(ctx, a)
		if err != nil {
			errs = append(errs, err)
		}
		if created {
			raised++
		}
	}
	return n, raised, errors.Join(errs...)
}

// checkRevocationHealth raises revocation_stale alerts, one per stale
// CRL or OCSP state (keyed by its nextUpdate).
func (s *Service) checkRevocationHealth(ctx context.Context, now time.Time) int {
	if s.cfg.Health == nil {
		return 0
	}
	raised := 0
	for _, st := range s.cfg.Health.Stale(now) {
		name := s.caName(ctx, st.CAID)
		if name == "" {
			name = st.CAID
		}
		what := "CRL"
		if st.What == "ocsp" {
			what = "OCSP responses"
		}
		a := &Alert{
			Kind: AlertRevocationStale, Severity: SeverityCritical, Subject: st.What + ":" + st.CAID,
			Threshold: st.NextUpdate.UTC().Format(time.RFC3339),
			Summary:   fmt.Sprintf("The %s of CA %s failed to refresh", what, name),
			Detail: fmt.Sprintf("The %s of CA %s could not be refreshed; the current one's nextUpdate is %s. Relying parties that cannot fetch fresh revocation data may reject certificates or accept revoked ones.",
				what, name, st.NextUpdate.UTC().Format("2006-01-02 15:04 MST")),
			DaysLeft: round2(st.NextUpdate.Sub(now).Hours() / 24),
		}
		if st.Error != "" {
			a.Detail += " Last error: " + st.Error
		}
		created, err := s.raise(ctx, a)
		if err != nil {
			s.cfg.Log.Error("raising a revocation alert failed", "ca", st.CAID, "err", err)
		}
		if created {
			raised++
		}
	}
	return raised
}
