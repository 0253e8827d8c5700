package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/pki"
)

// encryptionWords say in plain words what each encryption means.
var encryptionWords = map[discovery.Encryption]string{
	discovery.EncImplicitTLS: "encrypted (TLS from the first byte)",
	discovery.EncSTARTTLS:    "encrypted (STARTTLS)",
	discovery.EncOptional:    "NOT always encrypted: TLS is offered, but plaintext is accepted too",
	discovery.EncNone:        "NOT encrypted: plaintext only",
	discovery.EncUnknown:     "unknown: what it speaks was not established",
}

// severityMarks prefix findings by severity.
var severityMarks = map[discovery.Severity]string{
	discovery.SeverityCritical: "critical",
	discovery.SeverityWarning:  "warning",
	discovery.SeverityInfo:     "info",
}

// WriteTable prints the observations for a terminal, one block per
// endpoint: what it speaks, whether it is encrypted, the grade and every
// reason that shaped it, the TLS versions, a line per version on the
// suites accepted (and the weak ones by name), the certificate, the
// findings and the error, in plain words.
func WriteTable(w io.Writer, obs []discovery.Observation) error {
	var b strings.Builder
	for i := range obs {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeBlock(&b, &obs[i])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeBlock(b *strings.Builder, o *discovery.Observation) {
	// Every line goes through pki.Printable: certificates' names and
	// findings quote what the peer chose.
	field := func(name, format string, a ...any) {
		fmt.Fprintf(b, "  %-12s %s\n", name+":", pki.Printable(fmt.Sprintf(format, a...)))
	}
	more := func(s string) { fmt.Fprintf(b, "  %-12s %s\n", "", pki.Printable(s)) }
	name := o.Address
	if o.Host != "" {
		name = fmt.Sprintf("%s (%s)", o.Key(), o.Address)
	}
	b.WriteString(pki.Printable(name) + "\n")
	if !o.Reachable {
		field("reachable", "no")
		if o.Error != "" {
			field("error", "%s", o.Error)
		}
		return
	}
	speaks := o.Protocol
	if speaks == "" {
		speaks = "unknown"
	}
	field("speaks", "%s", speaks)
	enc := encryptionWords[o.Encryption]
	if enc == "" {
		enc = string(o.Encryption)
	}
	field("encryption", "%s", enc)
	if g := o.Grade; g != nil {
		field("grade", "%s (score %d, rules %s)", g.Letter, g.Score, g.RulesVersion)
		for _, r := range g.Reasons {
			more("- " + r.Message)
		}
	}
	if len(o.Versions) > 0 {
		tried := "all versions tried"
		if !o.VersionsComplete {
			tried = "not all versions tried"
		}
		field("TLS", "%s (%s)", strings.Join(o.Versions, ", "), tried)
	}
	if o.Negotiated != "" {
		field("negotiated", "%s %s", o.Negotiated, o.Suite)
	}
	if fs := fsWords(o.ForwardSecrecy); fs != "" {
		field("fwd secrecy", "%s", fs)
	}
	for i, p := range o.Protocols {
		line := p.Version + ": " + p.Summary()
		if i == 0 {
			field("suites", "%s", line)
		} else {
			more(line)
		}
		if weak := p.WeakSuites(); len(weak) > 0 {
			more("  weak: " + strings.Join(weak, ", "))
		}
	}
	switch {
	case len(o.Protocols) > 0 && !o.SuitesComplete:
		more("(the enumeration stopped early: only the suites seen)")
	case len(o.Protocols) == 0 && o.WeakSuites:
		field("suites", "weak cipher suites accepted (RC4, 3DES, export, NULL, anonymous or CBC in TLS 1.0)")
	}
	if leaf := o.Leaf(); leaf != nil {
		field("certificate", "%s, issued by %s, valid until %s", leaf.Subject, leaf.Issuer, leaf.NotAfter.UTC().Format("2006-01-02"))
	}
	if h := o.HSTS; h != nil {
		field("HSTS", "max-age %d s%s", h.MaxAge, map[bool]string{true: ", includeSubDomains"}[h.IncludeSubDomains])
	}
	for i, f := range o.Findings {
		label := ""
		if i == 0 {
			label = "findings:"
		}
		fmt.Fprintf(b, "  %-12s [%s] %s\n", label, severityMarks[f.Severity], pki.Printable(f.Message))
	}
	if o.Error != "" {
		field("error", "%s", o.Error)
	}
}

func fsWords(fs discovery.ForwardSecrecy) string {
	switch fs {
	case discovery.FSAll:
		return "every cipher suite accepted has it"
	case discovery.FSSome:
		return "only some cipher suites accepted have it"
	case discovery.FSNone:
		return "NONE: no cipher suite accepted has it"
	}
	return ""
}

// Report is the JSON form of a scan's observations.
type Report struct {
	Endpoints []discovery.Observation `json:"endpoints"`
}

// WriteJSON prints the observations as an indented Report.
func WriteJSON(w io.Writer, obs []discovery.Observation) error {
	if obs == nil {
		obs = []discovery.Observation{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Report{Endpoints: obs})
}
