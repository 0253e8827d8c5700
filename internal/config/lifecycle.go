package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
)

// LifecycleConfig tunes expiry monitoring, renewal and rotation. Durations
// are written like 30d, 2w, 12h or 90s.
type LifecycleConfig struct {
	// ExpiryCheckInterval is how often certificates are checked against
	// the alert thresholds (default 1h).
	ExpiryCheckInterval string `yaml:"expiry_check_interval,omitempty"`
	// AlertThresholds alert when a certificate has this long left
	// (default 30d, 14d, 7d, 1d); each certificate's profile renewal
	// threshold is added, and expiry itself always alerts.
	AlertThresholds []string `yaml:"alert_thresholds,omitempty"`
	// CAAlertThresholds apply to CA certificates (default 180d, 90d, 30d, 7d).
	CAAlertThresholds []string `yaml:"ca_alert_thresholds,omitempty"`
	// RenewalInterval is how often auto-renewed certificates are renewed
	// when due (default 10m).
	RenewalInterval string `yaml:"renewal_interval,omitempty"`
	// RenewalRetry is the first wait after a failed renewal; it doubles up
	// to 12h (default 15m).
	RenewalRetry string `yaml:"renewal_retry,omitempty"`
	// RevokeSupersededAfter, when set, revokes a renewed certificate as
	// superseded this long after its replacement was issued (default
	// empty: renewed certificates simply expire).
	RevokeSupersededAfter string `yaml:"revoke_superseded_after,omitempty"`
	// DeliveryInterval is how often queued alert deliveries are attempted
	// (default 15s; a new alert is sent at once).
	DeliveryInterval string `yaml:"delivery_interval,omitempty"`
	// DeliveryAttempts bounds the attempts per alert and channel (default 12).
	DeliveryAttempts int `yaml:"delivery_attempts,omitempty"`
	// ComplianceInterval is how often the compliance summary the console
	// shows is rebuilt (default 1h).
	ComplianceInterval string `yaml:"compliance_interval,omitempty"`
}

// LifecycleDurations are the parsed lifecycle settings.
type LifecycleDurations struct {
	ExpiryCheck, Renewal, RenewalRetry, SupersedeAfter, Delivery, Compliance time.Duration
	Thresholds, CAThresholds                                                 []time.Duration
}

// Durations returns the parsed settings (after Validate).
func (l LifecycleConfig) Durations() LifecycleDurations {
	p := func(s string) time.Duration {
		d, _ := inventory.ParseWindow(s)
		return d
	}
	out := LifecycleDurations{
		ExpiryCheck: p(l.ExpiryCheckInterval), Renewal: p(l.RenewalInterval), RenewalRetry: p(l.RenewalRetry),
		Delivery: p(l.DeliveryInterval), Compliance: p(l.ComplianceInterval),
	}
	if l.RevokeSupersededAfter != "" {
		out.SupersedeAfter = p(l.RevokeSupersededAfter)
	}
	for _, s := range l.AlertThresholds {
		out.Thresholds = append(out.Thresholds, p(s))
	}
	for _, s := range l.CAAlertThresholds {
		out.CAThresholds = append(out.CAThresholds, p(s))
	}
	return out
}

// AlertsConfig declares where alerts go.
type AlertsConfig struct {
	Channels []ChannelConfig `yaml:"channels,omitempty"`
	// Routes send matching alerts to their channels; alerts no route
	// matches go to Default (every channel when Default is empty).
	Routes  []RouteConfig `yaml:"routes,omitempty"`
	Default []string      `yaml:"default,omitempty"`
}

// ChannelConfig is one alert channel: a webhook or an email recipient list.
type ChannelConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // webhook or email
	// Webhook: URL, extra headers (e.g. Authorization), and a file holding
	// the HMAC secret that signs each body (X-Certwright-Signature).
	URL        string            `yaml:"url,omitempty"`
	Headers    map[string]string `yaml:"headers,omitempty"`
	SecretFile string            `yaml:"secret_file,omitempty"`
	// Email: SMTP server host:port, tls starttls (default), implicit or
	// none (loopback relays only), optional AUTH PLAIN credentials.
	SMTP         string   `yaml:"smtp,omitempty"`
	TLS          string   `yaml:"tls,omitempty"`
	Username     string   `yaml:"username,omitempty"`
	PasswordFile string   `yaml:"password_file,omitempty"`
	From         string   `yaml:"from,omitempty"`
	To           []string `yaml:"to,omitempty"`
	// CAFile is a PEM bundle trusted for the channel's TLS (default: the
	// system roots).
	CAFile string `yaml:"ca_file,omitempty"`
	// Timeout bounds one delivery attempt (default 10s webhook, 30s email).
	Timeout string `yaml:"timeout,omitempty"`
}

// RouteConfig routes alerts by kind, tag, profile and CA.
type RouteConfig struct {
	Kinds    []string `yaml:"kinds,omitempty"`
	Tags     []string `yaml:"tags,omitempty"`
	Profiles []string `yaml:"profiles,omitempty"`
	CAs      []string `yaml:"cas,omitempty"`
	Channels []string `yaml:"channels"`
}

// MetricsConfig places the Prometheus endpoint.
type MetricsConfig struct {
	// Listen, when set, serves /metrics on its own plain-HTTP listener
	// (e.g. 127.0.0.1:9464); otherwise /metrics is on the HTTPS listener
	// and needs an API token with cert:read.
	Listen string `yaml:"listen,omitempty"`
	// TokenFile holds a bearer token the separate listener requires.
	TokenFile string `yaml:"token_file,omitempty"`
	// MaxCertificates caps the per-certificate expiry series, soonest
	// expiry first (default 10000).
	MaxCertificates int `yaml:"max_certificates,omitempty"`
}

func (c *Config) lifecycleDefaults() {
	l := &c.Lifecycle
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&l.ExpiryCheckInterval, "1h")
	def(&l.RenewalInterval, "10m")
	def(&l.RenewalRetry, "15m")
	def(&l.DeliveryInterval, "15s")
	def(&l.ComplianceInterval, "1h")
	if len(l.AlertThresholds) == 0 {
		l.AlertThresholds = []string{"30d", "14d", "7d", "1d"}
	}
	if len(l.CAAlertThresholds) == 0 {
		l.CAAlertThresholds = []string{"180d", "90d", "30d", "7d"}
	}
	if l.DeliveryAttempts == 0 {
		l.DeliveryAttempts = 12
	}
	if c.Metrics.MaxCertificates == 0 {
		c.Metrics.MaxCertificates = 10000
	}
}

var channelName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func (c *Config) validateLifecycle() error {
	l := &c.Lifecycle
	for _, d := range []struct {
		field, v string
		min, max time.Duration
	}{
		{"lifecycle.expiry_check_interval", l.ExpiryCheckInterval, 10 * time.Second, 24 * time.Hour},
		{"lifecycle.renewal_interval", l.RenewalInterval, 10 * time.Second, 24 * time.Hour},
		{"lifecycle.renewal_retry", l.RenewalRetry, time.Second, 24 * time.Hour},
		{"lifecycle.delivery_interval", l.DeliveryInterval, time.Second, time.Hour},
		{"lifecycle.compliance_interval", l.ComplianceInterval, time.Minute, 24 * time.Hour},
	} {
		if err := checkDuration(d.field, d.v, d.min, d.max); err != nil {
			return err
		}
	}
	if l.RevokeSupersededAfter != "" {
		if err := checkDuration("lifecycle.revoke_superseded_after", l.RevokeSupersededAfter, 0, 90*24*time.Hour); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		field string
		list  []string
	}{{"lifecycle.alert_thresholds", l.AlertThresholds}, {"lifecycle.ca_alert_thresholds", l.CAAlertThresholds}} {
		if len(t.list) > 20 {
			return invalid(t.field, "%d thresholds: at most 20", len(t.list))
		}
		for _, s := range t.list {
			if err := checkDuration(t.field, s, time.Hour, 5*365*24*time.Hour); err != nil {
				return err
			}
		}
	}
	if l.DeliveryAttempts < 1 || l.DeliveryAttempts > 100 {
		return invalid("lifecycle.delivery_attempts", "%d: want 1 to 100", l.DeliveryAttempts)
	}
	names := map[string]bool{}
	for i, ch := range c.Alerts.Channels {
		field := fmt.Sprintf("alerts.channels[%d]", i)
		if !channelName.MatchString(ch.Name) {
			return invalid(field+".name", "%q: use 1-64 lowercase letters, digits, '-', '_' or '.'", ch.Name)
		}
		if names[ch.Name] {
			return invalid(field+".name", "%q is used twice", ch.Name)
		}
		names[ch.Name] = true
		if ch.Timeout != "" {
			if err := checkDuration(field+".timeout", ch.Timeout, time.Second, 5*time.Minute); err != nil {
				return err
			}
		}
		switch ch.Type {
		case "webhook":
			u, err := url.Parse(ch.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return invalid(field+".url", "%q must be an absolute http:// or https:// URL", redactURL(ch.URL))
			}
			if ch.SMTP != "" || len(ch.To) > 0 || ch.From != "" {
				return invalid(field, "smtp, from and to belong to email channels, not webhooks")
			}
		case "email":
			if _, _, err := net.SplitHostPort(ch.SMTP); err != nil {
				return invalid(field+".smtp", "%q is not host:port (for example mail.example.com:587)", ch.SMTP)
			}
			switch ch.TLS {
			case "", "starttls", "implicit", "none":
			default:
				return invalid(field+".tls", "%q: want starttls, implicit or none", ch.TLS)
			}
			if _, err := mail.ParseAddress(ch.From); err != nil {
				return invalid(field+".from", "%q is not an email address", ch.From)
			}
			if len(ch.To) == 0 {
				return invalid(field+".to", "list at least one recipient")
			}
			for _, to := range ch.To {
				if _, err := mail.ParseAddress(to); err != nil {
					return invalid(field+".to", "%q is not an email address", to)
				}
			}
			if (ch.Username == "") != (ch.PasswordFile == "") {
				return invalid(field, "username and password_file go together")
			}
			if ch.URL != "" {
				return invalid(field+".url", "url belongs to webhook channels")
			}
		default:
			return invalid(field+".type", "%q: want webhook or email", ch.Type)
		}
	}
	known := func(field string, chs []string) error {
		for _, n := range chs {
			if !names[n] {
				return invalid(field, "channel %q is not defined under alerts.channels", n)
			}
		}
		return nil
	}
	for i, r := range c.Alerts.Routes {
		field := fmt.Sprintf("alerts.routes[%d]", i)
		if len(r.Channels) == 0 {
			return invalid(field+".channels", "a route needs at least one channel")
		}
		if err := known(field+".channels", r.Channels); err != nil {
			return err
		}
		for _, k := range r.Kinds {
			if !slices.Contains(alertKinds(), k) {
				return invalid(field+".kinds", "%q: want one of %s", k, strings.Join(alertKinds(), ", "))
			}
		}
	}
	if err := known("alerts.default", c.Alerts.Default); err != nil {
		return err
	}
	m := &c.Metrics
	if m.Listen != "" {
		host, _, err := net.SplitHostPort(m.Listen)
		if err != nil {
			return invalid("metrics.listen", "%q is not host:port", m.Listen)
		}
		ip := net.ParseIP(host)
		if m.TokenFile == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return invalid("metrics.token_file", "metrics.listen %q is reachable from other hosts: set token_file so scrapers must present a bearer token", m.Listen)
		}
	} else if m.TokenFile != "" {
		return invalid("metrics.token_file", "applies to the separate listener: set metrics.listen too (on the HTTPS listener /metrics takes API tokens)")
	}
	if m.MaxCertificates < 1 || m.MaxCertificates > 1_000_000 {
		return invalid("metrics.max_certificates", "%d: want 1 to 1000000", m.MaxCertificates)
	}
	return nil
}

// alertKinds are the alert kinds routes may name.
func alertKinds() []string {
	var out []string
	for _, k := range lifecycle.AlertKinds() {
		out = append(out, string(k))
	}
	return out
}

func checkDuration(field, v string, min, max time.Duration) error {
	d, err := inventory.ParseWindow(v)
	if err != nil {
		return invalid(field, "%v", err)
	}
	if d < min || d > max {
		return invalid(field, "%s: want %s to %s", v, inventory.FormatWindow(min), inventory.FormatWindow(max))
	}
	return nil
}

// redactURL drops credentials and the query from a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
