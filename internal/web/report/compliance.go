package report

import (
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// FromCompliance is the report as the API answers it and the renderings
// show it; the console's HTML report is the same.
func FromCompliance(rep *compliance.Report) apitypes.ComplianceReport {
	out := apitypes.ComplianceReport{
		Since: rep.Since, Until: rep.Until, GeneratedAt: rep.GeneratedAt,
		Summary: apitypes.ComplianceSummary{ComplianceCounts: countsView(rep.Summary.Counts), BySource: []apitypes.ComplianceSourceCounts{}},
		KPIs: apitypes.ComplianceKPIs{
			RenewalAttempts: rep.KPIs.RenewalAttempts, RenewalsSucceeded: rep.KPIs.RenewalsSucceeded,
			RenewalSuccessRate: rep.KPIs.RenewalSuccessRate, AutomatedRenewals: rep.KPIs.AutomatedRenewals,
			AutomationRate: rep.KPIs.AutomationRate, CurrentCertificates: rep.KPIs.CurrentCertificates,
			AutoManaged: rep.KPIs.AutoManaged, AutoManagedShare: rep.KPIs.AutoManagedShare,
			ExpiryIncidents: rep.KPIs.ExpiryIncidents, NearMisses: rep.KPIs.NearMisses,
		},
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
