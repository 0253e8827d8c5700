package app

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestExportRefusesAnotherPrincipalsCredentialKey: an admin machine
// principal registers its mTLS identity and issues its own client
// certificate with a key the server keeps (auto_renew). A machine holding
// the built-in issuer role (key:export included) scoped to the profile, and
// one holding it unscoped, must not download that key: it would log in as
// the admin. The refusal is 403 naming the rule, audited as denied, and
// hands out nothing. The holder itself, and an administrator who may enrol
// it, still get the key; the automatic renewal's successor is again the
// holder's credential and again refused to the issuers.
func TestExportRefusesAnotherPrincipalsCredentialKey(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, _, clk := tStartOnFakeClock(t, be.dbURL(t))
			in.tUseMachineAdmin(t) // "agent": an unscoped admin machine, may enrol anyone

			const adminURI = "spiffe://example.internal/deploy-admin"
			adminTok := in.tCreatePrincipal(t, "deploy-admin", "admin", apitypes.Scope{}, true)
			in.tAddIdentity(t, "deploy-admin", "uri", adminURI)
			cred := tIssueCredential(t, in, adminTok, adminURI, 30)

			ci := in.tCreatePrincipal(t, "ci", "issuer", apitypes.Scope{Profiles: []string{"internal_service"}}, true)
			wide := in.tCreatePrincipal(t, "wide", "issuer", apitypes.Scope{}, true)

			tCredentialExportRefused(t, in, cred.Serial, map[string]string{"ci": ci, "wide": wide})

			// The holder gets its own key and logs in with it.
			key := tExportKey(t, in, adminTok, cred.Serial)
			if st, name, _ := in.tWithClientCert(t, []byte(cred.CertificatePEM+cred.ChainPEM), key).tWhoAmI(t); st != http.StatusOK || name != "deploy-admin" {
				t.Fatalf("holder's exported key: whoami %d %q, want 200 deploy-admin", st, name)
			}
			// An administrator allowed to enrol deploy-admin gets it too.
			tExportKey(t, in, "Bearer "+in.token, cred.Serial)

			// A key:export holder still gets the key of a certificate that
			// is nobody's credential (server-only profile).
			var web apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
				Profile: "web_server", DNSNames: []string{"www.example.internal"}, AutoRenew: true,
			}, &web)
			tExportKey(t, in, wide, web.Serial)

			// The automatic renewal keeps the successor the holder's
			// credential, with the same protection.
			// Advancing the clock may also wake the scheduled renewal job,
			// which can renew before the run asked for here: either renews.
			clk.Advance(23*24*time.Hour + time.Hour)
			st := tRunJob(t, in, "renewal")
			renewedBy := tGetCert(t, in, cred.Serial).RenewedBy
			for deadline := time.Now().Add(5 * time.Second); renewedBy == "" && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				renewedBy = tGetCert(t, in, cred.Serial).RenewedBy
			}
			if renewedBy == "" {
				t.Fatalf("renewal run: %s; the credential was not renewed", st.Detail)
			}
			next := tGetCert(t, in, renewedBy)
			if next.Replaces != cred.Serial {
				t.Fatalf("successor %+v does not replace %s", next, cred.Serial)
			}
			tCredentialExportRefused(t, in, next.Serial, map[string]string{"ci": ci, "wide": wide})
			chain := in.raw("GET", "/api/v1/certificates/"+next.Serial+"/pem?chain=true", adminTok, nil)
			if chain.status != http.StatusOK {
				t.Fatalf("successor's chain: %d %s", chain.status, tTrim(chain.body))
			}
			key = tExportKey(t, in, adminTok, next.Serial)
			if st, name, _ := in.tWithClientCert(t, chain.body, key).tWhoAmI(t); st != http.StatusOK || name != "deploy-admin" {
				t.Fatalf("renewed credential: whoami %d %q, want 200 deploy-admin", st, name)
			}
		})
	}
}

// tIssueCredential issues, as auth, an internal_service client certificate
// carrying uri with a server-held key (auto_renew).
func tIssueCredential(t *testing.T, in *tInstance, auth, uri string, days int) apitypes.IssuedCertificate {
	t.Helper()
	r := in.raw("POST", "/api/v1/certificates/issue", auth, strings.NewReader(tJSON(t, apitypes.IssueRequest{
		Profile: "internal_service", CommonName: "deploy-admin", URIs: []string{uri}, AutoRenew: true, ValidityDays: days,
	})))
	if r.status != http.StatusCreated {
		t.Fatalf("issue: %d %s", r.status, tTrim(r.body))
	}
	var out apitypes.IssuedCertificate
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tExportKey downloads the managed key of serial as auth; it must succeed.
func tExportKey(t *testing.T, in *tInstance, auth, serial string) crypto.PrivateKey {
	t.Helper()
	r := in.raw("GET", "/api/v1/certificates/"+serial+"/key", auth, nil)
	if r.status != http.StatusOK {
		t.Fatalf("export of %s: %d %s", serial, r.status, tTrim(r.body))
	}
	b, _ := pem.Decode(r.body)
	if b == nil {
		t.Fatalf("export of %s: no PEM", serial)
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// tExportRefused asserts that each caller is refused serial's key with 403
// naming the credential rule, and that each refusal is audited as denied.
func tCredentialExportRefused(t *testing.T, in *tInstance, serial string, callers map[string]string) {
	t.Helper()
	for name, auth := range callers {
		before := len(tAuditEventsOf(t, in, "key.export"))
		r := in.raw("GET", "/api/v1/certificates/"+serial+"/key", auth, nil)
		if r.status != http.StatusForbidden || strings.Contains(string(r.body), "PRIVATE KEY") {
			t.Fatalf("%s exports the key of deploy-admin's mTLS credential %s: status %d, want 403", name, serial, r.status)
		}
		if !strings.Contains(string(r.body), "mTLS client credential") {
			t.Errorf("%s's refusal does not name the rule: %s", name, tTrim(r.body))
		}
		evs := tAuditEventsOf(t, in, "key.export")
		if len(evs) != before+1 || evs[len(evs)-1].Outcome != audit.Denied || evs[len(evs)-1].Principal != name {
			t.Errorf("%s's refused export: key.export events %+v, want one more, denied, by %s", name, evs[before:], name)
		}
	}
}
