package inspect

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Text renders the report for a terminal: one "Field: value" line per
// fact, a blank line between the certificates of a chain.
func (r *Report) Text() string {
	var b strings.Builder
	switch r.Kind {
	case KindCertificate:
		b.WriteString("Certificate\n")
		writeCert(&b, *r.Certificate)
	case KindChain:
		fmt.Fprintf(&b, "Chain of %d certificates, leaf first.\n", len(r.Certificates))
		for i, c := range r.Certificates {
			fmt.Fprintf(&b, "\nCertificate %d of %d\n", i+1, len(r.Certificates))
			writeCert(&b, c)
			switch {
			case c.SignedByNext == nil:
			case *c.SignedByNext:
				fmt.Fprintf(&b, "  Signed by next:      yes, by certificate %d\n", i+2)
			default:
				fmt.Fprintf(&b, "  Signed by next:      NO: %s\n", c.SignatureProblem)
			}
		}
	case KindCSR:
		writeCSR(&b, *r.CSR)
	case KindCRL:
		writeCRL(&b, *r.CRL)
	}
	if len(r.Ignored) > 0 {
		fmt.Fprintf(&b, "\nIgnored PEM blocks: %s\n", strings.Join(r.Ignored, ", "))
	}
	return b.String()
}

type lines struct{ tw *tabwriter.Writer }

func newLines(b *strings.Builder) lines {
	return lines{tabwriter.NewWriter(b, 0, 0, 1, ' ', 0)}
}

// add prints key: value, skipping empty values.
func (l lines) add(key, value string) {
	if value != "" {
		fmt.Fprintf(l.tw, "  %s:\t%s\n", key, value)
	}
}

func (l lines) list(key string, values []string) { l.add(key, strings.Join(values, ", ")) }

func (l lines) flush() { l.tw.Flush() }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func writeCert(b *strings.Builder, c Certificate) {
	l := newLines(b)
	l.add("Subject", orNone(c.Subject))
	l.add("Issuer", orNone(c.Issuer))
	l.add("Serial", c.Serial)
	l.add("Not before", stamp(c.NotBefore))
	l.add("Not after", stamp(c.NotAfter)+" ("+validityWords(c)+")")
	l.list("SANs", c.SANs)
	l.add("Key", c.Key)
	l.add("Signature", c.SignatureAlgorithm)
	l.list("Key usage", c.KeyUsage)
	l.list("Extended key usage", c.ExtKeyUsage)
	if bc := c.BasicConstraints; bc != nil {
		s := "CA: false"
		if bc.CA {
			s = "CA: true"
			if bc.PathLen != nil {
				s += ", path length " + strconv.Itoa(*bc.PathLen)
			}
		}
		l.add("Basic constraints", s)
	}
	if nc := c.NameConstraints; nc != nil {
		crit := ""
		if nc.Critical {
			crit = " (critical)"
		}
		l.add("Name constraints", "yes"+crit)
		l.list("  permitted DNS", nc.PermittedDNS)
		l.list("  excluded DNS", nc.ExcludedDNS)
		l.list("  permitted IP", nc.PermittedIP)
		l.list("  excluded IP", nc.ExcludedIP)
		l.list("  permitted email", nc.PermittedEmail)
		l.list("  excluded email", nc.ExcludedEmail)
		l.list("  permitted URI", nc.PermittedURI)
		l.list("  excluded URI", nc.ExcludedURI)
	}
	l.list("CRL", c.CRLURLs)
	l.list("OCSP", c.OCSPURLs)
	l.list("CA issuers", c.IssuerURLs)
	l.add("Subject key ID", c.SubjectKeyID)
	l.add("Authority key ID", c.AuthorityKeyID)
	if c.SelfSigned {
		l.add("Self-signed", "yes")
	}
	l.add("SHA-256 fingerprint", c.SHA256)
	l.flush()
}

func validityWords(c Certificate) string {
	switch c.Validity {
	case "expired":
		return fmt.Sprintf("EXPIRED %s ago", days(-c.DaysLeft))
	case "not_yet_valid":
		return "NOT YET VALID"
	}
	return days(c.DaysLeft) + " left"
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

func writeCSR(b *strings.Builder, c CSR) {
	b.WriteString("Certificate signing request\n")
	l := newLines(b)
	l.add("Subject", orNone(c.Subject))
	l.list("SANs", c.SANs)
	l.add("Key", c.Key)
	l.add("Signature", c.SignatureAlgorithm)
	if c.SignatureValid {
		l.add("Signature valid", "yes (the requester holds the private key)")
	} else {
		l.add("Signature valid", "NO: "+c.SignatureProblem)
	}
	l.flush()
}

func writeCRL(b *strings.Builder, c CRL) {
	b.WriteString("Certificate revocation list\n")
	l := newLines(b)
	l.add("Issuer", orNone(c.Issuer))
	l.add("CRL number", c.Number)
	l.add("This update", stamp(c.ThisUpdate))
	if !c.NextUpdate.IsZero() {
		next := stamp(c.NextUpdate)
		if c.Stale {
			next += " (STALE: past its next update)"
		}
		l.add("Next update", next)
	}
	l.add("Signature", c.SignatureAlgorithm)
	l.add("Authority key ID", c.AuthorityKeyID)
	l.add("Revoked", strconv.Itoa(c.RevokedCount)+" certificate(s)")
	l.flush()
	if len(c.Revoked) == 0 {
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERIAL\tREVOKED AT\tREASON\tINVALID SINCE")
	for _, e := range c.Revoked {
		inv := "-"
		if e.InvalidityDate != nil {
			inv = stamp(*e.InvalidityDate)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Serial, stamp(e.RevokedAt), firstOr(e.Reason, "-"), inv)
	}
	tw.Flush()
	if n := c.RevokedCount - len(c.Revoked); n > 0 {
		fmt.Fprintf(b, "  ... and %d more (raise --max-entries to list them)\n", n)
	}
}

func firstOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
