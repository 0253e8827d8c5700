package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tESTFleet creates EST provisioner "fleet" on CA issuing under
// internal_service, taking IDevIDs of a test maker's CA (identity from a
// DNS name under devices.example.com) and one-time secrets.
func tESTFleet(t *testing.T, in *tInstance) {
	t.Helper()
	in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners", apitypes.CreateESTProvisionerRequest{
		Name: "fleet", CA: "issuing", Profile: "internal_service", Auth: "any", BootstrapPEM: tNewESTCA(t, "Maker IDevID CA").pem(),
		IdentityFrom: "san:*.devices.example.com", ReenrollGrace: "48h",
	}, nil)
}

// tESTEnrol enrols identity on fleet with a one-time secret, using the
// globalsign/est client, and returns the certificate's serial.
func tESTEnrol(t *testing.T, in *tInstance, identity, secret string) string {
	t.Helper()
	c := tESTClient(in, "fleet")
	c.Username, c.Password = identity, secret
	cert, err := c.Enroll(context.Background(), tESTCSR(t, tECKey(t, elliptic.P256()), identity, identity))
	if err != nil {
		t.Fatalf("enrol %s: %v", identity, err)
	}
	return pki.SerialHex(cert.SerialNumber)
}

// tESTFleetDevice creates fleet (tESTFleet), a one-time secret for
// dev-0001.devices.example.com and another, unused, and enrols the first.
func tESTFleetDevice(t *testing.T, in *tInstance) {
	t.Helper()
	tESTFleet(t, in)
	var sec apitypes.NewESTSecret
	for _, id := range []string{"dev-0002.devices.example.com", "dev-0001.devices.example.com"} {
		in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners/fleet/secrets", apitypes.CreateESTSecretRequest{Identity: id}, &sec)
	}
	tESTEnrol(t, in, "dev-0001.devices.example.com", sec.Secret)
}

// tSignedIn creates person name with role within scope and a token, and
// returns a browser signed in with it.
func tSignedIn(t *testing.T, in *tInstance, name, role string, scope apitypes.Scope) *tBrowser {
	t.Helper()
	var p apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: name, Kind: "human", Role: role, Scope: scope, Token: true}, &p)
	b := in.browser(t)
	b.signIn(p.Token.Token)
	return b
}

var tNewSecret = regexp.MustCompile(`<code class="secret" id="newsecret">([^<]+)</code>`)

// TestConsoleEST: on both backends, the EST pages list a provisioner with
// its settings and enrolment URL, and its page shows the bootstrap CA,
// the certificates devices enrolled through it (linked) and its one-time
// secrets, never a secret itself. An admin creates a secret from the page:
// it is shown once, in the answer to the POST (201, no redirect, no-store),
// and neither the audit log nor the server log holds it; a device enrols
// with it. A viewer sees the pages without a disable button or the secret
// form, and its POSTs are refused and change nothing; an issuer whose
// names do not cover the identity is refused; a CA admin of another CA
// does not see the provisioner. Disable needs the confirmation and the
// CSRF token; enable restores it.
func TestConsoleEST(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			tInit(t, cfg, clock.Real{})
			var logBuf bytes.Buffer
			in := tStartLogged(t, cfg, clock.Real{}, slog.New(slog.NewTextHandler(&syncWriter{w: &logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug})))
			tESTFleet(t, in)
			base := "https://" + in.httpsAddr() + "/.well-known/est/fleet/"

			admin := in.browser(t)
			admin.signIn(in.token)
			list := admin.do("GET", "/est-provisioners", nil)
			body := string(list.body)
			for _, want := range []string{`href="/est-provisioners/fleet"`, base, "IDevID client certificate or one-time secret",
				"first DNS name matching *.devices.example.com", "2 days", `action="/est-provisioners/fleet/disable"`,
				`href="/est-provisioners" aria-current="page">EST</a>`} {
				if list.status != http.StatusOK || !strings.Contains(body, want) {
					t.Errorf("EST list: %d, lacks %q: %s", list.status, want, tTrim(list.body))
				}
			}

			// The admin creates a secret: shown once, in the POST's answer.
			const id = "dev-0001.devices.example.com"
			csrf := admin.csrf()
			if r := admin.do("POST", "/est-provisioners/fleet/secrets", url.Values{"identity": {id}, "ttl": {"24h"}}); r.status != http.StatusForbidden {
				t.Errorf("secret without the CSRF token: %d, want 403", r.status)
			}
			if r := admin.do("POST", "/est-provisioners/fleet/secrets", url.Values{"csrf": {csrf}, "identity": {id}, "ttl": {"8760h"}}); r.status != http.StatusBadRequest {
				t.Errorf("secret valid for a year: %d, want 400", r.status)
			}
			if r := admin.do("POST", "/est-provisioners/fleet/secrets", url.Values{"csrf": {csrf}, "identity": {"dev 1"}, "ttl": {"24h"}}); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "printable ASCII") {
				t.Errorf("secret for a bad identity: %d %s, want 400 saying why", r.status, tTrim(r.body))
			}
			created := admin.do("POST", "/est-provisioners/fleet/secrets", url.Values{"csrf": {csrf}, "identity": {id}, "ttl": {"24h"}})
			m := tNewSecret.FindSubmatch(created.body)
			if created.status != http.StatusCreated || m == nil {
				t.Fatalf("create a secret: %d %s", created.status, tTrim(created.body))
			}
			secret := string(m[1])
			if cc := created.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("the page showing the secret has Cache-Control %q, want no-store", cc)
			}
			if loc := created.header.Get("Location"); loc != "" || !strings.Contains(string(created.body), "not shown again") {
				t.Errorf("the secret's page: Location %q, warning shown %v", loc, strings.Contains(string(created.body), "not shown again"))
			}
			serial := tESTEnrol(t, in, id, secret)

			page := admin.do("GET", "/est-provisioners/fleet", nil)
			body = string(page.body)
			if page.status != http.StatusOK {
				t.Fatalf("provisioner page: %d %s", page.status, tTrim(page.body))
			}
			if strings.Contains(body, secret) || tNewSecret.Match(page.body) {
				t.Error("the provisioner page shows the secret again")
			}
			if _, s, _ := strings.Cut(body, `<dd id="bootstrap"><div class="mono">`); !strings.HasPrefix(s, "CN=Maker IDevID CA (sha256:") {
				t.Errorf("the bootstrap CA is not shown: %s", tTrim(page.body))
			}
			if s := tSection(body, "certificates"); !strings.Contains(s, `href="/certificates/`+serial+`"`) || !strings.Contains(s, id) ||
				!strings.Contains(s, `href="/certificates?dir=desc&amp;requester=est%3Afleet&amp;sort=issued"`) {
				t.Errorf("certificates section lacks the enrolled certificate %s: %s", serial, s)
			}
			if s := tSection(body, "secrets"); !strings.Contains(s, id) || !strings.Contains(s, `<span class="status used">used</span>`) ||
				!strings.Contains(s, `action="/est-provisioners/fleet/secrets"`) {
				t.Errorf("secrets section: %s", s)
			}
			if r := admin.do("GET", "/est-provisioners/nope", nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "fleet") {
				t.Errorf("unknown provisioner: %d, want 404 naming no other: %s", r.status, tTrim(r.body))
			}

			// A viewer reads, gets no button or form, and is refused.
			vb := tSignedIn(t, in, "vera", authz.RoleViewer, apitypes.Scope{})
			for _, p := range []string{"/est-provisioners", "/est-provisioners/fleet"} {
				r := vb.do("GET", p, nil)
				if s := string(r.body); r.status != http.StatusOK || !strings.Contains(s, "fleet") || strings.Contains(s, "/disable") || strings.Contains(s, "/secrets") {
					t.Errorf("viewer's %s: %d, want the provisioner without a disable button or secret form: %s", p, r.status, tTrim(r.body))
				}
			}
			vcsrf := vb.csrf()
			for _, p := range []string{"disable", "enable", "secrets"} {
				r := vb.do("POST", "/est-provisioners/fleet/"+p, url.Values{"csrf": {vcsrf}, "confirm": {"yes"}, "identity": {"dev-0002.devices.example.com"}, "ttl": {"24h"}})
				if r.status != http.StatusForbidden || tNewSecret.Match(r.body) {
					t.Errorf("viewer's POST %s: %d, want 403", p, r.status)
				}
			}
			// A viewer who is also an issuer for names that do not cover the
			// identity gets the form (its CA and profile are covered) but the
			// core refuses it.
			ib := tSignedIn(t, in, "ivan", authz.RoleViewer, apitypes.Scope{})
			in.must(http.StatusCreated, "POST", "/api/v1/bindings", apitypes.CreateBindingRequest{Principal: "ivan",
				Role: authz.RoleIssuer, Scope: apitypes.Scope{Names: []string{"*.other.example.com"}}}, nil)
			if s := string(ib.do("GET", "/est-provisioners/fleet", nil).body); !strings.Contains(s, `action="/est-provisioners/fleet/secrets"`) || strings.Contains(s, "/disable") {
				t.Errorf("issuer's page: secret form shown %v, disable shown %v", strings.Contains(s, "/secrets"), strings.Contains(s, "/disable"))
			}
			if r := ib.do("POST", "/est-provisioners/fleet/secrets", url.Values{"csrf": {ib.csrf()}, "identity": {"dev-0002.devices.example.com"}, "ttl": {"24h"}}); r.status != http.StatusForbidden ||
				tNewSecret.Match(r.body) || !strings.Contains(string(r.body), "*.other.example.com") {
				t.Errorf("issuer out of its names: %d %s, want 403 naming its scope", r.status, tTrim(r.body))
			}
			var secrets apitypes.ESTSecretList
			in.must(http.StatusOK, "GET", "/api/v1/est/provisioners/fleet/secrets", nil, &secrets)
			if len(secrets.Secrets) != 1 {
				t.Errorf("%d secrets after refused POSTs, want 1", len(secrets.Secrets))
			}
			// A CA admin of root neither sees nor changes a provisioner of issuing.
			rb := tSignedIn(t, in, "rita", authz.RoleCAAdmin, apitypes.Scope{CAs: []string{"root"}})
			if r := rb.do("GET", "/est-provisioners", nil); r.status != http.StatusOK || strings.Contains(string(r.body), "/est-provisioners/fleet") ||
				!strings.Contains(string(r.body), "certwright est create") {
				t.Errorf("a principal whose ca:read covers only root: %d %s, want the empty list", r.status, tTrim(r.body))
			}
			if r := rb.do("GET", "/est-provisioners/fleet", nil); r.status != http.StatusNotFound {
				t.Errorf("out-of-scope provisioner page: %d, want 404", r.status)
			}
			if r := rb.do("POST", "/est-provisioners/fleet/disable", url.Values{"csrf": {rb.csrf()}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
				t.Errorf("out-of-scope disable: %d, want 404", r.status)
			}

			// The admin disables, with the confirmation and CSRF token only.
			var prov apitypes.ESTProvisioner
			if r := admin.do("POST", "/est-provisioners/fleet/disable", url.Values{"csrf": {csrf}}); r.status != http.StatusBadRequest {
				t.Errorf("disable without the confirmation: %d, want 400", r.status)
			}
			if r := admin.do("POST", "/est-provisioners/fleet/disable", url.Values{"confirm": {"yes"}}); r.status != http.StatusForbidden {
				t.Errorf("disable without the CSRF token: %d, want 403", r.status)
			}
			in.must(http.StatusOK, "GET", "/api/v1/est/provisioners/fleet", nil, &prov)
			if prov.Disabled {
				t.Fatal("a refused POST disabled the provisioner")
			}
			r := admin.do("POST", "/est-provisioners/fleet/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}})
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/est-provisioners/fleet?changed=disabled" {
				t.Fatalf("disable: %d to %q %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			in.must(http.StatusOK, "GET", "/api/v1/est/provisioners/fleet", nil, &prov)
			if !prov.Disabled || prov.DisabledBy != "admin" {
				t.Fatalf("after the console's disable the API says %+v", prov)
			}
			if r := admin.do("POST", "/est-provisioners/fleet/disable", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusConflict {
				t.Errorf("disabling a disabled provisioner: %d, want 409", r.status)
			}
			if p := string(admin.do("GET", "/est-provisioners/fleet?changed=disabled", nil).body); !strings.Contains(p, `action="/est-provisioners/fleet/enable"`) ||
				strings.Contains(p, "/fleet/disable") || !strings.Contains(p, "enrols no device") {
				t.Errorf("a disabled provisioner's page: %s", tTrim([]byte(p)))
			}
			if r := admin.do("POST", "/est-provisioners/fleet/enable", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
				t.Fatalf("enable: %d %s", r.status, tTrim(r.body))
			}
			in.must(http.StatusOK, "GET", "/api/v1/est/provisioners/fleet", nil, &prov)
			if prov.Disabled {
				t.Error("after the console's enable the API says disabled")
			}

			// The secret is in no audit event and no log line.
			audit := in.raw("GET", "/api/v1/audit/events", in.bearer(), nil)
			if audit.status != http.StatusOK || !strings.Contains(string(audit.body), `"action":"est.secret.create"`) {
				t.Fatalf("audit: %d %s", audit.status, tTrim(audit.body))
			}
			if strings.Contains(string(audit.body), secret) {
				t.Error("the audit log holds the enrolment secret")
			}
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(logBuf.String(), secret) || !strings.Contains(logBuf.String(), "est enrolment secret created") {
				t.Errorf("the server log holds the enrolment secret, or has no line about it (%d bytes)", logBuf.Len())
			}
		})
	}
}

// TestConsoleESTDefaultURLs: the provisioner named default is shown with
// its own path and the unlabelled one; the page of a provisioner taking
// client certificates only offers no secret form.
func TestConsoleESTDefaultURLs(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners", apitypes.CreateESTProvisionerRequest{
		Name: "default", CA: "issuing", Profile: "internal_service", Auth: "client-cert", BootstrapPEM: tNewESTCA(t, "Maker CA").pem(),
	}, nil)
	b := in.browser(t)
	b.signIn(in.token)
	r := b.do("GET", "/est-provisioners/default", nil)
	s := string(r.body)
	host := "https://" + in.httpsAddr() + "/.well-known/est/"
	if r.status != http.StatusOK || !strings.Contains(s, "<div>"+host+"default/</div>") || !strings.Contains(s, "<div>"+host+"</div>") ||
		!strings.Contains(s, "subject serial number") {
		t.Errorf("default provisioner: %d %s", r.status, tTrim(r.body))
	}
	if strings.Contains(s, `/secrets"`) {
		t.Error("a client-cert provisioner's page offers the secret form")
	}
}
