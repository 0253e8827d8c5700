// Package metrics owns the Prometheus view of Certwright: certificate and
// CA expiry read from the inventory at scrape time, counts by state,
// issuance, revocation, renewal and alert-delivery outcomes, CRL and OCSP
// freshness, ACME traffic, and the Go runtime and process. New builds one
// registry per instance (there is no global one); Handler serves it and
// BearerAuth guards a separate metrics listener.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// Inventory is the certificate store as the metrics see it. *store.DB
// implements it.
type Inventory interface {
	// EachExpiry calls fn for up to limit certificates that are not
	// revoked, not renewed and expire after notAfterFrom, soonest first.
	EachExpiry(ctx context.Context, notAfterFrom time.Time, limit int, fn func(inventory.ExpiryRow) error) error
	// CertificateCounts returns counts by state: valid, expired, revoked,
	// imported, auto_renew.
	CertificateCounts(ctx context.Context, now time.Time) (map[string]int, error)
}

// CAs lists the CAs, for their names and certificates' expiry. *store.DB
// implements it.
type CAs interface {
	ListCAs(ctx context.Context) ([]*ca.CA, error)
}

// Revocation reports how current each CA's CRL and OCSP data is.
// *revoke.Service implements it.
type Revocation interface {
	Freshness() []revoke.Freshness
}

// Limits and defaults.
const (
	// DefaultMaxCertificates bounds the per-certificate expiry series.
	DefaultMaxCertificates = 10_000
	// MaxMaxCertificates is the largest cap accepted: beyond it a scrape
	// costs more than a monitoring system should ask of the database.
	MaxMaxCertificates = 1_000_000
	// ExpiredWindow is how long after expiry a certificate keeps its series
	// (with a negative value), so that an alert on it resolves visibly.
	ExpiredWindow = 7 * 24 * time.Hour
	// DefaultScrapeTimeout bounds one scrape, database queries included.
	DefaultScrapeTimeout = 10 * time.Second
	// inventoryTTL is how long one read of the inventory serves scrapes:
	// several Prometheus servers must not multiply the database load.
	inventoryTTL = 10 * time.Second
	// caTTL is how long the CA list (names, certificate expiry) is reused.
	caTTL = 30 * time.Second
	// maxLabelLen bounds label values taken from certificates.
	maxLabelLen = 256
)

// Config tunes the metrics; zero values mean the defaults.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	// MaxCertificates caps certwright_certificate_expiry_seconds series
	// (default DefaultMaxCertificates, at most MaxMaxCertificates).
	MaxCertificates int
	// ScrapeTimeout bounds one scrape (default DefaultScrapeTimeout).
	ScrapeTimeout time.Duration
}

// Metrics is Certwright's Prometheus registry and the instruments the
// services report to. It is safe for concurrent use.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry
	inv *inventoryCollector

	issued         *prometheus.CounterVec
	issueFailures  prometheus.Counter
	issueDuration  prometheus.Histogram
	revocations    *prometheus.CounterVec
	revokeFailures prometheus.Counter
	revokeDuration prometheus.Histogram
	renewals       *prometheus.CounterVec
	renewDuration  *prometheus.HistogramVec
	deliveries     *prometheus.CounterVec
	acmeRequests   *prometheus.CounterVec
	acmeOrders     *prometheus.CounterVec
}

// SetMaxCertificates changes the cap on per-certificate expiry series
// while serving; the next scrape reads the inventory again under it.
func (m *Metrics) SetMaxCertificates(n int) error {
	if n < 1 || n > MaxMaxCertificates {
		return fmt.Errorf("metrics: max_certificates %d is out of range (1 to %d)", n, MaxMaxCertificates)
	}
	m.inv.max.Store(int64(n))
	m.inv.mu.Lock()
	if m.inv.snap != nil {
		// Age a copy (scrapes may hold the old one): it still serves until
		// the next read replaces it.
		aged := *m.inv.snap
		aged.taken = time.Time{}
		m.inv.snap = &aged
	}
	m.inv.mu.Unlock()
	return nil
}

// The services' observer ports this type implements, and the service
// whose state it reads.
var (
	_ issue.Observer     = (*Metrics)(nil)
	_ revoke.Observer    = (*Metrics)(nil)
	_ lifecycle.Observer = (*Metrics)(nil)
	_ Revocation         = (*revoke.Service)(nil)
)

// durationBuckets spans a cached OCSP-speed call to a bulk revocation or a
// slow HSM: 1 ms to 60 s.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Outcome label values.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// New builds the registry. The revocation service reports to the metrics
// and the metrics read its state, so it joins later: RegisterRevocation.
func New(cfg Config, inv Inventory, cas CAs) (*Metrics, error) {
	if cfg.Clock == nil || cfg.Log == nil || inv == nil || cas == nil {
		return nil, errors.New("metrics: clock, logger, inventory and CA lister are required")
	}
	switch {
	case cfg.MaxCertificates == 0:
		cfg.MaxCertificates = DefaultMaxCertificates
	case cfg.MaxCertificates < 0 || cfg.MaxCertificates > MaxMaxCertificates:
		return nil, fmt.Errorf("metrics: max_certificates %d is out of range (1 to %d)", cfg.MaxCertificates, MaxMaxCertificates)
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = DefaultScrapeTimeout
	}
	m := &Metrics{cfg: cfg, reg: prometheus.NewRegistry()}
	m.inv = newInventoryCollector(cfg, inv, cas)

	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certwright_certificates_issued_total",
		Help: "Leaf certificates issued, by CA and profile.",
	}, []string{"ca", "profile"})
	m.issueFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "certwright_issue_failures_total",
		Help: "Issuance requests that failed (policy violations included).",
	})
	m.issueDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "certwright_issue_duration_seconds", Help: "Time to handle one issuance request.",
		Buckets: durationBuckets,
	})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certwright_revocations_total",
		Help: "Certificates newly revoked, by reason.",
	}, []string{"reason"})
	m.revokeFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "certwright_revoke_failures_total",
		Help: "Revocation requests that failed.",
	})
	m.revokeDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "certwright_revoke_duration_seconds", Help: "Time to handle one revocation request (single, bulk or CA).",
		Buckets: durationBuckets,
	})
	m.renewals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certwright_renewals_total",
		Help: "Renewal attempts, by how the renewal was made and whether it succeeded.",
	}, []string{"kind", "result"})
	m.renewDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "certwright_renewal_duration_seconds", Help: "Time of one renewal attempt.",
		Buckets: durationBuckets,
	}, []string{"kind"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certwright_alert_deliveries_total",
		Help: "Alert delivery attempts, by channel and result.",
	}, []string{"channel", "result"})
	m.acmeRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certwright_acme_requests_total",
		Help: "ACME requests, by endpoint and HTTP status class.",
	}, []string{"endpoint", "status_class"})
	m.acmeOrders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certwright_acme_orders_total",
		Help: "ACME orders created, and finalizations that produced a certificate (valid) or not (failed).",
	}, []string{"result"})

	// Series that exist from the start, so that rate() and absent() see
	// zeros rather than nothing.
	for _, r := range pki.ReasonNames() {
		m.revocations.WithLabelValues(r)
	}
	for _, k := range renewalKinds {
		m.renewDuration.WithLabelValues(k)
		for _, res := range []string{resultSuccess, resultFailure} {
			m.renewals.WithLabelValues(k, res)
		}
	}
	for _, r := range []string{orderCreated, orderValid, orderFailed} {
		m.acmeOrders.WithLabelValues(r)
	}

	for _, c := range []prometheus.Collector{
		m.inv,
		m.issued, m.issueFailures, m.issueDuration,
		m.revocations, m.revokeFailures, m.revokeDuration,
		m.renewals, m.renewDuration, m.deliveries,
		m.acmeRequests, m.acmeOrders,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// ObserveIssue records one leaf issuance (issue.Observer). caName and
// profile are empty when the request failed.
func (m *Metrics) ObserveIssue(caName, profile string, elapsed time.Duration, err error) {
	m.issueDuration.Observe(elapsed.Seconds())
	if err != nil {
		m.issueFailures.Inc()
		return
	}
	m.issued.WithLabelValues(clip(caName), clip(profile)).Inc()
}

// ObserveRevoke records one revocation call (revoke.Observer).
func (m *Metrics) ObserveRevoke(reason string, revoked int, elapsed time.Duration, err error) {
	m.revokeDuration.Observe(elapsed.Seconds())
	if err != nil {
		m.revokeFailures.Inc()
		return
	}
	if revoked > 0 {
		m.revocations.WithLabelValues(knownReason(reason)).Add(float64(revoked))
	}
}

// renewalKinds are the kind label values; anything else is "other".
var renewalKinds = []string{
	string(inventory.RenewalAuto), string(inventory.RenewalAgent), string(inventory.RenewalACME), string(inventory.RenewalEST),
	string(inventory.RenewalSCEP), string(inventory.RenewalRotate), string(inventory.RenewalManual), "other",
}

// ObserveRenewal records one renewal attempt of the given kind (auto,
// agent, acme, rotate, manual).
func (m *Metrics) ObserveRenewal(kind string, elapsed time.Duration, err error) {
	k := "other"
	for _, x := range renewalKinds {
		if x == kind {
			k = x
		}
	}
	m.renewDuration.WithLabelValues(k).Observe(elapsed.Seconds())
	m.renewals.WithLabelValues(k, result(err)).Inc()
}

// ObserveDelivery records one attempt to deliver an alert to a configured
// channel.
func (m *Metrics) ObserveDelivery(channel string, err error) {
	m.deliveries.WithLabelValues(clip(channel), result(err)).Inc()
}

func result(err error) string {
	if err != nil {
		return resultFailure
	}
	return resultSuccess
}

// knownReason keeps the reason label to the fixed set.
func knownReason(r string) string {
	if _, err := pki.ParseReason(r); err != nil {
		return revoke.ReasonInvalid
	}
	return r
}

// clip makes a label value taken from data safe to expose: valid UTF-8
// (an imported certificate may carry anything) and at most maxLabelLen
// bytes, cut at a character boundary.
func clip(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= maxLabelLen {
		return s
	}
	i := maxLabelLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
