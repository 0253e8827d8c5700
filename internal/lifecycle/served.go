package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/discovery"
)

// servedKind is the alert kind and severity of a problem a scan reports.
func servedKind(k discovery.ProblemKind) (AlertKind, Severity, bool) {
	switch k {
	case discovery.ProblemServedRevoked:
		return AlertServedRevoked, SeverityCritical, true
	case discovery.ProblemServedExpired:
		return AlertServedExpired, SeverityCritical, true
	case discovery.ProblemServedStale:
		return AlertServedStale, SeverityWarning, true
	case discovery.ProblemPlaintext:
		return AlertEndpointPlaintext, SeverityWarning, true
	case discovery.ProblemWeak:
		return AlertEndpointWeak, SeverityWarning, true
	}
	return "", "", false
}

// RaiseEndpointProblems raises the alerts of what scans found served,
// through the usual routes and channels, and reports how many are new.
// Each is about the endpoint (subject endpoint:<host:port>) and keyed so
// that it is raised once while the problem lasts: a served_* alert by the
// problem's Key (the certificate that began it; the served certificate's
// fingerprint when none is given), so that a server serving a fresh
// expired certificate at every scan alerts once; a plaintext or weak one
// by when the exposure was found, so that an endpoint that regresses
// after remediation alerts again.
func (s *Service) RaiseEndpointProblems(ctx context.Context, ps []discovery.Problem) (int, error) {
	now := s.cfg.Clock.Now().UTC()
	caNames := map[string]string{}
	b := &alertBatch{s: s}
	for _, p := range ps {
		kind, sev, ok := servedKind(p.Kind)
		if !ok {
			return b.raised, fmt.Errorf("%w: unknown endpoint problem %q", ErrInvalid, p.Kind)
		}
		a := &Alert{Kind: kind, Severity: sev, Subject: "endpoint:" + p.Endpoint, Detail: p.Detail}
		if p.Cert != nil {
			a.Cert = s.ref(ctx, p.Cert, caNames)
			a.Threshold = cmp.Or(p.Key, p.Cert.Fingerprint)
			a.DaysLeft = round2(p.Cert.NotAfter.Sub(now).Hours() / 24)
			name := a.Cert.PrimaryName()
			switch kind {
			case AlertServedRevoked:
				a.Summary = fmt.Sprintf("%s serves revoked certificate %s", p.Endpoint, name)
			case AlertServedExpired:
				a.Summary = fmt.Sprintf("%s serves expired certificate %s", p.Endpoint, name)
			default:
				a.Summary = fmt.Sprintf("%s serves certificate %s, already renewed", p.Endpoint, name)
			}
		} else {
			a.Threshold = p.Since.UTC().Format(time.RFC3339)
			if kind == AlertEndpointPlaintext {
				a.Summary = fmt.Sprintf("%s accepts plaintext", p.Endpoint)
			} else {
				a.Summary = fmt.Sprintf("%s has weak TLS", p.Endpoint)
			}
		}
		if err := b.add(ctx, a); err != nil {
			return b.raised, err
		}
	}
	if err := b.flush(ctx); err != nil {
		return b.raised, fmt.Errorf("lifecycle: endpoint alerts: %w", err)
	}
	return b.raised, nil
}

var _ discovery.Alerter = (*Service)(nil)
