package app

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/scan"
)

// ScanJob is the scheduled scan of scan.targets.
const ScanJob = "scan"

// wireScan builds the discovery monitor and its scanner from the scan
// section: the full engine (service detection, protocol and cipher-suite
// enumeration, grade, revocation), dialling only within scan.allow, and
// fetching CRLs and OCSP answers only from public addresses, scan.allow
// and this server's own public URL. The server's root CAs are trusted
// beside the system roots, so what it issued grades as trusted.
func (a *App) wireScan() error {
	set, err := a.cfg.Scan.Settings()
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	roots, err := a.rootCertificates()
	if err != nil {
		return err
	}
	// This server's own revocation URLs, on their port only (a listener
	// on port 0, in tests, has none to name).
	var hosts []string
	if u, err := url.Parse(a.cfg.PublicHTTPURL); err == nil && u.Hostname() != "" {
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
			if port == "" {
				port = "80"
			}
		}
		if port != "0" {
			hosts = append(hosts, net.JoinHostPort(u.Hostname(), port))
		}
	}
	sc, err := scan.NewEngine(scan.EngineConfig{
		Clock: a.clock, Log: a.log.With("component", "scan"), Allow: set.Allow,
		Fetch: scan.FetchPolicy{Public: true, Allow: set.Allow, Hosts: hosts},
		Roots: roots, IOTimeout: set.Timeout, BannerTimeout: set.BannerTimeout, Concurrency: a.cfg.Scan.Concurrency, PerHost: a.cfg.Scan.RatePerHost,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	m, err := discovery.NewMonitor(discovery.Config{
		Clock: a.clock, Log: a.log.With("component", "discovery"), Targets: set.Targets, Allow: set.Allow,
		Quiet: set.Quiet, DisappearAfter: a.cfg.Scan.DisappearAfter, History: set.History,
		AlertPlaintext: a.cfg.Scan.AlertPlaintext, AlertWeak: a.cfg.Scan.AlertWeak, MaxDiscovered: a.cfg.Scan.MaxDiscovered,
	}, a.store, sc, a.lifecycle)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.discovery = m
	if err := a.metrics.RegisterScans(m.CurrentKPIs); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// rootCertificates are the self-signed CA certificates in the store
// (offline roots included), read once when the scanner is wired: a root
// created later is trusted by the scans after a restart.
func (a *App) rootCertificates() ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cas, err := a.store.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("app: the scanner's trusted roots: %w", err)
	}
	var roots []*x509.Certificate
	for _, c := range cas {
		if c.ParentID != "" || len(c.CertDER) == 0 {
			continue
		}
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			return nil, fmt.Errorf("app: the scanner's trusted roots: CA %s: %w", c.Name, err)
		}
		roots = append(roots, cert)
	}
	return roots, nil
}

// scanJob is the scheduled scan, at scan.interval in cfg.
func (a *App) scanJob(cfg *config.Config) lifecycle.Job {
	set, _ := cfg.Scan.Settings()
	every := set.Interval
	if every <= 0 {
		every = 6 * time.Hour
	}
	return lifecycle.Job{Name: ScanJob, Interval: every, Resume: true, Run: func(ctx context.Context, st *lifecycle.JobState) (string, error) {
		res, err := a.discovery.Scheduled(ctx)
		st.Idle = res.Skipped != "" || (res.Changes == 0 && res.Alerts == 0)
		return res.Summary(), err
	}}
}
