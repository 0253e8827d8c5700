package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/notify/notifytest"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tServed is a loopback TLS server whose certificate a test sets (and
// changes) while it runs.
type tServed struct {
	addr string
	cert atomic.Pointer[tls.Certificate]
	ln   net.Listener
}

func tStartServed(t *testing.T) *tServed {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tServed{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(func() { ln.Close() })
	cfg := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := s.cert.Load(); c != nil {
			return c, nil
		}
		return nil, errors.New("no certificate yet")
	}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					return
				}
				// An HTTPS server, so the scanner identifies it at once.
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(tc)); err == nil {
					io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				}
			}()
		}
	}()
	return s
}

// serve has s serve the issued certificate with key.
func (s *tServed) serve(t *testing.T, ic apitypes.IssuedCertificate, key *ecdsa.PrivateKey) {
	t.Helper()
	b, _ := pem.Decode([]byte(ic.CertificatePEM))
	if b == nil {
		t.Fatal("no certificate PEM")
	}
	s.cert.Store(&tls.Certificate{Certificate: [][]byte{b.Bytes}, PrivateKey: key})
}

// tSelfSigned is a self-signed certificate for name, issued by nobody here.
func tSelfSigned(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key := tECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(20 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tSignKey signs a CSR of key for name, renewing replaces when set.
func tSignKey(t *testing.T, in *tInstance, key *ecdsa.PrivateKey, name string, days int, replaces string) apitypes.IssuedCertificate {
	t.Helper()
	var out apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: string(tCSR(t, key, name)), Profile: "internal_service", ValidityDays: days, Replaces: replaces,
	}, &out)
	return out
}

// TestScanReconcilesServedCertificates: the scheduled scan, with the
// scan engine against loopback TLS servers, finds a revoked
// certificate still served (a critical alert delivered to the webhook),
// a renewed one still served (stale, a warning), a current one
// (managed), an unknown self-signed one (added to the inventory as
// discovered, with its endpoint) and, once time passes, an expired one.
func TestScanReconcilesServedCertificates(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			revoked, stale, current, unknown := tStartServed(t), tStartServed(t), tStartServed(t), tStartServed(t)
			cfg := tConfig(t, be.dbURL(t))
			rc := tStartReceivers(t, notifytest.WebhookOptions{})
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			tAlertConfig(t, cfg, rc)
			cfg.Scan.Allow = []string{"127.0.0.1"}
			cfg.Scan.RatePerHost = 1000 // loopback: the full engine's ~50 connections per TLS endpoint at once
			cfg.Scan.BannerTimeout = "200ms"
			cfg.Scan.Targets = []string{revoked.addr, stale.addr, current.addr, unknown.addr}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			in := tStart(t, cfg, clk)
			// The scan at start (the job never ran) finds the servers
			// with nothing to serve yet; it is waited for, so that the
			// scan below is the one that finds the certificates.
			tRunJob(t, in, ScanJob)

			rkey, skey, ckey := tECKey(t, elliptic.P256()), tECKey(t, elliptic.P256()), tECKey(t, elliptic.P256())
			r := tSignKey(t, in, rkey, "revoked.internal.test", 30, "")
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+r.Serial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
			revoked.serve(t, r, rkey)
			old := tSignKey(t, in, skey, "stale.internal.test", 30, "")
			renewed := tSignKey(t, in, skey, "stale.internal.test", 30, old.Serial)
			stale.serve(t, old, skey)
			short := tSignKey(t, in, ckey, "current.internal.test", 2, "")
			current.serve(t, short, ckey)
			self := tSelfSigned(t, "legacy.internal.test")
			unknown.cert.Store(&self)

			st := tRunJob(t, in, ScanJob)
			if !strings.HasPrefix(st.Detail, "4 targets scanned, 4 reachable") || !strings.Contains(st.Detail, "1 certificates discovered") {
				t.Errorf("scan job: %s", st.Detail)
			}
			tRunJob(t, in, "alert-delivery")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := rc.hook.Wait(ctx, 2); err != nil {
				t.Fatal(err)
			}
			got := map[lifecycle.AlertKind]lifecycle.Alert{}
			for _, h := range rc.hook.Requests() {
				var a lifecycle.Alert
				if err := json.Unmarshal(h.Alert, &a); err != nil {
					t.Fatal(err)
				}
				got[a.Kind] = a
			}
			if a, ok := got[lifecycle.AlertServedRevoked]; !ok || a.Severity != lifecycle.SeverityCritical || a.Subject != "endpoint:"+revoked.addr ||
				a.Cert == nil || a.Cert.Serial != r.Serial || !strings.Contains(a.Detail, "revoked") {
				t.Errorf("served_revoked alert delivered: %+v (present %v)", a, ok)
			}
			if a, ok := got[lifecycle.AlertServedStale]; !ok || a.Severity != lifecycle.SeverityWarning || !strings.Contains(a.Detail, renewed.Serial) {
				t.Errorf("served_stale alert delivered: %+v (present %v)", a, ok)
			}
			if len(got) != 2 {
				t.Errorf("alerts delivered: %v, want served_revoked and served_stale only", got)
			}

			// The self-signed certificate is in the inventory, discovered,
			// with where it was served.
			fp := pki.Fingerprint(self.Certificate[0])
			found, err := in.app.store.ListCertificates(ctx, inventory.Filter{Source: inventory.SourceDiscovered})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || found[0].Fingerprint != fp || found[0].Source != inventory.SourceDiscovered || found[0].SANs[0] != "legacy.internal.test" {
				t.Fatalf("discovered certificates: %+v", found)
			}
			seen, err := in.app.store.CertificateSightings(ctx, fp)
			if err != nil || len(seen) != 1 || seen[0].Endpoint != unknown.addr {
				t.Errorf("sightings of the discovered certificate: %+v (%v)", seen, err)
			}
			// It is monitored for expiry like an imported one.
			tRunJob(t, in, "expiry-check")
			als, err := in.app.store.CertificateAlerts(ctx, found[0].Serial, 10)
			if err != nil || len(als) != 1 || als[0].Alert.Kind != lifecycle.AlertExpiring || als[0].Alert.Threshold != "30d" {
				t.Errorf("expiry alerts of the discovered certificate: %+v (%v)", als, err)
			}
			var list apitypes.CertificateList
			in.must(http.StatusOK, "GET", "/api/v1/certificates?source=discovered", nil, &list)
			if len(list.Certificates) != 1 || list.Certificates[0].Source != "discovered" {
				t.Errorf("the API's listing by source discovered: %+v", list.Certificates)
			}
			statuses := map[string]discovery.Status{}
			eps, err := in.app.store.ListEndpoints(ctx, discovery.EndpointQuery{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ep := range eps {
				statuses[ep.Address] = ep.Match.Status
				// The revoked certificate's issuer is not served, so the
				// scan cannot ask its OCSP responder; the inventory
				// knows, and the grade says so.
				g := ep.Latest.Grade
				if revoked := ep.Address == revoked.addr; g == nil || revoked != (g.Letter == "F") ||
					revoked != slices.ContainsFunc(g.Reasons, func(r discovery.Reason) bool { return r.Code == discovery.ReasonRevokedHere }) {
					t.Errorf("%s: grade %+v", ep.Address, g)
				}
			}
			want := map[string]discovery.Status{revoked.addr: discovery.StatusRevoked, stale.addr: discovery.StatusStale,
				current.addr: discovery.StatusManaged, unknown.addr: discovery.StatusUnmanaged}
			for addr, w := range want {
				if statuses[addr] != w {
					t.Errorf("%s: %s, want %s", addr, statuses[addr], w)
				}
			}
			k, err := in.app.discovery.CurrentKPIs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if k.Endpoints != 4 || k.Encrypted != 4 || k.EncryptedShare != 1 || k.Unmanaged != 1 || k.TLS12Known != 4 || k.TLS12Only != 4 || k.ByStatus[discovery.StatusRevoked] != 1 {
				t.Errorf("KPIs: %+v", k)
			}

			// A rescan raises nothing new; three days later the short
			// certificate has expired while still served.
			if st := tRunJob(t, in, ScanJob); !strings.HasSuffix(st.Detail, "0 alerts raised") {
				t.Errorf("rescan: %s", st.Detail)
			}
			clk.Advance(3 * 24 * time.Hour)
			tRunJob(t, in, ScanJob)
			tRunJob(t, in, "alert-delivery")
			if _, err := rc.hook.Wait(ctx, 3); err != nil {
				t.Fatal(err)
			}
			var expired *lifecycle.Alert
			for _, h := range rc.hook.Requests() {
				var a lifecycle.Alert
				if json.Unmarshal(h.Alert, &a) == nil && a.Kind == lifecycle.AlertServedExpired {
					expired = &a
				}
			}
			if expired == nil || expired.Severity != lifecycle.SeverityCritical || expired.Subject != "endpoint:"+current.addr {
				t.Errorf("served_expired alert: %+v", expired)
			}
		})
	}
}

// TestScanQuietHoursAndAllowList: no scheduled scan starts in quiet
// hours; a target outside scan.allow refuses the configuration.
func TestScanQuietHoursAndAllowList(t *testing.T) {
	t.Parallel()
	srv := tStartServed(t)
	self := tSelfSigned(t, "quiet.internal.test")
	srv.cert.Store(&self)
	cfg := tConfig(t, "")
	now := time.Now().UTC().Truncate(time.Second)
	clk := clock.NewFake(now)
	tInit(t, cfg, clk)
	cfg.Scan.Allow = []string{"127.0.0.0/8"}
	cfg.Scan.RatePerHost = 1000 // loopback: the full engine's ~50 connections per TLS endpoint at once
	cfg.Scan.BannerTimeout = "200ms"
	cfg.Scan.Targets = []string{srv.addr}
	from := now.Add(-time.Hour)
	cfg.Scan.QuietHours = from.Format("15:04") + "-" + from.Add(2*time.Hour).Format("15:04")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in := tStart(t, cfg, clk)
	if st := tRunJob(t, in, ScanJob); !strings.HasPrefix(st.Detail, "quiet hours") {
		t.Errorf("scan in quiet hours: %s", st.Detail)
	}
	eps, err := in.app.store.ListEndpoints(context.Background(), discovery.EndpointQuery{Gone: true})
	if err != nil || len(eps) != 0 {
		t.Errorf("endpoints recorded in quiet hours: %d (%v)", len(eps), err)
	}
	clk.Advance(3 * time.Hour)
	if st := tRunJob(t, in, ScanJob); !strings.HasPrefix(st.Detail, "1 targets scanned, 1 reachable") {
		t.Errorf("scan after quiet hours: %s", st.Detail)
	}

	bad := tConfig(t, "")
	bad.Scan.Allow = []string{"10.0.0.0/8"}
	bad.Scan.Targets = []string{"10.1.2.3:443", "127.0.0.1:" + strconv.Itoa(8443)}
	err = bad.Validate()
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "scan.targets" || !strings.Contains(err.Error(), "127.0.0.1:8443") || !strings.Contains(err.Error(), "scan.allow") {
		t.Errorf("a target outside the allow-list: %v, want a scan.targets error naming it", err)
	}
	none := tConfig(t, "")
	none.Scan.Targets = []string{"db.internal.test:5432"}
	if err := none.Validate(); err == nil || !strings.Contains(err.Error(), "scan.allow is empty") {
		t.Errorf("targets with no allow-list: %v, want refused (deny by default)", err)
	}
}

// TestScanAPI: the scan routes over HTTPS: a scan run now of a given
// target within the allow-list, refused (and audited) outside it and for
// a principal without unscoped ca:manage; the endpoint, its history and
// the KPIs for readers; nothing for a scoped reader.
func TestScanAPI(t *testing.T) {
	t.Parallel()
	srv := tStartServed(t)
	self := tSelfSigned(t, "api.internal.test")
	srv.cert.Store(&self)
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	cfg.Scan.Allow = []string{"127.0.0.1"}
	cfg.Scan.RatePerHost = 1000 // loopback: the full engine's ~50 connections per TLS endpoint at once
	cfg.Scan.BannerTimeout = "200ms"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in := tStart(t, cfg, clock.Real{})
	viewer := in.tCreatePrincipal(t, "scan-viewer", "viewer", apitypes.Scope{}, true)
	scoped := in.tCreatePrincipal(t, "scan-scoped", "viewer", apitypes.Scope{CAs: []string{"issuing"}}, true)
	post := func(auth string, body string) tResp {
		return in.raw("POST", "/api/v1/scan/run", auth, strings.NewReader(body))
	}

	// Nothing configured and nothing given: a clear refusal.
	if r := post(in.bearer(), `{}`); r.status != http.StatusBadRequest || !strings.Contains(r.apiErr(t).Detail, "scan.targets") {
		t.Errorf("scan with no targets: %d %s", r.status, tTrim(r.body))
	}
	// Outside the allow-list: refused before anything is dialled.
	r := post(in.bearer(), `{"targets":["10.9.9.9:443"]}`)
	if r.status != http.StatusForbidden || !strings.Contains(r.apiErr(t).Detail, "scan.allow") {
		t.Errorf("target outside the allow-list: %d %s", r.status, tTrim(r.body))
	}
	if r := post(viewer, `{"targets":["`+srv.addr+`"]}`); r.status != http.StatusForbidden {
		t.Errorf("a viewer ran a scan: %d %s", r.status, tTrim(r.body))
	}
	var res apitypes.ScanResult
	r = post(in.bearer(), `{"targets":["`+srv.addr+`"]}`)
	if r.status != http.StatusOK {
		t.Fatalf("scan: %d %s", r.status, tTrim(r.body))
	}
	if err := json.Unmarshal(r.body, &res); err != nil || res.Targets != 1 || res.Reachable != 1 || res.Discovered != 1 {
		t.Errorf("scan result %+v (%v)", res, err)
	}
	outcomes := map[string]int{}
	if err := in.app.store.EachAuditEvent(context.Background(), 0, func(e *audit.Event) error {
		if e.Action == "scan.run" {
			outcomes[string(e.Outcome)]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if outcomes[string(audit.Success)] != 1 || outcomes[string(audit.Failed)] != 2 {
		t.Errorf("scan.run audit outcomes %v, want 1 success and 2 failures (no targets, outside the allow-list)", outcomes)
	}

	var list apitypes.EndpointList
	rv := in.raw("GET", "/api/v1/scan/endpoints", viewer, nil)
	if rv.status != http.StatusOK || json.Unmarshal(rv.body, &list) != nil || len(list.Endpoints) != 1 {
		t.Fatalf("viewer's endpoint list: %d %s", rv.status, tTrim(rv.body))
	}
	ep := list.Endpoints[0]
	if ep.Address != srv.addr || ep.Encryption != "implicit-tls" || ep.Match == nil || ep.Match.Status != "unmanaged" || !strings.Contains(ep.ChainPEM, "BEGIN CERTIFICATE") {
		t.Errorf("endpoint %+v", ep)
	}
	var detail apitypes.EndpointDetail
	in.must(http.StatusOK, "GET", "/api/v1/scan/endpoint?address="+srv.addr, nil, &detail)
	kinds := map[string]string{}
	for _, e := range detail.Events {
		kinds[e.Kind] = e.To
	}
	// A self-signed certificate grades T: weak, so exposed from the start.
	if len(detail.Events) != 2 || kinds["appeared"] != "implicit-tls" || kinds["exposed"] != "weak" || len(detail.ServedAt) != 1 || detail.ServedAt[0].Endpoint != srv.addr {
		t.Errorf("endpoint detail %+v", detail)
	}
	// The per-version detail survives the store and reaches the API.
	var versions []string
	for _, p := range detail.Endpoint.Protocols {
		versions = append(versions, p.Version)
		if len(p.Suites) == 0 || !strings.HasPrefix(p.Summary, strconv.Itoa(len(p.Suites))+" suite") || p.Suites[0].Cipher == "" || p.Suites[0].KeyExchange == "" {
			t.Errorf("%s detail %+v: want its suites, each with cipher and key exchange, and a summary counting them", p.Version, p)
		}
	}
	if !detail.Endpoint.SuitesComplete || !slices.Equal(versions, detail.Endpoint.Versions) || !slices.Contains(versions, "TLS1.3") {
		t.Errorf("protocols of versions %v (suites complete %v), want one per version accepted %v", versions, detail.Endpoint.SuitesComplete, detail.Endpoint.Versions)
	}
	if r := in.raw("GET", "/api/v1/scan/endpoint?address=127.0.0.1:1", in.bearer(), nil); r.status != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", r.status)
	}
	var k apitypes.ScanKPIs
	in.must(http.StatusOK, "GET", "/api/v1/scan/kpis", nil, &k)
	if k.Endpoints != 1 || k.Encrypted != 1 || k.Unmanaged != 1 || k.ByEncryption["none"] != 0 {
		t.Errorf("KPIs %+v", k)
	}
	var rep apitypes.ComplianceReport
	in.must(http.StatusOK, "GET", "/api/v1/reports/compliance", nil, &rep)
	if rep.Encryption == nil || rep.Encryption.Endpoints != 1 || rep.Encryption.Unmanaged != 1 {
		t.Errorf("the compliance report's encryption KPIs: %+v", rep.Encryption)
	}
	// The CSV and HTML renderings carry them too.
	csvRep := in.call("GET", "/api/v1/reports/compliance?format=csv", nil)
	if recs, err := csv.NewReader(bytes.NewReader(csvRep.body)).ReadAll(); csvRep.status != http.StatusOK || err != nil ||
		!slices.ContainsFunc(recs, func(r []string) bool { return r[0] == "Encrypted endpoints" && r[1] == "100.0%" }) {
		t.Errorf("the CSV report's encryption KPIs: %d %v\n%s", csvRep.status, err, csvRep.body)
	}
	htmlRep := in.call("GET", "/api/v1/reports/compliance?format=html", nil)
	if htmlRep.status != http.StatusOK || !bytes.Contains(htmlRep.body, []byte(`<table id="encryption-kpis">`)) ||
		!bytes.Contains(htmlRep.body, []byte("<td>Unmanaged certificates</td><td class=\"num\">1</td>")) {
		t.Errorf("the HTML report's encryption KPIs: %d\n%s", htmlRep.status, htmlRep.body)
	}
	fams := in.tMetrics()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"certwright_scan_endpoints", map[string]string{"encryption": "implicit-tls"}, 1},
		{"certwright_scan_endpoints", map[string]string{"encryption": "none"}, 0},
		{"certwright_scan_unmanaged_certificates", nil, 1},
		{"certwright_scan_served_certificates", map[string]string{"status": "unmanaged"}, 1},
		{"certwright_scan_share", map[string]string{"kpi": "encrypted"}, 1},
		{"certwright_scan_kpis_up", nil, 1},
	} {
		if got, ok := tMetric(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, path := range []string{"/api/v1/scan/endpoints", "/api/v1/scan/kpis"} {
		if r := in.raw("GET", path, scoped, nil); r.status != http.StatusForbidden {
			t.Errorf("a scoped reader got %s: %d", path, r.status)
		}
	}
}
