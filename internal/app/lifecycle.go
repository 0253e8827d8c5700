package app

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify"
	"github.com/certwright/certwright/internal/recovery"
	"github.com/certwright/certwright/internal/store"
)

// maxSecretFile bounds a secret or password file.
const maxSecretFile = 64 << 10

// readSecretFile reads a secret from a file, refusing one others can read.
func readSecretFile(dataDir, field, path string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dataDir, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("app: %s: %w", field, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("app: %s: %s is readable by others (mode %04o): chmod 600 it", field, path, fi.Mode().Perm())
	}
	if fi.Size() > maxSecretFile {
		return nil, fmt.Errorf("app: %s: %s is larger than %d bytes", field, path, maxSecretFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("app: %s: %w", field, err)
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

func readCAFile(dataDir, field, path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dataDir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("app: %s: %w", field, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("app: %s: %s holds no PEM certificate", field, path)
	}
	return pool, nil
}

// alertChannels builds the configured alert channels.
func alertChannels(cfg *config.Config, clk clock.Clock) (map[string]lifecycle.Sender, error) {
	out := map[string]lifecycle.Sender{}
	for i, ch := range cfg.Alerts.Channels {
		field := fmt.Sprintf("alerts.channels[%d] (%s)", i, ch.Name)
		pool, err := readCAFile(cfg.DataDir, field+".ca_file", ch.CAFile)
		if err != nil {
			return nil, err
		}
		var timeout time.Duration
		if ch.Timeout != "" {
			timeout, _ = inventory.ParseWindow(ch.Timeout)
		}
		switch ch.Type {
		case "webhook":
			var secret []byte
			if ch.SecretFile != "" {
				if secret, err = readSecretFile(cfg.DataDir, field+".secret_file", ch.SecretFile); err != nil {
					return nil, err
				}
			}
			w, err := notify.NewWebhook(notify.WebhookConfig{Name: ch.Name, URL: ch.URL, Headers: ch.Headers, Secret: secret, RootCAs: pool, Timeout: timeout})
			if err != nil {
				return nil, fmt.Errorf("app: %s: %w", field, err)
			}
			out[ch.Name] = w
		case "email":
			var password []byte
			if ch.PasswordFile != "" {
				if password, err = readSecretFile(cfg.DataDir, field+".password_file", ch.PasswordFile); err != nil {
					return nil, err
				}
			}
			e, err := notify.NewEmail(notify.EmailConfig{
				Name: ch.Name, Addr: ch.SMTP, TLS: ch.TLS, Username: ch.Username, Password: string(password),
				From: ch.From, To: ch.To, RootCAs: pool, Timeout: timeout, Clock: clk,
			})
			if err != nil {
				return nil, fmt.Errorf("app: %s: %w", field, err)
			}
			out[ch.Name] = e
		}
	}
	return out, nil
}

// lifecycleSettings builds the lifecycle settings of cfg that a reload can
// change: its alert channels (reading their secret and CA files), routes
// and thresholds, delivery attempts and renewal retries.
func lifecycleSettings(cfg *config.Config, clk clock.Clock) (lifecycle.Settings, error) {
	channels, err := alertChannels(cfg, clk)
	if err != nil {
		return lifecycle.Settings{}, err
	}
	router := lifecycle.Router{Default: cfg.Alerts.Default}
	if len(router.Default) == 0 {
		for name := range channels {
			router.Default = append(router.Default, name)
		}
	}
	for _, r := range cfg.Alerts.Routes {
		rt := lifecycle.Route{Tags: r.Tags, Profiles: r.Profiles, CAs: r.CAs, Channels: r.Channels}
		for _, k := range r.Kinds {
			rt.Kinds = append(rt.Kinds, lifecycle.AlertKind(k))
		}
		router.Routes = append(router.Routes, rt)
	}
	d := cfg.Lifecycle.Durations()
	return lifecycle.Settings{
		Thresholds: d.Thresholds, CAThresholds: d.CAThresholds, Router: router, Channels: channels,
		DeliveryAttempts: cfg.Lifecycle.DeliveryAttempts, SupersedeAfter: d.SupersedeAfter, RenewRetry: d.RenewalRetry,
	}, nil
}

// jobIntervals are the scheduled jobs' intervals in cfg.
func jobIntervals(cfg *config.Config) lifecycle.Intervals {
	d := cfg.Lifecycle.Durations()
	return lifecycle.Intervals{ExpiryCheck: d.ExpiryCheck, Delivery: d.Delivery, Renewal: d.Renewal}
}

// ComplianceJob is the job that rebuilds the compliance summary;
// AuditVerifyJob the one that verifies the audit log.
const (
	ComplianceJob  = "compliance-summary"
	AuditVerifyJob = "audit-verify"
)

// scheduledJobs are the lifecycle's jobs, the compliance summary's and
// the audit verification's, with their intervals in cfg.
func (a *App) scheduledJobs(cfg *config.Config) []lifecycle.Job {
	every := cfg.Lifecycle.Durations().Compliance
	if every <= 0 {
		every = time.Hour
	}
	verifyEvery := cfg.Audit.VerifyEvery()
	if verifyEvery <= 0 {
		verifyEvery = 6 * time.Hour
	}
	return append(a.lifecycle.Jobs(jobIntervals(cfg)), a.scanJob(cfg), lifecycle.Job{Name: ComplianceJob, Interval: every, Resume: true,
		Run: func(ctx context.Context, _ *lifecycle.JobState) (string, error) {
			s, err := a.compliance.Summarize(ctx, time.Time{})
			if err != nil {
				return "", err
			}
			if err := a.store.SaveComplianceSnapshot(ctx, s); err != nil {
				return "", err
			}
			// No counts: a job's outcome is shown to every cert:read
			// holder, scoped or not; the figures are report:read's.
			return fmt.Sprintf("summary built in %s (the compliance page shows it)", s.Took.Round(time.Millisecond)), nil
		}},
		lifecycle.Job{Name: AuditVerifyJob, Interval: verifyEvery, Resume: true, Run: func(ctx context.Context, _ *lifecycle.JobState) (string, error) {
			// Recorded as audit.verify by the system, as an operator's
			// verification is: the console's audit page shows the newest.
			rep, err := auditor{DB: a.store, app: a}.Verify(ctx, authz.System())
			if err != nil {
				return "", err
			}
			if !rep.Intact {
				// The kind and event only: every cert:read holder sees a
				// job's outcome; the audit page and audit verify say more.
				return "", fmt.Errorf("the audit log is NOT intact: %s at event %d (the audit page and certwright audit verify say more)",
					rep.Problem.Kind, rep.Problem.Seq)
			}
			return fmt.Sprintf("intact up to event %d, %d checkpoints", rep.HeadSeq, rep.Checkpoints), nil
		}})
}

// wireLifecycle builds the lifecycle service and its scheduler.
func (a *App) wireLifecycle(health lifecycle.RevocationHealth, obs lifecycle.Observer) error {
	set, err := lifecycleSettings(a.cfg, a.clock)
	if err != nil {
		return err
	}
	a.replica = a.cfg.Replica()
	if a.locker, err = a.store.JobLocker(a.replica, store.LeaseTTL, store.LeaseRenewal); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	lc, err := lifecycle.New(lifecycle.Config{
		Clock: a.clock, Log: a.log.With("component", "lifecycle"),
		Thresholds: set.Thresholds, CAThresholds: set.CAThresholds,
		Router: set.Router, Channels: set.Channels, Permanent: notify.IsPermanent,
		DeliveryAttempts: set.DeliveryAttempts,
		SupersedeAfter:   set.SupersedeAfter, RenewRetry: set.RenewRetry,
		Health: health, Observer: obs, ServerCert: a.tls, Replica: a.replica,
	}, a.store, a.issuer, a.revoker, a.profiles)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.lifecycle = lc
	if err := a.wireScan(); err != nil {
		return err
	}
	sched, err := lifecycle.NewScheduler(a.clock, a.log.With("component", "scheduler"), a.store, a.locker, a.replica,
		a.scheduledJobs(a.cfg))
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.scheduler = sched
	return nil
}

// runLifecycle runs the scheduler, and the delivery job as soon as an
// alert is raised.
func (a *App) runLifecycle(ctx context.Context) error {
	recovery.Go(a.log, "alert-delivery trigger", func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.lifecycle.Kicked():
				_ = a.scheduler.Trigger("alert-delivery")
			}
		}
	})
	return a.scheduler.Run(ctx)
}

// lifecycleAPI serves the API's lifecycle routes from the service and
// the scheduler.
type lifecycleAPI struct {
	*lifecycle.Service
	sched *lifecycle.Scheduler
}

// Jobs lists the scheduled jobs (the API's view, not the job table).
func (l lifecycleAPI) Jobs(ctx context.Context, p authz.Principal) ([]*lifecycle.JobState, error) {
	return l.sched.Jobs(ctx, p)
}

// JobRuns lists the jobs' recorded runs.
func (l lifecycleAPI) JobRuns(ctx context.Context, p authz.Principal, q lifecycle.JobRunQuery) ([]lifecycle.JobRun, error) {
	return l.sched.Runs(ctx, p, q)
}

// RunJob runs a job now.
func (l lifecycleAPI) RunJob(ctx context.Context, p authz.Principal, name string) (*lifecycle.JobState, error) {
	return l.sched.RunAs(ctx, p, name)
}

// StartRotation starts a rotation and has the rotation job take it up at once.
func (l lifecycleAPI) StartRotation(ctx context.Context, req lifecycle.RotationRequest) (*lifecycle.Rotation, []lifecycle.RotationItem, error) {
	r, items, err := l.Service.StartRotation(ctx, req)
	if err == nil {
		_ = l.sched.Trigger("rotation")
	}
	return r, items, err
}
