package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/web/apitypes"
	webreport "github.com/certwright/certwright/internal/web/report"
)

// scanCommands are the server's scans: the endpoints found, one
// endpoint's history, and a scan run now.
func scanCommands() []*command {
	return []*command{
		{
			name: "endpoints", summary: "list the TLS endpoints the server's scans found, with their encryption, grade and served certificate",
			args: "[--encryption E] [--status S] [--gone] [--json]", example: "certwright scan endpoints --status revoked",
			more: "STATUS is what the inventory says of the served certificate: managed (issued, imported or obtained over ACME\n" +
				"here), stale (renewed, but the old one is still served), revoked or expired (still served), unmanaged (found only\n" +
				"by scanning: added to the inventory with source discovered).",
			run: runScanEndpoints,
		},
		{
			name: "show", summary: "show one scanned endpoint: what it served, its grade, its history of changes",
			args: "HOST:PORT [--json]", example: "certwright scan show 10.0.0.5:443",
			run: runScanShow,
		},
		{
			name: "run", summary: "have the server scan now: the given targets, or its configured ones (scan.targets)",
			args: "[TARGET...] [--json]", example: "certwright scan run 10.0.0.0/28:443,8443 db.internal:5432",
			more: "A target is host:port, a hostname (port 443), host:443,8443, or a CIDR range with ports (10.0.0.0/24:443,\n" +
				"[2001:db8::/120]:443). Every target must be within the server's scan.allow; the server refuses the rest.\n" +
				"The scan runs within the request (about a minute): at most 1024 host:port pairs, and what is not finished\n" +
				"in time is counted, not recorded; wider ranges belong in scan.targets. Running a scan needs ca:manage with no\n" +
				"scope, and is audited.",
			run: runScanRun,
		},
	}
}

func runScanEndpoints(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scan endpoints")
	enc := fs.String("encryption", "", "only endpoints with `ENCRYPTION`: implicit-tls, starttls, optional, none or unknown")
	status := fs.String("status", "", "only endpoints whose certificate is `STATUS`: managed, stale, revoked, expired or unmanaged")
	gone := fs.Bool("gone", false, "include the endpoints that disappeared")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	q := url.Values{}
	if *enc != "" {
		q.Set("encryption", *enc)
	}
	if *status != "" {
		q.Set("status", *status)
	}
	if *gone {
		q.Set("gone", "true")
	}
	var all apitypes.EndpointList
	for {
		var page apitypes.EndpointList
		if err := c.getJSON(ctx, "/api/v1/scan/endpoints", q, &page); err != nil {
			return err
		}
		all.Endpoints = append(all.Endpoints, page.Endpoints...)
		if page.Next == "" {
			break
		}
		q.Set("after", page.Next)
	}
	if cf.json {
		return printJSON(r.stdout, all)
	}
	if len(all.Endpoints) == 0 {
		fmt.Fprintln(r.stderr, "No endpoints: the server has scanned none, or none matches (see scan.targets, or run certwright scan run TARGET).")
		return nil
	}
	t := newTable(r.stdout, "ENDPOINT", "ENCRYPTION", "TLS", "GRADE", "CERTIFICATE", "STATUS", "LAST SEEN")
	for _, ep := range all.Endpoints {
		t.row(endpointRow(ep)...)
	}
	return t.flush()
}

func endpointRow(ep apitypes.Endpoint) []string {
	grade, cert, status := "-", "-", "-"
	if ep.Grade != nil {
		grade = ep.Grade.Letter
	}
	if m := ep.Match; m != nil {
		status = m.Status
		cert = m.Serial
		if len(cert) > 16 {
			cert = cert[:16] + "…"
		}
	}
	if ep.Gone {
		status += " (gone)"
	}
	return []string{ep.Address, ep.Encryption, firstNonEmpty(ep.Negotiated, "-"), grade, cert, status, tableTime(ep.LastSeen)}
}

func runScanShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scan show")
	c, pos, err := r.open(fs, cf, args, "HOST:PORT")
	if err != nil {
		return err
	}
	defer c.close()
	var d apitypes.EndpointDetail
	if err := c.getJSON(ctx, "/api/v1/scan/endpoint", url.Values{"address": {pos[0]}}, &d); err != nil {
		return c.explainNotFound(ctx, err, nameRef{"endpoint", pos[0]})
	}
	if cf.json {
		return printJSON(r.stdout, d)
	}
	ep := d.Endpoint
	fl := newFields(r.stdout)
	fl.add("Endpoint", ep.Address)
	if ep.IP != ep.Address {
		fl.add("Address", ep.IP)
	}
	fl.add("Encryption", ep.Encryption)
	if ep.Negotiated != "" {
		fl.add("Negotiated", ep.Negotiated+" "+ep.Suite)
	}
	if len(ep.Versions) > 0 {
		v := strings.Join(ep.Versions, ", ")
		if !ep.VersionsComplete {
			v += " (only what one handshake shows)"
		}
		fl.add("Versions", v)
	}
	if g := ep.Grade; g != nil {
		fl.add("Grade", fmt.Sprintf("%s (%d, rules %s)", g.Letter, g.Score, g.RulesVersion))
		for _, rs := range g.Reasons {
			fl.add("  reason", rs.Message)
		}
	}
	for _, f := range ep.Findings {
		fl.add("Finding", fmt.Sprintf("%s: %s", f.Severity, f.Message))
	}
	if m := ep.Match; m != nil {
		fl.add("Certificate", fmt.Sprintf("%s (%s, %s)", m.Serial, m.Subject, m.Source))
		fl.add("Status", m.Status)
		if m.Successor != "" {
			fl.add("Renewed by", m.Successor)
		}
		fl.add("Not after", showTime(m.NotAfter))
	}
	fl.add("First seen", showTime(ep.FirstSeen))
	fl.add("Last seen", showTime(ep.LastSeen))
	if ep.Gone || ep.Misses > 0 {
		fl.add("Missed", fmt.Sprintf("%d scans in a row (%s)", ep.Misses, ep.LastError))
	}
	if ep.ExposedSince != nil {
		fl.add("Exposed since", showTime(*ep.ExposedSince))
	}
	if ep.Error != "" {
		fl.add("Error", ep.Error)
	}
	for _, s := range d.ServedAt {
		if s.Endpoint != ep.Address {
			fl.add("Also served at", fmt.Sprintf("%s (last seen %s)", s.Endpoint, showTime(s.LastSeen)))
		}
	}
	if err := fl.flush(); err != nil {
		return err
	}
	if err := printProtocols(r.stdout, ep); err != nil {
		return err
	}
	if len(d.Events) > 0 {
		fmt.Fprintln(r.stdout, "\nHistory (newest first):")
		t := newTable(r.stdout, "AT", "CHANGE", "FROM", "TO")
		for _, ev := range d.Events {
			t.row(tableTime(ev.At), ev.Kind, firstNonEmpty(ev.From, "-"), firstNonEmpty(ev.To, "-"))
		}
		return t.flush()
	}
	return nil
}

// printProtocols prints, per TLS version, the line that sums it up and
// every suite accepted, in the server's order when it has one.
func printProtocols(w io.Writer, ep apitypes.Endpoint) error {
	for _, p := range ep.Protocols {
		fmt.Fprintf(w, "\n%s: %s\n", p.Version, p.Summary)
		t := newTable(w, "SUITE", "KEY EXCHANGE", "CIPHER", "BITS", "WEAK")
		for _, s := range p.Suites {
			kex := discovery.SuiteDetail{KeyExchange: s.KeyExchange, Group: s.Group, DHBits: s.DHBits}.KeyExchangeText()
			t.row(s.Name, kex, s.Cipher, strconv.Itoa(s.Bits), map[bool]string{true: "weak"}[s.Weak])
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(ep.Protocols) > 0 && !ep.SuitesComplete {
		fmt.Fprintln(w, "(the enumeration stopped early: only the suites seen)")
	}
	return nil
}

// maxScanArgs bounds the targets of one scan run, as the API does.
const maxScanArgs = 256

func runScanRun(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scan run")
	c, pos, err := r.open(fs, cf, args, slices.Repeat([]string{"[TARGET]"}, maxScanArgs)...)
	if err != nil {
		return err
	}
	defer c.close()
	var res apitypes.ScanResult
	if err := c.postJSON(ctx, "/api/v1/scan/run", apitypes.ScanRequest{Targets: pos}, &res); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	if res.Skipped != "" {
		fmt.Fprintln(r.stdout, res.Skipped)
		return nil
	}
	fmt.Fprintf(r.stdout, "%d targets scanned, %d reachable, %d changes, %d certificates discovered, %d alerts raised\n",
		res.Targets, res.Reachable, res.Changes, res.Discovered, res.Alerts)
	if res.Unfinished > 0 {
		fmt.Fprintf(r.stdout, "%d %s not finished within the request's time and not recorded: scan fewer at once, or add them to scan.targets.\n",
			res.Unfinished, plural(res.Unfinished, "target"))
	}
	fmt.Fprintln(r.stdout, "See them with: certwright scan endpoints")
	return nil
}

// printEncryptionKPIs renders the scanned endpoints' encryption KPIs,
// the rows the HTML and CSV reports show.
func printEncryptionKPIs(w io.Writer, k *apitypes.ScanKPIs) error {
	fmt.Fprintln(w, "\nEncryption KPIs of the scanned endpoints (certwright scan endpoints):")
	if k.Endpoints == 0 {
		fmt.Fprintln(w, "  none scanned yet: configure scan.targets, or run certwright scan run TARGET")
		return nil
	}
	t := newTable(w, "KPI", "VALUE", "BASED ON")
	for _, r := range webreport.EncryptionRows(k) {
		t.row(r.Name, r.Value, r.Basis)
	}
	return t.flush()
}
