package notify_test

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify"
)

// Alert fields can carry names from imported certificates, which nobody
// vetted: whatever they hold, a chat line stays one escaped line and an
// email keeps exactly its own headers.

func FuzzText(f *testing.F) {
	f.Add("Certificate app.internal expires in 2 days", "app.internal", "team-a")
	f.Add("<!channel> & <@U1>", "a\r\nb", "\x00\x1b[31m")
	f.Add(strings.Repeat("é", 500), "\u2028", "*bold* _it_")
	f.Fuzz(func(t *testing.T, summary, name, owner string) {
		c := certRef()
		c.SANs = []string{name}
		c.Owner = owner
		got := notify.Text(lifecycle.Alert{Kind: lifecycle.AlertExpiring, Severity: lifecycle.SeverityWarning, Summary: summary, Cert: c})
		if strings.ContainsAny(got, "<>\r\n\x00") {
			t.Errorf("Text has a raw <, >, line break or NUL: %q", got)
		}
	})
}

func FuzzEmailMessage(f *testing.F) {
	f.Add("Certificate app.internal expires in 2 days", "detail", "al-1", "app.internal")
	f.Add("x\r\nBcc: thief@evil.example", "\r\n.\r\nRSET", "id\nX-Evil: 1", "a\r\n\r\nbody")
	f.Add(strings.Repeat("Zertifikat läuft ab ", 60), strings.Repeat("ß", 3000), "", "")
	f.Fuzz(func(t *testing.T, summary, detail, id, name string) {
		e := newEmail(t, notify.EmailConfig{Addr: "127.0.0.1:25", TLS: "none"})
		a := expiringAlert()
		a.Summary, a.Detail, a.ID = summary, detail, id
		a.Cert.SANs = []string{name}
		msg, err := e.Message(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(msg), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("line of %d bytes", len(line))
			}
		}
		if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\r")) {
			t.Fatal("bare CR or LF in the message")
		}
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("message does not parse: %v", err)
		}
		if len(m.Header) != 10 {
			t.Errorf("message has %d headers, want the 10 it sets: %v", len(m.Header), m.Header)
		}
	})
}
