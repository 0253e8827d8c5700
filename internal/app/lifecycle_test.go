package app

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify/notifytest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tReceivers are a real SMTP server (STARTTLS with AUTH) and a real
// webhook receiver on loopback.
type tReceivers struct {
	smtp *notifytest.SMTPServer
	hook *notifytest.WebhookReceiver
}

func tStartReceivers(t *testing.T, hookOpts notifytest.WebhookOptions) *tReceivers {
	t.Helper()
	s, err := notifytest.StartSMTP(notifytest.SMTPOptions{TLS: notifytest.TLSStartTLS, Username: "certwright", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := notifytest.StartWebhook(hookOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &tReceivers{smtp: s, hook: h}
}

// tAlertConfig points cfg's alerts at rc: channels "ops-mail" and "ops-hook".
func tAlertConfig(t *testing.T, cfg *config.Config, rc *tReceivers) {
	t.Helper()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "smtp-ca.pem")
	if err := os.WriteFile(caFile, rc.smtp.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pwFile, []byte("s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Alerts = config.AlertsConfig{Channels: []config.ChannelConfig{
		{Name: "ops-mail", Type: "email", SMTP: rc.smtp.Addr, TLS: "starttls", Username: "certwright", PasswordFile: pwFile,
			From: "certwright@example.test", To: []string{"oncall@example.test"}, CAFile: caFile},
		{Name: "ops-hook", Type: "webhook", URL: rc.hook.URL},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// tRunJob runs a scheduled job now, waiting out a concurrent run.
func tRunJob(t *testing.T, in *tInstance, name string) *lifecycle.JobState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := in.app.scheduler.RunJob(context.Background(), name)
		if err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		if st.Outcome != lifecycle.OutcomeSkipped {
			if st.Outcome != lifecycle.OutcomeOK {
				t.Fatalf("job %s: %s: %s", name, st.Outcome, st.Detail)
			}
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still running elsewhere after 20s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tSignDays(t *testing.T, in *tInstance, profile string, days int, name string) apitypes.IssuedCertificate {
	t.Helper()
	var out apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), name)), Profile: profile, ValidityDays: days, Owner: "team-a",
	}, &out)
	return out
}

// TestExpiryAlertOnceOnBothChannels: a certificate with 2 days left raises
// one alert, delivered once to the SMTP server and once to the webhook,
// however often the check runs; its content names the certificate.
func TestExpiryAlertOnceOnBothChannels(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			rc := tStartReceivers(t, notifytest.WebhookOptions{})
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			tAlertConfig(t, cfg, rc)
			in := tStart(t, cfg, clk)
			tRunJob(t, in, "expiry-check") // the start-up run may have set the cursor already

			cert := tSignDays(t, in, "internal_service", 2, "short.internal.test")
			for range 3 {
				tRunJob(t, in, "expiry-check")
				tRunJob(t, in, "alert-delivery")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			mails, err := rc.smtp.Wait(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			hooks, err := rc.hook.Wait(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			// Once more, and later: still one each.
			clk.Advance(2 * time.Hour)
			tRunJob(t, in, "expiry-check")
			tRunJob(t, in, "alert-delivery")
			time.Sleep(200 * time.Millisecond)
			mails, hooks = rc.smtp.Messages(), rc.hook.Requests()
			if len(mails) != 1 || len(hooks) != 1 {
				t.Fatalf("got %d emails and %d webhook calls, want exactly 1 each", len(mails), len(hooks))
			}
			m := mails[0]
			if !m.TLS || m.User != "certwright" || len(m.To) != 1 || m.To[0] != "oncall@example.test" {
				t.Errorf("email: TLS %v, AUTH user %q, to %v", m.TLS, m.User, m.To)
			}
			for _, want := range []string{"short.internal.test", cert.Serial, "team-a", "internal_service"} {
				if !strings.Contains(m.Subject+"\n"+m.Body, want) {
					t.Errorf("email lacks %q:\nSubject: %s\n%s", want, m.Subject, m.Body)
				}
			}
			if !strings.Contains(m.Subject, "expires in") {
				t.Errorf("email subject %q does not say it expires", m.Subject)
			}
			var a lifecycle.Alert
			if err := json.Unmarshal(hooks[0].Alert, &a); err != nil {
				t.Fatal(err)
			}
			if a.Kind != lifecycle.AlertExpiring || a.Threshold != "7d" || a.Subject != cert.Serial || a.DaysLeft < 1.5 || a.DaysLeft > 2.1 {
				t.Errorf("webhook alert = %+v", a)
			}
			if !strings.Contains(hooks[0].Text, "short.internal.test") {
				t.Errorf("webhook text %q lacks the name", hooks[0].Text)
			}

			// Crossing the 1-day threshold is a second alert, and expiry a third.
			clk.Advance(24 * time.Hour)
			tRunJob(t, in, "expiry-check")
			clk.Advance(24 * time.Hour)
			tRunJob(t, in, "expiry-check")
			tRunJob(t, in, "alert-delivery")
			if _, err := rc.hook.Wait(ctx, 3); err != nil {
				t.Fatal(err)
			}
			var list apitypes.AlertList
			in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
			kinds := map[string]int{}
			for _, al := range list.Alerts {
				if al.Serial == cert.Serial {
					kinds[al.Kind+"/"+al.Threshold]++
					for _, d := range al.Deliveries {
						if d.Status != lifecycle.DeliverySent {
							t.Errorf("alert %s to %s: %s (%s)", al.ID, d.Channel, d.Status, d.LastError)
						}
					}
				}
			}
			want := map[string]int{"expiring/7d": 1, "expiring/1d": 1, "expired/expired": 1}
			if fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Errorf("alerts for the certificate = %v, want %v", kinds, want)
			}
		})
	}
}

// TestAlertDeliveryRetriesWithBackoff: a webhook that fails twice gets the
// alert on the third attempt, each after its backoff.
func TestAlertDeliveryRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	rc := tStartReceivers(t, notifytest.WebhookOptions{StatusFunc: notifytest.FailFirst(2, http.StatusServiceUnavailable)})
	cfg := tConfig(t, "")
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	tInit(t, cfg, clk)
	tAlertConfig(t, cfg, rc)
	cfg.Alerts.Default = []string{"ops-hook"}
	in := tStart(t, cfg, clk)
	tRunJob(t, in, "expiry-check")
	tSignDays(t, in, "internal_service", 1, "retry.internal.test")
	tRunJob(t, in, "expiry-check")
	tRunJob(t, in, "alert-delivery") // attempt 1: 503
	deliveries := func() apitypes.AlertDelivery {
		var list apitypes.AlertList
		in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
		for _, a := range list.Alerts {
			if a.Kind == "expiring" {
				return a.Deliveries[0]
			}
		}
		t.Fatal("no expiring alert")
		return apitypes.AlertDelivery{}
	}
	d := deliveries()
	if d.Status != "pending" || d.Attempts != 1 || !strings.Contains(d.LastError, "503") {
		t.Fatalf("after the first failure: %+v", d)
	}
	tRunJob(t, in, "alert-delivery") // not due yet: nothing happens
	if d2 := deliveries(); d2.Attempts != 1 {
		t.Fatalf("retried before the backoff: %+v", d2)
	}
	clk.Advance(time.Minute)
	tRunJob(t, in, "alert-delivery") // attempt 2: 503
	clk.Advance(2 * time.Minute)
	tRunJob(t, in, "alert-delivery") // attempt 3: 200
	d = deliveries()
	if d.Status != "sent" || d.Attempts != 3 {
		t.Fatalf("after the third attempt: %+v", d)
	}
	if n := len(rc.hook.Requests()); n != 3 {
		t.Errorf("receiver saw %d requests, want 3", n)
	}
	if n := len(rc.smtp.Messages()); n != 0 {
		t.Errorf("the default route sends to ops-hook only, but %d emails arrived", n)
	}
}

// TestAlertsTestCommand: alerts test reaches a channel at once and an
// unknown channel is a 404 naming the configured ones.
func TestAlertsTestChannel(t *testing.T) {
	t.Parallel()
	rc := tStartReceivers(t, notifytest.WebhookOptions{})
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	tAlertConfig(t, cfg, rc)
	in := tStart(t, cfg, clock.Real{})
	in.must(http.StatusOK, "POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "ops-mail"}, nil)
	mails := rc.smtp.Messages()
	if len(mails) != 1 || !strings.Contains(mails[0].Subject, "Test alert") {
		t.Fatalf("test email: %+v", mails)
	}
	r := in.call("POST", "/api/v1/alerts/test", apitypes.AlertTestRequest{Channel: "nope"})
	if r.status != http.StatusNotFound || !strings.Contains(r.apiErr(t).Detail, "ops-hook") {
		t.Fatalf("unknown channel: %d %s", r.status, r.body)
	}
}
