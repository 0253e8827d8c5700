package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/recovery"
	"github.com/certwright/certwright/internal/revoke"
)

// A reload (SIGHUP) re-reads the configuration of a running instance and
// applies what can change without a restart. Each component holds its
// changeable settings behind an atomic pointer (lifecycle.Settings,
// revoke.Timings, acme.Settings, the validator's deny list, the metrics
// series cap) or a slog.LevelVar, so that requests and jobs read them
// safely while a reload replaces them. A reload is all or nothing: every
// live change is prepared (files read, values checked) before any is
// applied, and an invalid file changes nothing.

// liveGroup names a set of settings applied together.
type liveGroup string

const (
	groupLogLevel   liveGroup = "log level"
	groupAlerting   liveGroup = "alerting"
	groupJobs       liveGroup = "job intervals"
	groupRevocation liveGroup = "revocation timings"
	groupACME       liveGroup = "ACME limits"
	groupACMEDeny   liveGroup = "ACME deny list"
	groupMetrics    liveGroup = "metrics"
	groupTLSNames   liveGroup = "server certificate names"
)

// reloadRule says how a changed key takes effect: live with its group, or
// (group "") at the next start. A rule's key covers its sub-keys
// (alerts covers alerts.channels[0].url). Secret keys' values are never
// logged. Keys without a rule need a restart.
type reloadRule struct {
	key    string
	group  liveGroup
	secret bool
	// initOnly keys shape a new data directory and never apply again.
	initOnly bool
}

// Effects of a changed key, as logged.
const (
	EffectLive    = "applied live"
	EffectRestart = "needs a restart"
	EffectNone    = "applies only when a data directory is created (init); ignored"
)

// reloadRules is the table of live keys. Making a key live is one line
// here (and an applier for a new group).
func reloadRules() []reloadRule {
	return []reloadRule{
		{key: "log_level", group: groupLogLevel},
		{key: "alerts.channels", group: groupAlerting, secret: true}, // URLs and headers may hold tokens
		{key: "alerts", group: groupAlerting},
		{key: "lifecycle.alert_thresholds", group: groupAlerting},
		{key: "lifecycle.ca_alert_thresholds", group: groupAlerting},
		{key: "lifecycle.delivery_attempts", group: groupAlerting},
		{key: "lifecycle.revoke_superseded_after", group: groupAlerting},
		{key: "lifecycle.renewal_retry", group: groupAlerting},
		{key: "lifecycle.expiry_check_interval", group: groupJobs},
		{key: "lifecycle.renewal_interval", group: groupJobs},
		{key: "lifecycle.delivery_interval", group: groupJobs},
		{key: "lifecycle.compliance_interval", group: groupJobs},
		{key: "audit.verify_interval", group: groupJobs},
		{key: "scan.interval", group: groupJobs},
		{key: "revocation.crl_lifetime", group: groupRevocation},
		{key: "revocation.ocsp_response_lifetime", group: groupRevocation},
		{key: "revocation.ocsp_responder_lifetime", group: groupRevocation},
		{key: "revocation.ocsp_cache_entries", group: groupRevocation},
		{key: "revocation.ocsp_unknown_per_second", group: groupRevocation},
		{key: "acme.orders_per_hour", group: groupACME},
		{key: "acme.accounts_per_hour", group: groupACME},
		{key: "acme.failed_validations_per_hour", group: groupACME},
		{key: "acme.pending_authorizations", group: groupACME},
		{key: "acme.validations_in_flight", group: groupACME},
		{key: "acme.target_validations_in_flight", group: groupACME},
		{key: "acme.source_validations_in_flight", group: groupACME},
		{key: "acme.concurrent_validations", group: groupACME},
		{key: "acme.target_concurrency", group: groupACME},
		{key: "acme.order_lifetime", group: groupACME},
		{key: "acme.valid_authz_lifetime", group: groupACME},
		{key: "acme.deny_validation", group: groupACMEDeny},
		{key: "metrics.max_certificates", group: groupMetrics},
		{key: "tls_names", group: groupTLSNames},
		// Restart: named here for their secrecy or for the lead's wiring.
		{key: "db", secret: true},
		{key: "public_http_url"}, // new certificates get the new URLs after a restart
		{key: "init", initOnly: true},
	}
}

// ruleFor returns the most specific rule covering key.
func ruleFor(rules []reloadRule, key string) reloadRule {
	best, found := reloadRule{key: key}, false
	for _, r := range rules {
		covers := key == r.key || strings.HasPrefix(key, r.key+".") || strings.HasPrefix(key, r.key+"[")
		if covers && (!found || len(r.key) > len(best.key)) {
			best, found = r, true
		}
	}
	return best
}

// Change is one key a reload found changed.
type Change struct {
	Key string
	// Live says the change took effect at once.
	Live bool
	// Effect is EffectLive, EffectRestart or EffectNone.
	Effect string
	// From and To are the values; empty for secret keys.
	From, To string
	Secret   bool
}

// Reloader re-reads and applies a running App's configuration. Reload
// and Run may be called from any goroutine; reloads run one at a time.
type Reloader struct {
	app   *App
	level *slog.LevelVar
	load  func() (*config.Config, error)

	mu      sync.Mutex
	applied *config.Config // the configuration of the last reload (or the start)
}

// NewReloader returns a Reloader for a: load reads the configuration as
// serve does at start (the file, then the command line's flags); level
// is the LevelVar of a's logger.
func (a *App) NewReloader(level *slog.LevelVar, load func() (*config.Config, error)) *Reloader {
	return &Reloader{app: a, level: level, load: load, applied: a.cfg}
}

// Run reloads each time a signal arrives, until ctx ends. A refused
// reload is logged and the running configuration kept.
func (r *Reloader) Run(ctx context.Context, signals <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-signals:
			// A panic in a reload is logged; it never ends the server.
			recovery.Do(r.app.log, "configuration reload", func() { _, _ = r.Reload(ctx) })
		}
	}
}

// Reload re-reads the configuration and applies its live changes,
// logging one line per changed key (applied live, or needs a restart). An
// invalid configuration is refused, logged with the file and line, and
// nothing changes.
func (r *Reloader) Reload(ctx context.Context) ([]Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	log := r.app.log
	next, err := r.load()
	if err != nil {
		log.Error("configuration reload refused; the running configuration is unchanged", "err", err)
		return nil, err
	}
	// Derived from the KEK, which a reload does not change.
	next.ReplicaSettingsKey = r.app.cfg.ReplicaSettingsKey
	changes := r.diff(next)
	// The alerting group is always rebuilt: a channel's secret or CA file
	// may have changed behind an unchanged path.
	groups := []liveGroup{groupAlerting}
	logLevel := false
	for _, c := range changes {
		switch g := ruleFor(reloadRules(), c.Key).group; {
		case !c.Live || slices.Contains(groups, g):
		case g == groupLogLevel:
			logLevel = true
		default:
			groups = append(groups, g)
		}
	}
	// The log level goes last, so a quieter level does not hide the
	// lines saying what changed.
	if logLevel {
		groups = append(groups, groupLogLevel)
	}
	appliers := r.appliers(ctx)
	commits := make([]func() error, 0, len(groups))
	for _, g := range groups {
		commit, err := appliers[g](next)
		if err != nil {
			err = fmt.Errorf("app: reload: %s: %w", g, err)
			log.Error("configuration reload refused; the running configuration is unchanged", "err", err)
			return nil, err
		}
		commits = append(commits, commit)
	}
	// Settings the replicas must agree on are checked against the running
	// replicas last, so a refusal above leaves the registry as it was.
	// The registry keeps the name this replica runs under: a changed
	// replica_name takes effect at the next start.
	agreed := *next
	agreed.ReplicaName = r.app.cfg.Replica()
	if err := r.app.agreeReload(ctx, &agreed); err != nil {
		err = fmt.Errorf("app: reload: %w", err)
		log.Error("configuration reload refused; the running configuration is unchanged, and this replica reports not ready until a reload agrees", "err", err)
		return nil, err
	}
	// A group that fails to apply (the store is down while the server
	// certificate is re-issued, say) keeps the reload from being recorded,
	// so the next reload finds the same changes and tries again.
	failed := false
	for i, commit := range commits[:len(commits)-1] {
		if err := commit(); err != nil {
			failed = true
			log.Error("configuration reload: could not apply "+string(groups[i])+"; the next reload tries again", "err", err)
		}
	}
	live, restart := 0, 0
	for _, c := range changes {
		attrs := []any{"key", c.Key}
		if !c.Secret {
			attrs = append(attrs, "from", c.From, "to", c.To)
		}
		attrs = append(attrs, "effect", c.Effect)
		switch c.Effect {
		case EffectLive:
			live++
			log.Info("configuration changed", attrs...)
		case EffectRestart:
			restart++
			log.Warn("configuration changed", attrs...)
		default:
			log.Info("configuration changed", attrs...)
		}
	}
	log.Info("configuration reloaded", "applied_live", live, "needs_restart", restart)
	if err := commits[len(commits)-1](); err != nil {
		failed = true
		log.Error("configuration reload: could not apply "+string(groups[len(groups)-1])+"; the next reload tries again", "err", err)
	}
	if !failed {
		r.applied = next
	}
	return changes, nil
}

// diff lists the keys whose value in next differs from the running one:
// for live keys the last applied value, for the others the value the
// instance started with (they stay pending until a restart).
func (r *Reloader) diff(next *config.Config) []Change {
	rules := reloadRules()
	started, applied, want := r.app.cfg.Settings(), r.applied.Settings(), next.Settings()
	keys := make([]string, 0, len(want))
	for _, m := range []map[string]string{started, applied, want} {
		for k := range m {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []Change
	for _, k := range slices.Compact(keys) {
		rule := ruleFor(rules, k)
		running := started
		if rule.group != "" {
			running = applied
		}
		if running[k] == want[k] {
			continue
		}
		c := Change{Key: k, Live: rule.group != "", Secret: rule.secret, Effect: EffectRestart}
		switch {
		case c.Live:
			c.Effect = EffectLive
		case rule.initOnly:
			c.Effect = EffectNone
		}
		if !c.Secret {
			c.From, c.To = running[k], want[k]
		}
		out = append(out, c)
	}
	return out
}

// appliers prepare each live group from a new configuration: they read
// and check everything first and return the commit that puts it in place.
func (r *Reloader) appliers(ctx context.Context) map[liveGroup]func(*config.Config) (func() error, error) {
	a := r.app
	return map[liveGroup]func(*config.Config) (func() error, error){
		groupTLSNames: func(c *config.Config) (func() error, error) {
			if err := config.ValidateTLSNames(c.TLSNames); err != nil {
				return nil, err
			}
			names := slices.Clone(c.TLSNames)
			if _, err := serverOrigins(names, "443", nil); err != nil {
				return nil, err
			}
			// A new certificate is served from the next handshake on; a
			// CLI sign-in may be bound to the new names from then on.
			return func() error {
				if err := a.EnsureServerCertificate(ctx, names); err != nil {
					return err
				}
				if a.sso != nil {
					return a.sso.SetTLSNames(names)
				}
				return nil
			}, nil
		},
		groupLogLevel: func(c *config.Config) (func() error, error) {
			var l slog.Level
			if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
				return nil, err
			}
			return func() error {
				if r.level != nil {
					r.level.Set(l)
				}
				return nil
			}, nil
		},
		groupAlerting: func(c *config.Config) (func() error, error) {
			set, err := lifecycleSettings(c, a.clock)
			if err != nil {
				return nil, err
			}
			return func() error { return a.lifecycle.SetSettings(set) }, nil
		},
		groupJobs: func(c *config.Config) (func() error, error) {
			// The jobs as start-up builds them: their names and defaulted
			// intervals come from the lifecycle, not from a copy here.
			jobs := a.scheduledJobs(c)
			return func() error {
				for _, j := range jobs {
					if err := a.scheduler.SetInterval(j.Name, j.Interval); err != nil {
						return err
					}
				}
				return nil
			}, nil
		},
		groupRevocation: func(c *config.Config) (func() error, error) {
			t := revocationTimings(c)
			return func() error { return a.revoker.SetTimings(t) }, nil
		},
		groupACME: func(c *config.Config) (func() error, error) {
			s := acmeSettings(c)
			if w := a.cfg.ACME.Workers; s.Limits.ConcurrentValidations > w || s.Limits.TargetConcurrency > w {
				return nil, fmt.Errorf("acme.concurrent_validations (%d) and acme.target_concurrency (%d) may not exceed the running acme.workers (%d): a change of workers needs a restart",
					s.Limits.ConcurrentValidations, s.Limits.TargetConcurrency, w)
			}
			return func() error { return a.acme.SetSettings(s) }, nil
		},
		groupACMEDeny: func(c *config.Config) (func() error, error) {
			deny := c.ACME.DenyPrefixes()
			return func() error { return a.validator.SetDeny(deny) }, nil
		},
		groupMetrics: func(c *config.Config) (func() error, error) {
			n := c.Metrics.MaxCertificates
			return func() error { return a.metrics.SetMaxCertificates(n) }, nil
		},
	}
}

// revocationTimings are cfg's revocation settings.
func revocationTimings(cfg *config.Config) revoke.Timings {
	crl, ocspResp, responder := cfg.Revocation.Durations()
	return revoke.Timings{
		CRLLifetime: crl, OCSPLifetime: ocspResp, ResponderLifetime: responder,
		OCSPCacheEntries: cfg.Revocation.OCSPCacheEntries, OCSPUnknownPerSecond: cfg.Revocation.OCSPUnknownPerSecond,
	}
}

// acmeSettings are cfg's ACME lifetimes and limits.
func acmeSettings(cfg *config.Config) acme.Settings {
	ac := &cfg.ACME
	_, order, validAuthz := ac.Durations()
	return acme.Settings{
		OrderLifetime: order, PendingAuthzLifetime: order, ValidAuthzLifetime: validAuthz,
		Limits: acme.Limits{
			OrdersPerHour: ac.OrdersPerHour, AccountsPerHour: ac.AccountsPerHour,
			FailedValidationsPerHour: ac.FailedValidationsPerHour, PendingAuthorizations: ac.PendingAuthorizations,
			ValidationsInFlight: ac.ValidationsInFlight, TargetValidationsInFlight: ac.TargetValidationsInFlight,
			ConcurrentValidations: ac.ConcurrentValidations, TargetConcurrency: ac.TargetConcurrency,
			SourceValidationsInFlight: ac.SourceValidationsInFlight,
		},
	}
}

// CheckConfig validates the configuration file at path offline, as serve
// would read it at start or on reload: strict decoding, every value's
// rules, and the files alert channels name (secret, password and CA
// files, relative ones in dataDir). It touches no database and no key.
func CheckConfig(path, dataDir string) (*config.Config, error) {
	cfg, err := config.ReadFile(path, dataDir)
	if err != nil {
		return nil, err
	}
	if _, err := lifecycleSettings(cfg, clock.Real{}); err != nil {
		return nil, err
	}
	return cfg, nil
}
