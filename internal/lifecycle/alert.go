// Package lifecycle owns what happens to certificates over time: expiry
// thresholds and the alerts they raise, where alerts are routed, when a
// certificate is due for renewal, how failed renewals back off, and the
// emergency rotation of every certificate a CA, profile or key touches.
// Its decisions are pure given a clock; the scheduler runs them as jobs.
package lifecycle

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// AlertKind says what an alert is about.
type AlertKind string

// Alert kinds.
const (
	// AlertExpiring: a certificate crossed an expiry threshold (30, 14, 7,
	// 1 days by default).
	AlertExpiring AlertKind = "expiring"
	// AlertRenewalDue: a certificate crossed its profile's renewal
	// threshold and nothing will renew it automatically.
	AlertRenewalDue AlertKind = "renewal_due"
	// AlertExpired: a certificate expired without a replacement.
	AlertExpired AlertKind = "expired"
	// AlertRenewalFailed: an automatic renewal failed (it is retried).
	AlertRenewalFailed AlertKind = "renewal_failed"
	// AlertCAExpiring: a CA certificate crossed one of the CA thresholds.
	AlertCAExpiring AlertKind = "ca_expiring"
	// AlertRevocationStale: a CA's CRL or OCSP data failed to refresh and
	// is close to, or past, its nextUpdate.
	AlertRevocationStale AlertKind = "revocation_stale"
	// AlertDeployFailed: an agent could not deploy or reload a certificate.
	AlertDeployFailed AlertKind = "deploy_failed"
	// AlertTest: sent by `certwright alerts test`.
	AlertTest AlertKind = "test"
	// AlertServedRevoked: a scan found an endpoint serving a revoked
	// certificate (critical).
	AlertServedRevoked AlertKind = "served_revoked"
	// AlertServedExpired: a scan found an endpoint serving an expired
	// certificate (critical).
	AlertServedExpired AlertKind = "served_expired"
	// AlertServedStale: a scan found an endpoint serving a certificate
	// that was renewed: its successor was not deployed there.
	AlertServedStale AlertKind = "served_stale"
	// AlertEndpointPlaintext: a scan found an endpoint accepting
	// plaintext (scan.alert_plaintext).
	AlertEndpointPlaintext AlertKind = "endpoint_plaintext"
	// AlertEndpointWeak: a scan found an endpoint with weak TLS
	// (scan.alert_weak).
	AlertEndpointWeak AlertKind = "endpoint_weak"
)

// AlertKinds lists every kind, for validating routes.
func AlertKinds() []AlertKind {
	return []AlertKind{AlertExpiring, AlertRenewalDue, AlertExpired, AlertRenewalFailed,
		AlertCAExpiring, AlertRevocationStale, AlertDeployFailed, AlertTest,
		AlertServedRevoked, AlertServedExpired, AlertServedStale, AlertEndpointPlaintext, AlertEndpointWeak}
}

// Severity orders alerts for people.
type Severity string

// Severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// CertRef is what an alert says about the certificate (or CA certificate)
// it concerns.
type CertRef struct {
	Serial   string    `json:"serial"`
	CAID     string    `json:"ca_id,omitempty"`
	CA       string    `json:"ca,omitempty"` // CA name
	Profile  string    `json:"profile,omitempty"`
	Subject  string    `json:"subject"`
	SANs     []string  `json:"sans"`
	NotAfter time.Time `json:"not_after"`
	Owner    string    `json:"owner,omitempty"`
	Tags     []string  `json:"tags"`
	Source   string    `json:"source,omitempty"` // issued or imported
}

// PrimaryName is the name people know the certificate by: its first SAN,
// else its subject.
func (c CertRef) PrimaryName() string {
	if len(c.SANs) > 0 {
		return c.SANs[0]
	}
	return c.Subject
}

// Alert is one notification. Its (Subject, Kind, Threshold) is unique: the
// store keeps one alert per triple, which is what de-duplicates them.
type Alert struct {
	ID       string    `json:"id"`
	Kind     AlertKind `json:"kind"`
	Severity Severity  `json:"severity"`
	// Subject is the certificate's serial, or ca:<id>, crl:<ca id>,
	// ocsp:<ca id>, test:<channel>, deploy:<host>/<entry>,
	// endpoint:<host:port>.
	Subject   string `json:"subject"`
	Threshold string `json:"threshold,omitempty"` // e.g. "7d"
	// Summary is one line for a chat message or an email subject; Detail
	// is the rest, plain text.
	Summary string   `json:"summary"`
	Detail  string   `json:"detail"`
	Cert    *CertRef `json:"certificate,omitempty"`
	// DaysLeft is the time to expiry in days when the alert was raised
	// (negative once expired).
	DaysLeft  float64   `json:"days_left"`
	CreatedAt time.Time `json:"created_at"`
}

// Route sends alerts that match to channels. An empty match field matches
// everything; a route with several fields set needs all of them to match.
type Route struct {
	Kinds    []AlertKind `json:"kinds,omitempty"`
	Tags     []string    `json:"tags,omitempty"` // any one of them
	Profiles []string    `json:"profiles,omitempty"`
	CAs      []string    `json:"cas,omitempty"` // CA names or IDs
	Channels []string    `json:"channels"`
}

// Matches reports whether a goes through r.
func (r Route) Matches(a Alert) bool {
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, a.Kind) {
		return false
	}
	c := a.Cert
	if len(r.Tags) > 0 && (c == nil || !slices.ContainsFunc(c.Tags, func(t string) bool { return slices.Contains(r.Tags, t) })) {
		return false
	}
	if len(r.Profiles) > 0 && (c == nil || !slices.Contains(r.Profiles, c.Profile)) {
		return false
	}
	if len(r.CAs) > 0 && (c == nil || !(slices.Contains(r.CAs, c.CA) || slices.Contains(r.CAs, c.CAID))) {
		return false
	}
	return true
}

// Router picks the channels for an alert: the union of the channels of
// every matching route, or Default when none matches. Test alerts go only
// to the channel they name.
type Router struct {
	Routes  []Route
	Default []string
}

// Channels returns the channels a goes to, sorted, each once.
func (r Router) Channels(a Alert) []string {
	if a.Kind == AlertTest {
		if ch, ok := strings.CutPrefix(a.Subject, "test:"); ok {
			return []string{ch}
		}
		return nil
	}
	var out []string
	for _, rt := range r.Routes {
		if rt.Matches(a) {
			out = append(out, rt.Channels...)
		}
	}
	if len(out) == 0 {
		out = slices.Clone(r.Default)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FormatDays renders a threshold or a time left as people read it.
func FormatDays(d float64) string {
	switch {
	case d < 0:
		return fmt.Sprintf("expired %s ago", formatSpan(-d))
	default:
		return formatSpan(d) + " left"
	}
}

func formatSpan(d float64) string {
	if d >= 2 {
		return fmt.Sprintf("%d days", int(d))
	}
	h := int(d * 24)
	if h == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", h)
}
