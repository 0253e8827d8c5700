package compliance_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// tReportEnv is a real store with one CA of ours, an importer and a reporter.
type tReportEnv struct {
	t     *testing.T
	st    *store.DB
	clk   *clock.Fake
	ours  tCA
	im    *compliance.Importer
	roots *x509.CertPool
}

func tNewReportEnv(t *testing.T) *tReportEnv {
	t.Helper()
	st := storetest.OpenSQLite(t)
	e := &tReportEnv{t: t, st: st, clk: clock.NewFake(tNow), ours: tRoot(t, "Our Root"), roots: x509.NewCertPool()}
	tStoreCA(t, st, "ca_ours", "ours", e.ours)
	e.im = tNewImporter(t, st)
	return e
}

func (e *tReportEnv) reporter(maxRows int) *compliance.Reporter {
	e.t.Helper()
	return tReporter(e.t, e.st, e.clk, e.roots, maxRows)
}

// tReporter is a Reporter on st with the real linter and profile catalog.
func tReporter(tb testing.TB, st *store.DB, clk *clock.Fake, roots *x509.CertPool, maxRows int) *compliance.Reporter {
	tb.Helper()
	l, err := lint.New(lint.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if roots == nil {
		roots = x509.NewCertPool()
	}
	r, err := compliance.NewReporter(compliance.ReporterConfig{Clock: clk, Log: tLog(), Roots: roots, MaxRows: maxRows},
		st, profile.NewCatalog(st, clk.Now), l)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func fakeClock() *clock.Fake { return clock.NewFake(tNow) }

func (e *tReportEnv) build(since time.Time) *compliance.Report {
	e.t.Helper()
	rep, err := e.reporter(0).Build(context.Background(), since)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// issue records c as issued here under profile, as the issuance path does.
func (e *tReportEnv) issue(c *x509.Certificate, prof string, edit func(*inventory.Certificate)) *inventory.Certificate {
	e.t.Helper()
	rec := issue.Record(c, "ca_ours", prof, "ops", nil, nil, tNow.Add(-time.Hour))
	if edit != nil {
		edit(rec)
	}
	if err := e.st.InsertCertificate(context.Background(), rec, audit.Event{Time: tNow, Principal: "ops", Action: "certificate.issue", Outcome: audit.Success}); err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func (e *tReportEnv) importPEM(name string, data []byte, tags ...string) []*inventory.Certificate {
	e.t.Helper()
	res, err := e.im.Import(context.Background(), compliance.ImportRequest{Principal: tImporter(), Tags: tags,
		Files: []compliance.ImportFile{{Name: name, Data: data}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Imported
}

func rowOf(t *testing.T, rep *compliance.Report, serial string) *compliance.Row {
	t.Helper()
	for _, r := range rep.Rows {
		if r.Serial == serial {
			return r
		}
	}
	t.Fatalf("certificate %s is not in the report", serial)
	return nil
}

func findingOf(r *compliance.Row, rule string) *compliance.Finding {
	for i := range r.Findings {
		if r.Findings[i].Rule == rule {
			return &r.Findings[i]
		}
	}
	return nil
}

func TestReportIssuedCertificateCompliant(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	rec := e.issue(e.ours.leaf(t, "app.example.internal", leafOpts{}), "web_server", nil)
	rep := e.build(time.Time{})
	row := rowOf(t, rep, rec.Serial)
	if row.Status != compliance.StatusCompliant || len(row.Findings) != 0 {
		t.Errorf("status %s, findings %+v; want compliant with none", row.Status, row.Findings)
	}
	if row.Source != inventory.SourceIssued || row.CA != "ours" || row.Chain != compliance.ChainIssuedHere ||
		row.Revocation != compliance.RevocationValid || row.Profile != "web_server" || row.DaysLeft != 89 || row.ValidityDays != 90 {
		t.Errorf("row = %+v", row)
	}
	if !rep.Since.Equal(tNow.Add(-compliance.DefaultPeriod)) || !rep.Until.Equal(tNow) {
		t.Errorf("period %s to %s, want the 90 days before %s", rep.Since, rep.Until, tNow)
	}
	if len(rep.WorstOffenders) != 0 || rep.Summary.Compliant != 1 || rep.Summary.Total != 1 {
		t.Errorf("summary %+v, worst offenders %d; want one compliant certificate and no offender", rep.Summary, len(rep.WorstOffenders))
	}
}

func TestReportLegacySHA1Certificate(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	legacy := tLegacyCert(t, "legacy.example.com", 2048, 800)
	imp := e.importPEM("legacy.pem", tPEM(legacy))
	rep := e.build(time.Time{})
	row := rowOf(t, rep, imp[0].Serial)
	if row.Status != compliance.StatusNonCompliant {
		t.Errorf("status %s, want non_compliant", row.Status)
	}
	f := findingOf(row, compliance.RuleSignature)
	if f == nil || f.Severity != compliance.SeverityError || !strings.Contains(f.Message, "SHA-1") {
		t.Errorf("signature finding = %+v, want an error naming SHA-1 (all: %+v)", f, row.Findings)
	}
	if findingOf(row, compliance.RuleKey) != nil || findingOf(row, compliance.RuleValidity) != nil {
		t.Errorf("a 2048-bit key and 800 days of a private certificate are within policy: %+v", row.Findings)
	}
	if row.Chain != compliance.ChainSelfSigned || row.Public || row.Revocation != compliance.RevocationNotChecked || row.Source != inventory.SourceImported {
		t.Errorf("row = %+v", row)
	}
	if len(rep.WorstOffenders) != 1 || rep.WorstOffenders[0] != row {
		t.Errorf("worst offenders = %v, want the legacy certificate", rep.WorstOffenders)
	}
}

func TestReportImportedKeyPolicy(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	weak := tLegacyCert(t, "weak.example.com", 1024, 30)
	other := tRoot(t, "Elsewhere Root")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	strong := other.leaf(t, "strong.example.com", leafOpts{key: rsaKey})
	w := e.importPEM("weak.pem", tPEM(weak))[0]
	s := e.importPEM("strong.pem", tPEM(strong, other.cert))[0]
	rep := e.build(time.Time{})
	f := findingOf(rowOf(t, rep, w.Serial), compliance.RuleKey)
	if f == nil || f.Severity != compliance.SeverityError || !strings.Contains(f.Message, "1024-bit key is below the 2048-bit minimum") {
		t.Errorf("RSA-1024: key finding %+v", f)
	}
	sr := rowOf(t, rep, s.Serial)
	if findingOf(sr, compliance.RuleKey) != nil || sr.Chain != compliance.ChainComplete {
		t.Errorf("RSA-2048 with its root: findings %+v, chain %s", sr.Findings, sr.Chain)
	}
}

func TestReportProfileKeyRules(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// internal_service allows ECDSA only: an RSA certificate under it breaks its rule.
	bad := e.issue(e.ours.leaf(t, "svc.example.internal", leafOpts{key: rsaKey}), "internal_service", nil)
	gone := e.issue(e.ours.leaf(t, "gone.example.internal", leafOpts{}), "deleted_profile", nil)
	rep := e.build(time.Time{})
	f := findingOf(rowOf(t, rep, bad.Serial), compliance.RuleKey)
	if f == nil || !strings.Contains(f.Message, "internal_service") || !strings.Contains(f.Message, "RSA") {
		t.Errorf("RSA under internal_service: key finding %+v", f)
	}
	g := rowOf(t, rep, gone.Serial)
	if p := findingOf(g, compliance.RuleProfile); p == nil || p.Severity != compliance.SeverityWarning || g.Status != compliance.StatusWarning {
		t.Errorf("missing profile: status %s, findings %+v; want a warning", g.Status, g.Findings)
	}
}

func TestReportExpiryValidityAndChain(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	elsewhere := tRoot(t, "Public Root")
	e.roots.AddCert(elsewhere.cert) // stands in for the system trust store
	inter := elsewhere.sub(t, "Public Issuing")
	public := inter.leaf(t, "www.example.com", leafOpts{days: 800})
	private := tRoot(t, "Vendor Root").sub(t, "Vendor Issuing")
	orphan := private.leaf(t, "vendor.example.com", leafOpts{})
	tagged := private.leaf(t, "tagged.example.com", leafOpts{days: 500})

	soon := e.issue(e.ours.leaf(t, "soon.example.internal", leafOpts{notBefore: tNow.Add(-88 * 24 * time.Hour)}), "web_server", nil)
	expired := e.issue(e.ours.leaf(t, "old.example.internal", leafOpts{notBefore: tNow.Add(-100 * 24 * time.Hour)}), "web_server", nil)
	longAgo := e.issue(e.ours.leaf(t, "ancient.example.internal", leafOpts{notBefore: tNow.Add(-200 * 24 * time.Hour)}), "web_server", nil)
	pub := e.importPEM("www.pem", tPEM(public, inter.cert))[0]
	orp := e.importPEM("vendor.pem", tPEM(orphan))[0]
	tag := e.importPEM("tagged.pem", tPEM(tagged), "public")[0]

	rep := e.build(tNow.Add(-30 * 24 * time.Hour))
	if r := rowOf(t, rep, soon.Serial); r.Status != compliance.StatusWarning || findingOf(r, compliance.RuleExpiry) == nil {
		t.Errorf("expiring in 2 days: status %s findings %+v, want an expiry warning", r.Status, r.Findings)
	}
	if r := rowOf(t, rep, expired.Serial); r.Status != compliance.StatusNonCompliant || !r.Expired || !strings.Contains(findingOf(r, compliance.RuleExpiry).Message, "expired on") {
		t.Errorf("expired 10 days ago: status %s findings %+v, want non-compliant", r.Status, r.Findings)
	}
	for _, r := range rep.Rows {
		if r.Serial == longAgo.Serial {
			t.Error("a certificate that expired before the period is in the report")
		}
	}
	r := rowOf(t, rep, pub.Serial)
	if !r.Public || r.Chain != compliance.ChainComplete {
		t.Errorf("chains to a trusted root: public %v chain %s", r.Public, r.Chain)
	}
	if f := findingOf(r, compliance.RuleValidity); f == nil || f.Severity != compliance.SeverityError || !strings.Contains(f.Message, "800 days") {
		t.Errorf("public 800-day certificate: validity finding %+v", f)
	}
	r = rowOf(t, rep, orp.Serial)
	if f := findingOf(r, compliance.RuleChain); r.Chain != compliance.ChainIncomplete || f == nil || f.Severity != compliance.SeverityWarning || r.Public {
		t.Errorf("no intermediate: chain %s public %v finding %+v, want an incomplete-chain warning", r.Chain, r.Public, f)
	}
	r = rowOf(t, rep, tag.Serial)
	if !r.Public || findingOf(r, compliance.RuleValidity) == nil {
		t.Errorf("tagged public, 500 days: public %v findings %+v", r.Public, r.Findings)
	}
	// Worst offenders: non-compliant first, then by expiry; compliant never.
	var got []compliance.Status
	for i, w := range rep.WorstOffenders {
		got = append(got, w.Status)
		if i > 0 && w.Status == rep.WorstOffenders[i-1].Status && w.NotAfter.Before(rep.WorstOffenders[i-1].NotAfter) {
			t.Errorf("worst offender %d expires before %d of the same status", i, i-1)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b compliance.Status) int { return rank(a) - rank(b) }) || slices.Contains(got, compliance.StatusCompliant) {
		t.Errorf("worst offender statuses %v, want non_compliant then warning", got)
	}
	if rep.Summary.Total != len(rep.Rows) || rep.Summary.Compliant+rep.Summary.Warning+rep.Summary.NonCompliant != rep.Summary.Total {
		t.Errorf("summary %+v does not add up over %d rows", rep.Summary, len(rep.Rows))
	}
	var bySource []string
	for _, s := range rep.Summary.BySource {
		bySource = append(bySource, string(s.Source))
	}
	if !slices.Equal(bySource, []string{"imported", "issued"}) {
		t.Errorf("summary by source %v", bySource)
	}
}

func rank(s compliance.Status) int {
	return map[compliance.Status]int{compliance.StatusNonCompliant: 0, compliance.StatusWarning: 1, compliance.StatusCompliant: 2}[s]
}

func TestReportKPIs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := tNewReportEnv(t)
	since := tNow.Add(-30 * 24 * time.Hour)
	attempts := []inventory.RenewalAttempt{
		{Serial: "01", NewSerial: "11", Kind: inventory.RenewalAuto, OK: true, At: tNow.Add(-time.Hour), DaysLeft: 20},
		{Serial: "02", NewSerial: "12", Kind: inventory.RenewalAgent, OK: true, At: tNow.Add(-2 * time.Hour), DaysLeft: 0.5},
		{Serial: "03", NewSerial: "13", Kind: inventory.RenewalManual, OK: true, At: tNow.Add(-3 * time.Hour), DaysLeft: 3},
		{Serial: "04", Kind: inventory.RenewalAuto, OK: false, Error: "CA disabled", At: tNow.Add(-4 * time.Hour), DaysLeft: 0.2},
		{Serial: "05", NewSerial: "15", Kind: inventory.RenewalACME, OK: true, At: since.Add(-time.Hour), DaysLeft: 0.1}, // before the period
	}
	for _, a := range attempts {
		if err := e.st.RecordRenewalAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	e.issue(e.ours.leaf(t, "auto.example.internal", leafOpts{}), "web_server", func(c *inventory.Certificate) { c.AutoRenew = true })
	e.issue(e.ours.leaf(t, "acme.example.internal", leafOpts{}), "web_server", func(c *inventory.Certificate) { c.Requester = "acme:default/acct1" })
	e.issue(e.ours.leaf(t, "agent.example.internal", leafOpts{}), "web_server", func(c *inventory.Certificate) { c.RenewalKind = inventory.RenewalAgent })
	e.issue(e.ours.leaf(t, "est.example.internal", leafOpts{}), "web_server", func(c *inventory.Certificate) { c.Requester = "est:lab" })
	e.issue(e.ours.leaf(t, "scep.example.internal", leafOpts{}), "web_server", func(c *inventory.Certificate) { c.Requester = "scep:mdm" })
	e.issue(e.ours.leaf(t, "manual.example.internal", leafOpts{}), "web_server", nil)
	// Expired in the period, never renewed: an incident (and not current).
	e.issue(e.ours.leaf(t, "lapsed.example.internal", leafOpts{notBefore: tNow.Add(-95 * 24 * time.Hour)}), "web_server", nil)
	// Expired in the period but renewed: no incident, and not in the report.
	e.issue(e.ours.leaf(t, "renewed.example.internal", leafOpts{notBefore: tNow.Add(-95 * 24 * time.Hour)}), "web_server",
		func(c *inventory.Certificate) { c.RenewedBy = "aa" })

	k := e.build(since).KPIs
	if k.RenewalAttempts != 4 || k.RenewalsSucceeded != 3 || k.RenewalSuccessRate == nil || *k.RenewalSuccessRate != 0.75 {
		t.Errorf("renewal success: %d of %d, rate %v; want 3 of 4, 0.75", k.RenewalsSucceeded, k.RenewalAttempts, k.RenewalSuccessRate)
	}
	if k.AutomatedRenewals != 2 || k.AutomationRate == nil || *k.AutomationRate != 2.0/3 {
		t.Errorf("automated renewals %d, rate %v; want 2, 2/3", k.AutomatedRenewals, k.AutomationRate)
	}
	if k.CurrentCertificates != 6 || k.AutoManaged != 5 || k.AutoManagedShare == nil || *k.AutoManagedShare != 5.0/6 {
		t.Errorf("auto-managed %d of %d, share %v; want 5 of 6", k.AutoManaged, k.CurrentCertificates, k.AutoManagedShare)
	}
	if k.ExpiryIncidents != 1 || k.NearMisses != 1 {
		t.Errorf("expiry incidents %d, near misses %d; want 1 and 1", k.ExpiryIncidents, k.NearMisses)
	}

	empty := tNewReportEnv(t).build(time.Time{}).KPIs
	if empty.RenewalSuccessRate != nil || empty.AutomationRate != nil || empty.AutoManagedShare != nil {
		t.Errorf("an empty inventory has no rates, got %+v", empty)
	}
}

func TestReportLimits(t *testing.T) {
	t.Parallel()
	e := tNewReportEnv(t)
	for _, n := range []string{"a", "b", "c"} {
		e.issue(e.ours.leaf(t, n+".example.internal", leafOpts{}), "web_server", nil)
	}
	if _, err := e.reporter(2).Build(context.Background(), time.Time{}); !errors.Is(err, compliance.ErrTooLarge) {
		t.Errorf("3 certificates with MaxRows 2: err = %v, want ErrTooLarge", err)
	}
	if _, err := e.reporter(0).Build(context.Background(), tNow.Add(time.Hour)); err == nil {
		t.Error("a period starting in the future was accepted")
	}
	if _, err := compliance.NewReporter(compliance.ReporterConfig{Clock: e.clk, Log: tLog()}, e.st, nil, nil); err == nil {
		t.Error("NewReporter accepted a missing linter and profiles")
	}
}
