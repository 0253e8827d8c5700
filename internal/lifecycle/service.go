package lifecycle

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
)

// ExpiryStore finds certificates by expiry and CAs.
type ExpiryStore interface {
	EachExpiringBetween(ctx context.Context, from, to time.Time, fn func(*inventory.Certificate) error) error
	EachCreatedBetween(ctx context.Context, from, to, notAfterBefore time.Time, fn func(*inventory.Certificate) error) error
	ListCAs(ctx context.Context) ([]*ca.CA, error)
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
}

// AlertStore keeps alerts and their deliveries.
type AlertStore interface {
	RaiseAlert(ctx context.Context, a *Alert, channels []string) (bool, error)
	// RaiseAlerts raises many in one transaction; channels[i] go with as[i].
	RaiseAlerts(ctx context.Context, as []*Alert, channels [][]string) ([]bool, error)
	// ClaimDeliveries claims for claimer, until claimFor from now by the
	// store's clock, up to limit due deliveries no one else has claimed.
	ClaimDeliveries(ctx context.Context, now time.Time, claimer string, claimFor time.Duration, limit int) ([]*Delivery, error)
	// UpdateDelivery records an attempt and ends its claim; ErrElsewhere
	// when the claim lapsed and another claimer took the delivery.
	UpdateDelivery(ctx context.Context, d *Delivery) error
	// ReleaseDeliveries ends claimer's remaining claims.
	ReleaseDeliveries(ctx context.Context, claimer string) error
	ListAlerts(ctx context.Context, limit int) ([]*AlertRecord, error)
	// CertificateAlerts returns the newest limit alerts about the
	// certificate serial (its payload's certificate), newest first.
	CertificateAlerts(ctx context.Context, serial string, limit int) ([]*AlertRecord, error)
	// ListAlertPage returns the page of alerts q selects, newest first.
	ListAlertPage(ctx context.Context, q AlertQuery) ([]*AlertRecord, error)
	// CountUndeliveredAlerts counts the alerts AlertQuery.Undelivered
	// selects.
	CountUndeliveredAlerts(ctx context.Context) (int, error)
	// RaiseAlertAudited is RaiseAlert appending ev, in the same
	// transaction, when a is new.
	RaiseAlertAudited(ctx context.Context, a *Alert, channels []string, ev audit.Event) (bool, error)
	// CountAlerts counts alerts of kind whose subject starts with
	// subjectPrefix, created at or after since.
	CountAlerts(ctx context.Context, kind AlertKind, subjectPrefix string, since time.Time) (int, error)
}

// JobStore keeps each job's last run and its run history, and the audit
// record of a job run or a test alert asked for by a principal.
type JobStore interface {
	GetJob(ctx context.Context, name string) (*JobState, error)
	// PutJob records j as the job's last run and adds it to the job's
	// run history, in one transaction.
	PutJob(ctx context.Context, j *JobState) error
	// ListJobRuns returns the recorded runs q selects, newest first.
	ListJobRuns(ctx context.Context, q JobRunQuery) ([]JobRun, error)
	// CountJobRuns counts each job's recorded runs started at or after
	// since.
	CountJobRuns(ctx context.Context, since time.Time) (map[string]int, error)
	AuditAppender
}

// RenewalStore keeps renewal state.
type RenewalStore interface {
	EachAutoRenewDue(ctx context.Context, notAfterBefore, now time.Time, limit int, fn func(*inventory.Certificate) error) error
	RecordRenewalFailure(ctx context.Context, serial string, failures int, retryAt time.Time, msg string) error
	RecordRenewalAttempt(ctx context.Context, a inventory.RenewalAttempt) error
	SetSupersedeAt(ctx context.Context, serial string, at time.Time) error
	SupersedeDue(ctx context.Context, now time.Time, limit int) ([]string, error)
	GetPrincipal(ctx context.Context, idOrName string) (*authz.PrincipalRecord, error)
	LoadPrincipal(ctx context.Context, id string) (*authz.Principal, *authz.PrincipalRecord, error)
}

// Store is every port the lifecycle needs from storage.
type Store interface {
	ExpiryStore
	AlertStore
	JobStore
	RenewalStore
	RotationStore
}

// Issuer is the one issuance path.
type Issuer interface {
	Issue(ctx context.Context, req issue.Request) (*issue.Result, error)
}

// Revoker revokes one certificate.
type Revoker interface {
	Revoke(ctx context.Context, req revoke.Request) (*inventory.Revocation, bool, error)
}

// Profiles resolves profiles.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
	List(ctx context.Context) ([]*profile.Profile, error)
}

// Sender delivers alerts to one channel.
type Sender interface {
	Send(ctx context.Context, a Alert) error
}

// RevocationHealth says which CAs' CRL or OCSP data failed to refresh.
type RevocationHealth interface {
	Stale(now time.Time) []StaleRevocation
}

// StaleRevocation is a CA whose revocation data is late.
type StaleRevocation struct {
	CAID string
	// What is "crl" or "ocsp".
	What       string
	NextUpdate time.Time
	Error      string
}

// Observer hears renewals and deliveries (metrics).
type Observer interface {
	ObserveRenewal(kind string, elapsed time.Duration, err error)
	ObserveDelivery(channel string, err error)
}

// Config tunes the lifecycle. Zero values get the defaults noted.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	Rand  io.Reader // nil: crypto/rand
	// Thresholds are the expiry alert thresholds (default 30, 14, 7, 1 days).
	Thresholds []time.Duration
	// CAThresholds apply to CA certificates (default 180, 90, 30, 7 days).
	CAThresholds []time.Duration
	// Router picks alert channels; Channels are the configured ones.
	Router   Router
	Channels map[string]Sender
	// Permanent says a delivery error is not worth retrying.
	Permanent func(error) bool
	// DeliveryAttempts bounds retries of one delivery (default 12).
	DeliveryAttempts int
	// DeliveryTimeout bounds one delivery attempt (default 30s).
	DeliveryTimeout time.Duration
	// SupersedeAfter, when positive, revokes a renewed certificate as
	// superseded this long after its successor was issued.
	SupersedeAfter time.Duration
	// RenewRetry is the first retry delay of a failed renewal, doubling up
	// to RenewRetryMax (defaults 15m and 12h).
	RenewRetry, RenewRetryMax time.Duration
	// Health, when set, reports stale revocation data.
	Health RevocationHealth
	// Observer, when set, hears renewals and deliveries.
	Observer Observer
	// ServerCert, when set, replaces the server's own TLS certificate
	// when an emergency rotation matches it.
	ServerCert ServerCert
	// Replica names this replica (replica_name) in the claims on alert
	// deliveries it sends (default "replica").
	Replica string
}

// ServerCert is the server's own TLS certificate, which the server renews
// itself. Reissue replaces it now if serial is the certificate being
// served (from toCA when set, else from serial's own CA) and returns the
// serial served from now on; for an older, no longer served certificate
// it only returns the current serial. An error wrapping ErrElsewhere
// says another replica is replacing it now.
type ServerCert interface {
	Reissue(ctx context.Context, serial, toCA string) (string, error)
}

// Service runs the lifecycle jobs.
type Service struct {
	cfg      Config
	store    Store
	issuer   Issuer
	revoker  Revoker
	profiles Profiles
	// kick asks the delivery job to run now (an alert was raised).
	kick chan struct{}
	// live holds the settings a reload may change.
	live atomic.Pointer[Settings]
	// claimer is this service's claim on the deliveries it sends: the
	// replica's name and a random suffix, so that no other process, even
	// one given the same name, holds the same claim.
	claimer string
}

// New returns a Service; every port is required.
func New(cfg Config, st Store, iss Issuer, rev Revoker, profiles Profiles) (*Service, error) {
	if cfg.Clock == nil || cfg.Log == nil || st == nil || iss == nil || rev == nil || profiles == nil {
		return nil, errors.New("lifecycle: clock, logger, store, issuer, revoker and profiles are required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Permanent == nil {
		cfg.Permanent = func(error) bool { return false }
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	if cfg.RenewRetryMax <= 0 {
		cfg.RenewRetryMax = 12 * time.Hour
	}
	set := Settings{
		Thresholds: cfg.Thresholds, CAThresholds: cfg.CAThresholds, Router: cfg.Router, Channels: cfg.Channels,
		DeliveryAttempts: cfg.DeliveryAttempts, SupersedeAfter: cfg.SupersedeAfter, RenewRetry: cfg.RenewRetry,
	}
	if err := set.normalise(); err != nil {
		return nil, err
	}
	// The settings live in s.live from now on; the copies in cfg would
	// go stale at the first SetSettings.
	cfg.Thresholds, cfg.CAThresholds, cfg.Router, cfg.Channels = nil, nil, Router{}, nil
	cfg.DeliveryAttempts, cfg.SupersedeAfter, cfg.RenewRetry = 0, 0, 0
	var suffix [6]byte
	if _, err := io.ReadFull(cfg.Rand, suffix[:]); err != nil {
		return nil, fmt.Errorf("lifecycle: claim name: %w", err)
	}
	svc := &Service{cfg: cfg, store: st, issuer: iss, revoker: rev, profiles: profiles, kick: make(chan struct{}, 1),
		claimer: cmp.Or(cfg.Replica, "replica") + "/" + hex.EncodeToString(suffix[:])}
	svc.live.Store(&set)
	return svc, nil
}

// Settings are what a running service's lifecycle can be changed to
// (SetSettings, on a configuration reload): thresholds, alert routing and
// channels, delivery attempts and renewal retries. Zero values get the
// defaults noted on Config.
type Settings struct {
	Thresholds, CAThresholds []time.Duration
	Router                   Router
	Channels                 map[string]Sender
	DeliveryAttempts         int
	SupersedeAfter           time.Duration
	RenewRetry               time.Duration
}

// normalise fills the defaults, sorts the thresholds and checks that every
// channel a route names is configured.
func (set *Settings) normalise() error {
	if len(set.Thresholds) == 0 {
		set.Thresholds = Days(30, 14, 7, 1)
	}
	if len(set.CAThresholds) == 0 {
		set.CAThresholds = Days(180, 90, 30, 7)
	}
	for _, t := range append(slices.Clone(set.Thresholds), set.CAThresholds...) {
		if t <= 0 {
			return fmt.Errorf("lifecycle: threshold %v must be positive", t)
		}
	}
	set.Thresholds = slices.Compact(slices.Sorted(slices.Values(set.Thresholds)))
	set.CAThresholds = slices.Compact(slices.Sorted(slices.Values(set.CAThresholds)))
	if set.DeliveryAttempts <= 0 {
		set.DeliveryAttempts = 12
	}
	if set.RenewRetry <= 0 {
		set.RenewRetry = 15 * time.Minute
	}
	for _, rt := range set.Router.Routes {
		for _, ch := range rt.Channels {
			if _, ok := set.Channels[ch]; !ok {
				return fmt.Errorf("lifecycle: an alert route names channel %q, which is not configured", ch)
			}
		}
	}
	for _, ch := range set.Router.Default {
		if _, ok := set.Channels[ch]; !ok {
			return fmt.Errorf("lifecycle: default alert channel %q is not configured", ch)
		}
	}
	return nil
}

// SetSettings replaces the running settings at once: alerts raised from
// now on are routed, and queued deliveries sent, by set. Invalid settings
// are refused and the running ones kept.
func (s *Service) SetSettings(set Settings) error {
	if err := set.normalise(); err != nil {
		return err
	}
	s.live.Store(&set)
	return nil
}

// settings returns the running settings; callers must not modify them.
func (s *Service) settings() *Settings { return s.live.Load() }

// Days turns whole days into durations.
func Days(d ...int) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, n := range d {
		out[i] = time.Duration(n) * 24 * time.Hour
	}
	return out
}

// Kicked is signalled when an alert was raised and deliveries should run.
func (s *Service) Kicked() <-chan struct{} { return s.kick }

func (s *Service) newID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("lifecycle: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// raise stores a (de-duplicated) and routes it; it reports whether a was new.
func (s *Service) raise(ctx context.Context, a *Alert) (bool, error) {
	b := &alertBatch{s: s}
	if err := b.add(ctx, a); err != nil {
		return false, err
	}
	if err := b.flush(ctx); err != nil {
		return false, err
	}
	return b.raised > 0, nil
}

// alertBatch collects alerts to raise in one transaction: a check that
// finds many certificates inside a threshold (the first run over a large
// inventory) commits once per batch, not once per alert.
type alertBatch struct {
	s        *Service
	alerts   []*Alert
	channels [][]string
	raised   int
}

// alertBatchSize bounds one transaction of alerts.
const alertBatchSize = 1000

func (b *alertBatch) add(ctx context.Context, a *Alert) error {
	id, err := b.s.newID()
	if err != nil {
		return err
	}
	a.ID = id
	if a.CreatedAt.IsZero() {
		a.CreatedAt = b.s.cfg.Clock.Now().UTC()
	}
	b.alerts = append(b.alerts, a)
	b.channels = append(b.channels, b.s.settings().Router.Channels(*a))
	if len(b.alerts) >= alertBatchSize {
		return b.flush(ctx)
	}
	return nil
}

func (b *alertBatch) flush(ctx context.Context) error {
	if len(b.alerts) == 0 {
		return nil
	}
	created, err := b.s.store.RaiseAlerts(ctx, b.alerts, b.channels)
	if err != nil {
		return err
	}
	n := 0
	for i, c := range created {
		if !c {
			continue
		}
		n++
		a := b.alerts[i]
		if n <= 20 {
			b.s.cfg.Log.Info("alert raised", "kind", a.Kind, "subject", a.Subject, "threshold", a.Threshold, "channels", b.channels[i], "summary", a.Summary)
		}
	}
	if n > 20 {
		b.s.cfg.Log.Info("alerts raised", "count", n, "logged", 20)
	}
	if n > 0 {
		select {
		case b.s.kick <- struct{}{}:
		default:
		}
	}
	b.raised += n
	b.alerts, b.channels = b.alerts[:0], b.channels[:0]
	return nil
}

// Alerts returns the newest alerts with their deliveries.
func (s *Service) Alerts(ctx context.Context, p authz.Principal, limit int) ([]*AlertRecord, error) {
	if err := p.Allow(authz.PermCertRead, authz.Resource{}); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.ListAlerts(ctx, limit)
}

// CertificateAlerts returns the newest limit (1 to 1000; otherwise 100)
// alerts about certificate serial with their deliveries. It needs cert:read
// covering the certificate: unlike the whole list, these alerts tell
// nothing about certificates beyond it.
func (s *Service) CertificateAlerts(ctx context.Context, p authz.Principal, serial string, limit int) ([]*AlertRecord, error) {
	c, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCertRead, authz.Resource{CAID: c.CAID, CAName: s.caName(ctx, c.CAID), Profile: c.Profile, Names: c.SANs}); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.CertificateAlerts(ctx, c.Serial, limit)
}

// AlertPage returns the page of alerts q selects (at most 1,000), newest
// first; like Alerts it needs cert:read with no scope.
func (s *Service) AlertPage(ctx context.Context, p authz.Principal, q AlertQuery) ([]*AlertRecord, error) {
	if err := p.Allow(authz.PermCertRead, authz.Resource{}); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	return s.store.ListAlertPage(ctx, q)
}

// CountUndelivered counts the alerts not delivered to every channel; like
// Alerts it needs cert:read with no scope.
func (s *Service) CountUndelivered(ctx context.Context, p authz.Principal) (int, error) {
	if err := p.Allow(authz.PermCertRead, authz.Resource{}); err != nil {
		return 0, err
	}
	return s.store.CountUndeliveredAlerts(ctx)
}

// ChannelNames lists the configured channels.
func (s *Service) ChannelNames() []string {
	channels := s.settings().Channels
	out := make([]string, 0, len(channels))
	for n := range channels {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ErrDelivery marks a channel that did not take an alert.
var ErrDelivery = errors.New("lifecycle: delivery failed")

// ErrInvalid marks a malformed request.
var ErrInvalid = errors.New("lifecycle: invalid request")

func (s *Service) caName(ctx context.Context, id string) string {
	if a, err := s.store.GetCA(ctx, id); err == nil {
		return a.Name
	}
	return ""
}

// ErrUnknownChannel marks a test send to a channel that is not configured.
var ErrUnknownChannel = errors.New("lifecycle: unknown alert channel")

// SendTest sends a test alert to one channel at once, bypassing the
// queue, and returns the delivery's error. It needs principal:manage
// (it reaches outside systems on the operator's behalf).
func (s *Service) SendTest(ctx context.Context, p authz.Principal, channel string) error {
	if err := p.Allow(authz.PermPrincipalAdmin, authz.Resource{}); err != nil {
		return err
	}
	ch, ok := s.settings().Channels[channel]
	if !ok {
		return fmt.Errorf("%w %q: configured channels are %v", ErrUnknownChannel, channel, s.ChannelNames())
	}
	now := s.cfg.Clock.Now().UTC()
	id, err := s.newID()
	if err != nil {
		return err
	}
	a := Alert{
		ID: id, Kind: AlertTest, Severity: SeverityInfo, Subject: "test:" + channel, Threshold: now.Format(time.RFC3339Nano),
		Summary:   "Test alert from Certwright to channel " + channel,
		Detail:    "This is a test message sent by " + p.Name + " with `certwright alerts test " + channel + "`. Alerts to this channel work.",
		CreatedAt: now,
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	err = ch.Send(sctx, a)
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveDelivery(channel, err)
	}
	if aerr := recordAction(ctx, s.store, p, s.cfg.Clock.Now(), ActionAlertTest, channel, err, map[string]any{"alert_id": id}); aerr != nil {
		return aerr
	}
	if err != nil {
		return fmt.Errorf("%w: test alert to %s: %w", ErrDelivery, channel, err)
	}
	s.cfg.Log.Info("test alert sent", "channel", channel, "by", p.Name)
	return nil
}

// ref describes c for an alert; caNames caches CA names.
func (s *Service) ref(ctx context.Context, c *inventory.Certificate, caNames map[string]string) *CertRef {
	name, ok := caNames[c.CAID]
	if !ok && c.CAID != "" {
		if a, err := s.store.GetCA(ctx, c.CAID); err == nil {
			name = a.Name
		}
		if caNames != nil {
			caNames[c.CAID] = name
		}
	}
	if name == "" && c.Source.External() {
		name = c.Issuer
	}
	return &CertRef{
		Serial: c.Serial, CAID: c.CAID, CA: name, Profile: c.Profile, Subject: c.Subject,
		SANs: slices.Clone(c.SANs), NotAfter: c.NotAfter.UTC(), Owner: c.Owner, Tags: slices.Clone(c.Tags), Source: string(c.Source),
	}
}
