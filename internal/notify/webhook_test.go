package notify_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify"
	"github.com/certwright/certwright/internal/notify/notifytest"
)

func expiringAlert() lifecycle.Alert {
	return lifecycle.Alert{
		ID:        "al-42",
		Kind:      lifecycle.AlertExpiring,
		Severity:  lifecycle.SeverityWarning,
		Subject:   "3f2a9c0d11e2f3a4b5c6d7e8f9a0b1c2",
		Threshold: "7d",
		Summary:   "Certificate app.internal expires in 2 days",
		Detail:    "Nothing will renew it automatically.",
		Cert:      certRef(),
		DaysLeft:  2,
		CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
}

func startWebhook(t *testing.T, opts notifytest.WebhookOptions) *notifytest.WebhookReceiver {
	t.Helper()
	w, err := notifytest.StartWebhook(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func newWebhook(t *testing.T, cfg notify.WebhookConfig) *notify.Webhook {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "ops"
	}
	w, err := notify.NewWebhook(cfg)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return w
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestWebhookBodyHeadersAndSignature(t *testing.T) {
	t.Parallel()
	secret := []byte("hmac-secret-0123456789")
	recv := startWebhook(t, notifytest.WebhookOptions{Secret: secret})
	wh := newWebhook(t, notify.WebhookConfig{
		URL:     recv.URL,
		Headers: map[string]string{"authorization": "Bearer tok-abcdefgh", "X-Team": "pki"},
		Secret:  secret,
	})
	a := expiringAlert()
	if err := wh.Send(testCtx(t), a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := recv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Status != http.StatusOK {
		t.Fatalf("receiver answered %d (401 means the signature did not verify)", r.Status)
	}
	for k, want := range map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            "certwright",
		"X-Certwright-Alert-Id": "al-42",
		"X-Certwright-Event":    "expiring",
		"Authorization":         "Bearer tok-abcdefgh",
		"X-Team":                "pki",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if !notify.VerifySignature(secret, r.Body, r.Header.Get(notify.HeaderSignature)) {
		t.Errorf("X-Certwright-Signature %q does not verify over the body", r.Header.Get(notify.HeaderSignature))
	}
	if notify.VerifySignature([]byte("other"), r.Body, r.Header.Get(notify.HeaderSignature)) {
		t.Error("signature verifies under a different secret")
	}
	if r.Text != notify.Text(a) {
		t.Errorf("text = %q, want %q", r.Text, notify.Text(a))
	}
	var got lifecycle.Alert
	if err := json.Unmarshal(r.Alert, &got); err != nil {
		t.Fatalf("alert is not an Alert: %v", err)
	}
	if got.ID != a.ID || got.Kind != a.Kind || got.Summary != a.Summary || got.DaysLeft != a.DaysLeft ||
		got.Cert == nil || got.Cert.Serial != a.Cert.Serial || !got.Cert.NotAfter.Equal(a.Cert.NotAfter) ||
		strings.Join(got.Cert.SANs, ",") != "app.internal,www.app.internal" {
		t.Errorf("alert round-trip = %+v (cert %+v), want %+v", got, got.Cert, a)
	}
}

func TestWebhookWrongSecretIsPermanent(t *testing.T) {
	t.Parallel()
	recv := startWebhook(t, notifytest.WebhookOptions{Secret: []byte("receiver-secret")})
	wh := newWebhook(t, notify.WebhookConfig{URL: recv.URL, Secret: []byte("sender-secret-xyz")})
	err := wh.Send(testCtx(t), expiringAlert())
	if err == nil || !notify.IsPermanent(err) {
		t.Fatalf("Send with a wrong secret: err = %v, want a permanent 401 error", err)
	}
	if strings.Contains(err.Error(), "sender-secret-xyz") {
		t.Errorf("error reveals the secret: %v", err)
	}
}

func TestWebhookStatusClassification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{500, false}, {503, false}, {404, true}, {400, true}, {401, true}, {429, false}, {408, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			recv := startWebhook(t, notifytest.WebhookOptions{Status: tc.status})
			err := newWebhook(t, notify.WebhookConfig{URL: recv.URL}).Send(testCtx(t), expiringAlert())
			if err == nil {
				t.Fatalf("status %d: Send succeeded", tc.status)
			}
			if got := notify.IsPermanent(err); got != tc.permanent {
				t.Errorf("status %d: IsPermanent = %v, want %v (err %v)", tc.status, got, tc.permanent, err)
			}
			var ne *notify.Error
			if !errors.As(err, &ne) || ne.Code != tc.status {
				t.Errorf("status %d: error %v does not carry the status", tc.status, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("answered %d", tc.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			if n := len(recv.Requests()); n != 1 {
				t.Errorf("receiver got %d requests: Send must make exactly one attempt", n)
			}
		})
	}
}

func TestWebhookRetryableThenSucceeds(t *testing.T) {
	t.Parallel()
	recv := startWebhook(t, notifytest.WebhookOptions{StatusFunc: notifytest.FailFirst(1, 503)})
	wh := newWebhook(t, notify.WebhookConfig{URL: recv.URL})
	ctx := testCtx(t)
	if err := wh.Send(ctx, expiringAlert()); err == nil || notify.IsPermanent(err) {
		t.Fatalf("first Send: err = %v, want a retryable error", err)
	}
	if err := wh.Send(ctx, expiringAlert()); err != nil {
		t.Fatalf("second Send: %v", err)
	}
}

func TestWebhookRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	err := newWebhook(t, notify.WebhookConfig{URL: srv.URL + "/hook"}).Send(testCtx(t), expiringAlert())
	if err == nil {
		t.Fatal("Send through a redirect succeeded")
	}
	if followed.Load() != 0 {
		t.Errorf("the redirect was followed %d times", followed.Load())
	}
	if !strings.Contains(err.Error(), `"/final"`) || !strings.Contains(err.Error(), "307") {
		t.Errorf("error %q does not name the status and Location", err)
	}
	if !notify.IsPermanent(err) {
		t.Errorf("a redirect is a wrong URL, want a permanent error: %v", err)
	}
}

func TestWebhookTimeoutHonoured(t *testing.T) {
	t.Parallel()
	recv := startWebhook(t, notifytest.WebhookOptions{Delay: 5 * time.Second})
	wh := newWebhook(t, notify.WebhookConfig{URL: recv.URL, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := wh.Send(testCtx(t), expiringAlert())
	took := time.Since(start)
	if err == nil {
		t.Fatal("Send to a server that never answers succeeded")
	}
	if took > 2*time.Second {
		t.Errorf("Send took %v with a 200ms timeout", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || notify.IsPermanent(err) {
		t.Errorf("err = %v, want a retryable deadline error", err)
	}
	if !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("error %q does not say the timeout", err)
	}
}

func TestWebhookErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	const token = "tok-9f8e7d6c5b4a"
	const pathSecret = "T000/B000/XXXXpathsecret"
	// A receiver that echoes what it got, as some error pages do.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "bad credentials %s for %s", r.Header.Get("Authorization"), r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	wh := newWebhook(t, notify.WebhookConfig{
		URL:     srv.URL + "/services/" + pathSecret,
		Headers: map[string]string{"Authorization": "Bearer " + token},
	})
	err := wh.Send(testCtx(t), expiringAlert())
	if err == nil {
		t.Fatal("Send succeeded against a 401")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), pathSecret) {
		t.Errorf("error reveals the header value or the URL path: %v", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") || !strings.Contains(err.Error(), "401") {
		t.Errorf("error %q should quote the answer with the secret redacted", err)
	}

	// A connection failure must not quote the URL's path, which holds
	// Slack's token.
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	closedURL := "http://" + ln.Addr().String() + "/services/" + pathSecret
	ln.Close()
	err = newWebhook(t, notify.WebhookConfig{URL: closedURL, Headers: map[string]string{"X-Key": token}}).Send(testCtx(t), expiringAlert())
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if strings.Contains(err.Error(), pathSecret) || strings.Contains(err.Error(), token) {
		t.Errorf("connection error reveals the URL path or a header: %v", err)
	}
	if notify.IsPermanent(err) {
		t.Errorf("connection refused should be retryable: %v", err)
	}

	// A bad header value is refused without quoting it.
	_, err = notify.NewWebhook(notify.WebhookConfig{Name: "ops", URL: srv.URL,
		Headers: map[string]string{"Authorization": "Bearer " + token + "\r\nX-Evil: 1"}})
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("NewWebhook with a CRLF header value: err = %v, want a refusal without the value", err)
	}
}

func TestWebhookQuotesAtMost200Bytes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(strings.Repeat("x", 10000)))
	}))
	t.Cleanup(srv.Close)
	err := newWebhook(t, notify.WebhookConfig{URL: srv.URL}).Send(testCtx(t), expiringAlert())
	if err == nil {
		t.Fatal("Send succeeded against a 502")
	}
	if n := strings.Count(err.Error(), "x"); n != 200 {
		t.Errorf("error quotes %d bytes of the answer, want 200: %v", n, err)
	}
}

func TestWebhookHTTPSWithRootCAs(t *testing.T) {
	t.Parallel()
	recv := startWebhook(t, notifytest.WebhookOptions{TLS: true})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(recv.CertPEM()) {
		t.Fatal("receiver certificate does not parse")
	}
	if err := newWebhook(t, notify.WebhookConfig{URL: recv.URL, RootCAs: pool}).Send(testCtx(t), expiringAlert()); err != nil {
		t.Fatalf("Send over HTTPS trusting the receiver: %v", err)
	}
	err := newWebhook(t, notify.WebhookConfig{URL: recv.URL, RootCAs: x509.NewCertPool()}).Send(testCtx(t), expiringAlert())
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Errorf("Send to an untrusted receiver: err = %v, want x509.UnknownAuthorityError", err)
	}
	if n := len(recv.Requests()); n != 1 {
		t.Errorf("receiver got %d requests, want only the trusted one", n)
	}
}

func TestWebhookConcurrentSends(t *testing.T) {
	t.Parallel()
	recv := startWebhook(t, notifytest.WebhookOptions{Secret: []byte("s3")})
	wh := newWebhook(t, notify.WebhookConfig{URL: recv.URL, Secret: []byte("s3")})
	ctx := testCtx(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			a := expiringAlert()
			a.ID = fmt.Sprintf("al-%d", i)
			errs <- wh.Send(ctx, a)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	reqs, err := recv.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		seen[r.Header.Get(notify.HeaderAlertID)] = true
	}
	if len(seen) != n {
		t.Errorf("receiver saw %d distinct alert ids, want %d", len(seen), n)
	}
}

func TestNewWebhookRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  notify.WebhookConfig
		want string
	}{
		{"no name", notify.WebhookConfig{URL: "https://hooks.example/x"}, "name"},
		{"name with space", notify.WebhookConfig{Name: "a b", URL: "https://hooks.example/x"}, "name"},
		{"ftp scheme", notify.WebhookConfig{Name: "ops", URL: "ftp://hooks.example/x"}, "scheme"},
		{"relative", notify.WebhookConfig{Name: "ops", URL: "/x"}, "scheme"},
		{"no host", notify.WebhookConfig{Name: "ops", URL: "https:///x"}, "no host"},
		{"CRLF in URL", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x\r\nHost: evil"}, "line break"},
		{"header name with colon", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x", Headers: map[string]string{"X-A: b": "c"}}, "not a valid HTTP header name"},
		{"header name with CRLF", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x", Headers: map[string]string{"X-A\r\nX-B": "c"}}, "not a valid HTTP header name"},
		{"header value with LF", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x", Headers: map[string]string{"X-A": "b\nX-B: c"}}, "line break"},
		{"reserved header", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x", Headers: map[string]string{"content-type": "text/plain"}}, "set by Certwright"},
		{"signature header", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x", Headers: map[string]string{"X-Certwright-Signature": "x"}}, "set by Certwright"},
		{"negative timeout", notify.WebhookConfig{Name: "ops", URL: "https://hooks.example/x", Timeout: -time.Second}, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := notify.NewWebhook(tc.cfg)
			if !errors.Is(err, notify.ErrInvalidConfig) || !notify.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("x"), false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("wrapped: %w", notify.ErrInvalidConfig), true},
		{fmt.Errorf("dispatch: %w", &notify.Error{Permanent: true}), true},
		{&notify.Error{Permanent: false, Err: context.Canceled}, false},
	} {
		if got := notify.IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
