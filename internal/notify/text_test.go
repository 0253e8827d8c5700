package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify"
)

var notAfter = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func certRef() *lifecycle.CertRef {
	return &lifecycle.CertRef{
		Serial:   "3f2a9c0d11e2f3a4b5c6d7e8f9a0b1c2",
		CAID:     "ca-7",
		CA:       "issuing",
		Profile:  "internal_service",
		Subject:  "CN=app.internal",
		SANs:     []string{"app.internal", "www.app.internal"},
		NotAfter: notAfter,
		Owner:    "team-a",
		Tags:     []string{"prod", "payments"},
		Source:   "issued",
	}
}

// textCases has one alert per kind, as the scheduler raises them.
func textCases() []struct {
	name  string
	alert lifecycle.Alert
	want  string
} {
	caCert := &lifecycle.CertRef{Serial: "01ab", CA: "root", Subject: "CN=Issuing CA", NotAfter: notAfter}
	return []struct {
		name  string
		alert lifecycle.Alert
		want  string
	}{
		{"expiring", lifecycle.Alert{Kind: lifecycle.AlertExpiring, Severity: lifecycle.SeverityWarning,
			Summary: "Certificate app.internal expires in 2 days", Cert: certRef(), DaysLeft: 2},
			":warning: *Certificate app.internal expires in 2 days* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"renewal_due", lifecycle.Alert{Kind: lifecycle.AlertRenewalDue, Severity: lifecycle.SeverityWarning,
			Summary: "Certificate app.internal is due for renewal", Cert: certRef(), DaysLeft: 20},
			":warning: *Certificate app.internal is due for renewal* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"expired", lifecycle.Alert{Kind: lifecycle.AlertExpired, Severity: lifecycle.SeverityCritical,
			Summary: "Certificate app.internal expired", Cert: certRef(), DaysLeft: -0.5},
			":rotating_light: *Certificate app.internal expired* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"renewal_failed", lifecycle.Alert{Kind: lifecycle.AlertRenewalFailed, Severity: lifecycle.SeverityWarning,
			Summary: "Renewal of app.internal failed (attempt 3)", Detail: "profile: key size 1024 below minimum 2048 for RSA", Cert: certRef()},
			":warning: *Renewal of app.internal failed (attempt 3)* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"ca_expiring", lifecycle.Alert{Kind: lifecycle.AlertCAExpiring, Severity: lifecycle.SeverityCritical,
			Summary: "CA certificate Issuing CA expires in 60 days", Cert: caCert, DaysLeft: 60},
			":rotating_light: *CA certificate Issuing CA expires in 60 days* (2026-11-24 10:00 UTC) — serial 01ab, CA root"},
		{"revocation_stale", lifecycle.Alert{Kind: lifecycle.AlertRevocationStale, Severity: lifecycle.SeverityCritical,
			Summary: "CRL of CA issuing is stale", Detail: "The CRL was not refreshed.\nIts nextUpdate is 2026-11-24 10:00 UTC."},
			":rotating_light: *CRL of CA issuing is stale* — The CRL was not refreshed. Its nextUpdate is 2026-11-24 10:00 UTC."},
		{"deploy_failed", lifecycle.Alert{Kind: lifecycle.AlertDeployFailed, Severity: lifecycle.SeverityWarning,
			Summary: "Deploy to web-1/nginx failed", Detail: "reload: exit status 1"},
			":warning: *Deploy to web-1/nginx failed* — reload: exit status 1"},
		{"served_revoked", lifecycle.Alert{Kind: lifecycle.AlertServedRevoked, Severity: lifecycle.SeverityCritical, Subject: "endpoint:10.0.0.5:443",
			Summary: "10.0.0.5:443 serves revoked certificate app.internal", Cert: certRef()},
			":rotating_light: *10.0.0.5:443 serves revoked certificate app.internal* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"served_expired", lifecycle.Alert{Kind: lifecycle.AlertServedExpired, Severity: lifecycle.SeverityCritical, Subject: "endpoint:10.0.0.5:443",
			Summary: "10.0.0.5:443 serves expired certificate app.internal", Cert: certRef()},
			":rotating_light: *10.0.0.5:443 serves expired certificate app.internal* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"served_stale", lifecycle.Alert{Kind: lifecycle.AlertServedStale, Severity: lifecycle.SeverityWarning, Subject: "endpoint:10.0.0.5:443",
			Summary: "10.0.0.5:443 serves certificate app.internal, already renewed", Cert: certRef()},
			":warning: *10.0.0.5:443 serves certificate app.internal, already renewed* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner team-a"},
		{"endpoint_plaintext", lifecycle.Alert{Kind: lifecycle.AlertEndpointPlaintext, Severity: lifecycle.SeverityWarning, Subject: "endpoint:10.0.0.6:6379",
			Summary: "10.0.0.6:6379 accepts plaintext", Detail: "The Redis server answers in plaintext."},
			":warning: *10.0.0.6:6379 accepts plaintext* — The Redis server answers in plaintext."},
		{"endpoint_weak", lifecycle.Alert{Kind: lifecycle.AlertEndpointWeak, Severity: lifecycle.SeverityWarning, Subject: "endpoint:10.0.0.7:443",
			Summary: "10.0.0.7:443 has weak TLS", Detail: "Grade C: RC4 accepted."},
			":warning: *10.0.0.7:443 has weak TLS* — Grade C: RC4 accepted."},
		{"test", lifecycle.Alert{Kind: lifecycle.AlertTest, Severity: lifecycle.SeverityInfo, Subject: "test:ops",
			Summary: "Test alert from Certwright", Detail: "If you read this, channel ops works."},
			":white_check_mark: *Test alert from Certwright* — If you read this, channel ops works."},
	}
}

func TestTextForEveryKind(t *testing.T) {
	t.Parallel()
	covered := map[lifecycle.AlertKind]bool{}
	for _, tc := range textCases() {
		covered[tc.alert.Kind] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := notify.Text(tc.alert); got != tc.want {
				t.Errorf("Text() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	for _, k := range lifecycle.AlertKinds() {
		if !covered[k] {
			t.Errorf("no Text case for alert kind %q", k)
		}
	}
}

func TestTextEscapesMrkdwnAndStaysOneLine(t *testing.T) {
	t.Parallel()
	c := certRef()
	c.Owner = "<@U123|ops> & co"
	a := lifecycle.Alert{Kind: lifecycle.AlertExpiring, Severity: lifecycle.SeverityWarning,
		Summary: "Cert <!channel> a&b\r\nexpires", Cert: c}
	got := notify.Text(a)
	want := ":warning: *Cert &lt;!channel&gt; a&amp;b expires* (2026-11-24 10:00 UTC) — serial 3f2a9c0d11e2…, CA issuing, profile internal_service, owner &lt;@U123|ops&gt; &amp; co"
	if got != want {
		t.Errorf("Text() =\n%s\nwant\n%s", got, want)
	}
	if strings.ContainsAny(got, "<>\r\n") {
		t.Errorf("Text() contains a raw <, > or line break: %q", got)
	}
}

func TestTextDefaultsAndLimits(t *testing.T) {
	t.Parallel()
	t.Run("empty summary names the kind", func(t *testing.T) {
		t.Parallel()
		got := notify.Text(lifecycle.Alert{Kind: lifecycle.AlertDeployFailed, Severity: "odd"})
		if want := ":bell: *Certwright alert: deploy_failed*"; got != want {
			t.Errorf("Text() = %q, want %q", got, want)
		}
	})
	t.Run("long detail is cut", func(t *testing.T) {
		t.Parallel()
		got := notify.Text(lifecycle.Alert{Kind: lifecycle.AlertRevocationStale, Severity: lifecycle.SeverityCritical,
			Summary: "s", Detail: strings.Repeat("é", 1000)})
		if n := strings.Count(got, "é"); n != 300 || !strings.HasSuffix(got, "…") {
			t.Errorf("Text() kept %d runes of a 1000-rune detail (suffix %q), want 300 and an ellipsis", n, got[len(got)-3:])
		}
	})
}
