package config

import (
	"time"

	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/inventory"
)

// ScanConfig configures the scheduled network scan (the scan job) and
// the scans run through the API. Nothing is scanned unless Allow lists
// it: the default allows nothing.
type ScanConfig struct {
	// Targets are scanned every Interval: host:port, hostnames (the
	// default port 443), host:443,8443 port lists, and CIDR ranges with
	// ports (10.0.0.0/24:443,8443; [2001:db8::/120]:443), each range at
	// most 4096 addresses.
	Targets []string `yaml:"targets,omitempty"`
	// Allow lists what the server may scan: CIDR ranges, IP addresses and
	// hostnames (*.example.com for every name below). Every target must be
	// in it; a hostname not listed by name must resolve into a range.
	Allow []string `yaml:"allow,omitempty"`
	// Interval between scheduled scans (default 6h).
	Interval string `yaml:"interval,omitempty"`
	// Concurrency bounds the targets scanned at once (default 16).
	Concurrency int `yaml:"concurrency,omitempty"`
	// RatePerHost bounds the connections started per second to one host
	// (default 10).
	RatePerHost int `yaml:"rate_per_host,omitempty"`
	// Timeout bounds each connection's exchange with a target: the
	// connect, a greeting, a handshake (default 5s).
	Timeout string `yaml:"timeout,omitempty"`
	// BannerTimeout is how long a scan waits for a service that speaks
	// first (SMTP, FTP, POP3, IMAP, MySQL, NATS) before trying the
	// protocols where the client speaks first (default 2s).
	BannerTimeout string `yaml:"banner_timeout,omitempty"`
	// QuietHours is a daily window HH:MM-HH:MM, in TimeZone (default
	// UTC), in which no scheduled scan starts.
	QuietHours string `yaml:"quiet_hours,omitempty"`
	TimeZone   string `yaml:"time_zone,omitempty"`
	// DisappearAfter is how many scans in a row must miss an endpoint
	// before it counts as gone (default 3).
	DisappearAfter int `yaml:"disappear_after,omitempty"`
	// History is how long endpoint history is kept (default 90d).
	History string `yaml:"history,omitempty"`
	// AlertPlaintext and AlertWeak raise warnings for endpoints found
	// accepting plaintext, or with weak TLS (default off). Revoked,
	// expired and stale certificates served always alert.
	AlertPlaintext bool `yaml:"alert_plaintext,omitempty"`
	AlertWeak      bool `yaml:"alert_weak,omitempty"`
	// MaxDiscovered bounds the unknown certificates one scan adds to the
	// inventory as discovered (default 500); one endpoint adds at most
	// one a day.
	MaxDiscovered int `yaml:"max_discovered,omitempty"`
}

// ScanSettings are the parsed scan settings.
type ScanSettings struct {
	Targets           []discovery.Target
	Allow             discovery.AllowList
	Quiet             discovery.QuietHours
	Interval, Timeout time.Duration
	BannerTimeout     time.Duration
	History           time.Duration
}

func (c *Config) scanDefaults() {
	s := &c.Scan
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&s.Interval, "6h")
	def(&s.Timeout, "5s")
	def(&s.BannerTimeout, "2s")
	def(&s.History, "90d")
	if s.Concurrency == 0 {
		s.Concurrency = 16
	}
	if s.RatePerHost == 0 {
		s.RatePerHost = 10
	}
	if s.DisappearAfter == 0 {
		s.DisappearAfter = 3
	}
	if s.MaxDiscovered == 0 {
		s.MaxDiscovered = discovery.DefaultMaxDiscovered
	}
}

// Settings parses the scan settings (after Validate, it cannot fail).
func (s ScanConfig) Settings() (ScanSettings, error) {
	var out ScanSettings
	var err error
	if out.Allow, err = discovery.ParseAllowList(s.Allow); err != nil {
		return out, invalid("scan.allow", "%v", err)
	}
	if out.Targets, err = discovery.ParseTargets(s.Targets, nil); err != nil {
		return out, invalid("scan.targets", "%v", err)
	}
	for _, t := range out.Targets {
		if err := out.Allow.Check(t); err != nil {
			return out, invalid("scan.targets", "%v", err)
		}
	}
	if out.Quiet, err = discovery.ParseQuietHours(s.QuietHours, s.TimeZone); err != nil {
		return out, invalid("scan.quiet_hours", "%v", err)
	}
	if s.TimeZone != "" && s.QuietHours == "" {
		return out, invalid("scan.time_zone", "applies to scan.quiet_hours, which is not set")
	}
	out.Interval, _ = inventory.ParseWindow(s.Interval)
	out.Timeout, _ = inventory.ParseWindow(s.Timeout)
	out.BannerTimeout, _ = inventory.ParseWindow(s.BannerTimeout)
	out.History, _ = inventory.ParseWindow(s.History)
	return out, nil
}

func (c *Config) validateScan() error {
	s := &c.Scan
	for _, d := range []struct {
		field, v string
		min, max time.Duration
	}{
		{"scan.interval", s.Interval, time.Minute, 30 * 24 * time.Hour},
		{"scan.timeout", s.Timeout, 100 * time.Millisecond, time.Minute},
		{"scan.banner_timeout", s.BannerTimeout, 100 * time.Millisecond, 30 * time.Second},
		{"scan.history", s.History, 24 * time.Hour, 5 * 365 * 24 * time.Hour},
	} {
		if err := checkDuration(d.field, d.v, d.min, d.max); err != nil {
			return err
		}
	}
	if s.Concurrency < 1 || s.Concurrency > 1024 {
		return invalid("scan.concurrency", "%d: want 1 to 1024", s.Concurrency)
	}
	if s.RatePerHost < 1 || s.RatePerHost > 1000 {
		return invalid("scan.rate_per_host", "%d: want 1 to 1000 connections per second", s.RatePerHost)
	}
	if s.DisappearAfter < 1 || s.DisappearAfter > 100 {
		return invalid("scan.disappear_after", "%d: want 1 to 100 scans", s.DisappearAfter)
	}
	if s.MaxDiscovered < 1 || s.MaxDiscovered > discovery.MaxTargets {
		return invalid("scan.max_discovered", "%d: want 1 to %d certificates per scan", s.MaxDiscovered, discovery.MaxTargets)
	}
	if len(s.Allow) > 1000 {
		return invalid("scan.allow", "%d entries: at most 1000", len(s.Allow))
	}
	if _, err := s.Settings(); err != nil {
		return err
	}
	return nil
}
