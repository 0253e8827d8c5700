package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/pki"
)

// ErrRateLimited marks a report refused because its reporter sent too
// many; the error says when the next is accepted.
var ErrRateLimited = errors.New("lifecycle: rate limited")

// A deploy-failure report is an agent's word: it is accepted only for a
// certificate in the reporter's scope, attributed to the reporter (the
// host it names is shown as reported, never trusted), bounded in size and
// rate, and audited.
const (
	// DeployReportWindow: at most one alert per reporter and certificate
	// in each window of this length.
	DeployReportWindow = 10 * time.Minute
	// DeployReportsPerHour bounds a reporter's alerts in any hour.
	DeployReportsPerHour = 20
	// maxDeployError is how much of the agent's error text is kept.
	maxDeployError = 1024
	maxDeployEntry = 128
	maxDeployHost  = 253
)

// ReportDeployFailure raises a deploy_failed alert for certificate serial,
// which an agent of principal p could not deploy. p needs cert:issue over
// the certificate. The alert's subject is the principal and the
// certificate; host and entry are the agent's description, checked for
// shape and shown as reported.
func (s *Service) ReportDeployFailure(ctx context.Context, p authz.Principal, host, entry, serial, msg string) error {
	if !p.Can(authz.PermCertIssue) {
		return authz.Refuse(authz.RuleRole, "%s has no role granting %s", p.Name, authz.PermCertIssue)
	}
	if serial == "" {
		return fmt.Errorf("%w: serial is required: a deploy failure is reported for a certificate in your scope", ErrInvalid)
	}
	serial, err := pki.NormalizeSerial(serial)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := checkHost(host); err != nil {
		return err
	}
	if entry == "" || len(entry) > maxDeployEntry || !utf8.ValidString(entry) || strings.IndexFunc(entry, isControl) >= 0 {
		return fmt.Errorf("%w: entry: use 1-%d characters without control characters", ErrInvalid, maxDeployEntry)
	}
	c, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return err
	}
	caName := s.caName(ctx, c.CAID)
	if err := p.Allow(authz.PermCertIssue, authz.Resource{CAID: c.CAID, CAName: caName, Profile: c.Profile, Names: c.SANs}); err != nil {
		return err
	}
	msg = cleanText(msg, maxDeployError)
	now := s.cfg.Clock.Now().UTC()
	prefix := "deploy:" + p.ID + "/"
	n, err := s.store.CountAlerts(ctx, AlertDeployFailed, prefix, now.Add(-time.Hour))
	if err != nil {
		return fmt.Errorf("lifecycle: deploy failure: %w", err)
	}
	if n >= DeployReportsPerHour {
		return fmt.Errorf("%w: %s reported %d deploy failures in the last hour, at most %d; later reports are refused until the hour has passed",
			ErrRateLimited, p.Name, n, DeployReportsPerHour)
	}
	id, err := s.newID()
	if err != nil {
		return err
	}
	ref := s.ref(ctx, c, map[string]string{c.CAID: caName})
	window := now.Truncate(DeployReportWindow)
	a := &Alert{
		ID: id, Kind: AlertDeployFailed, Severity: SeverityCritical,
		Subject: prefix + c.Serial, Threshold: window.Format(time.RFC3339), CreatedAt: now,
		Cert: ref, DaysLeft: round2(c.NotAfter.Sub(now).Hours() / 24),
		Summary: fmt.Sprintf("Deployment of %s failed (reported by %s)", ref.PrimaryName(), p.Name),
		Detail: fmt.Sprintf("Principal %s reports that its agent (on host %q, as reported) could not deploy certificate %s (serial %s) for entry %q: %s. The new files are kept; the agent retries.",
			p.Name, host, ref.PrimaryName(), c.Serial, entry, msg),
	}
	ev := audit.New(p, now, "alert.deploy_failed", c.Serial, map[string]any{
		"alert": id, "host": host, "entry": entry, "error": msg,
	})
	created, err := s.store.RaiseAlertAudited(ctx, a, s.settings().Router.Channels(*a), ev)
	if err != nil {
		return fmt.Errorf("lifecycle: deploy failure: %w", err)
	}
	if !created {
		return fmt.Errorf("%w: %s already reported a deploy failure of %s since %s; one alert per certificate every %v, the next from %s",
			ErrRateLimited, p.Name, c.Serial, window.Format(time.RFC3339), DeployReportWindow, window.Add(DeployReportWindow).Format(time.RFC3339))
	}
	s.cfg.Log.Info("alert raised", "kind", a.Kind, "subject", a.Subject, "by", p.Name, "reported_host", host)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// checkHost accepts a host name or IP address as an agent reports it.
func checkHost(h string) error {
	if h == "" || len(h) > maxDeployHost {
		return fmt.Errorf("%w: host: want a host name or IP address of 1-%d characters", ErrInvalid, maxDeployHost)
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:", r)) {
			return fmt.Errorf("%w: host %.260q: a host name or IP address has only letters, digits and . - _ :", ErrInvalid, h)
		}
	}
	return nil
}

// isControl is true for control and format characters (newlines, escape
// sequences, bidirectional overrides) that could forge or hide text in
// an alert.
func isControl(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// cleanText makes untrusted text safe to put in an alert: invalid UTF-8
// and control characters become spaces, runs of spaces collapse, and it is
// cut to at most n bytes on a character boundary (marked with "...").
func cleanText(s string, n int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, " ") {
		if isControl(r) || unicode.IsSpace(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if len(out) <= n {
		return out
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "..."
}
