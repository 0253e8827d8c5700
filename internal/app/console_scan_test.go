package app

import (
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"html"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tEvilCN is a subject a scanned peer chooses: markup and quotes, which
// every page must show as text.
const tEvilCN = `<img src=x onerror=alert(1)>"'`

// tScanInstance starts a server that may scan loopback, and two loopback
// TLS servers serving self-signed certificates: one for
// console.internal.test, one whose subject is tEvilCN.
func tScanInstance(t *testing.T) (in *tInstance, plain, evil *tServed) {
	t.Helper()
	plain, evil = tStartServed(t), tStartServed(t)
	self := tSelfSigned(t, "console.internal.test")
	plain.cert.Store(&self)
	key := tECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: tEvilCN, Organization: []string{`"><script>alert(2)</script>`}},
		DNSNames: []string{"evil.internal.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(20 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	evil.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	cfg.Scan.Allow = []string{"127.0.0.1"}
	cfg.Scan.RatePerHost = 1000 // loopback: the full engine's ~50 connections per TLS endpoint at once
	cfg.Scan.BannerTimeout = "200ms"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return tStart(t, cfg, clock.Real{}), plain, evil
}

// tHuman creates a human principal with role and scope, and returns its
// token.
func tHuman(t *testing.T, in *tInstance, name, role string, scope apitypes.Scope) string {
	t.Helper()
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: name, Kind: "human", Role: role, Scope: scope, Token: true}, &res)
	return res.Token.Token
}

// tScanRuns counts the scan.run audit events by principal and outcome
// ("admin success").
func tScanRuns(t *testing.T, in *tInstance) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ev := range tAuditEvents(t, in, 0) {
		if ev.Action == "scan.run" {
			out[ev.Principal+" "+string(ev.Outcome)]++
		}
	}
	return out
}

// TestConsoleEndpoints: the endpoints page and an endpoint's page, and
// Scan now. An admin's Scan now (with the CSRF token) scans the given
// loopback targets through the API's call, audited as scan.run; the list
// then shows each endpoint's encryption, versions, grade (with the API's
// reasons on hover), served-certificate status linked to the discovered
// certificate, under the KPIs; filters narrow it as the API's do. The
// endpoint page shows the grade reasons, the findings, the served chain,
// the history and where the certificate is served. What a peer chose (a
// subject with markup) is shown as text. Scan now without the CSRF token,
// outside scan.allow, by a viewer (no ca:manage) or by a CA admin scoped
// to one CA (ca:manage within a scope, refused and audited by the core)
// scans nothing; a viewer scoped to one CA is refused the pages and not
// offered them in the nav.
func TestConsoleEndpoints(t *testing.T) {
	t.Parallel()
	in, plain, evil := tScanInstance(t)
	admin := in.browser(t)
	admin.signIn(in.token)

	r := admin.do("GET", "/endpoints", nil)
	page := string(r.body)
	if r.status != http.StatusOK || !strings.Contains(page, `href="/endpoints" aria-current="page">Endpoints</a>`) ||
		!strings.Contains(page, "No endpoint has been found yet") || !strings.Contains(page, `action="/endpoints/scan"`) ||
		!strings.Contains(page, "within scan.allow: 127.0.0.1") {
		t.Fatalf("endpoints page before a scan: %d %s", r.status, tTrim(r.body))
	}

	// Refused before anything is dialled: no CSRF token, a target outside
	// scan.allow.
	if r := admin.do("POST", "/endpoints/scan", url.Values{"targets": {plain.addr}}); r.status != http.StatusForbidden {
		t.Errorf("Scan now without the CSRF token: %d, want 403", r.status)
	}
	if n := tScanRuns(t, in); len(n) != 0 {
		t.Errorf("a scan ran without the CSRF token: %v", n)
	}
	r = admin.do("POST", "/endpoints/scan", url.Values{"csrf": {admin.csrf()}, "targets": {"10.9.9.9:443"}})
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "add it to scan.allow") || !strings.Contains(string(r.body), "10.9.9.9:443</textarea>") {
		t.Errorf("Scan now outside scan.allow: %d, want 403 naming scan.allow with the targets kept: %s", r.status, tTrim(r.body))
	}

	r = admin.do("POST", "/endpoints/scan", url.Values{"csrf": {admin.csrf()}, "targets": {plain.addr + ", " + evil.addr}})
	page = string(r.body)
	if r.status != http.StatusOK || !strings.Contains(page, "Scanned "+plain.addr+", "+evil.addr+": 2 targets scanned, 2 reachable") {
		t.Fatalf("Scan now: %d %s", r.status, tTrim(r.body))
	}
	if got := tScanRuns(t, in); got["admin "+string(audit.Success)] != 1 || got["admin "+string(audit.Failed)] != 1 {
		t.Errorf("scan.run audit events %v, want admin's success and its refusal outside scan.allow", got)
	}

	var list apitypes.EndpointList
	in.must(http.StatusOK, "GET", "/api/v1/scan/endpoints", nil, &list)
	if len(list.Endpoints) != 2 {
		t.Fatalf("the API lists %d endpoints, want 2", len(list.Endpoints))
	}
	page = string(admin.do("GET", "/endpoints", nil).body)
	rows := tSection(page, "list")
	for _, ep := range list.Endpoints {
		g := ep.Grade
		if g == nil || ep.Match == nil {
			t.Fatalf("endpoint %s has no grade or match: %+v", ep.Address, ep)
		}
		reasons := make([]string, len(g.Reasons))
		for i, rs := range g.Reasons {
			reasons[i] = rs.Message
		}
		for _, want := range []string{
			`<a href="/endpoints/` + ep.Address + `">` + ep.Address + `</a>`,
			`<span class="enc encrypted">TLS</span>`,
			`<span class="grade bad" title="` + html.EscapeString(strings.Join(reasons, "\n")) + `">` + g.Letter + `</span>`,
			`<span class="status warning" title="unmanaged: known only from scans">unmanaged</span> <a href="/certificates/` + ep.Match.Serial + `">`,
		} {
			if !strings.Contains(rows, want) {
				t.Errorf("the list lacks %q for %s: %s", want, ep.Address, rows)
			}
		}
		for _, v := range ep.Versions {
			if !strings.Contains(rows, v) {
				t.Errorf("the list lacks version %s of %s", v, ep.Address)
			}
		}
	}
	if strings.Contains(page, "<img src=x") || strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;img src=x onerror=alert(1)") {
		t.Errorf("the peer's subject is not shown as text: %s", rows)
	}
	var k apitypes.ScanKPIs
	in.must(http.StatusOK, "GET", "/api/v1/scan/kpis", nil, &k)
	kpis := tSection(page, "kpis")
	for _, want := range []string{`<span class="n">2</span> endpoints`, `<span class="n">100.0%</span> encrypted`, `<span class="n">2</span> unmanaged certificates`,
		`<span class="n">2</span> plaintext or weak now`, `<span class="n">n/a</span> mean time to remediate`, `id="grades-h"`} {
		if !strings.Contains(kpis, want) {
			t.Errorf("the KPIs lack %q: %s", want, kpis)
		}
	}
	if k.Endpoints != 2 || k.Unmanaged != 2 || k.Exposed != 2 {
		t.Errorf("the API's KPIs %+v differ from what the page was checked against", k)
	}
	for letter, n := range k.Grades {
		if figs := tChartFigures(t, page, "grades"); figs[letter].values == nil || figs[letter].values[0] != n {
			t.Errorf("grade chart: %s = %v, the API counts %d", letter, figs[letter].values, n)
		}
	}

	// Filters, as the API's.
	if s := tSection(string(admin.do("GET", "/endpoints?encryption=none", nil).body), "list"); strings.Contains(s, plain.addr) || !strings.Contains(s, "No endpoint matches the filter") {
		t.Errorf("filtered by encryption none: %s", s)
	}
	if s := tSection(string(admin.do("GET", "/endpoints?status=unmanaged", nil).body), "list"); !strings.Contains(s, plain.addr) || !strings.Contains(s, evil.addr) {
		t.Errorf("filtered by status unmanaged: %s", s)
	}
	if s := tSection(string(admin.do("GET", "/endpoints?status=managed", nil).body), "list"); strings.Contains(s, plain.addr) {
		t.Errorf("filtered by status managed: %s", s)
	}
	if r := admin.do("GET", "/endpoints?status=bogus", nil); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "choose managed, stale, revoked, expired or unmanaged") {
		t.Errorf("a bad status filter: %d %s", r.status, tTrim(r.body))
	}

	// The endpoint's page.
	var detail apitypes.EndpointDetail
	in.must(http.StatusOK, "GET", "/api/v1/scan/endpoint?address="+evil.addr, nil, &detail)
	r = admin.do("GET", "/endpoints/"+evil.addr, nil)
	page = string(r.body)
	if r.status != http.StatusOK {
		t.Fatalf("endpoint page: %d %s", r.status, tTrim(r.body))
	}
	for _, rs := range detail.Endpoint.Grade.Reasons {
		if !strings.Contains(tSection(page, "grade"), "<code>"+rs.Code+"</code>: "+html.EscapeString(rs.Message)) {
			t.Errorf("the grade reasons lack %s: %s", rs.Code, tSection(page, "grade"))
		}
	}
	for _, f := range detail.Endpoint.Findings {
		if !strings.Contains(tSection(page, "findings"), html.EscapeString(f.Message)) {
			t.Errorf("the findings lack %q", f.Message)
		}
	}
	chain := tSection(page, "chain")
	if !strings.Contains(chain, `href="/certificates/`+detail.Endpoint.Match.Serial+`"`) || !strings.Contains(chain, "SHA-256 "+detail.Endpoint.Match.Fingerprint) ||
		!strings.Contains(chain, `<span class="wrap">CN=\&lt;img src=x onerror=alert(1)\&gt;`) {
		t.Errorf("served chain: %s", chain)
	}
	if h := tSection(page, "history"); !strings.Contains(h, "first found; encryption implicit-tls") || !strings.Contains(h, "found weak: needs remediation") {
		t.Errorf("history: %s", h)
	}
	if s := tSection(page, "served"); !strings.Contains(s, evil.addr+` <span class="hint">(this one)</span>`) {
		t.Errorf("where served: %s", s)
	}
	if strings.Contains(page, "<img src=x") || strings.Contains(page, "<script>alert") {
		t.Error("the endpoint page shows the peer's subject as markup")
	}
	if r := admin.do("GET", "/endpoints/127.0.0.1:1", nil); r.status != http.StatusNotFound {
		t.Errorf("an unknown endpoint: %d, want 404", r.status)
	}
	// The compliance report downloaded from the console carries the
	// encryption KPIs, as the API's does.
	if r := admin.do("GET", "/compliance/report", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "Encryption KPIs") {
		t.Errorf("the console's compliance report: %d, no Encryption KPIs section", r.status)
	}

	// A viewer reads the pages, gets no Scan now, and is refused one.
	vb := in.browser(t)
	vb.signIn(tHuman(t, in, "val", authz.RoleViewer, apitypes.Scope{}))
	r = vb.do("GET", "/endpoints", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), plain.addr) || strings.Contains(string(r.body), `action="/endpoints/scan"`) {
		t.Errorf("viewer's endpoints page: %d, want 200 with the list and no Scan now", r.status)
	}
	if r := vb.do("GET", "/endpoints/"+plain.addr, nil); r.status != http.StatusOK || strings.Contains(string(r.body), `action="/endpoints/scan"`) {
		t.Errorf("viewer's endpoint page: %d, want 200 without Scan now", r.status)
	}
	if r := vb.do("POST", "/endpoints/scan", url.Values{"csrf": {vb.csrf()}, "targets": {plain.addr}}); r.status != http.StatusForbidden {
		t.Errorf("a viewer's Scan now: %d, want 403", r.status)
	}

	// ca:manage within one CA's scope passes the route's check, and the
	// core refuses it (and audits the refusal), as the API does.
	cb := in.browser(t)
	cb.signIn(tHuman(t, in, "cara", authz.RoleCAAdmin, apitypes.Scope{CAs: []string{"issuing"}}))
	r = cb.do("POST", "/endpoints/scan", url.Values{"csrf": {cb.csrf()}, "targets": {plain.addr}})
	if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "with no scope") {
		t.Errorf("a scoped CA admin's Scan now: %d, want 403 saying it needs ca:manage with no scope: %s", r.status, tTrim(r.body))
	}
	if got := tScanRuns(t, in); got["cara "+string(audit.Failed)] != 1 || got["admin "+string(audit.Success)] != 1 {
		t.Errorf("scan.run audit events %v, want cara's refusal and admin's one scan", got)
	}
	// Its cert:read is scoped too: the endpoints are not for it.
	for _, p := range []string{"/endpoints", "/endpoints/" + plain.addr} {
		if r := cb.do("GET", p, nil); r.status != http.StatusForbidden || strings.Contains(string(r.body), plain.addr+"</a>") {
			t.Errorf("GET %s with a scoped cert:read: %d, want 403", p, r.status)
		}
	}
	if strings.Contains(string(cb.do("GET", "/", nil).body), `href="/endpoints"`) {
		t.Error("the nav links the endpoints page for a principal refused it")
	}
}

// TestConsoleEndpointsPaging: on both backends, the list shows 100
// endpoints a page in address order, its Next link keeps the filter and
// continues after the last address, and the last page links back to the
// first.
func TestConsoleEndpointsPaging(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			now := time.Now().UTC().Truncate(time.Second)
			var rec discovery.ScanRecord
			for i := range 130 {
				enc := discovery.EncNone
				if i%13 == 0 {
					enc = discovery.EncImplicitTLS // 10 of them
				}
				addr := fmt.Sprintf("10.0.%d.%d:443", i/100, i%100)
				rec.Endpoints = append(rec.Endpoints, &discovery.Endpoint{Address: addr, FirstSeen: now, LastSeen: now, LastScanned: now,
					Latest: discovery.Observation{Address: addr, ObservedAt: now, Reachable: true, Protocol: "http", Encryption: enc}})
			}
			if err := in.app.store.SaveScan(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			b := in.browser(t)
			b.signIn(in.token)
			rowLink := regexp.MustCompile(`<td class="mono"><a href="/endpoints/([^"]+)">`)
			next := regexp.MustCompile(`<a href="([^"]+)" rel="next">Next endpoints</a>`)
			page := func(path string) (addrs []string, nextLink string, first bool) {
				t.Helper()
				r := b.do("GET", path, nil)
				if r.status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, r.status, tTrim(r.body))
				}
				list := tSection(string(r.body), "list")
				for _, m := range rowLink.FindAllStringSubmatch(list, -1) {
					addrs = append(addrs, m[1])
				}
				if m := next.FindStringSubmatch(list); m != nil {
					nextLink = html.UnescapeString(m[1])
				}
				return addrs, nextLink, strings.Contains(list, ">First page</a>")
			}
			a1, n1, first := page("/endpoints?encryption=none")
			if len(a1) != 100 || n1 == "" || first || !strings.Contains(n1, "encryption=none") || !slices.IsSorted(a1) {
				t.Fatalf("first page: %d rows, next %q, first-page link %v", len(a1), n1, first)
			}
			a2, n2, first := page(n1)
			if len(a2) != 20 || n2 != "" || !first || a2[0] <= a1[99] {
				t.Errorf("second page: %d rows (want the 20 left, after %s: %v), next %q, first-page link %v", len(a2), a1[99], a2, n2, first)
			}
			if all, n, _ := page("/endpoints?encryption=implicit-tls"); len(all) != 10 || n != "" {
				t.Errorf("filtered by implicit-tls: %d rows, next %q; want 10 on one page", len(all), n)
			}
		})
	}
}
