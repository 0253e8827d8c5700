package compliance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/recovery"
)

// Status is a certificate's standing in the compliance report.
type Status string

// Statuses, from best to worst.
const (
	StatusCompliant    Status = "compliant"
	StatusWarning      Status = "warning"
	StatusNonCompliant Status = "non_compliant"
)

// rank orders statuses worst first.
func (s Status) rank() int {
	switch s {
	case StatusNonCompliant:
		return 0
	case StatusWarning:
		return 1
	}
	return 2
}

// Severity says what a finding does to a certificate's status: an error
// makes it non-compliant, a warning a warning.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one rule a certificate does not meet.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Chain states of a report row.
const (
	ChainIssuedHere = "issued here" // our CA hierarchy; always complete
	ChainComplete   = "complete"    // reaches a root through the stored chain, our CAs or the system roots
	ChainSelfSigned = "self-signed"
	ChainIncomplete = "incomplete"
	ChainUnknown    = "unknown" // the certificate does not parse
)

// Revocation states of a report row.
const (
	RevocationValid      = "valid"
	RevocationRevoked    = "revoked"
	RevocationNotChecked = "not checked" // imported: another CA's CRL and OCSP are not consulted
)

// Row is one certificate of the report.
type Row struct {
	Serial       string
	Fingerprint  string
	Subject      string
	Names        []string
	Source       inventory.Source
	CAID         string
	CA           string // our CA's name; empty for a certificate issued elsewhere
	Issuer       string // imported: the issuer's DN
	IssuerSerial string // imported: the certificate's own serial
	Profile      string
	Owner        string
	Tags         []string
	KeyAlgorithm string
	KeyBits      int
	// SignatureAlgorithm is as Go names it, e.g. SHA256-RSA, SHA1-RSA.
	SignatureAlgorithm string
	NotBefore          time.Time
	NotAfter           time.Time
	ValidityDays       int
	// DaysLeft is whole days until NotAfter, negative once expired.
	DaysLeft    int
	Expired     bool
	Public      bool
	Chain       string
	Revocation  string
	AutoManaged bool
	Status      Status
	Findings    []Finding
}

// Counts are certificates by status.
type Counts struct {
	Total        int `json:"total"`
	Compliant    int `json:"compliant"`
	Warning      int `json:"warning"`
	NonCompliant int `json:"non_compliant"`
}

func (c *Counts) add(s Status) {
	c.Total++
	switch s {
	case StatusCompliant:
		c.Compliant++
	case StatusWarning:
		c.Warning++
	case StatusNonCompliant:
		c.NonCompliant++
	}
}

// SourceCounts are the counts of one source (issued, imported).
type SourceCounts struct {
	Source inventory.Source
	Counts
}

// Summary counts the report's certificates by status and by source.
type Summary struct {
	Counts
	BySource []SourceCounts
}

// RenewalStats are what the store counts of renewal attempts in a period.
type RenewalStats struct {
	Attempts  int
	Succeeded int
	// SucceededByKind counts the successful attempts by how they renewed.
	SucceededByKind map[inventory.RenewalKind]int
	// NearMisses are successful renewals done with less than a day left.
	NearMisses int
}

// KPIs measure how well certificates are kept renewed. A rate is nil when
// its denominator is zero.
type KPIs struct {
	RenewalAttempts    int
	RenewalsSucceeded  int
	RenewalSuccessRate *float64
	// AutomatedRenewals are successful renewals no person was involved in;
	// AutomationRate is their share of all successful renewals.
	AutomatedRenewals int
	AutomationRate    *float64
	// CurrentCertificates are the unexpired certificates of the report;
	// AutoManaged those renewed without a person (auto_renew, ACME, agent).
	CurrentCertificates int
	AutoManaged         int
	AutoManagedShare    *float64
	// ExpiryIncidents are certificates that expired in the period while
	// valid and never renewed.
	ExpiryIncidents int
	// NearMisses are renewals in the period done with less than a day left.
	NearMisses int
}

// Report is the compliance report over [Since, Until).
type Report struct {
	Since       time.Time
	Until       time.Time
	GeneratedAt time.Time
	Summary     Summary
	KPIs        KPIs
	// WorstOffenders are up to WorstOffenderCount rows that are not
	// compliant: non-compliant first, then the soonest to expire.
	WorstOffenders []*Row
	// Rows are every certificate, soonest expiry first.
	Rows []*Row
}

// Report sizes.
const (
	DefaultPeriod      = 90 * 24 * time.Hour
	WorstOffenderCount = 10
	DefaultMaxRows     = 100_000
)

// ErrTooLarge is returned when the inventory holds more certificates than
// one report may (ReporterConfig.MaxRows).
var ErrTooLarge = errors.New("compliance: report too large")

// ReportStore is the storage the report reads.
type ReportStore interface {
	// EachComplianceCandidate calls fn for every valid, not renewed
	// certificate whose NotAfter is at or after since, soonest first.
	EachComplianceCandidate(ctx context.Context, since time.Time, fn func(*inventory.Certificate) error) error
	// RenewalStats counts the renewal attempts in [since, until).
	RenewalStats(ctx context.Context, since, until time.Time) (RenewalStats, error)
	// CountExpiryIncidents counts the certificates that expired in
	// [since, until) while valid and not renewed.
	CountExpiryIncidents(ctx context.Context, since, until time.Time) (int, error)
	ListCAs(ctx context.Context) ([]*ca.CA, error)
}

// Profiles lists the profiles issued certificates are measured against.
type Profiles interface {
	List(ctx context.Context) ([]*profile.Profile, error)
}

// Linter runs zlint over a signed certificate.
type Linter interface {
	CheckExisting(der []byte, cabf bool) (*lint.Result, error)
}

// ReporterConfig configures a Reporter.
type ReporterConfig struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Roots decide which imported certificates are public: those chaining
	// to one of them. Nil means the system trust store.
	Roots *x509.CertPool
	// MaxRows bounds one report; 0 means DefaultMaxRows.
	MaxRows int
}

// Reporter builds compliance reports.
type Reporter struct {
	cfg      ReporterConfig
	store    ReportStore
	profiles Profiles
	linter   Linter
}

// NewReporter returns a Reporter; every argument is required.
func NewReporter(cfg ReporterConfig, st ReportStore, profiles Profiles, linter Linter) (*Reporter, error) {
	if cfg.Clock == nil || cfg.Log == nil || st == nil || profiles == nil || linter == nil {
		return nil, errors.New("compliance: reporter: clock, logger, store, profiles and linter are required")
	}
	if cfg.MaxRows < 0 {
		return nil, fmt.Errorf("compliance: reporter: MaxRows %d is negative", cfg.MaxRows)
	}
	if cfg.MaxRows == 0 {
		cfg.MaxRows = DefaultMaxRows
	}
	if cfg.Roots == nil {
		roots, err := x509.SystemCertPool()
		if err != nil {
			cfg.Log.Warn("no system trust store: no imported certificate will count as public unless tagged public", "err", err)
			roots = x509.NewCertPool()
		}
		cfg.Roots = roots
	}
	return &Reporter{cfg: cfg, store: st, profiles: profiles, linter: linter}, nil
}

// Build measures every valid, not renewed certificate (issued or
// imported), and those that expired since since, against policy, and
// computes the period's renewal KPIs. A zero since means DefaultPeriod ago.
// It keeps every row, so it refuses an inventory of more than MaxRows
// candidates (ErrTooLarge); Summarize has no such bound.
func (r *Reporter) Build(ctx context.Context, since time.Time) (*Report, error) {
	env, err := r.prepare(ctx, since)
	if err != nil {
		return nil, err
	}
	rep := &Report{Since: env.since, Until: env.now, GeneratedAt: env.now, Rows: []*Row{}}
	err = r.evaluateEach(ctx, env, r.cfg.MaxRows, func(i int, row *Row) {
		for len(rep.Rows) <= i {
			rep.Rows = append(rep.Rows, nil)
		}
		rep.Rows[i] = row
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: report: %w", err)
	}
	t := newTally(0)
	for _, row := range rep.Rows {
		t.add(row)
	}
	if err := r.finish(ctx, env, t); err != nil {
		return nil, err
	}
	rep.Summary, rep.KPIs, rep.WorstOffenders = t.summary, t.kpis, t.worst
	r.cfg.Log.Info("compliance report built", "certificates", len(rep.Rows), "non_compliant", rep.Summary.NonCompliant,
		"warning", rep.Summary.Warning, "since", env.since)
	return rep, nil
}

// prepare checks since (zero: DefaultPeriod ago) and loads what
// evaluating a certificate needs: the CAs and the profiles.
func (r *Reporter) prepare(ctx context.Context, since time.Time) (*evalEnv, error) {
	now := r.cfg.Clock.Now().UTC()
	if since.IsZero() {
		since = now.Add(-DefaultPeriod)
	}
	since = since.UTC()
	if !since.Before(now) {
		return nil, fmt.Errorf("compliance: report since %s is not in the past", since.Format(time.RFC3339))
	}
	cas, err := loadCAs(ctx, r.store.ListCAs)
	if err != nil {
		return nil, fmt.Errorf("compliance: report: list CAs: %w", err)
	}
	profs, err := r.profiles.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("compliance: report: list profiles: %w", err)
	}
	env := &evalEnv{now: now, since: since, roots: r.cfg.Roots, linter: r.linter, cas: cas, caNames: map[string]string{}, profiles: map[string]*profile.Profile{}}
	for _, c := range cas {
		env.caNames[c.rec.ID] = c.rec.Name
		env.caCerts = append(env.caCerts, c.cert)
	}
	for _, p := range profs {
		env.profiles[p.Name] = p
	}
	return env, nil
}

// finish reads the period's renewal figures and completes t's KPIs.
func (r *Reporter) finish(ctx context.Context, env *evalEnv, t *tally) error {
	stats, err := r.store.RenewalStats(ctx, env.since, env.now)
	if err != nil {
		return fmt.Errorf("compliance: report: %w", err)
	}
	incidents, err := r.store.CountExpiryIncidents(ctx, env.since, env.now)
	if err != nil {
		return fmt.Errorf("compliance: report: %w", err)
	}
	t.finish(stats, incidents)
	return nil
}

// evaluateEach evaluates every candidate certificate on all CPUs (zlint is
// the bulk of the cost) and calls fn with each row and its index in the
// store's order, from one goroutine. At most a few certificates per worker
// are in flight. More than limit candidates (0: no bound) is ErrTooLarge.
func (r *Reporter) evaluateEach(ctx context.Context, env *evalEnv, limit int, fn func(i int, row *Row)) error {
	type job struct {
		i int
		c *inventory.Certificate
	}
	type result struct {
		i   int
		row *Row
	}
	workers := max(runtime.GOMAXPROCS(0), 1)
	jobs := make(chan job, 2*workers)
	results := make(chan result, 2*workers)
	var (
		wg       sync.WaitGroup
		panicMu  sync.Mutex
		panicErr error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				// A panic on one certificate fails this report (the
				// request answers 500), never the server: a panic in a
				// goroutine of its own is not caught by net/http.
				var row *Row
				if err := recovery.Call(func() error { row = env.evaluate(j.c); return nil }); err != nil {
					recovery.Log(r.cfg.Log, "compliance evaluation of "+j.c.Serial, err)
					panicMu.Lock()
					if panicErr == nil {
						panicErr = fmt.Errorf("compliance: evaluating certificate %s: %w", j.c.Serial, err)
					}
					panicMu.Unlock()
				}
				results <- result{j.i, row}
			}
		}()
	}
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for res := range results {
			if res.row != nil {
				fn(res.i, res.row)
			}
		}
	}()
	n := 0
	err := r.store.EachComplianceCandidate(ctx, env.since, func(c *inventory.Certificate) error {
		if limit > 0 && n >= limit {
			return fmt.Errorf("%w: the inventory holds more than %d certificates to report on", ErrTooLarge, limit)
		}
		select {
		case jobs <- job{n, c}:
		case <-ctx.Done():
			return ctx.Err()
		}
		n++
		return nil
	})
	close(jobs)
	wg.Wait()
	close(results)
	<-collected
	if err == nil {
		err = panicErr
	}
	return err
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}

// evalEnv is what evaluating one certificate needs, loaded once per report.
type evalEnv struct {
	now      time.Time
	since    time.Time
	roots    *x509.CertPool
	linter   Linter
	cas      []ourCA
	caCerts  []*x509.Certificate
	caNames  map[string]string
	profiles map[string]*profile.Profile
}

// autoManaged reports whether nobody needs to renew c by hand: the server
// renews it, or an ACME client, an EST or SCEP device (which renews
// itself) or the agent got it.
func autoManaged(c *inventory.Certificate) bool {
	return c.AutoRenew || strings.HasPrefix(c.Requester, "acme:") || strings.HasPrefix(c.Requester, "est:") || strings.HasPrefix(c.Requester, "scep:") ||
		c.RenewalKind == inventory.RenewalAgent || c.RenewalKind == inventory.RenewalACME || c.RenewalKind == inventory.RenewalEST ||
		c.RenewalKind == inventory.RenewalSCEP
}

// evaluate measures one certificate against every rule.
func (e *evalEnv) evaluate(c *inventory.Certificate) *Row {
	src := c.Source
	if src == "" {
		src = inventory.SourceIssued
	}
	row := &Row{
		Serial: c.Serial, Fingerprint: c.Fingerprint, Subject: c.Subject, Names: slices.Clone(c.SANs), Source: src,
		CAID: c.CAID, CA: e.caNames[c.CAID], Issuer: c.Issuer, IssuerSerial: c.IssuerSerial, Profile: c.Profile,
		Owner: c.Owner, Tags: slices.Clone(c.Tags), KeyAlgorithm: c.KeyAlgorithm, KeyBits: c.KeyBits,
		SignatureAlgorithm: c.SignatureAlgorithm, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		Public: slices.Contains(c.Tags, PublicTag), AutoManaged: autoManaged(c), Findings: []Finding{},
	}
	if row.Names == nil {
		row.Names = []string{}
	}
	if row.Tags == nil {
		row.Tags = []string{}
	}
	validity := c.NotAfter.Sub(c.NotBefore)
	row.ValidityDays = int(math.Round(validity.Hours() / 24))
	row.DaysLeft = int(math.Floor(c.NotAfter.Sub(e.now).Hours() / 24))
	row.Expired = e.now.After(c.NotAfter)
	if src.External() {
		row.Revocation = RevocationNotChecked
	} else if c.Status == inventory.StatusRevoked {
		row.Revocation = RevocationRevoked
	} else {
		row.Revocation = RevocationValid
	}
	add := func(rule string, sev Severity, format string, a ...any) {
		row.Findings = append(row.Findings, Finding{Rule: rule, Severity: sev, Message: fmt.Sprintf(format, a...)})
	}

	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		row.Chain = ChainUnknown
		add(RuleCertificate, SeverityError, "the stored certificate does not parse (%v); it cannot be checked", err)
	}
	var prof *profile.Profile
	if cert != nil {
		if src.External() {
			e.checkImportedChain(row, c, cert, add)
		} else {
			row.Chain = ChainIssuedHere
		}
		// Key: an issued certificate against its profile, an imported one
		// against the policy for certificates issued elsewhere.
		why := ""
		if src == inventory.SourceIssued && c.Profile != "" {
			if prof = e.profiles[c.Profile]; prof != nil {
				why = checkProfileKey(prof, cert.PublicKey)
			} else {
				add(RuleProfile, SeverityWarning, "profile %q no longer exists; the key is checked against the policy for imported certificates", c.Profile)
			}
		}
		if prof == nil {
			why = checkImportedKey(c.KeyAlgorithm, c.KeyBits)
		}
		if why != "" {
			add(RuleKey, SeverityError, "%s", why)
		}
		if f := checkSignature(cert); f != nil {
			row.Findings = append(row.Findings, *f)
		}
	}
	if row.Public && validity > MaxPublicValidityDays*24*time.Hour {
		add(RuleValidity, SeverityError, "valid for %d days: publicly trusted certificates may be valid for at most %d days", row.ValidityDays, MaxPublicValidityDays)
	}
	switch left := c.NotAfter.Sub(e.now); {
	case row.Expired:
		add(RuleExpiry, SeverityError, "expired on %s (%d days ago) and was not renewed", c.NotAfter.UTC().Format(time.DateOnly), -row.DaysLeft)
	case left < ExpiryWarning:
		add(RuleExpiry, SeverityWarning, "expires on %s, in %s, and is not renewed yet", c.NotAfter.UTC().Format(time.DateOnly), humanDuration(left))
	}
	if cert != nil {
		cabf := row.Public || (prof != nil && prof.CABFLints)
		res, err := e.linter.CheckExisting(c.DER, cabf)
		if err != nil {
			add(RuleLint, SeverityWarning, "zlint could not check the certificate: %v", err)
		} else {
			for _, f := range res.Failed {
				add(RuleLint+":"+f.Name, SeverityError, "%s", lintMessage(f))
			}
			for _, f := range res.Warnings {
				add(RuleLint+":"+f.Name, SeverityWarning, "%s", lintMessage(f))
			}
		}
	}
	row.Status = StatusCompliant
	for _, f := range row.Findings {
		switch {
		case f.Severity == SeverityError:
			row.Status = StatusNonCompliant
		case f.Severity == SeverityWarning && row.Status == StatusCompliant:
			row.Status = StatusWarning
		}
	}
	return row
}

func lintMessage(f lint.Finding) string {
	if f.Details == "" {
		return "zlint " + f.Status + ": " + f.Name
	}
	return "zlint " + f.Status + ": " + f.Name + ": " + f.Details
}

// humanDuration says how long is left, in days or hours.
func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if d >= 2*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d minutes", max(int(d.Minutes()), 0))
}

// checkImportedChain sets the row's chain state and whether it is public:
// it walks up from the certificate through its stored chain and our CAs,
// then asks the trust store about the top.
func (e *evalEnv) checkImportedChain(row *Row, c *inventory.Certificate, cert *x509.Certificate, add func(string, Severity, string, ...any)) {
	pool := make([]*x509.Certificate, 0, len(c.Chain)+len(e.caCerts))
	for _, der := range c.Chain {
		if p, err := x509.ParseCertificate(der); err == nil {
			pool = append(pool, p)
		}
	}
	pool = append(pool, e.caCerts...)
	chain := buildChain(cert, pool)
	top := chain[len(chain)-1]
	switch {
	case len(chain) == 1 && selfSigned(cert):
		row.Chain = ChainSelfSigned
		row.Public = row.Public || e.trusted(top)
	case selfSigned(top):
		row.Chain = ChainComplete
		row.Public = row.Public || e.trusted(top)
	case e.trusted(top):
		row.Chain = ChainComplete
		row.Public = true
	default:
		row.Chain = ChainIncomplete
		add(RuleChain, SeverityWarning, "chain incomplete: the issuer of %s (%s) is not in the stored chain, this server's CAs or the system trust store; import the certificate with its intermediates",
			top.Subject, top.Issuer)
	}
}

// trusted reports whether c is, or is issued by, a root of the trust store.
func (e *evalEnv) trusted(c *x509.Certificate) bool {
	at := e.now
	if at.After(c.NotAfter) {
		at = c.NotAfter
	}
	if at.Before(c.NotBefore) {
		at = c.NotBefore
	}
	_, err := c.Verify(x509.VerifyOptions{Roots: e.roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}
