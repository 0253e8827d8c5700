package notify

import (
	"strings"
	"unicode"

	"github.com/certwright/certwright/internal/lifecycle"
)

// severityEmoji is the Slack emoji that leads a chat message.
var severityEmoji = map[lifecycle.Severity]string{
	lifecycle.SeverityInfo:     ":information_source:",
	lifecycle.SeverityWarning:  ":warning:",
	lifecycle.SeverityCritical: ":rotating_light:",
}

// kindEmoji overrides the severity's emoji for kinds people recognise at a
// glance.
var kindEmoji = map[lifecycle.AlertKind]string{
	lifecycle.AlertTest: ":white_check_mark:",
}

const (
	// serialShown is how much of a serial a chat line shows; the full
	// serial is in the JSON alert and the email.
	serialShown = 12
	// detailShown caps the detail quoted in a chat line.
	detailShown = 300
	// summaryShown caps the summary in a chat line or email subject.
	summaryShown = 200
)

// Text renders the alert as one Slack-compatible text line (mrkdwn-safe:
// &, < and > are escaped, line breaks become spaces), e.g.
//
//	:warning: *Certificate app.internal expires in 2 days* (2026-11-24 10:00 UTC) — serial 3f2a…, CA issuing, profile internal_service, owner team-a
func Text(a lifecycle.Alert) string {
	var b strings.Builder
	emoji, ok := kindEmoji[a.Kind]
	if !ok {
		emoji, ok = severityEmoji[a.Severity]
	}
	if !ok {
		emoji = ":bell:"
	}
	b.WriteString(emoji)
	b.WriteString(" *")
	b.WriteString(mrkdwnEscape(truncate(oneLine(summary(a)), summaryShown)))
	b.WriteString("*")
	if c := a.Cert; c != nil {
		if !c.NotAfter.IsZero() {
			b.WriteString(" (" + c.NotAfter.UTC().Format("2006-01-02 15:04 UTC") + ")")
		}
		var parts []string
		add := func(label, v string) {
			if v = oneLine(v); v != "" {
				parts = append(parts, label+" "+mrkdwnEscape(v))
			}
		}
		add("serial", truncate(c.Serial, serialShown))
		add("CA", c.CA)
		add("profile", c.Profile)
		add("owner", c.Owner)
		if len(parts) > 0 {
			b.WriteString(" — " + strings.Join(parts, ", "))
		}
	} else if d := oneLine(a.Detail); d != "" {
		b.WriteString(" — " + mrkdwnEscape(truncate(d, detailShown)))
	}
	return b.String()
}

// summary is the alert's summary, or a stand-in naming its kind when the
// producer left it empty.
func summary(a lifecycle.Alert) string {
	if s := strings.TrimSpace(a.Summary); s != "" {
		return s
	}
	return "Certwright alert: " + string(a.Kind)
}

// mrkdwnEscape escapes the three characters Slack's mrkdwn gives meaning
// to (https://api.slack.com/reference/surfaces/formatting#escaping).
func mrkdwnEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// oneLine collapses every run of white space and control characters into
// one space, so that no producer can break a line or a header.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}
