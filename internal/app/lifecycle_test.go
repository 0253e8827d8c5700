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
			cfg := tConfig(t, be.dbURL(t))
			rc := tStartReceivers(t, notifytest.WebhookOptions{})
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

func tGetCert(t *testing.T, in *tInstance, serial string) apitypes.Certificate {
	t.Helper()
	var c apitypes.Certificate
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+serial, nil, &c)
	return c
}

func tIssueAuto(t *testing.T, in *tInstance, name string, days int) apitypes.IssuedCertificate {
	t.Helper()
	var out apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
		Profile: "internal_service", DNSNames: []string{name}, ValidityDays: days, AutoRenew: true, Owner: "team-b",
	}, &out)
	return out
}

// TestManagedRenewal: a certificate the server holds the key of is renewed
// when it crosses its profile's threshold, with a new key, linked to its
// predecessor, which is revoked as superseded after the grace period; a
// failing renewal backs off, alerts once, and succeeds once fixed.
func TestManagedRenewal(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			rc := tStartReceivers(t, notifytest.WebhookOptions{})
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			tAlertConfig(t, cfg, rc)
			cfg.Lifecycle.RevokeSupersededAfter = "1h"
			in := tStart(t, cfg, clk)
			in.tUseMachineAdmin(t)

			old := tIssueAuto(t, in, "auto.internal.test", 30)
			if !old.AutoRenew || old.Owner != "team-b" {
				t.Fatalf("issued: auto_renew %v owner %q", old.AutoRenew, old.Owner)
			}
			if st := tRunJob(t, in, "renewal"); !strings.HasPrefix(st.Detail, "0 renewed") {
				t.Fatalf("renewed before its window: %s", st.Detail)
			}
			// internal_service renews 7 days before expiry.
			// The advance may also wake the scheduled renewal job, which can
			// renew before the run asked for here: either renews, once.
			clk.Advance(23*24*time.Hour + time.Hour)
			st := tRunJob(t, in, "renewal")
			if !strings.HasPrefix(st.Detail, "1 renewed") && !strings.HasPrefix(st.Detail, "0 renewed, 0 failed") {
				t.Fatalf("renewal run: %s", st.Detail)
			}
			o := tGetCert(t, in, old.Serial)
			for deadline := time.Now().Add(5 * time.Second); o.RenewedBy == "" && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				o = tGetCert(t, in, old.Serial)
			}
			if o.RenewedBy == "" {
				t.Fatalf("the old certificate is not marked renewed (renewal run: %s)", st.Detail)
			}
			n := tGetCert(t, in, o.RenewedBy)
			if n.Replaces != old.Serial || n.RenewalKind != "auto" || !n.AutoRenew || n.Owner != "team-b" ||
				n.SPKISHA256 == o.SPKISHA256 || strings.Join(n.SANs, ",") != "auto.internal.test" {
				t.Fatalf("successor = %+v", n)
			}
			if !n.NotAfter.After(o.NotAfter) {
				t.Errorf("successor expires %v, not after the old %v", n.NotAfter, o.NotAfter)
			}
			// The new key is the server's to hand out to the machine.
			r := in.call("GET", "/api/v1/certificates/"+n.Serial+"/key", nil)
			if r.status != http.StatusOK || !strings.Contains(string(r.body), "PRIVATE KEY") {
				t.Fatalf("key of the renewed certificate: %d %s", r.status, tTrim(r.body))
			}
			var info apitypes.RenewalInfo
			in.must(http.StatusOK, "GET", "/api/v1/certificates/"+old.Serial+"/renewal-info", nil, &info)
			if info.RenewedBy != n.Serial {
				t.Errorf("renewal-info of the old one: %+v", info)
			}
			// Superseded after the grace period, not before.
			tRunJob(t, in, "supersede")
			if c := tGetCert(t, in, old.Serial); c.Revocation != nil {
				t.Fatal("revoked before the grace period ended")
			}
			clk.Advance(61 * time.Minute)
			tRunJob(t, in, "supersede")
			if c := tGetCert(t, in, old.Serial); c.Revocation == nil || c.Revocation.Reason != "superseded" {
				t.Fatalf("old certificate after the grace period: %+v", c.Revocation)
			}

			// A renewal that fails: the CA is disabled.
			failing := tIssueAuto(t, in, "fails.internal.test", 30)
			in.must(http.StatusOK, "POST", "/api/v1/cas/issuing/disable", nil, nil)
			clk.Advance(24 * 24 * time.Hour)
			// The first renewal's successor is due again by now, so two fail.
			if st := tRunJob(t, in, "renewal"); !strings.Contains(st.Detail, "2 failed") {
				t.Fatalf("renewal run with the CA disabled: %s", st.Detail)
			}
			f := tGetCert(t, in, failing.Serial)
			if f.RenewedBy != "" || !strings.Contains(f.RenewError, "disabled") {
				t.Fatalf("after a failed renewal: renewed_by %q, error %q", f.RenewedBy, f.RenewError)
			}
			tRunJob(t, in, "renewal") // backing off: not retried yet, no second alert
			tRunJob(t, in, "alert-delivery")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hooks, err := rc.hook.Wait(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			failed := 0
			for _, h := range hooks {
				var a lifecycle.Alert
				if err := json.Unmarshal(h.Alert, &a); err != nil {
					t.Fatal(err)
				}
				if a.Kind == lifecycle.AlertRenewalFailed && a.Subject == failing.Serial {
					// One alert per certificate, however often it fails.
					failed++
					if !strings.Contains(a.Detail, "disabled") || !strings.Contains(a.Detail, "cert renew "+failing.Serial) {
						t.Errorf("renewal_failed detail: %s", a.Detail)
					}
				}
			}
			if failed != 1 {
				t.Errorf("%d renewal_failed alerts, want 1", failed)
			}
			in.must(http.StatusOK, "POST", "/api/v1/cas/issuing/enable", nil, nil)
			clk.Advance(20 * time.Minute) // past the first retry (15m plus jitter)
			if st := tRunJob(t, in, "renewal"); !strings.HasPrefix(st.Detail, "2 renewed") {
				t.Fatalf("retry after the CA came back: %s", st.Detail)
			}
			if c := tGetCert(t, in, failing.Serial); c.RenewedBy == "" || c.RenewError != "" {
				t.Fatalf("after the retry: %+v", c)
			}
		})
	}
}

// TestEmergencyRotation: rotate --ca re-issues what the server holds the
// key of, tells the others to renew now (an agent's replacement counts),
// revokes every old certificate after the grace period, and finishes.
func TestEmergencyRotation(t *testing.T) {
	t.Parallel()
	in, _, clk := tStartOnFakeClock(t, "")
	in.tUseMachineAdmin(t)
	held := tIssueAuto(t, in, "held.internal.test", 30)
	csrKey := tECKey(t, elliptic.P256())
	var onHost apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(tCSR(t, csrKey, "host.internal.test")), Profile: "internal_service", ValidityDays: 30,
	}, &onHost)

	var rot apitypes.Rotation
	in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{CA: "issuing", Grace: "1h"}, &rot)
	methods := map[string]string{}
	for _, it := range rot.Items {
		methods[it.Serial] = it.Method
	}
	// The server's own TLS certificate is in it too (issue 13 #11).
	if len(rot.Items) != 3 || methods[held.Serial] != "reissue" || methods[onHost.Serial] != "signal" {
		t.Fatalf("rotation items = %+v, want held, onHost and the server's TLS certificate", rot.Items)
	}
	var info apitypes.RenewalInfo
	in.must(http.StatusOK, "GET", "/api/v1/certificates/"+onHost.Serial+"/renewal-info", nil, &info)
	if !info.RenewNow || info.Reason != "requested" {
		t.Fatalf("the host's certificate is not due now: %+v", info)
	}
	tRunJob(t, in, "rotation")
	in.must(http.StatusOK, "GET", "/api/v1/rotations/"+rot.ID, nil, &rot)
	if rot.Counts["replaced"] != 2 || rot.Counts["pending"] != 1 || rot.Status != "running" {
		t.Fatalf("after the first pass: %+v", rot.Counts)
	}
	// The agent on the host renews, naming what it replaces.
	var repl apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "host.internal.test")), Profile: "internal_service",
		Replaces: onHost.Serial, RenewalKind: "agent",
	}, &repl)
	if repl.Replaces != onHost.Serial || repl.RenewalKind != "agent" {
		t.Fatalf("replacement: replaces %q kind %q", repl.Replaces, repl.RenewalKind)
	}
	// A second replacement of the same certificate is refused.
	r := in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "host.internal.test")), Profile: "internal_service", Replaces: onHost.Serial,
	})
	if r.status != http.StatusConflict {
		t.Fatalf("second replacement: %d %s", r.status, tTrim(r.body))
	}
	tRunJob(t, in, "rotation")
	in.must(http.StatusOK, "GET", "/api/v1/rotations/"+rot.ID, nil, &rot)
	if rot.Counts["replaced"] != 3 {
		t.Fatalf("after the agent replaced its certificate: %+v", rot.Counts)
	}
	for _, s := range []string{held.Serial, onHost.Serial} {
		if c := tGetCert(t, in, s); c.Revocation != nil {
			t.Fatalf("%s revoked before the grace period ended", s)
		}
	}
	clk.Advance(61 * time.Minute)
	tRunJob(t, in, "rotation")
	in.must(http.StatusOK, "GET", "/api/v1/rotations/"+rot.ID, nil, &rot)
	if rot.Status != "done" || rot.Counts["revoked"] != 3 {
		t.Fatalf("after the grace period: %s %+v", rot.Status, rot.Counts)
	}
	for _, s := range []string{held.Serial, onHost.Serial} {
		c := tGetCert(t, in, s)
		if c.Revocation == nil || c.Revocation.Reason != "superseded" || c.RenewedBy == "" {
			t.Errorf("%s after the rotation: revocation %+v renewed_by %q", s, c.Revocation, c.RenewedBy)
		}
	}
	// Nothing old matches any more: a new rotation of the same CA has only
	// the replacements (the server's new TLS certificate among them).
	var again apitypes.Rotation
	in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{CA: "issuing", Grace: "1h"}, &again)
	if len(again.Items) != 3 {
		t.Errorf("second rotation has %d items, want the 3 replacements", len(again.Items))
	}
}

// tStartOnFakeClock initialises and starts an instance on database url
// (SQLite when empty) whose clock is a fake set to now; it returns the
// instance, its configuration (to restart it) and the clock.
func tStartOnFakeClock(t *testing.T, url string) (*tInstance, *config.Config, *clock.Fake) {
	t.Helper()
	cfg := tConfig(t, url)
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	tInit(t, cfg, clk)
	return tStart(t, cfg, clk), cfg, clk
}
