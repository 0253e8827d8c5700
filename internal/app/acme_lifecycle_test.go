package app

import (
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"testing"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/registration"
	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tAuditOf returns "principal target details" of every successful audit
// event with the given action.
func tAuditOf(t *testing.T, in *tInstance, action string) []string {
	t.Helper()
	var out []string
	for _, e := range tAuditEvents(t, in, 0) {
		if e.Action == action && e.Outcome == audit.Success {
			out = append(out, e.Principal+" "+e.Target+" "+string(e.Details))
		}
	}
	return out
}

// TestACMEDisableEnableEndToEnd: lego gets a certificate; a CA admin of
// another CA may not disable the provisioner; once the admin disables it,
// a new order and a new account are refused with a problem saying so,
// while revoking the earlier certificate still works; after enable the
// same account gets a certificate again. Every change is audited with its
// actor.
func TestACMEDisableEnableEndToEnd(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "life", CA: "issuing", Profile: "web_server", Challenges: []string{"http-01"},
	}, nil)
	a := e.newClient(t, "life", tECKey(t, elliptic.P256()), "http-01")
	a.register(t)
	before := a.obtain(t, certificate.ObtainRequest{Domains: []string{"a.life.acme.test"}})

	// ca:manage over another CA is not enough.
	var other apitypes.CreatePrincipalResult
	e.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "root-admin", Kind: "machine", Role: authz.RoleCAAdmin, Scope: apitypes.Scope{CAs: []string{"root"}}, Token: true,
	}, &other)
	for _, p := range []string{"/api/v1/acme/provisioners/life/disable", "/api/v1/acme/provisioners/life"} {
		method := "POST"
		if !strings.HasSuffix(p, "/disable") {
			method = "DELETE"
		}
		if r := e.raw(method, p, "Bearer "+other.Token.Token, strings.NewReader("{}")); r.status != http.StatusForbidden {
			t.Errorf("%s %s by a CA admin of root: status %d, want 403: %s", method, p, r.status, tTrim(r.body))
		}
	}

	var off apitypes.Provisioner
	e.must(http.StatusOK, "POST", "/api/v1/acme/provisioners/life/disable", nil, &off)
	if !off.Disabled || off.DisabledAt == nil || off.DisabledBy != "admin" {
		t.Fatalf("disable answered %+v", off)
	}
	_, err := a.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"b.life.acme.test"}, Bundle: true})
	if pd := tLegoWantProblem(t, err, "unauthorized"); !strings.Contains(pd.Detail, "disabled") {
		t.Errorf("new order on a disabled provisioner: detail %q does not say it is disabled", pd.Detail)
	}
	fresh := e.newClient(t, "life", tECKey(t, elliptic.P256()), "http-01")
	_, err = fresh.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	tLegoWantProblem(t, err, "unauthorized")
	// Revocation goes on.
	if err := a.Certificate.Revoke(before.res.Certificate); err != nil {
		t.Fatalf("revoke on a disabled provisioner: %v", err)
	}
	if st := e.ocspStatus(t, before); st.Status != ocsp.Revoked {
		t.Errorf("OCSP status %d after revocation, want revoked", st.Status)
	}

	// Deleting needs it disabled; enabling brings orders back.
	var on apitypes.Provisioner
	e.must(http.StatusOK, "POST", "/api/v1/acme/provisioners/life/enable", nil, &on)
	if on.Disabled || on.DisabledAt != nil {
		t.Fatalf("enable answered %+v", on)
	}
	e.must(http.StatusConflict, "DELETE", "/api/v1/acme/provisioners/life", nil, nil)
	after := a.obtain(t, certificate.ObtainRequest{Domains: []string{"b.life.acme.test"}})
	e.verify(t, after, "b.life.acme.test")

	for _, action := range []string{"acme.provisioner.disable", "acme.provisioner.enable"} {
		if got := tAuditOf(t, e.tInstance, action); len(got) != 1 || !strings.HasPrefix(got[0], "admin life ") {
			t.Errorf("%s events %q, want one by admin on life", action, got)
		}
	}
}

// TestACMEEABRevokeEndToEnd: an account bound with an EAB key gets a
// certificate; revoking the key (as after a leak) deactivates the account,
// which then gets no more certificates, and the key cannot bind another.
func TestACMEEABRevokeEndToEnd(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "teams", CA: "issuing", Profile: "web_server", RequireEAB: true, Challenges: []string{"http-01"},
	}, nil)
	var eab apitypes.NewEABKey
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners/teams/eab", apitypes.CreateEABKeyRequest{Description: "ci"}, &eab)
	a := e.newClient(t, "teams", tECKey(t, elliptic.P256()), "http-01")
	reg, err := a.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: eab.KeyID, HmacEncoded: eab.HMACKey,
	})
	if err != nil {
		t.Fatalf("register with EAB: %v", err)
	}
	a.user.reg = reg
	a.obtain(t, certificate.ObtainRequest{Domains: []string{"a.teams.acme.test"}})

	var revoked apitypes.RevokedEABKey
	e.must(http.StatusOK, "POST", "/api/v1/acme/eab/"+eab.KeyID+"/revoke", nil, &revoked)
	if !revoked.AccountDeactivated || revoked.AccountID != path.Base(reg.URI) || revoked.RevokedAt == nil || revoked.RevokedBy != "admin" {
		t.Fatalf("revoke answered %+v, want the account %s deactivated", revoked, path.Base(reg.URI))
	}
	_, err = a.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"b.teams.acme.test"}, Bundle: true})
	if pd := tLegoWantProblem(t, err, "unauthorized"); !strings.Contains(pd.Detail, "deactivated") {
		t.Errorf("order by the deactivated account: detail %q", pd.Detail)
	}
	second := e.newClient(t, "teams", tECKey(t, elliptic.P256()), "http-01")
	_, err = second.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: eab.KeyID, HmacEncoded: eab.HMACKey,
	})
	tLegoWantProblem(t, err, "unauthorized")
	e.must(http.StatusConflict, "POST", "/api/v1/acme/eab/"+eab.KeyID+"/revoke", nil, nil)

	var keys apitypes.EABKeyList
	e.must(http.StatusOK, "GET", "/api/v1/acme/provisioners/teams/eab", nil, &keys)
	if len(keys.Keys) != 1 || keys.Keys[0].RevokedAt == nil {
		t.Errorf("EAB list after the revocation: %+v", keys.Keys)
	}
	got := tAuditOf(t, e.tInstance, "acme.eab.revoke")
	if len(got) != 1 || !strings.HasPrefix(got[0], "admin "+eab.KeyID+" ") || !strings.Contains(got[0], `"account_deactivated":true`) {
		t.Errorf("eab revoke events %q", got)
	}
	if strings.Contains(strings.Join(got, ""), eab.HMACKey) {
		t.Error("the audit event holds the HMAC key")
	}
}

// TestACMEUpdateAndDeleteOverAPI: a PATCH changes only the fields sent and
// is audited with the changes; an unknown provisioner is a 404 listing the
// others; only a disabled provisioner is deleted, its directory is gone and
// its name can be reused under a new ID. On both backends.
func TestACMEUpdateAndDeleteOverAPI(t *testing.T) {
	t.Parallel()
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			tACMEUpdateAndDeleteOverAPI(t, tNewServer(t, b.dbURL(t)))
		})
	}
}

func tACMEUpdateAndDeleteOverAPI(t *testing.T, in *tInstance) {
	var upd apitypes.UpdatedProvisioner
	in.must(http.StatusOK, "PATCH", "/api/v1/acme/provisioners/"+DefaultACMEProvisioner,
		map[string]any{"allow_names": []string{"*.example.internal"}, "require_eab": true}, &upd)
	if len(upd.Changes) != 2 || !upd.RequireEAB || len(upd.AllowNames) != 1 || len(upd.Challenges) != 3 || upd.Profile != "web_server" {
		t.Errorf("PATCH answered %+v", upd)
	}
	r := in.raw("PATCH", "/api/v1/acme/provisioners/nope", in.bearer(), strings.NewReader(`{"require_eab":false}`))
	if r.status != http.StatusNotFound || !strings.Contains(r.apiErr(t).Detail, "the provisioners are: default") {
		t.Errorf("PATCH of an unknown provisioner: %d %s", r.status, tTrim(r.body))
	}
	r = in.raw("PATCH", "/api/v1/acme/provisioners/default", in.bearer(), strings.NewReader(`{"challenges":["ftp-01"]}`))
	if r.status != http.StatusBadRequest || !strings.Contains(r.apiErr(t).Detail, "ftp-01") {
		t.Errorf("PATCH with a bad challenge type: %d %s", r.status, tTrim(r.body))
	}
	if got := tAuditOf(t, in, "acme.provisioner.update"); len(got) != 1 || !strings.Contains(got[0], `"field":"allow_names"`) {
		t.Errorf("update events %q", got)
	}

	r = in.raw("DELETE", "/api/v1/acme/provisioners/default", in.bearer(), nil)
	if r.status != http.StatusConflict || !strings.Contains(r.apiErr(t).Detail, "disable it first") {
		t.Errorf("DELETE of an enabled provisioner: %d %s", r.status, tTrim(r.body))
	}
	in.must(http.StatusOK, "POST", "/api/v1/acme/provisioners/default/disable", nil, nil)
	var del apitypes.DeletedProvisioner
	in.must(http.StatusOK, "DELETE", "/api/v1/acme/provisioners/default", nil, &del)
	in.must(http.StatusNotFound, "GET", "/api/v1/acme/provisioners/default", nil, nil)
	if r := in.raw("GET", "/acme/default/directory", "", nil); r.status != http.StatusNotFound {
		t.Errorf("directory of the deleted provisioner: %d", r.status)
	}
	var again apitypes.Provisioner
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{Name: "default", CA: "issuing", Profile: "web_server"}, &again)
	if again.ID == del.ID {
		t.Errorf("the new provisioner reuses the deleted one's ID %s", del.ID)
	}
	var detail map[string]any
	got := tAuditOf(t, in, "acme.provisioner.delete")
	if len(got) != 1 || json.Unmarshal([]byte(got[0][strings.Index(got[0], "{"):]), &detail) != nil || detail["id"] != del.ID {
		t.Errorf("delete events %q", got)
	}
}

// TestInitWithoutACME: init with the ACME provisioner turned off creates
// none; the quick start (tNewServer) has "default".
func TestInitWithoutACME(t *testing.T) {
	t.Parallel()
	cfg := tConfig(t, "")
	cfg.Init.SkipACMEProvisioner = true
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	var list apitypes.ProvisionerList
	in.must(http.StatusOK, "GET", "/api/v1/acme/provisioners", nil, &list)
	if len(list.Provisioners) != 0 {
		t.Errorf("init without ACME made %d provisioners", len(list.Provisioners))
	}
	quick := tNewServer(t, "")
	quick.must(http.StatusOK, "GET", "/api/v1/acme/provisioners", nil, &list)
	if len(list.Provisioners) != 1 || list.Provisioners[0].Name != DefaultACMEProvisioner {
		t.Errorf("the quick start has provisioners %+v, want %s", list.Provisioners, DefaultACMEProvisioner)
	}
}
