package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// reportFormats are what --format accepts; table is rendered here from
// the JSON report, json and csv are the server's bytes.
func reportFormats() []string { return []string{"table", "json", "csv"} }

func reportCommands() []*command {
	more := "--format table (the default) prints the count per CA, then one row per certificate; json and csv are\n" +
		"the server's report as it sends it. " + timeArgHelp
	return []*command{
		{
			name: "issued", summary: "report the certificates issued in a period",
			args:    "[--since T] [--until T] [--format table|json|csv] [--out FILE]",
			example: "certwright report issued --since 2026-01-01 --until 2026-02-01 --format csv --out issued-january.csv",
			more:    more + "\nCSV columns: serial,ca,ca_id,profile,subject,sans,requester,issued_at,not_before,not_after (sans joined with ';').",
			run:     func(ctx context.Context, r *runner, args []string) error { return runReport(ctx, r, args, "issued") },
		},
		{
			name: "revoked", summary: "report the certificates revoked in a period",
			args:    "[--since T] [--until T] [--format table|json|csv] [--out FILE]",
			example: "certwright report revoked --since 30d",
			more:    more + "\nCSV columns: serial,ca,ca_id,profile,subject,sans,revoked_at,reason,revoked_by,invalidity_date.",
			run:     func(ctx context.Context, r *runner, args []string) error { return runReport(ctx, r, args, "revoked") },
		},
		{
			name: "compliance", summary: "grade every certificate, issued or imported, against policy, with the renewal KPIs",
			args:    "[--since T] [--format table|json|csv|html] [--out FILE]",
			example: "certwright report compliance --format html --out compliance.html",
			more: "Covers every valid certificate not yet renewed (issued here or imported), and those that expired since\n" +
				"--since (default 90 days ago). Each is compliant, warning or non_compliant, with the findings that say why:\n" +
				"key algorithm and size (the profile's rules; RSA >= 2048, ECDSA P-256/P-384 or Ed25519 when imported),\n" +
				"SHA-1/MD5 signatures, validity over 398 days for public certificates (chaining to a system root, or\n" +
				"tagged public), expiry (expired: non-compliant; under 7 days: warning), incomplete chains of imported\n" +
				"certificates, and zlint. KPIs: renewal success rate, automated renewals, auto-managed certificates,\n" +
				"expiry incidents and near misses (renewed with less than a day left) in the period; with scanning, the\n" +
				"encryption KPIs of the scanned endpoints too.\n" +
				"--format table (the default) prints the summary, KPIs, worst offenders and every certificate; json, csv\n" +
				"(one row per certificate, findings joined with \"; \", then the encryption KPIs as a block of their own\n" +
				"headed encryption_kpi,value,based_on) and html (one self-contained page) are the server's bytes. " + timeArgHelp,
			run: runComplianceReport,
		},
	}
}

// complianceFormats are what report compliance --format accepts.
func complianceFormats() []string { return []string{"table", "json", "csv", "html"} }

func runComplianceReport(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("report compliance")
	sinceArg := fs.String("since", "", "report on certificates that expired from `T` on, and renewals since then (default: 90 days ago)")
	format := fs.String("format", "table", "output `FORMAT`: table, json, csv or html")
	out := fs.String("out", "", "write the report to `FILE` (mode 0644) instead of standard output")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains(complianceFormats(), *format) {
		return r.usagef("--format %q: want table, json, csv or html", *format)
	}
	if cf.json {
		if isSet(fs, "format") && *format != "json" {
			return r.usagef("--json asks for --format json; --format %s contradicts it", *format)
		}
		*format = "json"
	}
	var since time.Time
	if *sinceArg != "" {
		t, err := parseTimeRef(*sinceArg, r.now())
		if err != nil {
			return r.usagef("--since: %v", err)
		}
		if !t.Before(r.now()) {
			return r.usagef("--since %s is not in the past", showTime(t))
		}
		since = t
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	wire := *format
	if wire == "table" {
		wire = "json"
	}
	data, err := c.ComplianceReport(ctx, since, wire)
	if err != nil {
		return err
	}
	if *format != "table" {
		return r.writeOutput(*out, indentedJSON(data, *format), 0o644)
	}
	var rep apitypes.ComplianceReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("report compliance: the server's answer is not the expected JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := printCompliance(&buf, &rep); err != nil {
		return err
	}
	return r.writeOutput(*out, buf.Bytes(), 0o644)
}

// rate prints a KPI share, or n/a when there was nothing to measure.
func rate(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

// printCompliance renders the compliance report as text: the counts, the
// KPIs, the worst offenders, then every certificate.
func printCompliance(w io.Writer, rep *apitypes.ComplianceReport) error {
	s := rep.Summary
	fmt.Fprintf(w, "Compliance from %s to %s: %d %s, %d compliant, %d warning, %d non-compliant\n",
		showTime(rep.Since), showTime(rep.Until), s.Total, plural(s.Total, "certificate"), s.Compliant, s.Warning, s.NonCompliant)
	for _, b := range s.BySource {
		fmt.Fprintf(w, "  %s: %d (%d compliant, %d warning, %d non-compliant)\n", b.Source, b.Total, b.Compliant, b.Warning, b.NonCompliant)
	}
	k := rep.KPIs
	fmt.Fprintln(w)
	t := newTable(w, "KPI", "VALUE", "BASED ON")
	t.row("renewal success rate", rate(k.RenewalSuccessRate), fmt.Sprintf("%d of %d attempts", k.RenewalsSucceeded, k.RenewalAttempts))
	t.row("automated renewals", rate(k.AutomationRate), fmt.Sprintf("%d of %d renewals", k.AutomatedRenewals, k.RenewalsSucceeded))
	t.row("auto-managed certificates", rate(k.AutoManagedShare), fmt.Sprintf("%d of %d current certificates", k.AutoManaged, k.CurrentCertificates))
	t.row("expiry incidents", strconv.Itoa(k.ExpiryIncidents), "expired while valid, never renewed")
	t.row("near misses", strconv.Itoa(k.NearMisses), "renewed with less than a day left")
	if err := t.flush(); err != nil {
		return err
	}
	if e := rep.Encryption; e != nil {
		if err := printEncryptionKPIs(w, e); err != nil {
			return err
		}
	}
	rows := func(title string, list []apitypes.ComplianceRow) error {
		if len(list) == 0 {
			return nil
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		t := newTable(w, "STATUS", "SERIAL", "NAME", "SOURCE", "KEY", "SIGNATURE", "NOT AFTER", "FINDINGS")
		for _, c := range list {
			name := c.Subject
			if name == "" && len(c.Names) > 0 {
				name = c.Names[0]
			}
			t.row(c.Status, c.Serial, name, c.Source, c.KeyAlgorithm+" "+strconv.Itoa(c.KeyBits), c.SignatureAlgorithm,
				tableTime(c.NotAfter), findingsText(c.Findings))
		}
		return t.flush()
	}
	if err := rows("Worst offenders", rep.WorstOffenders); err != nil {
		return err
	}
	return rows("Certificates", rep.Certificates)
}

// findingsText joins a row's findings for the table.
func findingsText(fs []apitypes.ComplianceFinding) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Severity + " " + f.Rule + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

func runReport(ctx context.Context, r *runner, args []string, kind string) error {
	fs, cf := newClientFlagSet("report " + kind)
	var rf rangeFlags
	rf.register(fs, "30 days ago")
	format := fs.String("format", "table", "output `FORMAT`: table, json or csv")
	out := fs.String("out", "", "write the report to `FILE` (mode 0644) instead of standard output")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains(reportFormats(), *format) {
		return r.usagef("--format %q: want table, json or csv", *format)
	}
	if cf.json {
		if isSet(fs, "format") && *format != "json" {
			return r.usagef("--json asks for --format json; --format %s contradicts it", *format)
		}
		*format = "json"
	}
	since, until, err := r.resolveRange(&rf)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	wire := *format
	if wire == "table" {
		wire = "json"
	}
	data, err := c.Report(ctx, kind, since, until, wire)
	if err != nil {
		return err
	}
	if *format != "table" {
		return r.writeOutput(*out, indentedJSON(data, *format), 0o644)
	}
	var rep apitypes.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("report %s: the server's answer is not the expected JSON: %w", kind, err)
	}
	var buf bytes.Buffer
	if err := printReport(&buf, rep, kind); err != nil {
		return err
	}
	return r.writeOutput(*out, buf.Bytes(), 0o644)
}

// printReport renders a report as the per-CA counts, then the certificates.
func printReport(w io.Writer, rep apitypes.Report, kind string) error {
	fmt.Fprintf(w, "Certificates %s from %s to %s: %d\n", kind, showTime(rep.Since), showTime(rep.Until), rep.Total)
	if len(rep.PerCA) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "CA", "CA ID", "COUNT")
		for _, ca := range rep.PerCA {
			t.row(ca.CA, ca.CAID, strconv.Itoa(ca.Count))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(rep.Certificates) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	if kind == "revoked" {
		t := newTable(w, "SERIAL", "CA", "PROFILE", "SUBJECT", "REVOKED", "REASON", "REVOKED BY")
		for _, e := range rep.Certificates {
			t.row(e.Serial, e.CA, e.Profile, reportName(e), tableTimePtr(e.RevokedAt), e.Reason, e.RevokedBy)
		}
		return t.flush()
	}
	t := newTable(w, "SERIAL", "CA", "PROFILE", "SUBJECT", "ISSUED", "NOT AFTER", "REQUESTER")
	for _, e := range rep.Certificates {
		t.row(e.Serial, e.CA, e.Profile, reportName(e), tableTimePtr(e.IssuedAt), tableTimePtr(e.NotAfter), e.Requester)
	}
	return t.flush()
}

// reportName is the subject, or the first SAN when the subject is empty.
func reportName(e apitypes.ReportEntry) string {
	if e.Subject != "" {
		return e.Subject
	}
	if len(e.SANs) > 0 {
		return e.SANs[0]
	}
	return ""
}
