package discovery

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// Scanner observes targets. It returns one observation per target it
// tried (reachable or not), in any order; an error means the scan as a
// whole failed, and the observations returned are still recorded.
type Scanner interface {
	Scan(ctx context.Context, targets []Target) ([]Observation, error)
}

// Alerter raises the alerts problems call for, de-duplicated, and
// reports how many were new.
type Alerter interface {
	RaiseEndpointProblems(ctx context.Context, ps []Problem) (int, error)
}

// Sighting records that the certificate with Fingerprint (inventory
// Serial) was served at Endpoint at At.
type Sighting struct {
	Fingerprint string    `json:"sha256_fingerprint"`
	Serial      string    `json:"serial"`
	Endpoint    string    `json:"endpoint"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
}

// ScanRecord is what one scan changes, written in one transaction.
type ScanRecord struct {
	Endpoints []*Endpoint
	Events    []Event
	// Sightings extend (or start) the served-certificate records; only
	// LastSeen and FirstSeen of a new one are read.
	Sightings []Sighting
	// PruneBefore drops events older than it, and endpoints gone and not
	// scanned since.
	PruneBefore time.Time
}

// EndpointQuery selects endpoints, ordered by address.
type EndpointQuery struct {
	Encryption Encryption
	Status     Status
	// Gone includes the endpoints that disappeared.
	Gone bool
	// After continues after this address; Limit bounds the page (0: all).
	After string
	Limit int
}

// EventQuery selects events, newest first.
type EventQuery struct {
	Address string
	Kind    EventKind
	Since   time.Time
	Limit   int
}

// Store is the storage a Monitor needs.
type Store interface {
	GetEndpoint(ctx context.Context, address string) (*Endpoint, error)
	ListEndpoints(ctx context.Context, q EndpointQuery) ([]*Endpoint, error)
	ListEndpointEvents(ctx context.Context, q EventQuery) ([]Event, error)
	// SaveScan writes rec in one transaction.
	SaveScan(ctx context.Context, rec ScanRecord) error
	// CertificateSightings lists where the certificate was served.
	CertificateSightings(ctx context.Context, fingerprint string) ([]Sighting, error)
	ListCertificates(ctx context.Context, f inventory.Filter) ([]*inventory.Certificate, error)
	// ImportCertificates inserts certs issued elsewhere with their audit
	// events (compliance.ImportStore's).
	ImportCertificates(ctx context.Context, certs []*inventory.Certificate, evs []audit.Event) ([]bool, error)
	ListCAs(ctx context.Context) ([]*ca.CA, error)
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

// ErrNotFound marks an endpoint the scans do not know.
var ErrNotFound = errors.New("discovery: not found")

// Config tunes a Monitor; zero values get the defaults noted.
type Config struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Targets are scanned by the scheduled scan; every one must be in Allow.
	Targets []Target
	Allow   AllowList
	// Quiet is a daily window without scheduled scans.
	Quiet QuietHours
	// DisappearAfter is how many scans in a row must miss an endpoint
	// before it is gone (default 3).
	DisappearAfter int
	// History is how long events are kept (default 90 days).
	History time.Duration
	// AlertPlaintext and AlertWeak raise warnings for endpoints found
	// plaintext or weak (served_* alerts are always raised).
	AlertPlaintext, AlertWeak bool
	// MaxDiscovered bounds the certificates one scan adds to the
	// inventory as discovered (default DefaultMaxDiscovered); beyond it,
	// and beyond one a day per endpoint, an unknown certificate waits for
	// a later scan.
	MaxDiscovered int
}

// DefaultMaxDiscovered is Config.MaxDiscovered's default.
const DefaultMaxDiscovered = 500

// discoverEvery is how often one endpoint may add a certificate to the
// inventory: a server handing out a fresh certificate at every scan adds
// one a day, not one a scan.
const discoverEvery = 24 * time.Hour

// Monitor records scans: it reconciles each observation with the
// inventory, keeps each endpoint's history, adds unknown certificates to
// the inventory as discovered, and raises the alerts what is served calls
// for.
type Monitor struct {
	cfg     Config
	store   Store
	scanner Scanner
	alerter Alerter
	// configured are the keys (Observation.Key) of cfg.Targets.
	configured map[string]bool
	// mu serialises recordings of this process, so that a scan asked for
	// through the API and the scheduled one do not interleave theirs.
	mu sync.Mutex
}

// NewMonitor returns a Monitor; every argument is required, and every
// configured target must be in the allow-list.
func NewMonitor(cfg Config, st Store, sc Scanner, al Alerter) (*Monitor, error) {
	if cfg.Clock == nil || cfg.Log == nil || st == nil || sc == nil || al == nil {
		return nil, errors.New("discovery: clock, logger, store, scanner and alerter are required")
	}
	for _, t := range cfg.Targets {
		if err := cfg.Allow.Check(t); err != nil {
			return nil, fmt.Errorf("discovery: scan.targets: %w", err)
		}
	}
	if cfg.DisappearAfter <= 0 {
		cfg.DisappearAfter = 3
	}
	if cfg.History <= 0 {
		cfg.History = 90 * 24 * time.Hour
	}
	if cfg.MaxDiscovered <= 0 {
		cfg.MaxDiscovered = DefaultMaxDiscovered
	}
	configured := make(map[string]bool, len(cfg.Targets))
	for _, t := range cfg.Targets {
		configured[t.String()] = true
	}
	return &Monitor{cfg: cfg, store: st, scanner: sc, alerter: al, configured: configured}, nil
}

// Result counts what one scan found and changed.
type Result struct {
	Targets   int `json:"targets"`
	Reachable int `json:"reachable"`
	// Changes counts history events; Discovered the certificates added to
	// the inventory; Alerts the new alerts.
	Changes    int `json:"changes"`
	Discovered int `json:"discovered"`
	Alerts     int `json:"alerts"`
	// Unfinished counts the targets a scan run now did not finish before
	// the request's deadline: they are not recorded.
	Unfinished int `json:"unfinished,omitempty"`
	// Skipped says why no scan ran (quiet hours, no targets).
	Skipped string `json:"skipped,omitempty"`
}

// Summary is the result in one line, for a job's outcome.
func (r Result) Summary() string {
	if r.Skipped != "" {
		return r.Skipped
	}
	unfinished := ""
	if r.Unfinished > 0 {
		unfinished = fmt.Sprintf(" (%d not finished in time, not recorded)", r.Unfinished)
	}
	return fmt.Sprintf("%d targets scanned%s, %d reachable, %d changes, %d certificates discovered, %d alerts raised",
		r.Targets, unfinished, r.Reachable, r.Changes, r.Discovered, r.Alerts)
}

// MaxRunTargets bounds the host:port pairs a scan run now may name: it
// runs within one API request, so what it scans must fit in the time a
// request has. Wider ranges belong in scan.targets.
const MaxRunTargets = 1024

// recordTimeout bounds the recording of a scan, on a context of its own:
// a scan cut short by its request's deadline is still recorded.
const recordTimeout = time.Minute

// maxRecordReserve bounds the time kept, before a deadline, for recording.
const maxRecordReserve = 15 * time.Second

// Scheduled is the scheduled scan of the configured targets: skipped in
// quiet hours and when there are none. Endpoints the scan does not find
// are missed (they disappear after DisappearAfter scans).
func (m *Monitor) Scheduled(ctx context.Context) (Result, error) {
	now := m.cfg.Clock.Now()
	switch {
	case len(m.cfg.Targets) == 0:
		return Result{Skipped: "no scan targets configured (scan.targets)"}, nil
	case m.cfg.Quiet.Contains(now):
		return Result{Skipped: fmt.Sprintf("quiet hours (%s): no scan", m.cfg.Quiet)}, nil
	}
	return m.scan(ctx, m.cfg.Targets, true)
}

// RunNow scans now, for p, the targets specs name (the configured ones
// when none), each within the allow-list. p needs ca:manage with no
// scope: a scan reaches across the network on the server's behalf. The
// scan is audited (scan.run), refused or not.
func (m *Monitor) RunNow(ctx context.Context, p authz.Principal, specs []string) (Result, error) {
	if !p.Everywhere(authz.PermCAManage) {
		err := authz.Refuse(authz.RuleRole, "%s has no role granting %s with no scope; running a scan needs it", p.Name, authz.PermCAManage)
		return Result{}, errors.Join(err, m.audit(ctx, p, specs, Result{}, err))
	}
	targets, full := m.cfg.Targets, true
	if len(specs) > 0 {
		full = false
		var err error
		if targets, err = ParseTargets(specs, nil); err == nil {
			for _, t := range targets {
				if err = m.cfg.Allow.Check(t); err != nil {
					break
				}
			}
		}
		if err == nil && len(targets) > MaxRunTargets {
			err = fmt.Errorf("%w: the targets are %d host:port pairs, and a scan run now takes at most %d so that it finishes within the request; add wider ranges to scan.targets, which the scheduled scan covers",
				ErrInvalid, len(targets), MaxRunTargets)
		}
		if err != nil {
			return Result{}, errors.Join(err, m.audit(ctx, p, specs, Result{}, err))
		}
	}
	if len(targets) == 0 {
		err := fmt.Errorf("%w: no targets given and none configured (scan.targets)", ErrInvalid)
		return Result{}, errors.Join(err, m.audit(ctx, p, specs, Result{}, err))
	}
	res, err := m.scan(ctx, targets, full)
	return res, errors.Join(err, m.audit(ctx, p, specs, res, err))
}

func (m *Monitor) audit(ctx context.Context, p authz.Principal, specs []string, res Result, failure error) error {
	details := map[string]any{"targets": specs, "result": res}
	if len(specs) == 0 {
		details["targets"] = "configured"
	}
	if failure != nil {
		details["error"] = failure.Error()
	}
	ev := audit.New(p, m.cfg.Clock.Now().UTC(), "scan.run", "scan", details)
	if failure != nil {
		ev.Outcome = audit.Failed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.store.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("discovery: audit scan.run: %w", err)
	}
	return nil
}

// scan scans targets within ctx's deadline, less the time kept for
// recording, and records what it saw on a context of its own (bounded by
// recordTimeout): a scan cut short is recorded as far as it went. Only a
// scan that finished every target counts the misses of a full one.
func (m *Monitor) scan(ctx context.Context, targets []Target, full bool) (Result, error) {
	scanCtx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		scanCtx, cancel = context.WithDeadline(ctx, dl.Add(-min(time.Until(dl)/4, maxRecordReserve)))
	}
	obs, scanErr := m.scanner.Scan(scanCtx, targets)
	cancel()
	if scanErr != nil && ctx.Err() == nil && scanCtx.Err() != nil {
		// Stopped to keep time for recording: the unfinished targets say so.
		scanErr = nil
	}
	unfinished := max(len(targets)-len(obs), 0)
	rctx, cancelRecord := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRecord()
	res, err := m.Record(rctx, obs, full && unfinished == 0 && scanErr == nil)
	res.Targets, res.Unfinished = len(targets), unfinished
	if scanErr != nil {
		err = errors.Join(fmt.Errorf("discovery: scan: %w", scanErr), err)
	}
	return res, err
}

// Record reconciles and stores observations, and raises the alerts they
// call for. With full, the observations cover every configured target,
// and a known endpoint none of them reached is missed.
func (m *Monitor) Record(ctx context.Context, obs []Observation, full bool) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Clock.Now().UTC()
	var res Result
	known, err := m.store.ListEndpoints(ctx, EndpointQuery{Gone: true})
	if err != nil {
		return res, fmt.Errorf("discovery: record scan: %w", err)
	}
	byKey := make(map[string]*Endpoint, len(known))
	for _, ep := range known {
		byKey[ep.Address] = ep
	}
	rec := ScanRecord{PruneBefore: now.Add(-m.cfg.History)}
	rc := &reconciler{m: m, now: now, certs: map[string]*inventory.Certificate{}}
	var problems []Problem
	seen := map[string]bool{}
	for _, o := range obs {
		if o.ObservedAt.IsZero() {
			o.ObservedAt = now
		}
		key := o.Key()
		if seen[key] {
			continue
		}
		seen[key] = true
		prev := byKey[key]
		next, evs := Advance(prev, o, m.cfg.DisappearAfter)
		if next == nil {
			continue
		}
		next.Configured = next.Configured || full || m.configured[key]
		if o.Reachable {
			res.Reachable++
			if err := rc.match(ctx, next); err != nil {
				// One endpoint's certificate must not keep the scan from
				// being recorded: it goes without a match this time.
				m.cfg.Log.Error("served certificate not matched against the inventory", "endpoint", key, "err", err)
				next.Match = nil
				next.Latest.Findings = append(slices.Clone(next.Latest.Findings), Finding{Code: CodeMatchFailed, Severity: SeverityWarning,
					Message: fmt.Sprintf("The served certificate could not be matched against the inventory (%s): it raises no served-certificate alert until a later scan matches it.", pki.Printable(err.Error()))})
			}
			trackServed(prev, next, now)
			problems = append(problems, m.problems(next, rc.cert(next))...)
			// An incomplete observation did not see the certificate.
			if next.Match != nil && (prev == nil || !o.Incomplete()) {
				rec.Sightings = append(rec.Sightings, Sighting{Fingerprint: next.Match.Fingerprint, Serial: next.Match.Serial,
					Endpoint: key, FirstSeen: next.LastSeen, LastSeen: next.LastSeen})
			}
		}
		rec.Endpoints = append(rec.Endpoints, next)
		rec.Events = append(rec.Events, evs...)
	}
	if full {
		for _, ep := range known {
			// An endpoint only a scan through the API found is not the
			// configured targets' to miss.
			if seen[ep.Address] || ep.Gone || !(ep.Configured || m.configured[ep.Address]) {
				continue
			}
			next, evs := Miss(ep, now, "not found by the scan of the configured targets", m.cfg.DisappearAfter)
			next.Configured = true
			rec.Endpoints = append(rec.Endpoints, next)
			rec.Events = append(rec.Events, evs...)
		}
	}
	res.Discovered = rc.discovered
	if len(rc.heldBack) > 0 {
		m.cfg.Log.Warn("unknown certificates not added to the inventory by this scan: at most one a day per endpoint, and scan.max_discovered per scan",
			"endpoints", len(rc.heldBack), "max_discovered", m.cfg.MaxDiscovered, "first", rc.heldBack[:min(len(rc.heldBack), 10)])
	}
	res.Changes = len(rec.Events)
	if err := m.store.SaveScan(ctx, rec); err != nil {
		return res, fmt.Errorf("discovery: record scan: %w", err)
	}
	for _, ev := range rec.Events {
		m.cfg.Log.Info("endpoint changed", "endpoint", ev.Address, "change", ev.Kind, "from", ev.From, "to", ev.To)
	}
	if len(problems) > 0 {
		n, err := m.alerter.RaiseEndpointProblems(ctx, problems)
		res.Alerts = n
		if err != nil {
			return res, fmt.Errorf("discovery: raise alerts: %w", err)
		}
	}
	return res, nil
}

// problems are what ep's latest observation calls for.
func (m *Monitor) problems(ep *Endpoint, c *inventory.Certificate) []Problem {
	var out []Problem
	if ep.Match != nil && c != nil {
		if kind := ep.Match.Status.Problem(); kind != "" {
			p := Problem{Kind: kind, Endpoint: ep.Address, Cert: c, Detail: servedDetail(ep, c), Key: c.Fingerprint}
			if ep.Served != nil && ep.Served.Kind == kind {
				p.Key = ep.Served.Key
			}
			out = append(out, p)
		}
	}
	switch Exposure(&ep.Latest) {
	case "plaintext":
		if m.cfg.AlertPlaintext {
			out = append(out, Problem{Kind: ProblemPlaintext, Endpoint: ep.Address, Since: ep.ExposedSince,
				Detail: fmt.Sprintf("%s accepts unencrypted connections (encryption %s).", ep.Address, ep.Latest.Encryption)})
		}
	case "weak":
		if m.cfg.AlertWeak {
			out = append(out, Problem{Kind: ProblemWeak, Endpoint: ep.Address, Since: ep.ExposedSince, Detail: weakDetail(ep)})
		}
	}
	return out
}

func servedDetail(ep *Endpoint, c *inventory.Certificate) string {
	switch ep.Match.Status {
	case StatusRevoked:
		at := ""
		if c.Revocation != nil {
			at = " at " + c.Revocation.RevokedAt.UTC().Format("2006-01-02 15:04 MST")
		}
		return fmt.Sprintf("%s still serves certificate %s, revoked%s: clients that check revocation refuse it, and its key may be compromised. Deploy its replacement.", ep.Address, c.Serial, at)
	case StatusExpired:
		return fmt.Sprintf("%s still serves certificate %s, expired at %s: clients refuse it. Deploy a current certificate.", ep.Address, c.Serial, c.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	case StatusStale:
		return fmt.Sprintf("%s still serves certificate %s, which was renewed by %s: the new certificate was not deployed there.", ep.Address, c.Serial, c.RenewedBy)
	}
	return ""
}

func weakDetail(ep *Endpoint) string {
	o := &ep.Latest
	var why []string
	if o.Grade != nil && o.Grade.Weak() {
		why = append(why, "grade "+o.Grade.Letter)
	}
	for _, v := range append(slices.Clone(o.Versions), o.Negotiated) {
		if v != "" && !ModernVersion(v) && !slices.Contains(why, v+" accepted") {
			why = append(why, v+" accepted")
		}
	}
	if o.WeakSuites {
		why = append(why, "weak cipher suites accepted")
	}
	return fmt.Sprintf("%s has weak TLS: %s.", ep.Address, strings.Join(why, ", "))
}

// reconciler matches served leaves of one recording against the
// inventory, adding the unknown ones as discovered.
type reconciler struct {
	m          *Monitor
	now        time.Time
	certs      map[string]*inventory.Certificate // by fingerprint
	cas        []*ca.CA
	casLoaded  bool
	discovered int
	// heldBack are the endpoints whose unknown certificate was not added
	// (the limits of discovery).
	heldBack []string
}

func (r *reconciler) cert(ep *Endpoint) *inventory.Certificate {
	if ep.Match == nil {
		return nil
	}
	return r.certs[ep.Match.Fingerprint]
}

// match sets ep.Match from its latest observation's leaf, when the
// server proved it holds the leaf's key: a replayed certificate must
// neither pass for a managed deployment nor raise served-certificate
// alerts nor fill the inventory.
func (r *reconciler) match(ctx context.Context, ep *Endpoint) error {
	ep.Match = nil
	leaf := ep.Latest.Leaf()
	if leaf == nil || !ep.Latest.KeyProven {
		return nil
	}
	fp := pki.Fingerprint(leaf.Raw)
	c, ok := r.certs[fp]
	if !ok {
		found, err := r.m.store.ListCertificates(ctx, inventory.Filter{Fingerprint: fp, Limit: 2})
		if err != nil {
			return fmt.Errorf("discovery: look up served certificate %s: %w", fp, err)
		}
		if len(found) > 0 {
			c = found[0]
		} else {
			if why := r.holdBack(ep); why != "" {
				r.heldBack = append(r.heldBack, ep.Address)
				ep.Latest.Findings = append(slices.Clone(ep.Latest.Findings), Finding{Code: CodeNotDiscovered, Severity: SeverityInfo,
					Message: "This endpoint serves a certificate the inventory does not know, but " + why +
						": it is added at a later scan, and raises no served-certificate alert until then."})
				return nil
			}
			if c, err = r.discover(ctx, ep, leaf); err != nil {
				return err
			}
			ep.DiscoveredAt = r.now
		}
		r.certs[fp] = c
	}
	ep.Match = MatchOf(c, r.now)
	capRevoked(ep)
	return nil
}

// holdBack says why ep's unknown certificate may not be added to the
// inventory now, "" when it may: a hostile range serving a fresh
// certificate per endpoint and per scan must not flood the inventory.
func (r *reconciler) holdBack(ep *Endpoint) string {
	switch {
	case !ep.DiscoveredAt.IsZero() && r.now.Sub(ep.DiscoveredAt) < discoverEvery:
		return fmt.Sprintf("it already added one in the last 24 hours (at %s)", ep.DiscoveredAt.UTC().Format("2006-01-02 15:04 MST"))
	case r.discovered >= r.m.cfg.MaxDiscovered:
		return fmt.Sprintf("this scan already added at most %d (scan.max_discovered)", r.m.cfg.MaxDiscovered)
	}
	return ""
}

// ReasonRevokedHere is the grade reason of a served certificate this
// server's inventory records as revoked.
const ReasonRevokedHere = "revoked_in_inventory"

// capRevoked grades F an endpoint serving a certificate the inventory
// records as revoked: the scanner may not have found that out itself (its
// issuer not served, its CRL or OCSP URL out of reach), but this server
// knows.
func capRevoked(ep *Endpoint) {
	g := ep.Latest.Grade
	if ep.Match == nil || ep.Match.Status != StatusRevoked || g == nil || g.Letter == "F" {
		return
	}
	capped := *g
	capped.Letter = "F"
	capped.Reasons = append(slices.Clone(g.Reasons), Reason{Code: ReasonRevokedHere,
		Message: "the certificate is revoked (this server's inventory records it): grade F"})
	ep.Latest.Grade = &capped
}

// discover adds leaf, served at ep and not in the inventory, as a
// discovered certificate.
func (r *reconciler) discover(ctx context.Context, ep *Endpoint, leaf *x509.Certificate) (*inventory.Certificate, error) {
	caID, err := r.issuingCA(ctx, leaf)
	if err != nil {
		return nil, err
	}
	var chain [][]byte
	if len(ep.Latest.Chain) > 1 {
		chain = ep.Latest.Chain[1:]
	}
	rec := inventory.External(leaf, chain, inventory.SourceDiscovered, caID, r.now)
	rec.Requester = "scan"
	ev := audit.New(authz.System(), r.now, "certificate.discover", rec.Serial, map[string]any{
		"endpoint": ep.Address, "subject": rec.Subject, "issuer": rec.Issuer, "issuer_serial": rec.IssuerSerial,
		"sha256_fingerprint": rec.Fingerprint, "not_after": rec.NotAfter, "sans": rec.SANs, "ca_id": caID,
	})
	inserted, err := r.m.store.ImportCertificates(ctx, []*inventory.Certificate{rec}, []audit.Event{ev})
	if err != nil {
		return nil, fmt.Errorf("discovery: record discovered certificate %s: %w", rec.Fingerprint, err)
	}
	if len(inserted) == 1 && inserted[0] {
		r.discovered++
		r.m.cfg.Log.Info("certificate discovered", "endpoint", ep.Address, "serial", rec.Serial, "subject", rec.Subject, "not_after", rec.NotAfter)
		return rec, nil
	}
	// Inserted meanwhile (another replica's scan): read it back.
	found, err := r.m.store.ListCertificates(ctx, inventory.Filter{Fingerprint: rec.Fingerprint, Limit: 1})
	if err != nil || len(found) == 0 {
		return nil, fmt.Errorf("discovery: read back discovered certificate %s: %w", rec.Fingerprint, errors.Join(err, ErrNotFound))
	}
	return found[0], nil
}

// issuingCA returns the ID of the CA here whose key signed leaf, if any.
func (r *reconciler) issuingCA(ctx context.Context, leaf *x509.Certificate) (string, error) {
	if !r.casLoaded {
		cas, err := r.m.store.ListCAs(ctx)
		if err != nil {
			return "", fmt.Errorf("discovery: list CAs: %w", err)
		}
		r.cas, r.casLoaded = cas, true
	}
	for _, c := range r.cas {
		if len(c.CertDER) == 0 {
			continue
		}
		if cert, err := x509.ParseCertificate(c.CertDER); err == nil && leaf.CheckSignatureFrom(cert) == nil {
			return c.ID, nil
		}
	}
	return "", nil
}

// canRead refuses p unless it holds cert:read with no scope: the scans
// see every endpoint, whatever CA issued what it serves.
func canRead(p authz.Principal) error {
	if !p.Everywhere(authz.PermCertRead) && !p.Everywhere(authz.PermReportRead) {
		return authz.Refuse(authz.RuleScope, "%s needs %s (or %s) with no scope to see the scanned endpoints", p.Name, authz.PermCertRead, authz.PermReportRead)
	}
	return nil
}

// Endpoints lists the endpoints q selects.
func (m *Monitor) Endpoints(ctx context.Context, p authz.Principal, q EndpointQuery) ([]*Endpoint, error) {
	if err := canRead(p); err != nil {
		return nil, err
	}
	return m.store.ListEndpoints(ctx, q)
}

// EndpointHistory is one endpoint with its newest events and where its
// certificate was served.
type EndpointHistory struct {
	Endpoint *Endpoint `json:"endpoint"`
	Events   []Event   `json:"events"`
	// Sightings are every endpoint serving the same certificate.
	Sightings []Sighting `json:"sightings"`
}

// Endpoint returns the endpoint at address with its newest limit events.
func (m *Monitor) Endpoint(ctx context.Context, p authz.Principal, address string, limit int) (*EndpointHistory, error) {
	if err := canRead(p); err != nil {
		return nil, err
	}
	ep, err := m.store.GetEndpoint(ctx, address)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	evs, err := m.store.ListEndpointEvents(ctx, EventQuery{Address: ep.Address, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := &EndpointHistory{Endpoint: ep, Events: evs, Sightings: []Sighting{}}
	if ep.Match != nil {
		if out.Sightings, err = m.store.CertificateSightings(ctx, ep.Match.Fingerprint); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// KPIs computes the encryption KPIs for p (cert:read or report:read with
// no scope).
func (m *Monitor) KPIs(ctx context.Context, p authz.Principal) (*KPIs, error) {
	if err := canRead(p); err != nil {
		return nil, err
	}
	return m.CurrentKPIs(ctx)
}

// CurrentKPIs computes the encryption KPIs, for metrics and reports that
// check their own permissions.
func (m *Monitor) CurrentKPIs(ctx context.Context) (*KPIs, error) {
	now := m.cfg.Clock.Now()
	eps, err := m.store.ListEndpoints(ctx, EndpointQuery{Gone: true})
	if err != nil {
		return nil, fmt.Errorf("discovery: KPIs: %w", err)
	}
	evs, err := m.store.ListEndpointEvents(ctx, EventQuery{Kind: EventRemediated, Since: now.Add(-m.cfg.History)})
	if err != nil {
		return nil, fmt.Errorf("discovery: KPIs: %w", err)
	}
	k := ComputeKPIs(eps, evs, now)
	return &k, nil
}

// Allowed is the allow-list, for messages.
func (m *Monitor) Allowed() AllowList { return m.cfg.Allow }
