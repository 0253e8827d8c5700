package notifytest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify"
	"github.com/certwright/certwright/internal/notify/notifytest"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func alert(id string) lifecycle.Alert {
	return lifecycle.Alert{ID: id, Kind: lifecycle.AlertTest, Severity: lifecycle.SeverityInfo,
		Subject: "test:ops", Summary: "Test alert " + id, Detail: "línea de prueba"}
}

// waitFile polls for a file a background server writes; bounded in time.
func waitFile(t *testing.T, name string) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(name)
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 5s: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSMTPServerRecordsAndWaits(t *testing.T) {
	t.Parallel()
	s, err := notifytest.StartSMTP(notifytest.SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Errorf("server listens on %s, want 127.0.0.1", s.Addr)
	}
	msg := "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Transfer-Encoding: base64\r\n\r\naMOpbGxvIHdvcmxk\r\n"
	if err := smtp.SendMail(s.Addr, nil, "a@example.com", []string{"b@example.com", "c@example.com"}, []byte(msg)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	got, err := s.Wait(testCtx(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := got[0]
	if m.From != "a@example.com" || strings.Join(m.To, ",") != "b@example.com,c@example.com" ||
		m.Subject != "café" || m.Body != "héllo world" || m.TLS || m.User != "" {
		t.Errorf("recorded %+v", m)
	}
	// Messages is a copy.
	got[0].To[0] = "changed"
	if s.Messages()[0].To[0] != "b@example.com" {
		t.Error("Messages shares its slices with the caller")
	}
	_, err = s.Wait(testCtx(t, 50*time.Millisecond), 2)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "got 1 of 2") {
		t.Errorf("Wait for a message that never comes: %v", err)
	}
}

func TestSMTPServerRequiresAuth(t *testing.T) {
	t.Parallel()
	s, err := notifytest.StartSMTP(notifytest.SMTPOptions{TLS: "starttls", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM())

	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Mail("a@example.com"); err == nil || !strings.HasPrefix(err.Error(), "502") {
		t.Errorf("MAIL before AUTH: err = %v, want 502", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "wrong", "127.0.0.1")); err == nil || !strings.HasPrefix(err.Error(), "535") {
		t.Errorf("AUTH with a wrong password: err = %v, want 535", err)
	}
}

// Close right after Start must not wait for a Serve that has not begun.
func TestCloseRightAfterStart(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			s, err := notifytest.StartSMTP(notifytest.SMTPOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Close(); err != nil {
				t.Errorf("SMTPServer.Close: %v", err)
			}
			w, err := notifytest.StartWebhook(notifytest.WebhookOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			if err := w.Close(); err != nil {
				t.Errorf("WebhookReceiver.Close: %v", err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close right after Start hangs")
	}
}

func TestStartSMTPRejectsBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := notifytest.StartSMTP(notifytest.SMTPOptions{TLS: "ssl"}); err == nil {
		t.Error("TLS mode ssl accepted")
	}
	if _, err := notifytest.StartSMTP(notifytest.SMTPOptions{Username: "u"}); err == nil {
		t.Error("username without password accepted")
	}
}

func TestWebhookReceiver(t *testing.T) {
	t.Parallel()
	secret := []byte("k")
	w, err := notifytest.StartWebhook(notifytest.WebhookOptions{Secret: secret, StatusFunc: notifytest.FailFirst(1, 503)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	post := func(body, sig string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t, 5*time.Second), http.MethodPost, w.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if sig != "" {
			req.Header.Set(notify.HeaderSignature, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"text":"hi","alert":{"id":"a1"}}`
	good := notify.Sign(secret, []byte(body))
	for i, tc := range []struct {
		body, sig string
		want      int
	}{
		{body, "", 401},
		{body, "sha256=00", 401},
		{body, good, 503}, // FailFirst counts only well-formed, signed requests
		{body, good, 200},
		{"not json", notify.Sign(secret, []byte("not json")), 400},
	} {
		if got := post(tc.body, tc.sig); got != tc.want {
			t.Errorf("request %d: status %d, want %d", i+1, got, tc.want)
		}
	}
	reqs := w.Requests()
	if len(reqs) != 5 {
		t.Fatalf("recorded %d requests, want 5", len(reqs))
	}
	if r := reqs[3]; r.Text != "hi" || string(r.Alert) != `{"id":"a1"}` || r.Status != 200 || !bytes.Equal(r.Body, []byte(body)) {
		t.Errorf("recorded %+v", r)
	}
}

func TestServeSMTPUntilWritesFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addrFile, outDir := filepath.Join(dir, "addr"), filepath.Join(dir, "mail")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- notifytest.ServeSMTPUntil(ctx, notifytest.SMTPOptions{TLS: "starttls"}, addrFile, outDir)
	}()
	addr := strings.TrimSpace(string(waitFile(t, addrFile)))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(waitFile(t, addrFile+".crt")) {
		t.Fatal("certificate file does not parse")
	}
	e, err := notify.NewEmail(notify.EmailConfig{Name: "m", Addr: addr, From: "pki@example.com", To: []string{"ops@example.com"}, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if err := e.Send(testCtx(t, 5*time.Second), alert(id)); err != nil {
			t.Fatalf("Send %s: %v", id, err)
		}
	}
	for i, id := range []string{"a1", "a2"} {
		name := filepath.Join(outDir, []string{"001.eml", "002.eml"}[i])
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("message %d not written when Send returned: %v", i+1, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(name)
		if !bytes.Contains(b, []byte("X-Certwright-Alert-Id: "+id+"\r\n")) {
			t.Errorf("%s is not the message for %s:\n%s", name, id, b)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeSMTPUntil: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeSMTPUntil did not return after cancel")
	}
}

func TestServeWebhookUntilWritesFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	urlFile, outDir := filepath.Join(dir, "url"), filepath.Join(dir, "hooks")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- notifytest.ServeWebhookUntil(ctx, notifytest.WebhookOptions{TLS: true, StatusFunc: notifytest.FailFirst(1, 500)}, urlFile, outDir)
	}()
	url := strings.TrimSpace(string(waitFile(t, urlFile)))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(waitFile(t, urlFile+".crt")) {
		t.Fatal("certificate file does not parse")
	}
	wh, err := notify.NewWebhook(notify.WebhookConfig{Name: "w", URL: url, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Send(testCtx(t, 5*time.Second), alert("a1")); err == nil || notify.IsPermanent(err) {
		t.Fatalf("first Send: %v, want a retryable 500", err)
	}
	if err := wh.Send(testCtx(t, 5*time.Second), alert("a1")); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	for _, name := range []string{"001.json", "002.json"} {
		p := filepath.Join(outDir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s not written: %v", name, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(`"summary":"Test alert a1"`)) {
			t.Errorf("%s is not the alert body: %s", name, b)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeWebhookUntil: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeWebhookUntil did not return after cancel")
	}
}
