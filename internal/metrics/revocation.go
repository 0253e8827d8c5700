package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certwright/certwright/internal/clock"
)

var (
	descCRLNext = prometheus.NewDesc("certwright_crl_next_update_seconds",
		"Seconds until the nextUpdate of the CRL this server publishes for the CA (negative: stale).",
		[]string{"ca"}, nil)
	descCRLRefresh = prometheus.NewDesc("certwright_crl_last_refresh_timestamp_seconds",
		"Unix time the CA's current CRL was built (its thisUpdate).",
		[]string{"ca"}, nil)
	descResponder = prometheus.NewDesc("certwright_ocsp_responder_expiry_seconds",
		"Seconds until the CA's delegated OCSP responder certificate expires.",
		[]string{"ca"}, nil)
	descPresign = prometheus.NewDesc("certwright_ocsp_last_presign_timestamp_seconds",
		"Unix time the last pass that refreshes every pre-signed OCSP response of the CA finished.",
		[]string{"ca"}, nil)
	descOCSPNext = prometheus.NewDesc("certwright_ocsp_next_update_seconds",
		"Seconds until the earliest nextUpdate among the CA's pre-signed OCSP responses (negative: stale).",
		[]string{"ca"}, nil)
	descFailing = prometheus.NewDesc("certwright_revocation_refresh_failing",
		"1 while the latest attempt to refresh the CA's CRL (kind=crl) or OCSP responses (kind=ocsp) failed.",
		[]string{"ca", "kind"}, nil)
)

// RegisterRevocation adds the CRL and OCSP freshness of every CA that rev
// serves. Call it once, after the revocation service (which reports to
// these metrics) exists.
func (m *Metrics) RegisterRevocation(rev Revocation) error {
	if rev == nil {
		return fmt.Errorf("metrics: register revocation: no revocation service")
	}
	if err := m.reg.Register(&revocationCollector{clock: m.cfg.Clock, rev: rev}); err != nil {
		return fmt.Errorf("metrics: register revocation: %w", err)
	}
	return nil
}

// revocationCollector reads the revocation service's memory at scrape time.
type revocationCollector struct {
	clock clock.Clock
	rev   Revocation
}

func (c *revocationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCRLNext, descCRLRefresh, descResponder, descPresign, descOCSPNext, descFailing} {
		ch <- d
	}
}

func (c *revocationCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.clock.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	until := func(t time.Time) float64 { return t.Sub(now).Seconds() }
	flag := func(failing string) float64 {
		if failing != "" {
			return 1
		}
		return 0
	}
	for _, f := range c.rev.Freshness() {
		name := clip(f.CAName)
		if !f.CRLNextUpdate.IsZero() {
			gauge(descCRLNext, until(f.CRLNextUpdate), name)
			gauge(descCRLRefresh, unixSeconds(f.CRLThisUpdate), name)
		}
		if !f.OCSPResponderNotAfter.IsZero() {
			gauge(descResponder, until(f.OCSPResponderNotAfter), name)
		}
		if !f.OCSPLastPresign.IsZero() {
			gauge(descPresign, unixSeconds(f.OCSPLastPresign), name)
			gauge(descOCSPNext, until(f.OCSPNextUpdate), name)
		}
		gauge(descFailing, flag(f.CRLError), name, "crl")
		gauge(descFailing, flag(f.OCSPError), name, "ocsp")
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
