package metrics_test

import (
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/metrics"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store/storetest"
)

func tev() audit.Event {
	return audit.Event{Time: time.Now(), Principal: "test", Action: "test.action", Outcome: audit.Success}
}

// TestScrape checks the whole view over real HTTP: per-certificate expiry
// with its labels and which certificates qualify, CA expiry, counts by
// state, issuance and revocation outcomes from the services, and CRL and
// OCSP freshness.
func TestScrape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	now := e.clk.Now()

	web := e.issue(t, 30, "www.example.com", "example.com")
	doomed := e.issue(t, 60, "doomed.example.com")
	if _, err := e.issuer.Issue(ctx, issue.Request{Principal: machine, CA: "issuing", Profile: "no-such-profile",
		KeyAlgorithm: pki.ECDSAP256, DNSNames: []string{"x.example.com"}}); err == nil {
		t.Fatal("issuing under an unknown profile succeeded")
	}
	if _, _, err := e.revoker.Revoke(ctx, revoke.Request{Principal: admin, Serial: doomed.Serial, Reason: pki.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	e.insert(t, "e3", e.ica.ID, "web_server", now.Add(-3*day), nil)    // expired 3 days ago: still shown
	e.insert(t, "e9", e.ica.ID, "web_server", now.Add(-9*day), nil)    // expired 9 days ago: gone
	e.insert(t, "0d0d", "purged-ca-id", "client", now.Add(2*day), nil) // its CA no longer exists
	e.insert(t, "f00f", "", "", now.Add(100*day), func(c *inventory.Certificate) {
		c.Source, c.SANs, c.Subject = inventory.SourceImported, nil, "CN=legacy.example.net,O=Elsewhere"
	})
	e.insert(t, "a0a1", e.ica.ID, "web_server", now.Add(20*day), func(c *inventory.Certificate) { c.AutoRenew = true })
	e.revoker.MaintainCRLs(ctx)
	e.revoker.MaintainOCSP(ctx)

	fams := e.scrape(t)

	// Per-certificate expiry: the labels, the value, the set.
	got := value(t, fams, "certwright_certificate_expiry_seconds", map[string]string{
		"ca": "issuing", "profile": "web_server", "serial": web.Serial, "name": "www.example.com"})
	if want := web.NotAfter.Sub(now).Seconds(); !near(got, want, 5) {
		t.Errorf("expiry of %s = %.0f s, want %.0f s (±5)", web.Serial, got, want)
	}
	if got := value(t, fams, "certwright_certificate_expiry_seconds", map[string]string{"serial": "e3"}); !near(got, -3*86400, 5) {
		t.Errorf("expiry of a certificate expired 3 days ago = %.0f s, want -259200", got)
	}
	if got := labelMap(series(fams, "certwright_certificate_expiry_seconds", map[string]string{"serial": "f00f"})[0]); got["ca"] != "" || got["name"] != "legacy.example.net" {
		t.Errorf("imported certificate labels %v, want no CA and the subject's CN as name", got)
	}
	if got := labelMap(series(fams, "certwright_certificate_expiry_seconds", map[string]string{"serial": "0d0d"})[0]); got["ca"] != "purged-ca-id" {
		t.Errorf("certificate of an unknown CA labelled ca=%q, want its CA ID", got["ca"])
	}
	wantOrder := []string{"e3", "0d0d", "a0a1", web.Serial, "f00f"}
	if got := expirySerials(fams); !slices.Equal(got, wantOrder) {
		t.Errorf("expiry series %v, want %v (no revoked, no long-expired)", got, wantOrder)
	}
	if got := value(t, fams, "certwright_certificate_expiry_series_truncated", nil); got != 0 {
		t.Errorf("truncated = %v with 5 of 10000 series, want 0", got)
	}

	// CA expiry.
	for _, c := range []*ca.CA{e.root, e.ica} {
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := value(t, fams, "certwright_ca_expiry_seconds", map[string]string{"ca": c.Name}), cert.NotAfter.Sub(now).Seconds(); !near(got, want, 5) {
			t.Errorf("CA %s expiry %.0f s, want %.0f", c.Name, got, want)
		}
	}

	// Counts by state.
	for state, want := range map[string]float64{"valid": 4, "expired": 2, "revoked": 1, "imported": 1, "auto_renew": 1} {
		if got := value(t, fams, "certwright_certificates", map[string]string{"state": state}); got != want {
			t.Errorf("certificates{state=%q} = %v, want %v", state, got, want)
		}
	}

	// Service outcomes.
	if got := value(t, fams, "certwright_certificates_issued_total", map[string]string{"ca": "issuing", "profile": "web_server"}); got != 2 {
		t.Errorf("issued_total = %v, want 2", got)
	}
	if got := value(t, fams, "certwright_issue_failures_total", nil); got != 1 {
		t.Errorf("issue_failures_total = %v, want 1", got)
	}
	if got := value(t, fams, "certwright_issue_duration_seconds", nil); got != 3 {
		t.Errorf("issue_duration_seconds count = %v, want 3", got)
	}
	if got := value(t, fams, "certwright_revocations_total", map[string]string{"reason": "key_compromise"}); got != 1 {
		t.Errorf("revocations_total{key_compromise} = %v, want 1", got)
	}
	if got := value(t, fams, "certwright_revocations_total", map[string]string{"reason": "superseded"}); got != 0 {
		t.Errorf("revocations_total{superseded} = %v, want 0 (present from the start)", got)
	}
	if got := value(t, fams, "certwright_revoke_duration_seconds", nil); got != 1 {
		t.Errorf("revoke_duration_seconds count = %v, want 1", got)
	}

	// Revocation freshness, from the service's state.
	for _, f := range e.revoker.Freshness() {
		l := map[string]string{"ca": f.CAName}
		if got := value(t, fams, "certwright_crl_next_update_seconds", l); !near(got, f.CRLNextUpdate.Sub(now).Seconds(), 1) {
			t.Errorf("CA %s: crl_next_update_seconds %v, want %v", f.CAName, got, f.CRLNextUpdate.Sub(now).Seconds())
		}
		if got := value(t, fams, "certwright_crl_last_refresh_timestamp_seconds", l); got != float64(f.CRLThisUpdate.Unix()) {
			t.Errorf("CA %s: crl_last_refresh_timestamp_seconds %v, want %v", f.CAName, got, f.CRLThisUpdate.Unix())
		}
		if got := value(t, fams, "certwright_ocsp_responder_expiry_seconds", l); !near(got, f.OCSPResponderNotAfter.Sub(now).Seconds(), 1) {
			t.Errorf("CA %s: ocsp_responder_expiry_seconds %v", f.CAName, got)
		}
		if got := value(t, fams, "certwright_ocsp_next_update_seconds", l); !near(got, (18 * time.Hour).Seconds(), 1) {
			t.Errorf("CA %s: ocsp_next_update_seconds %v, want 18h", f.CAName, got)
		}
		for _, kind := range []string{"crl", "ocsp"} {
			if got := value(t, fams, "certwright_revocation_refresh_failing", map[string]string{"ca": f.CAName, "kind": kind}); got != 0 {
				t.Errorf("CA %s: refresh_failing{%s} = %v, want 0", f.CAName, kind, got)
			}
		}
	}
	if len(series(fams, "certwright_crl_next_update_seconds", nil)) != 2 {
		t.Errorf("CRL series for %d CAs, want 2", len(series(fams, "certwright_crl_next_update_seconds", nil)))
	}

	// The runtime and process collectors are there.
	if fams["go_goroutines"] == nil {
		t.Error("go_goroutines missing: no Go runtime collector")
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil && fams["process_start_time_seconds"] == nil {
		t.Error("process_start_time_seconds missing: no process collector")
	}
}

// TestExpiryCap checks that at most max_certificates series are exported,
// the soonest-expiring, and that the truncated flag says when the cap cut.
func TestExpiryCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	now := e.clk.Now()
	for i, s := range serials("c", 3) {
		e.insert(t, s, e.ica.ID, "web_server", now.Add(time.Duration(i+1)*day), nil)
	}
	fams := e.scrape(t)
	if got := expirySerials(fams); !slices.Equal(got, []string{"c00", "c01", "c02"}) {
		t.Errorf("at the cap: series %v, want all three", got)
	}
	if got := value(t, fams, "certwright_certificate_expiry_series_truncated", nil); got != 0 {
		t.Errorf("exactly at the cap: truncated = %v, want 0", got)
	}

	e.insert(t, "5000", e.ica.ID, "web_server", now.Add(time.Hour), nil)
	e.insert(t, "1a7e", e.ica.ID, "web_server", now.Add(400*day), nil)
	e.clk.Advance(11 * time.Second) // past the inventory cache
	fams = e.scrape(t)
	if got := expirySerials(fams); !slices.Equal(got, []string{"5000", "c00", "c01"}) {
		t.Errorf("over the cap: series %v, want the three soonest", got)
	}
	if got := value(t, fams, "certwright_certificate_expiry_series_truncated", nil); got != 1 {
		t.Errorf("over the cap: truncated = %v, want 1", got)
	}
	if got := value(t, fams, "certwright_certificates", map[string]string{"state": "valid"}); got != 5 {
		t.Errorf("counts are not capped: valid = %v, want 5", got)
	}
}

// TestInventoryCache checks that scrapes within 10 s share one read of the
// inventory while expiry values still follow the clock, and that a failed
// read serves the previous values and is counted.
func TestInventoryCache(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	e := newEnvOn(t, db, 0)
	now := e.clk.Now()
	e.insert(t, "a", e.ica.ID, "web_server", now.Add(day), nil)
	if got := expirySerials(e.scrape(t)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("series %v, want [a]", got)
	}
	e.insert(t, "b", e.ica.ID, "web_server", now.Add(2*day), nil)
	e.clk.Advance(9 * time.Second)
	fams := e.scrape(t)
	if got := expirySerials(fams); !slices.Equal(got, []string{"a"}) {
		t.Errorf("9 s later: series %v, want the cached [a]", got)
	}
	if got := value(t, fams, "certwright_certificate_expiry_seconds", map[string]string{"serial": "a"}); !near(got, (day - 9*time.Second).Seconds(), 0.001) {
		t.Errorf("cached expiry value %v, want it computed at scrape time (%v)", got, (day - 9*time.Second).Seconds())
	}
	e.clk.Advance(time.Second)
	if got := expirySerials(e.scrape(t)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("10 s later: series %v, want [a b] re-read", got)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	fams = e.scrape(t)
	if got := expirySerials(fams); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("store down: series %v, want the previous [a b]", got)
	}
	if got := value(t, fams, "certwright_metrics_store_errors_total", nil); got < 1 {
		t.Errorf("store down: metrics_store_errors_total = %v, want at least 1", got)
	}
}

func TestObserveRenewalAndDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.m.ObserveRenewal("auto", 20*time.Millisecond, nil)
	e.m.ObserveRenewal("auto", 30*time.Millisecond, errors.New("CA disabled"))
	e.m.ObserveRenewal("acme", time.Millisecond, nil)
	e.m.ObserveRenewal("made-up-kind-"+strings.Repeat("x", 10), time.Millisecond, nil)
	e.m.ObserveDelivery("ops-webhook", nil)
	e.m.ObserveDelivery("ops-webhook", errors.New("503"))
	e.m.ObserveDelivery("ops-webhook", errors.New("503"))
	fams := e.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"certwright_renewals_total", map[string]string{"kind": "auto", "result": "success"}, 1},
		{"certwright_renewals_total", map[string]string{"kind": "auto", "result": "failure"}, 1},
		{"certwright_renewals_total", map[string]string{"kind": "acme", "result": "success"}, 1},
		{"certwright_renewals_total", map[string]string{"kind": "other", "result": "success"}, 1},
		{"certwright_renewals_total", map[string]string{"kind": "agent", "result": "success"}, 0},
		{"certwright_renewal_duration_seconds", map[string]string{"kind": "auto"}, 2},
		{"certwright_alert_deliveries_total", map[string]string{"channel": "ops-webhook", "result": "success"}, 1},
		{"certwright_alert_deliveries_total", map[string]string{"channel": "ops-webhook", "result": "failure"}, 2},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// auto, agent, acme, est, scep, rotate, manual and other, each with
	// two results: a made-up kind is counted as other, adding no label.
	if n := len(series(fams, "certwright_renewals_total", nil)); n != 16 {
		t.Errorf("renewals_total has %d series, want 16 (8 kinds × 2 results): unknown kinds must not add labels", n)
	}
}

// TestACMEMiddleware sends requests through the middleware to a handler
// answering like the ACME server and checks the endpoint and order labels.
func TestACMEMiddleware(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	acmeLike := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/new-order"):
			w.WriteHeader(http.StatusCreated)
		case strings.HasSuffix(r.URL.Path, "/finalize") && r.Header.Get("X-Fail") != "":
			http.Error(w, `{"type":"urn:ietf:params:acme:error:badCSR"}`, http.StatusBadRequest)
		case strings.Contains(r.URL.Path, "/nope/"):
			http.NotFound(w, r)
		default:
			_, _ = w.Write([]byte("{}")) // implicit 200
		}
	})
	srv := newLoopbackServer(t, e.m.ACMEMiddleware(acmeLike))
	send := func(method, path string, fail bool) {
		t.Helper()
		req, err := http.NewRequest(method, srv+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fail {
			req.Header.Set("X-Fail", "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	const id = "Zx81kQ_random-order-id"
	send("GET", "/acme/default/directory", false)
	send("HEAD", "/acme/default/new-nonce", false)
	send("POST", "/acme/default/new-account", false)
	send("POST", "/acme/default/new-order", false)
	send("POST", "/acme/default/new-order", false)
	send("POST", "/acme/default/order/"+id, false)
	send("POST", "/acme/default/order/"+id+"/finalize", false)
	send("POST", "/acme/default/order/"+id+"/finalize", true)
	send("POST", "/acme/default/authz/az-"+id, false)
	send("POST", "/acme/default/chall/az-"+id+"/ch-1", false)
	send("POST", "/acme/default/cert/"+id, false)
	send("POST", "/acme/default/account/acct-"+id, false)
	send("POST", "/acme/default/account/acct-"+id+"/orders", false)
	send("GET", "/acme/default/renewal-info/"+id, false)
	send("POST", "/acme/default/revoke-cert", false)
	send("POST", "/acme/default/key-change", false)
	send("GET", "/acme/default/nope/"+id, false)
	send("GET", "/acme/default/order//finalize", false) // an empty ID is no order

	fams := e.scrape(t)
	for _, c := range []struct {
		endpoint, class string
		want            float64
	}{
		{"directory", "2xx", 1}, {"new-nonce", "2xx", 1}, {"new-account", "2xx", 1}, {"new-order", "2xx", 2},
		{"order", "2xx", 1}, {"finalize", "2xx", 1}, {"finalize", "4xx", 1}, {"authz", "2xx", 1},
		{"challenge", "2xx", 1}, {"cert", "2xx", 1}, {"account", "2xx", 2}, {"renewal-info", "2xx", 1},
		{"revoke-cert", "2xx", 1}, {"key-change", "2xx", 1}, {"other", "4xx", 1}, {"other", "2xx", 1},
	} {
		l := map[string]string{"endpoint": c.endpoint, "status_class": c.class}
		if got := value(t, fams, "certwright_acme_requests_total", l); got != c.want {
			t.Errorf("acme_requests_total%v = %v, want %v", l, got, c.want)
		}
	}
	for result, want := range map[string]float64{"created": 2, "valid": 1, "failed": 1} {
		if got := value(t, fams, "certwright_acme_orders_total", map[string]string{"result": result}); got != want {
			t.Errorf("acme_orders_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	for _, m := range series(fams, "certwright_acme_requests_total", nil) {
		for _, v := range labelMap(m) {
			if strings.Contains(v, id) || strings.Contains(v, "/") {
				t.Errorf("a label carries part of the raw path: %v", labelMap(m))
			}
		}
	}
}

// newLoopbackServer serves h on 127.0.0.1 until the test ends and returns
// its base URL.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestServeBearerAuth checks the separate metrics listener: 401 without
// the right bearer token, metrics with it.
func TestServeBearerAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	token := []byte("s3cret-metrics-token")
	go func() { done <- e.m.Serve(ctx, ln, token) }()
	url := "http://" + ln.Addr().String() + "/metrics"
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer s3cret-metrics-tokem", http.StatusUnauthorized},
		{"prefix of the token", "Bearer s3cret", http.StatusUnauthorized},
		{"token with a suffix", "Bearer s3cret-metrics-token2", http.StatusUnauthorized},
		{"basic scheme", "Basic czNjcmV0LW1ldHJpY3MtdG9rZW4=", http.StatusUnauthorized},
		{"token without scheme", "s3cret-metrics-token", http.StatusUnauthorized},
		{"right token", "Bearer s3cret-metrics-token", http.StatusOK},
		{"scheme in lower case", "bearer s3cret-metrics-token", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", c.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	fams := scrape(t, url, http.Header{"Authorization": {"Bearer " + string(token)}})
	if fams["certwright_certificates"] == nil {
		t.Error("authorised scrape lacks certwright_certificates")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of cancellation")
	}

}

// TestServeWithoutToken checks that a listener without a token serves
// only on loopback.
func TestServeWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Serve(ctx, ln, nil) }()
	fams := scrape(t, "http://"+ln.Addr().String()+"/metrics", nil)
	if fams["certwright_certificates"] == nil {
		t.Error("loopback scrape without a token lacks certwright_certificates")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of cancellation")
	}

	// Any address other than loopback needs a token. The listener is on
	// loopback (tests bind nowhere else); its reported address is not.
	wide := &addrListener{Listener: mustListen(t), addr: &net.TCPAddr{IP: net.IPv4zero, Port: 9464}}
	if err := e.m.Serve(context.Background(), wide, nil); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("Serve on 0.0.0.0 without a token = %v, want an error asking for a token", err)
	}
}

// addrListener reports addr as its address.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l *addrListener) Addr() net.Addr { return l.addr }

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestBearerAuthEmptyTokenAdmitsNobody(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	srv := newLoopbackServer(t, metrics.BearerAuth(nil, ok))
	for _, auth := range []string{"", "Bearer ", "Bearer"} {
		req, _ := http.NewRequest(http.MethodGet, srv, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("empty token, Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
	}
}

func TestLoadToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok, err := metrics.LoadToken(write("good", "  abc123\n", 0o600))
	if err != nil || string(tok) != "abc123" {
		t.Errorf("LoadToken(0600 file) = %q, %v; want abc123", tok, err)
	}
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"readable", "abc123\n", 0o644, "chmod 600"},
		{"empty", "\n\n", 0o600, "empty"},
		{"two words", "abc 123\n", 0o600, "more than one word"},
		{"huge", strings.Repeat("a", 5000), 0o600, "larger than"},
	} {
		if _, err := metrics.LoadToken(write(c.name, c.content, c.mode)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadToken(%s) = %v, want an error saying %q", c.name, err, c.want)
		}
	}
	if _, err := metrics.LoadToken(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadToken(missing) = %v, want ErrNotExist", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	log := slog.New(slog.DiscardHandler)
	clk := clock.Real{}
	for _, c := range []struct {
		name string
		cfg  metrics.Config
	}{
		{"no clock", metrics.Config{Log: log}},
		{"no logger", metrics.Config{Clock: clk}},
		{"negative cap", metrics.Config{Clock: clk, Log: log, MaxCertificates: -1}},
		{"cap too large", metrics.Config{Clock: clk, Log: log, MaxCertificates: metrics.MaxMaxCertificates + 1}},
	} {
		if _, err := metrics.New(c.cfg, db, db); err == nil {
			t.Errorf("%s: New succeeded", c.name)
		}
	}
	if _, err := metrics.New(metrics.Config{Clock: clk, Log: log}, nil, db); err == nil {
		t.Error("New without an inventory succeeded")
	}
	m, err := metrics.New(metrics.Config{Clock: clk, Log: log}, db, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterRevocation(nil); err == nil {
		t.Error("RegisterRevocation(nil) succeeded")
	}
}

// TestHandlerEncoding checks content coding negotiation and methods.
func TestHandlerEncoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	for _, c := range []struct {
		accept string
		gzip   bool
	}{
		{"", false},
		{"gzip", true},
		{"br, GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000, *", false},
		{"*", true},
		{"*;q=0", false},
		{"identity", false},
	} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.accept != "" {
			req.Header.Set("Accept-Encoding", c.accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != c.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", c.accept, got, c.gzip)
		} else if got {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatalf("Accept-Encoding %q: %v", c.accept, err)
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "\ncertwright_certificates{") {
			t.Errorf("Accept-Encoding %q: status %d, %d bytes, %v; want the exposition", c.accept, resp.StatusCode, len(b), err)
		}
	}
	resp, err := http.Post(e.srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}
}
