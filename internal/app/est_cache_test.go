package app

import (
	"crypto/elliptic"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestESTProvisionerChangesApplyAtOnce: the provisioner every device
// request reads is cached, and a change through the API takes effect on
// the very next request, however recently the cache was filled (the
// instance's clock stands still here, so only the store's EST
// generation can make the cache let go): disabled, a provisioner refuses
// a valid secret; enabled again, it takes it; moved to another profile,
// the next certificate is under that profile.
func TestESTProvisionerChangesApplyAtOnce(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "lab", Auth: "basic"})
		key := tECKey(t, elliptic.P256())
		enrol := func(id string) tResp {
			t.Helper()
			csr := base64.StdEncoding.EncodeToString(tESTCSR(t, key, id, id).Raw)
			return e.post(t, "lab", "simpleenroll", csr, id, e.secret(t, "lab", id))
		}
		if r := enrol("dev-1.lab.example.com"); r.status != http.StatusOK {
			t.Fatalf("first enrolment: %d %s", r.status, tTrim(r.body))
		}
		// A secret is read afresh at every use: creating one leaves the
		// provisioner cache alone.
		gen := e.in.app.store.ESTGeneration()
		e.secret(t, "lab", "dev-0.lab.example.com")
		if got := e.in.app.store.ESTGeneration(); got != gen {
			t.Errorf("creating a secret moved the EST generation from %d to %d", gen, got)
		}
		e.in.must(http.StatusOK, "POST", "/api/v1/est/provisioners/lab/disable", nil, nil)
		before := e.in.certCount()
		if r := enrol("dev-2.lab.example.com"); r.status == http.StatusOK || e.in.certCount() != before {
			t.Fatalf("enrolment right after the provisioner was disabled: %d, %d certificates stored", r.status, e.in.certCount()-before)
		}
		e.in.must(http.StatusOK, "POST", "/api/v1/est/provisioners/lab/enable", nil, nil)
		if r := enrol("dev-3.lab.example.com"); r.status != http.StatusOK {
			t.Fatalf("enrolment right after the provisioner was enabled: %d %s", r.status, tTrim(r.body))
		}
		e.in.must(http.StatusOK, "PATCH", "/api/v1/est/provisioners/lab", apitypes.UpdateESTProvisionerRequest{Profile: new("internal_service")}, nil)
		if r := enrol("dev-4.lab.example.com"); r.status != http.StatusOK {
			t.Fatalf("enrolment after the profile changed: %d %s", r.status, tTrim(r.body))
		}
		var list apitypes.CertificateList
		e.in.must(http.StatusOK, "GET", "/api/v1/certificates?tag=est:lab&limit=10", nil, &list)
		profiles := map[string]string{}
		for _, c := range list.Certificates {
			profiles[c.Subject] = c.Profile
		}
		if profiles["CN=dev-4.lab.example.com"] != "internal_service" || profiles["CN=dev-3.lab.example.com"] != "device_1h" {
			t.Errorf("profiles by certificate: %v, want dev-3 under device_1h and dev-4 under internal_service", profiles)
		}
	})
}
