package app

import (
	"crypto/elliptic"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tSilentHTTP answers http-01 by serving nothing, so the validation
// fails: nothing listens on the port the server connects to. (Unlike
// dns-01, lego then asks no DNS server anything.)
type tSilentHTTP struct{}

func (tSilentHTTP) Present(string, string, string) error { return nil }
func (tSilentHTTP) CleanUp(string, string, string) error { return nil }

// tACMEActivity creates provisioner "shop" on e and runs lego against it:
// one account gets a certificate for www.shop.acme.test, another fails
// http-01 for bad.shop.acme.test. It returns the first account's ID, the
// second's, the certificate's serial and the first account's client.
func tACMEActivity(t *testing.T, e *tLegoEnv) (good, bad, serial string, client *tLegoAcct) {
	t.Helper()
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "shop", CA: "issuing", Profile: "web_server", Challenges: []string{"http-01", "tls-alpn-01"},
	}, nil)
	a := e.newClient(t, "shop", tECKey(t, elliptic.P256()), "http-01")
	good = path.Base(a.register(t))
	serial = a.obtain(t, certificate.ObtainRequest{Domains: []string{"www.shop.acme.test"}}).serial

	f := e.newClient(t, "shop", tECKey(t, elliptic.P256()))
	if err := f.Challenge.SetHTTP01Provider(tSilentHTTP{}); err != nil {
		t.Fatal(err)
	}
	bad = path.Base(f.register(t))
	if _, err := f.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"bad.shop.acme.test"}, Bundle: true}); err == nil {
		t.Fatal("http-01 with nothing served succeeded")
	}
	return good, bad, serial, a
}

// TestConsoleACME: on both backends, after real ACME clients used a
// provisioner, the ACME pages show its settings and directory URL, its
// accounts with their contact, its orders with their names and
// certificate, and the failed validation with its error. A viewer sees no
// disable button and its POST is refused; a viewer scoped to another CA
// does not see the provisioner at all. The admin disables it (after the
// confirmation), and a new order is refused; enabling restores orders.
func TestConsoleACME(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := tLegoNewEnv(t, be.dbURL(t))
			good, bad, serial, client := tACMEActivity(t, e)

			admin := e.browser(t)
			admin.signIn(e.token)
			list := admin.do("GET", "/acme-provisioners", nil)
			body := string(list.body)
			if list.status != http.StatusOK || !strings.Contains(body, `href="/acme-provisioners/shop"`) ||
				!strings.Contains(body, e.directoryURL("shop")) || !strings.Contains(body, "http-01, tls-alpn-01") ||
				!strings.Contains(body, `action="/acme-provisioners/shop/disable"`) || !strings.Contains(body, `href="/acme-provisioners" aria-current="page">ACME</a>`) {
				t.Fatalf("ACME list: %d %s", list.status, tTrim(list.body))
			}
			page := admin.do("GET", "/acme-provisioners/shop", nil)
			body = string(page.body)
			if page.status != http.StatusOK {
				t.Fatalf("provisioner page: %d %s", page.status, tTrim(page.body))
			}
			accounts, orders, failures := tSection(body, "accounts"), tSection(body, "orders"), tSection(body, "failures")
			for _, want := range []string{good, bad, "mailto:ops@acme.test", `<span class="status valid">valid</span>`} {
				if !strings.Contains(accounts, want) {
					t.Errorf("accounts section lacks %q: %s", want, accounts)
				}
			}
			for _, want := range []string{"www.shop.acme.test", `href="/certificates/` + serial + `"`, "bad.shop.acme.test", `<span class="status invalid">invalid</span>`} {
				if !strings.Contains(orders, want) {
					t.Errorf("orders section lacks %q: %s", want, orders)
				}
			}
			for _, want := range []string{"bad.shop.acme.test", "http-01", bad} {
				if !strings.Contains(failures, want) {
					t.Errorf("failed validations lack %q: %s", want, failures)
				}
			}
			if strings.Contains(failures, "www.shop.acme.test") || !strings.Contains(failures, `<div class="hint">connection</div>`) {
				t.Errorf("failed validations show the wrong rows or no error: %s", failures)
			}
			if r := admin.do("GET", "/acme-provisioners/nope", nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "shop") {
				t.Errorf("unknown provisioner: %d, want 404 naming no other: %s", r.status, tTrim(r.body))
			}

			// A viewer reads but gets no button, and its POST is refused.
			var viewer apitypes.CreatePrincipalResult
			e.must(http.StatusCreated, "POST", "/api/v1/principals",
				apitypes.CreatePrincipalRequest{Name: "vera", Kind: "human", Role: authz.RoleViewer, Token: true}, &viewer)
			vb := e.browser(t)
			vb.signIn(viewer.Token.Token)
			for _, p := range []string{"/acme-provisioners", "/acme-provisioners/shop"} {
				r := vb.do("GET", p, nil)
				if r.status != http.StatusOK || !strings.Contains(string(r.body), "shop") || strings.Contains(string(r.body), "/disable") {
					t.Errorf("viewer's %s: %d, want the provisioner without a disable button: %s", p, r.status, tTrim(r.body))
				}
			}
			if r := vb.do("POST", "/acme-provisioners/shop/disable", url.Values{"csrf": {vb.csrf()}, "confirm": {"yes"}}); r.status != http.StatusForbidden {
				t.Errorf("viewer disabling: %d, want 403", r.status)
			}
			// A CA admin of root may read, but not manage, a provisioner of
			// issuing: no button, and the core refuses its POST.
			var rootAdmin apitypes.CreatePrincipalResult
			e.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "rita", Kind: "human", Role: authz.RoleCAAdmin, Scope: apitypes.Scope{CAs: []string{"root"}}, Token: true}, &rootAdmin)
			rb := e.browser(t)
			rb.signIn(rootAdmin.Token.Token)
			if r := rb.do("GET", "/acme-provisioners", nil); r.status != http.StatusOK || strings.Contains(string(r.body), "shop") {
				t.Errorf("a principal whose ca:read covers only root sees the provisioner of issuing: %d %s", r.status, tTrim(r.body))
			}
			if r := rb.do("GET", "/acme-provisioners/shop", nil); r.status != http.StatusNotFound {
				t.Errorf("out-of-scope provisioner page: %d, want 404", r.status)
			}
			if r := rb.do("POST", "/acme-provisioners/shop/disable", url.Values{"csrf": {rb.csrf()}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
				t.Errorf("out-of-scope disable: %d, want 404", r.status)
			}
			var prov apitypes.Provisioner
			e.must(http.StatusOK, "GET", "/api/v1/acme/provisioners/shop", nil, &prov)
			if prov.Disabled {
				t.Fatal("a refused POST disabled the provisioner")
			}

			// The admin disables, with the confirmation only.
			csrf := admin.csrf()
			if r := admin.do("POST", "/acme-provisioners/shop/disable", url.Values{"csrf": {csrf}}); r.status != http.StatusBadRequest {
				t.Errorf("disable without the confirmation: %d, want 400", r.status)
			}
			if r := admin.do("POST", "/acme-provisioners/shop/disable", url.Values{"confirm": {"yes"}}); r.status != http.StatusForbidden {
				t.Errorf("disable without the CSRF token: %d, want 403", r.status)
			}
			r := admin.do("POST", "/acme-provisioners/shop/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}})
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/acme-provisioners/shop?changed=disabled" {
				t.Fatalf("disable: %d to %q %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			e.must(http.StatusOK, "GET", "/api/v1/acme/provisioners/shop", nil, &prov)
			if !prov.Disabled || prov.DisabledBy != "admin" {
				t.Fatalf("after the console's disable the API says %+v", prov)
			}
			_, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"off.shop.acme.test"}, Bundle: true})
			if pd := tLegoWantProblem(t, err, "unauthorized"); !strings.Contains(pd.Detail, "disabled") {
				t.Errorf("new order on the disabled provisioner: %q does not say it is disabled", pd.Detail)
			}
			if r := admin.do("POST", "/acme-provisioners/shop/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusConflict {
				t.Errorf("disabling a disabled provisioner: %d, want 409", r.status)
			}
			if p := string(admin.do("GET", "/acme-provisioners/shop?changed=disabled", nil).body); !strings.Contains(p, `action="/acme-provisioners/shop/enable"`) || strings.Contains(p, "/shop/disable") {
				t.Errorf("a disabled provisioner's page: %s", tTrim([]byte(p)))
			}
			if r := admin.do("POST", "/acme-provisioners/shop/enable", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
				t.Fatalf("enable: %d %s", r.status, tTrim(r.body))
			}
			client.obtain(t, certificate.ObtainRequest{Domains: []string{"again.shop.acme.test"}})
		})
	}
}

// tSection is the part of a console page within <section
// aria-labelledby="id">.
func tSection(page, id string) string {
	_, rest, ok := strings.Cut(page, `<section aria-labelledby="`+id+`">`)
	if !ok {
		return ""
	}
	s, _, _ := strings.Cut(rest, "</section>")
	return s
}
