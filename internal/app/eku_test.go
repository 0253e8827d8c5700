package app

import (
	"crypto/elliptic"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tResponderProfile is the reproduction of issue 13 #9: an ordinary custom
// profile asking for id-kp-OCSPSigning.
var tResponderProfile = strings.Replace(tCorpProfile, "ext_key_usage: [server_auth]", "ext_key_usage: [server_auth, ocsp_signing]", 1)

// TestProfilesRefuseOCSPSigning: no profile can carry ocsp_signing, through
// create or update, and a profile stored with it before this rule (written
// straight into the database) issues nothing. openssl finds no issued leaf
// with OCSP Signing. Real SQLite and PostgreSQL.
func TestProfilesRefuseOCSPSigning(t *testing.T) {
	t.Parallel()
	tNeedOpenSSL(t)
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			before := in.certCount()
			wantRefusal := func(what string, r tResp, field string) {
				t.Helper()
				if r.status != http.StatusBadRequest {
					t.Fatalf("%s: status %d, want 400: %s", what, r.status, tTrim(r.body))
				}
				e := r.apiErr(t)
				if e.Rule != field || !strings.Contains(e.Detail, field) {
					t.Errorf("%s: error %+v does not name %q", what, e, field)
				}
			}
			wantRefusal("create with ocsp_signing", in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tResponderProfile)), "ext_key_usage: ocsp_signing")
			wantRefusal("create with time_stamping", in.raw("POST", "/api/v1/profiles", in.bearer(),
				strings.NewReader(strings.Replace(tCorpProfile, "[server_auth]", "[time_stamping]", 1))), "ext_key_usage: time_stamping")
			if r := in.call("GET", "/api/v1/profiles/corp_web", nil); r.status != http.StatusNotFound {
				t.Fatalf("refused profile was stored: %d", r.status)
			}
			if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tCorpProfile)); r.status != http.StatusCreated {
				t.Fatalf("create corp_web: %d %s", r.status, tTrim(r.body))
			}
			wantRefusal("update adding ocsp_signing", in.raw("PUT", "/api/v1/profiles/corp_web", in.bearer(), strings.NewReader(tResponderProfile)), "ext_key_usage: ocsp_signing")

			// A database made before the rule may hold such a profile.
			doc := `{"name":"old_responder","keys":[{"algorithm":"ECDSA","min_bits":256}],"max_validity_days":90,"renew_before_days":30,` +
				`"ext_key_usage":["server_auth","ocsp_signing"],"names":{"dns":{"allow":true}},"key_export":"once"}`
			ev := audit.New(authz.Principal{Name: "test"}, time.Now(), "profile.create", "old_responder", nil)
			if err := in.app.store.CreateProfile(t.Context(), "old_responder", []byte(doc), ev); err != nil {
				t.Fatal(err)
			}
			csr := string(tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal"))
			wantRefusal("issue under a stored ocsp_signing profile", in.call("POST", "/api/v1/certificates/sign",
				apitypes.SignRequest{CSRPEM: csr, Profile: "old_responder"}), "ext_key_usage: ocsp_signing")
			// It is listed, so the operator can see it, and can delete it.
			if r := in.call("GET", "/api/v1/profiles", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "old_responder") {
				t.Errorf("profile list: %d, lists old_responder: %v", r.status, strings.Contains(string(r.body), "old_responder"))
			}
			in.must(http.StatusNoContent, "DELETE", "/api/v1/profiles/old_responder", nil, nil)

			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: csr, Profile: "corp_web"}, nil)
			if n := in.certCount(); n != before+1 {
				t.Errorf("%d certificates, want %d", n, before+1)
			}
			// openssl's view of every certificate in the inventory.
			var list apitypes.CertificateList
			in.must(http.StatusOK, "GET", "/api/v1/certificates?limit=1000", nil, &list)
			dir := t.TempDir()
			for _, c := range list.Certificates {
				r := in.call("GET", "/api/v1/certificates/"+c.Serial+"/pem", nil)
				if r.status != http.StatusOK {
					t.Fatalf("pem %s: %d", c.Serial, r.status)
				}
				f := filepath.Join(dir, c.Serial+".pem")
				if err := os.WriteFile(f, r.body, 0o600); err != nil {
					t.Fatal(err)
				}
				out := tMustOpenSSL(t, dir, "x509", "-in", f, "-noout", "-text")
				if strings.Contains(out, "OCSP Signing") {
					t.Errorf("certificate %s carries OCSP Signing:\n%s", c.Serial, out)
				}
			}
		})
	}
}
