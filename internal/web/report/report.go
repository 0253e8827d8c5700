// Package report owns how the compliance report looks outside JSON: CSV
// with one row per certificate (then the encryption KPIs, when there are
// any), and a self-contained HTML page (inline CSS allowed by its hash, no
// script, no external resource) that works under a strict
// Content-Security-Policy, served or opened as a file.
package report

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// Content types of the renderings.
const (
	ContentTypeCSV  = "text/csv; charset=utf-8"
	ContentTypeHTML = "text/html; charset=utf-8"
)

// csvHeader names the CSV columns.
var csvHeader = []string{
	"status", "serial", "sha256_fingerprint", "subject", "names", "source", "ca", "issuer", "issuer_serial",
	"profile", "owner", "tags", "key_algorithm", "key_bits", "signature_algorithm", "not_before", "not_after",
	"validity_days", "days_left", "public", "chain", "revocation", "auto_managed", "findings",
}

// csvSafe defuses a cell a spreadsheet would run as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// FindingText is one finding as the CSV and the table print it.
func FindingText(f apitypes.ComplianceFinding) string {
	return f.Severity + " " + f.Rule + ": " + f.Message
}

func joinFindings(fs []apitypes.ComplianceFinding) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = FindingText(f)
	}
	return strings.Join(parts, "; ")
}

// encryptionHeader heads the CSV's block of encryption KPIs: its first
// cell, in the status column, marks where the certificates end.
var encryptionHeader = []string{"encryption_kpi", "value", "based_on"}

// WriteCSV writes one row per certificate, findings joined with "; ".
// When the report has encryption KPIs of at least one scanned endpoint
// they follow, after an empty line, as a block of their own: a header row
// whose first cell is "encryption_kpi", then one row per KPI (name,
// value, what it is based on). Every row has the certificates' column
// count, so a reader that insists on it reads the whole file. A server
// that scanned nothing writes the certificates alone, as before scans.
func WriteCSV(w io.Writer, rep *apitypes.ComplianceReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("report: csv: %w", err)
	}
	for _, r := range rep.Certificates {
		rec := []string{
			r.Status, r.Serial, r.Fingerprint, csvSafe(r.Subject), csvSafe(strings.Join(r.Names, ";")), r.Source,
			csvSafe(r.CA), csvSafe(r.Issuer), r.IssuerSerial, csvSafe(r.Profile), csvSafe(r.Owner), csvSafe(strings.Join(r.Tags, ";")),
			r.KeyAlgorithm, strconv.Itoa(r.KeyBits), r.SignatureAlgorithm,
			r.NotBefore.UTC().Format(time.RFC3339), r.NotAfter.UTC().Format(time.RFC3339),
			strconv.Itoa(r.ValidityDays), strconv.Itoa(r.DaysLeft), strconv.FormatBool(r.Public), r.Chain, r.Revocation,
			strconv.FormatBool(r.AutoManaged), csvSafe(joinFindings(r.Findings)),
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("report: csv: %w", err)
		}
	}
	if k := rep.Encryption; k != nil && k.Endpoints+k.Gone > 0 {
		block := [][]string{{}, encryptionHeader}
		for _, r := range EncryptionRows(k) {
			block = append(block, []string{r.Name, r.Value, r.Basis})
		}
		for i, rec := range block {
			if i > 0 {
				rec = append(rec, make([]string, len(csvHeader)-len(rec))...)
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("report: csv: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: csv: %w", err)
	}
	return nil
}

// css is the page's only style sheet. Its hash is in the page's policy, so
// it must be the exact text of the <style> element.
const css = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2330;background:#fff}
h1{font-size:1.6rem;margin:0 0 .3rem}
h2{font-size:1.2rem;margin:2rem 0 .6rem;border-bottom:1px solid #d8dce4;padding-bottom:.3rem}
.meta{color:#5a6272;margin:0 0 1.5rem}
.boxes{display:flex;flex-wrap:wrap;gap:1rem}
.box{border:1px solid #d8dce4;border-radius:6px;padding:.8rem 1.2rem;min-width:9rem}
.box .n{font-size:1.8rem;font-weight:600;display:block}
.box.st-compliant{border-left:6px solid #1f8a4c}
.box.st-warning{border-left:6px solid #c98a00}
.box.st-non_compliant{border-left:6px solid #c62828}
table{border-collapse:collapse;width:100%;font-size:.86rem}
th,td{border:1px solid #d8dce4;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f3f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem;word-break:break-all}
.badge{display:inline-block;border-radius:4px;padding:.1rem .4rem;font-weight:600;white-space:nowrap}
.badge.st-compliant{background:#e3f4ea;color:#14643a}
.badge.st-warning{background:#fdf1d6;color:#7a5300}
.badge.st-non_compliant{background:#fbe2e2;color:#9b1c1c}
tr.st-non_compliant td{background:#fff6f6}
tr.st-warning td{background:#fffbef}
ul.findings{margin:0;padding-left:1.1rem}
li.sev-error{color:#9b1c1c}
li.sev-warning{color:#7a5300}
.none{color:#5a6272;font-style:italic}
`

// StyleHash is the CSP source that allows exactly the page's style sheet.
func StyleHash() string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// ContentSecurityPolicy is the policy the HTML page needs, and all it
// needs: its own style sheet, nothing else — no script, image, font or
// connection.
func ContentSecurityPolicy() string {
	return "default-src 'none'; style-src " + StyleHash() + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// metaPolicy is ContentSecurityPolicy without frame-ancestors, which a
// <meta> policy may not carry: it keeps the page strict when opened as a file.
func metaPolicy() string {
	return "default-src 'none'; style-src " + StyleHash() + "; base-uri 'none'; form-action 'none'"
}

var statusLabels = map[string]string{
	"compliant":     "Compliant",
	"warning":       "Warning",
	"non_compliant": "Non-compliant",
}

func statusLabel(s string) string {
	if l, ok := statusLabels[s]; ok {
		return l
	}
	return s
}

func pct(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{.Policy}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Certwright compliance report {{day .R.GeneratedAt}}</title>
<style>` + css + `</style>
</head>
<body>
<h1>Certificate compliance report</h1>
<p class="meta">Generated {{stamp .R.GeneratedAt}} by Certwright &middot; period {{stamp .R.Since}} to {{stamp .R.Until}}</p>

<h2>Summary</h2>
<div class="boxes" id="summary">
<div class="box"><span class="n">{{.R.Summary.Total}}</span>certificates</div>
<div class="box st-compliant"><span class="n">{{.R.Summary.Compliant}}</span>compliant</div>
<div class="box st-warning"><span class="n">{{.R.Summary.Warning}}</span>warning</div>
<div class="box st-non_compliant"><span class="n">{{.R.Summary.NonCompliant}}</span>non-compliant</div>
</div>
{{if .R.Summary.BySource}}
<table id="by-source">
<tr><th>Source</th><th>Total</th><th>Compliant</th><th>Warning</th><th>Non-compliant</th></tr>
{{range .R.Summary.BySource}}<tr><td>{{.Source}}</td><td class="num">{{.Total}}</td><td class="num">{{.Compliant}}</td><td class="num">{{.Warning}}</td><td class="num">{{.NonCompliant}}</td></tr>
{{end}}</table>
{{end}}

<h2>Renewal KPIs</h2>
<table id="kpis">
<tr><th>Indicator</th><th>Value</th><th>Based on</th></tr>
{{range .KPIs}}<tr><td>{{.Name}}</td><td class="num">{{.Value}}</td><td>{{.Basis}}</td></tr>
{{end}}</table>

{{with .R.Encryption}}
<h2>Encryption KPIs</h2>
{{if .Endpoints}}<table id="encryption-kpis">
<tr><th>Indicator</th><th>Value</th><th>Based on</th></tr>
{{range $.Encryption}}<tr><td>{{.Name}}</td><td class="num">{{.Value}}</td><td>{{.Basis}}</td></tr>
{{end}}</table>{{else}}<p class="none">No endpoint scanned yet: set scan.targets in the server's configuration, or run certwright scan run TARGET.</p>{{end}}
{{end}}

<h2>Worst offenders</h2>
{{if .R.WorstOffenders}}{{template "rows" .R.WorstOffenders}}{{else}}<p class="none">Every certificate is compliant.</p>{{end}}

<h2>All certificates</h2>
{{if .R.Certificates}}{{template "rows" .R.Certificates}}{{else}}<p class="none">No certificate to report on.</p>{{end}}
</body>
</html>
{{define "rows"}}<table class="certs">
<tr><th>Status</th><th>Certificate</th><th>Source / CA</th><th>Key</th><th>Signature</th><th>Validity</th><th>Expiry</th><th>Chain</th><th>Revocation</th><th>Findings</th></tr>
{{range .}}<tr class="st-{{.Status}}">
<td><span class="badge st-{{.Status}}">{{status .Status}}</span></td>
<td>{{if .Subject}}{{.Subject}}{{else}}<span class="none">no subject</span>{{end}}{{if .Names}}<br>{{join .Names ", "}}{{end}}<br><span class="mono">{{.Serial}}</span>{{if .Owner}}<br>owner: {{.Owner}}{{end}}</td>
<td>{{.Source}}{{if .CA}}<br>CA {{.CA}}{{end}}{{if .Issuer}}<br>issuer {{.Issuer}}{{end}}{{if .Profile}}<br>profile {{.Profile}}{{end}}</td>
<td>{{.KeyAlgorithm}} {{.KeyBits}}</td>
<td>{{.SignatureAlgorithm}}</td>
<td class="num">{{.ValidityDays}} days{{if .Public}}<br>public{{end}}</td>
<td>{{day .NotAfter}}<br>{{if .Expired}}expired {{neg .DaysLeft}} days ago{{else}}{{.DaysLeft}} days left{{end}}</td>
<td>{{.Chain}}</td>
<td>{{.Revocation}}</td>
<td>{{if .Findings}}<ul class="findings">{{range .Findings}}<li class="sev-{{.Severity}}"><strong>{{.Rule}}</strong>: {{.Message}}</li>{{end}}</ul>{{else}}<span class="none">none</span>{{end}}</td>
</tr>
{{end}}</table>{{end}}
`

// Renderer renders the HTML page; build it once with NewRenderer.
type Renderer struct {
	tmpl *template.Template
}

// NewRenderer parses the page template.
func NewRenderer() (*Renderer, error) {
	t, err := template.New("compliance").Funcs(template.FuncMap{
		"day": day, "stamp": stamp, "pct": pct, "status": statusLabel, "join": strings.Join,
		"neg": func(n int) int { return -n },
	}).Parse(page)
	if err != nil {
		return nil, fmt.Errorf("report: parse HTML template: %w", err)
	}
	return &Renderer{tmpl: t}, nil
}

// WriteHTML writes the report as one self-contained HTML page.
func (r *Renderer) WriteHTML(w io.Writer, rep *apitypes.ComplianceReport) error {
	data := struct {
		Policy     string
		R          *apitypes.ComplianceReport
		KPIs       []KPIRow
		Encryption []KPIRow
	}{Policy: metaPolicy(), R: rep, KPIs: KPIRows(rep.KPIs)}
	if rep.Encryption != nil {
		data.Encryption = EncryptionRows(rep.Encryption)
	}
	if err := r.tmpl.Execute(w, data); err != nil {
		return fmt.Errorf("report: render HTML: %w", err)
	}
	return nil
}
