package notify_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"mime"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/notify"
	"github.com/certwright/certwright/internal/notify/notifytest"
)

var mailNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func startSMTP(t *testing.T, opts notifytest.SMTPOptions) *notifytest.SMTPServer {
	t.Helper()
	s, err := notifytest.StartSMTP(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func trust(t *testing.T, pemBytes []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("server certificate does not parse")
	}
	return pool
}

func newEmail(t *testing.T, cfg notify.EmailConfig) *notify.Email {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "mail"
	}
	if cfg.From == "" {
		cfg.From = "Certwright <pki@example.com>"
	}
	if cfg.To == nil {
		cfg.To = []string{"team-a@example.com", "Ops On-Call <oncall@example.com>"}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewFake(mailNow)
	}
	e, err := notify.NewEmail(cfg)
	if err != nil {
		t.Fatalf("NewEmail: %v", err)
	}
	return e
}

// checkMessage asserts what the server received for expiringAlert().
func checkMessage(t *testing.T, m notifytest.Mail) {
	t.Helper()
	if m.From != "pki@example.com" {
		t.Errorf("envelope from = %q", m.From)
	}
	if strings.Join(m.To, ",") != "team-a@example.com,oncall@example.com" {
		t.Errorf("envelope to = %q", m.To)
	}
	if want := "[Certwright] Certificate app.internal expires in 2 days"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("received message does not parse: %v", err)
	}
	h := msg.Header
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "team-a@example.com" || to[1].Name != "Ops On-Call" || to[1].Address != "oncall@example.com" {
		t.Errorf("To header = %q (%v)", h.Get("To"), err)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "pki@example.com" || from.Name != "Certwright" {
		t.Errorf("From header = %q", h.Get("From"))
	}
	if d, err := h.Date(); err != nil || !d.Equal(mailNow) {
		t.Errorf("Date header = %q, want the clock's %v", h.Get("Date"), mailNow)
	}
	for k, want := range map[string]string{
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"X-Certwright-Alert-Id":     "al-42",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	for _, want := range []string{
		"Certificate app.internal expires in 2 days\n",
		"Nothing will renew it automatically.\n",
		"Serial:    3f2a9c0d11e2f3a4b5c6d7e8f9a0b1c2\n",
		"Names:     app.internal, www.app.internal\n",
		"Not after: 2026-11-24 10:00:00 UTC\n",
		"Days left: 2.0 (2 days left)\n",
		"CA:        issuing\n",
		"Profile:   internal_service\n",
		"Owner:     team-a\n",
		"Tags:      prod, payments\n",
		"Source:    issued\n",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
}

func TestEmailStartTLSWithAuth(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "starttls", Username: "alerts", Password: "pw-correct-horse"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr, TLS: "starttls", Username: "alerts", Password: "pw-correct-horse",
		RootCAs: trust(t, srv.CertPEM())})
	if err := e.Send(testCtx(t), expiringAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	if !msgs[0].TLS || msgs[0].User != "alerts" {
		t.Errorf("message arrived with TLS=%v user=%q, want TLS and user alerts", msgs[0].TLS, msgs[0].User)
	}
	checkMessage(t, msgs[0])
}

func TestEmailImplicitTLS(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "implicit", Username: "alerts", Password: "pw"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr, TLS: "implicit", Username: "alerts", Password: "pw",
		RootCAs: trust(t, srv.CertPEM()), ServerName: "localhost"})
	a := expiringAlert()
	a.Summary = "Zertifikat für müller.example läuft in 2 Tagen ab"
	if err := e.Send(testCtx(t), a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("server got %d messages (TLS %v), want 1 over TLS", len(msgs), len(msgs) == 1 && msgs[0].TLS)
	}
	if want := "[Certwright] " + a.Summary; msgs[0].Subject != want {
		t.Errorf("subject = %q, want %q", msgs[0].Subject, want)
	}
	if !bytes.Contains(msgs[0].Data, []byte("Subject: =?utf-8?q?")) {
		t.Errorf("non-ASCII subject is not RFC 2047 Q-encoded:\n%s", msgs[0].Data)
	}
	if !strings.HasPrefix(msgs[0].Body, a.Summary+"\n") {
		t.Errorf("body does not start with the UTF-8 summary:\n%s", msgs[0].Body)
	}
}

func TestEmailPlainLoopback(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "none", Username: "relay", Password: "pw"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr, TLS: "none", Username: "relay", Password: "pw"})
	if err := e.Send(testCtx(t), expiringAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	if msgs[0].TLS || msgs[0].User != "relay" {
		t.Errorf("TLS=%v user=%q, want a plain authenticated session", msgs[0].TLS, msgs[0].User)
	}
	checkMessage(t, msgs[0])
}

func TestEmailStartTLSRequired(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "none"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr}) // TLS defaults to starttls
	err := e.Send(testCtx(t), expiringAlert())
	if err == nil {
		t.Fatal("Send without STARTTLS succeeded")
	}
	if !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Errorf("error %q does not say STARTTLS is missing", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server got %d messages in clear text", n)
	}
}

func TestEmailUntrustedServerCertificate(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "starttls", Username: "u", Password: "pw-not-leaked"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr, Username: "u", Password: "pw-not-leaked", RootCAs: x509.NewCertPool()})
	err := e.Send(testCtx(t), expiringAlert())
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("err = %v, want x509.UnknownAuthorityError", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server got %d messages over an untrusted connection", n)
	}
}

func TestEmailWrongPasswordIsPermanent(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "starttls", Username: "alerts", Password: "right"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr, Username: "alerts", Password: "wrong-pw-123",
		RootCAs: trust(t, srv.CertPEM())})
	err := e.Send(testCtx(t), expiringAlert())
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if !notify.IsPermanent(err) {
		t.Errorf("wrong password: want a permanent error, got %v", err)
	}
	var ne *notify.Error
	if !errors.As(err, &ne) || ne.Code != 535 {
		t.Errorf("error %v does not carry the 535 reply", err)
	}
	if strings.Contains(err.Error(), "wrong-pw-123") {
		t.Errorf("error reveals the password: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server accepted %d messages", n)
	}
}

func TestEmailSummaryCannotInjectHeaders(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, notifytest.SMTPOptions{TLS: "none"})
	e := newEmail(t, notify.EmailConfig{Addr: srv.Addr, TLS: "none", To: []string{"team-a@example.com"}})
	a := expiringAlert()
	a.ID = "al-1\r\nBcc: thief@evil.example"
	a.Summary = "expires\r\nBcc: thief@evil.example\r\n\r\nfake body"
	if err := e.Send(testCtx(t), a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Messages()[0]
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	if bcc := msg.Header.Get("Bcc"); bcc != "" {
		t.Errorf("alert text injected a Bcc header: %q", bcc)
	}
	if strings.Join(m.To, ",") != "team-a@example.com" {
		t.Errorf("envelope recipients = %q", m.To)
	}
	if want := "[Certwright] expires Bcc: thief@evil.example fake body"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
}

func TestEmailTimeoutHonoured(t *testing.T) {
	t.Parallel()
	// A server that accepts and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	e := newEmail(t, notify.EmailConfig{Addr: ln.Addr().String(), TLS: "none", Timeout: 200 * time.Millisecond})
	start := time.Now()
	err = e.Send(testCtx(t), expiringAlert())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Send took %v with a 200ms timeout", took)
	}
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Errorf("error %q does not say the timeout", err)
	}
}

func TestEmailMessageHeaderLinesShort(t *testing.T) {
	t.Parallel()
	e := newEmail(t, notify.EmailConfig{Addr: "127.0.0.1:25", TLS: "none"})
	a := expiringAlert()
	a.Summary = strings.Repeat("Zertifikat läuft ab — ", 40)
	a.Detail = strings.Repeat("long line without breaks ", 200)
	msg, err := e.Message(a)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(msg), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes, over RFC 5322's 998", i, len(line))
		}
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject does not decode: %v", err)
	}
	if !strings.HasPrefix(subject, "[Certwright] Zertifikat läuft ab — ") || !strings.HasSuffix(subject, "…") {
		t.Errorf("long subject = %q, want it decoded and cut with an ellipsis", subject)
	}
}

func TestNewEmailRefusesBadConfig(t *testing.T) {
	t.Parallel()
	ok := notify.EmailConfig{Name: "mail", Addr: "smtp.example.com:587", From: "pki@example.com", To: []string{"ops@example.com"}}
	for _, tc := range []struct {
		name   string
		modify func(*notify.EmailConfig)
		want   string
	}{
		{"bad name", func(c *notify.EmailConfig) { c.Name = "" }, "name"},
		{"no port", func(c *notify.EmailConfig) { c.Addr = "smtp.example.com" }, "host:port"},
		{"bad port", func(c *notify.EmailConfig) { c.Addr = "smtp.example.com:smtp" }, "port"},
		{"unknown tls", func(c *notify.EmailConfig) { c.TLS = "ssl" }, `tls must be`},
		{"none to remote host", func(c *notify.EmailConfig) { c.TLS = "none" }, "only allowed to a loopback relay"},
		{"none to remote IP", func(c *notify.EmailConfig) { c.TLS = "none"; c.Addr = "192.0.2.1:25" }, "only allowed to a loopback relay"},
		{"CRLF in from", func(c *notify.EmailConfig) { c.From = "pki@example.com\r\nBcc: x@evil.example" }, "from contains a line break"},
		{"LF in to", func(c *notify.EmailConfig) { c.To = []string{"ops@example.com\nBcc: x@evil.example"} }, "to[0] contains a line break"},
		{"CRLF in username", func(c *notify.EmailConfig) { c.Username = "u\r\nRSET"; c.Password = "p" }, "username contains a line break"},
		{"CRLF in password", func(c *notify.EmailConfig) { c.Username = "u"; c.Password = "secret-pw\r\nRSET" }, "password contains a line break"},
		{"CRLF in server name", func(c *notify.EmailConfig) { c.ServerName = "a\r\nb" }, "server name contains a line break"},
		{"CRLF in addr", func(c *notify.EmailConfig) { c.Addr = "smtp.example.com:25\r\nRCPT TO:<x@evil.example>" }, "smtp address contains a line break"},
		{"user without password", func(c *notify.EmailConfig) { c.Username = "u" }, "together"},
		{"bad from", func(c *notify.EmailConfig) { c.From = "not an address" }, "from:"},
		{"no recipients", func(c *notify.EmailConfig) { c.To = nil }, "at least one recipient"},
		{"bad recipient", func(c *notify.EmailConfig) { c.To = []string{"ops@example.com", "@@"} }, "to[1]"},
		{"non-ASCII address", func(c *notify.EmailConfig) { c.To = []string{"müller@example.com"} }, "ASCII"},
		{"negative timeout", func(c *notify.EmailConfig) { c.Timeout = -1 }, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.modify(&cfg)
			_, err := notify.NewEmail(cfg)
			if !errors.Is(err, notify.ErrInvalidConfig) || !notify.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("err reveals the password: %v", err)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:25", "[::1]:25", "localhost:2525"} {
		cfg := ok
		cfg.TLS, cfg.Addr = "none", addr
		if _, err := notify.NewEmail(cfg); err != nil {
			t.Errorf("tls none to loopback %s refused: %v", addr, err)
		}
	}
}
