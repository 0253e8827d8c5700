package app

import (
	"net/http"
	"strings"
	"testing"

	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestSCEPRevokedRA checks that a provisioner whose RA certificate was
// revoked stops serving: neither GetCACert nor PKIOperation uses the RA
// (it was cached before the revocation), and the answer says why.
func TestSCEPRevokedRA(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			var prov apitypes.SCEPProvisioner
			in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
				Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, &prov)
			d := tNewSCEPDevice(t, in, "mdm")
			if rep := d.request("before-1", in.scepChallenge("mdm", ""), nil, nil); rep.PKIStatus != smscep.SUCCESS {
				t.Fatalf("enrol before the revocation: %s %s", rep.PKIStatus, string(rep.FailInfo))
			}
			raw := d.rawRequest("after-1", in.scepChallenge("mdm", ""))
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+prov.RASerial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
			if st, body := in.scepGet("mdm", "GetCACert"); st != http.StatusServiceUnavailable || !strings.Contains(string(body), "revoked") {
				t.Errorf("GetCACert with a revoked RA: %d %s, want 503 naming the revocation", st, body)
			}
			if st, body := in.scepPost("mdm", raw); st != http.StatusServiceUnavailable || !strings.Contains(string(body), "rotate-ra") {
				t.Errorf("PKIOperation with a revoked RA: %d (%d bytes) %q, want 503 naming the fix", st, len(body), body[:min(len(body), 200)])
			}
		})
	}
}
