package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certwright/certwright/internal/discovery"
)

var (
	descScanEndpoints = prometheus.NewDesc("certwright_scan_endpoints",
		"Endpoints the scans found and not gone, by encryption (implicit-tls, starttls, optional, none, unknown).",
		[]string{"encryption"}, nil)
	descScanGone = prometheus.NewDesc("certwright_scan_endpoints_gone",
		"Endpoints that disappeared (missed by scan.disappear_after scans in a row).", nil, nil)
	descScanGrades = prometheus.NewDesc("certwright_scan_grade_endpoints",
		"Graded endpoints by grade.", []string{"grade"}, nil)
	descScanStatus = prometheus.NewDesc("certwright_scan_served_certificates",
		"Endpoints by what the inventory says of the certificate they serve (managed, stale, revoked, expired, unmanaged).",
		[]string{"status"}, nil)
	descScanUnmanaged = prometheus.NewDesc("certwright_scan_unmanaged_certificates",
		"Distinct certificates served that only the scans know (inventory source discovered).", nil, nil)
	descScanShare = prometheus.NewDesc("certwright_scan_share",
		"Share (0 to 1) of the endpoints for which it is known that are encrypted (kpi=encrypted), accept TLS 1.2+ only (tls12_only) or strong cipher suites only (strong_ciphers_only).",
		[]string{"kpi"}, nil)
	descScanExposed = prometheus.NewDesc("certwright_scan_exposed_endpoints",
		"Endpoints accepting plaintext or with weak TLS now.", nil, nil)
	descScanMTTR = prometheus.NewDesc("certwright_scan_mean_time_to_remediate_seconds",
		"Mean time from finding an endpoint plaintext or weak to its remediation, over the history kept.", nil, nil)
	descScanUp = prometheus.NewDesc("certwright_scan_kpis_up",
		"1 when the scan KPIs above could be read at this scrape.", nil, nil)
)

// scanReadTimeout bounds the store reads of one scrape.
const scanReadTimeout = 5 * time.Second

// RegisterScans adds the scanned endpoints' encryption KPIs, read from
// kpis at each scrape.
func (m *Metrics) RegisterScans(kpis func(context.Context) (*discovery.KPIs, error)) error {
	if kpis == nil {
		return fmt.Errorf("metrics: register scans: no KPI source")
	}
	if err := m.reg.Register(scanCollector{kpis: kpis}); err != nil {
		return fmt.Errorf("metrics: register scans: %w", err)
	}
	return nil
}

type scanCollector struct {
	kpis func(context.Context) (*discovery.KPIs, error)
}

func (c scanCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScanEndpoints, descScanGone, descScanGrades, descScanStatus, descScanUnmanaged,
		descScanShare, descScanExposed, descScanMTTR, descScanUp} {
		ch <- d
	}
}

func (c scanCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scanReadTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	k, err := c.kpis(ctx)
	if err != nil {
		gauge(descScanUp, 0)
		return
	}
	gauge(descScanUp, 1)
	for _, e := range discovery.Encryptions() {
		gauge(descScanEndpoints, float64(k.ByEncryption[e]), string(e))
	}
	gauge(descScanGone, float64(k.Gone))
	for g, n := range k.Grades {
		gauge(descScanGrades, float64(n), g)
	}
	for _, s := range []discovery.Status{discovery.StatusManaged, discovery.StatusStale, discovery.StatusRevoked, discovery.StatusExpired, discovery.StatusUnmanaged} {
		gauge(descScanStatus, float64(k.ByStatus[s]), string(s))
	}
	gauge(descScanUnmanaged, float64(k.Unmanaged))
	gauge(descScanShare, k.EncryptedShare, "encrypted")
	gauge(descScanShare, k.TLS12OnlyShare, "tls12_only")
	gauge(descScanShare, k.StrongOnlyShare, "strong_ciphers_only")
	gauge(descScanExposed, float64(k.Exposed))
	gauge(descScanMTTR, k.MeanTimeToRemediate)
}
