package report

import (
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// FromCompliance is the report as the API answers it and the renderings
// show it; the console's HTML report is the same.
func FromCompliance(rep *compliance.Report) apitypes.ComplianceReport {
	out := apitypes.ComplianceReport{
		Since: rep.Since, Until: rep.Until, GeneratedAt: rep.GeneratedAt,
		Summary:        apitypes.ComplianceSummary{ComplianceCounts: countsView(rep.Summary.Counts), BySource: []apitypes.ComplianceSourceCounts{}},
		KPIs:           KPIsView(rep.KPIs),
		WorstOffenders: make([]apitypes.ComplianceRow, 0, len(rep.WorstOffenders)),
		Certificates:   make([]apitypes.ComplianceRow, 0, len(rep.Rows)),
	}
	for _, s := range rep.Summary.BySource {
		out.Summary.BySource = append(out.Summary.BySource, apitypes.ComplianceSourceCounts{Source: string(s.Source), ComplianceCounts: countsView(s.Counts)})
	}
	for _, row := range rep.WorstOffenders {
		out.WorstOffenders = append(out.WorstOffenders, rowView(row))
	}
	for _, row := range rep.Rows {
		out.Certificates = append(out.Certificates, rowView(row))
	}
	return out
}

// KPIsView is the report's renewal KPIs as the API answers them.
func KPIsView(k compliance.KPIs) apitypes.ComplianceKPIs {
	return apitypes.ComplianceKPIs{
		RenewalAttempts: k.RenewalAttempts, RenewalsSucceeded: k.RenewalsSucceeded,
		RenewalSuccessRate: k.RenewalSuccessRate, AutomatedRenewals: k.AutomatedRenewals,
		AutomationRate: k.AutomationRate, CurrentCertificates: k.CurrentCertificates,
		AutoManaged: k.AutoManaged, AutoManagedShare: k.AutoManagedShare,
		ExpiryIncidents: k.ExpiryIncidents, NearMisses: k.NearMisses,
	}
}

// KPIRow is one renewal KPI as a page shows it: its name, its value for
// people ("97.5%", "n/a", "3") and what it is based on.
type KPIRow struct{ Name, Value, Basis string }

// KPIRows are the KPIs as the HTML report and the console show them.
func KPIRows(k apitypes.ComplianceKPIs) []KPIRow {
	n := strconv.Itoa
	return []KPIRow{
		{"Renewal success rate", pct(k.RenewalSuccessRate), n(k.RenewalsSucceeded) + " of " + n(k.RenewalAttempts) + " renewal attempts in the period succeeded"},
		{"Automated renewals", pct(k.AutomationRate), n(k.AutomatedRenewals) + " of " + n(k.RenewalsSucceeded) + " renewals needed no person (server, agent, ACME, rotation)"},
		{"Auto-managed certificates", pct(k.AutoManagedShare), n(k.AutoManaged) + " of " + n(k.CurrentCertificates) + " current certificates renew without a person"},
		{"Expiry incidents", n(k.ExpiryIncidents), "certificates that expired in the period while valid and never renewed"},
		{"Near misses", n(k.NearMisses), "renewals in the period done with less than a day left"},
	}
}

// EncryptionRows are the scanned endpoints' encryption KPIs as the HTML
// report, the CSV and the command line show them: the count scanned,
// then each KPI with what it is based on.
func EncryptionRows(k *apitypes.ScanKPIs) []KPIRow {
	n := strconv.Itoa
	share := func(v float64, known int) string {
		if known == 0 {
			return "n/a"
		}
		return pct(&v)
	}
	mttr := "n/a"
	if k.Remediated > 0 {
		mttr = (time.Duration(k.MeanTimeToRemediate) * time.Second).String()
	}
	remediated := n(k.Remediated) + " plaintext or weak endpoints remediated"
	if k.Remediated == 1 {
		remediated = "1 plaintext or weak endpoint remediated"
	}
	rows := []KPIRow{
		{"Scanned endpoints", n(k.Endpoints), "endpoints the scans know, not counting " + n(k.Gone) + " gone"},
		{"Encrypted endpoints", share(k.EncryptedShare, k.EncryptionKnown), n(k.Encrypted) + " of " + n(k.EncryptionKnown) + " endpoints (implicit TLS or mandatory STARTTLS)"},
		{"TLS 1.2+ only", share(k.TLS12OnlyShare, k.TLS12Known), n(k.TLS12Only) + " of " + n(k.TLS12Known) + " endpoints whose versions were all tried"},
		{"Strong ciphers only", share(k.StrongOnlyShare, k.StrongKnown), n(k.StrongOnly) + " of " + n(k.StrongKnown) + " endpoints whose suites were enumerated"},
		{"Plaintext or weak now", n(k.Exposed), "endpoints to remediate"},
		{"Mean time to remediate", mttr, remediated},
		{"Unmanaged certificates", n(k.Unmanaged), "served, found only by scanning (source discovered)"},
	}
	var grades []string
	for _, g := range gradeLetters {
		if c := k.Grades[g]; c > 0 {
			grades = append(grades, g+" "+n(c))
		}
	}
	if len(grades) > 0 {
		rows = append(rows, KPIRow{"Grades", strings.Join(grades, ", "), "graded endpoints"})
	}
	by := make([]string, 0, len(encryptionNames))
	for _, e := range encryptionNames {
		by = append(by, e+" "+n(k.ByEncryption[e]))
	}
	return append(rows, KPIRow{"By encryption", strings.Join(by, ", "), "endpoints"})
}

// gradeLetters and encryptionNames are the orders the KPIs list grades
// and encryptions in, best first.
var (
	gradeLetters    = []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M"}
	encryptionNames = []string{"implicit-tls", "starttls", "optional", "none", "unknown"}
)

func countsView(c compliance.Counts) apitypes.ComplianceCounts {
	return apitypes.ComplianceCounts{Total: c.Total, Compliant: c.Compliant, Warning: c.Warning, NonCompliant: c.NonCompliant}
}

func rowView(r *compliance.Row) apitypes.ComplianceRow {
	v := apitypes.ComplianceRow{
		Serial: r.Serial, Fingerprint: r.Fingerprint, Subject: r.Subject, Names: r.Names, Source: string(r.Source),
		CAID: r.CAID, CA: r.CA, Issuer: r.Issuer, IssuerSerial: r.IssuerSerial, Profile: r.Profile, Owner: r.Owner,
		Tags: r.Tags, KeyAlgorithm: r.KeyAlgorithm, KeyBits: r.KeyBits, SignatureAlgorithm: r.SignatureAlgorithm,
		NotBefore: r.NotBefore, NotAfter: r.NotAfter, ValidityDays: r.ValidityDays, DaysLeft: r.DaysLeft,
		Expired: r.Expired, Public: r.Public, Chain: r.Chain, Revocation: r.Revocation, AutoManaged: r.AutoManaged,
		Status: string(r.Status), Findings: make([]apitypes.ComplianceFinding, 0, len(r.Findings)),
	}
	for _, f := range r.Findings {
		v.Findings = append(v.Findings, apitypes.ComplianceFinding{Rule: f.Rule, Severity: string(f.Severity), Message: f.Message})
	}
	return v
}
