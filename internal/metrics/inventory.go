package metrics

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
)

// Certificate states, the values of certwright_certificates{state}.
var certificateStates = []string{"valid", "expired", "revoked", "imported", "auto_renew"}

var (
	descTruncated = prometheus.NewDesc("certwright_certificate_expiry_series_truncated",
		"1 when more certificates qualified for certwright_certificate_expiry_seconds than the cap allows (the latest-expiring were left out).",
		nil, nil)
	descCAExpiry = prometheus.NewDesc("certwright_ca_expiry_seconds",
		"Seconds until the CA certificate's notAfter (negative once expired), for every active or disabled CA.",
		[]string{"ca"}, nil)
	descCerts = prometheus.NewDesc("certwright_certificates",
		"Certificates in the inventory by state: valid, expired and revoked partition it; imported and auto_renew count valid ones.",
		[]string{"state"}, nil)
	descStoreErrors = prometheus.NewDesc("certwright_metrics_store_errors_total",
		"Failed reads of the inventory or CA list made for a scrape; the previous values are served meanwhile.",
		nil, nil)
)

// expirySeries is one certificate's certwright_certificate_expiry_seconds
// series: its label values (bounded, valid UTF-8) and its expiry.
type expirySeries struct {
	ca, name, profile, serial string
	notAfter                  time.Time
}

// snapshot is one read of the inventory. Expiry values are computed from
// notAfter when a scrape is served, so a cached snapshot stays exact.
type snapshot struct {
	taken     time.Time
	series    []expirySeries
	truncated bool
	counts    map[string]int
}

// caInfo is one CA as the metrics label and measure it.
type caInfo struct {
	name     string
	notAfter time.Time // zero: no certificate, or not to be reported
}

// inventoryCollector reads the store at scrape time, at most once per
// inventoryTTL however many scrapers ask. It is a prometheus.Collector for
// the small families; the per-certificate family, which can hold a
// million series, is built directly by expiryFamily.
type inventoryCollector struct {
	clock clock.Clock
	log   *slog.Logger
	max   atomic.Int64 // series cap; SetMaxCertificates changes it
	inv   Inventory
	cas   CAs
	// timeout bounds a refresh made from Collect, which has no context.
	timeout time.Duration

	sem chan struct{} // one refresh at a time

	mu       sync.Mutex // guards the fields below
	snap     *snapshot
	caMap    map[string]caInfo
	caTaken  time.Time
	storeErr float64
}

func newInventoryCollector(cfg Config, inv Inventory, cas CAs) *inventoryCollector {
	c := &inventoryCollector{
		clock: cfg.Clock, log: cfg.Log, inv: inv, cas: cas,
		timeout: cfg.ScrapeTimeout, sem: make(chan struct{}, 1),
	}
	c.max.Store(int64(cfg.MaxCertificates))
	return c
}

// Describe sends the descriptors of the families Collect sends.
func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTruncated, descCAExpiry, descCerts, descStoreErrors} {
		ch <- d
	}
}

// refresh re-reads the CA list and the inventory when their cached copies
// are older than their TTL. A failed read keeps the previous copy, is
// counted and logged, and is returned.
func (c *inventoryCollector) refresh(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("metrics: wait for inventory read: %w", ctx.Err())
	}
	defer func() { <-c.sem }()
	now := c.clock.Now()
	c.mu.Lock()
	needInv := c.snap == nil || now.Sub(c.snap.taken) >= inventoryTTL || now.Before(c.snap.taken)
	needCAs := c.caMap == nil || now.Sub(c.caTaken) >= caTTL || now.Before(c.caTaken)
	cas := c.caMap
	c.mu.Unlock()
	var firstErr error
	fail := func(what string, err error) {
		c.mu.Lock()
		c.storeErr++
		c.mu.Unlock()
		if ctx.Err() == nil {
			c.log.Error("metrics: "+what+" failed; serving the previous values", "err", err)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if needCAs {
		if m, err := c.readCAs(ctx); err != nil {
			fail("reading the CA list", err)
		} else {
			cas = m
			c.mu.Lock()
			c.caMap, c.caTaken = m, now
			c.mu.Unlock()
		}
	}
	if needInv {
		if s, err := c.readInventory(ctx, now, cas); err != nil {
			fail("reading the certificate inventory", err)
		} else {
			c.mu.Lock()
			c.snap = s
			c.mu.Unlock()
		}
	}
	return firstErr
}

func (c *inventoryCollector) readCAs(ctx context.Context) (map[string]caInfo, error) {
	list, err := c.cas.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("metrics: list CAs: %w", err)
	}
	m := make(map[string]caInfo, len(list))
	for _, x := range list {
		info := caInfo{name: clip(x.Name)}
		if len(x.CertDER) > 0 && (x.Status == ca.StatusActive || x.Status == ca.StatusDisabled) {
			if cert, err := x509.ParseCertificate(x.CertDER); err == nil {
				info.notAfter = cert.NotAfter
			} else {
				c.log.Warn("metrics: CA certificate does not parse; its expiry is not reported", "ca", x.Name, "err", err)
			}
		}
		m[x.ID] = info
	}
	return m, nil
}

// readInventory reads the certificates to export and the counts. cas
// names the CAs; a CA it lacks (purged) is labelled with its ID, and an
// imported certificate (no CA here) with an empty value.
func (c *inventoryCollector) readInventory(ctx context.Context, now time.Time, cas map[string]caInfo) (*snapshot, error) {
	s := &snapshot{taken: now}
	// One row more than the cap says whether the cap cut the list.
	maxSeries := int(c.max.Load())
	limit := maxSeries + 1
	s.series = make([]expirySeries, 0, min(limit, 4096))
	err := c.inv.EachExpiry(ctx, now.Add(-ExpiredWindow), limit, func(r inventory.ExpiryRow) error {
		caName := clip(r.CAID)
		if info, ok := cas[r.CAID]; ok {
			caName = info.name
		}
		s.series = append(s.series, expirySeries{
			ca: caName, name: clip(r.Name), profile: clip(r.Profile), serial: clip(r.Serial), notAfter: r.NotAfter,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: read certificate expiry: %w", err)
	}
	if len(s.series) > maxSeries {
		s.series, s.truncated = s.series[:maxSeries], true
	}
	if s.counts, err = c.inv.CertificateCounts(ctx, now); err != nil {
		return nil, fmt.Errorf("metrics: count certificates: %w", err)
	}
	return s, nil
}

// Collect emits the small inventory families from the cached view,
// refreshing it first when stale (the Handler has normally done that with
// the request's context).
func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	_ = c.refresh(ctx) // failures are counted and logged; stale values are still served
	cancel()
	now := c.clock.Now()
	c.mu.Lock()
	snap, cas, storeErr := c.snap, c.caMap, c.storeErr
	c.mu.Unlock()

	ch <- prometheus.MustNewConstMetric(descStoreErrors, prometheus.CounterValue, storeErr)
	for _, info := range cas {
		if !info.notAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCAExpiry, prometheus.GaugeValue, info.notAfter.Sub(now).Seconds(), info.name)
		}
	}
	if snap == nil {
		return
	}
	truncated := 0.0
	if snap.truncated {
		truncated = 1
	}
	ch <- prometheus.MustNewConstMetric(descTruncated, prometheus.GaugeValue, truncated)
	for _, st := range certificateStates {
		ch <- prometheus.MustNewConstMetric(descCerts, prometheus.GaugeValue, float64(snap.counts[st]), st)
	}
}

// The per-certificate family's name and help; its labels are ca, name,
// profile and serial, in the name order the exposition formats keep.
const (
	expiryName = "certwright_certificate_expiry_seconds"
	expiryHelp = "Seconds until the certificate's notAfter (negative once expired), for unrevoked, unrenewed certificates, soonest first, up to the configured cap."
)

// expiryFamily builds certwright_certificate_expiry_seconds from the cached
// view at now, or returns nil before the first successful read. Building
// the protobuf family in a few large allocations, instead of one const
// metric per certificate through the registry, keeps a 100,000-series
// scrape cheap; serials are unique, so there is nothing to de-duplicate.
func (c *inventoryCollector) expiryFamily(now time.Time) *dto.MetricFamily {
	c.mu.Lock()
	snap := c.snap
	c.mu.Unlock()
	if snap == nil {
		return nil
	}
	n := len(snap.series)
	name, help, typ := expiryName, expiryHelp, dto.MetricType_GAUGE
	labelCA, labelName, labelProfile, labelSerial := "ca", "name", "profile", "serial"
	var (
		metrics = make([]dto.Metric, n)
		ptrs    = make([]*dto.Metric, n)
		gauges  = make([]dto.Gauge, n)
		values  = make([]float64, n)
		pairs   = make([]dto.LabelPair, 4*n)
		pairPtr = make([]*dto.LabelPair, 4*n)
	)
	for i := range snap.series {
		s := &snap.series[i]
		values[i] = s.notAfter.Sub(now).Seconds()
		gauges[i].Value = &values[i]
		p := pairs[4*i : 4*i+4 : 4*i+4]
		p[0].Name, p[0].Value = &labelCA, &s.ca
		p[1].Name, p[1].Value = &labelName, &s.name
		p[2].Name, p[2].Value = &labelProfile, &s.profile
		p[3].Name, p[3].Value = &labelSerial, &s.serial
		lp := pairPtr[4*i : 4*i+4 : 4*i+4]
		lp[0], lp[1], lp[2], lp[3] = &p[0], &p[1], &p[2], &p[3]
		metrics[i].Label, metrics[i].Gauge = lp, &gauges[i]
		ptrs[i] = &metrics[i]
	}
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ptrs}
}
