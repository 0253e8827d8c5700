package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"

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
	}
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
		return r.writeOutput(*out, data, 0o644)
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
