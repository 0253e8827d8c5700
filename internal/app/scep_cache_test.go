package app

import (
	"net/http"
	"strings"
	"testing"

	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestSCEPProvisionerChangesApplyAtOnce: the provisioner and principal
// every PKIOperation reads are cached, and a change through the API takes
// effect on the very next request, however recently the cache was filled
// (the instance's clock stands still here, so only the store's access
// generation can make the caches let go): disabled, a provisioner
// refuses a valid challenge; enabled again, it takes one; moved to
// another profile, the next certificate is under that profile, which
// its principal's binding, narrowed to the new profile, allows only once
// the principal is read afresh.
func TestSCEPProvisionerChangesApplyAtOnce(t *testing.T) {
	tStillRun(t, func(t *testing.T, in *tInstance, _ *clock.Fake) {
		if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tProfileCopy(t, "client_auth", "client_auth_1h"))); r.status != http.StatusCreated {
			t.Fatalf("create profile: %d %s", r.status, tTrim(r.body))
		}
		in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
			Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)
		dev := tNewSCEPDevice(t, in, "mdm")
		enrol := func(cn string) *smscep.PKIMessage {
			t.Helper()
			return dev.request(cn, in.scepChallenge("mdm", ""), nil, nil)
		}
		if rep := enrol("laptop-1"); rep.PKIStatus != smscep.SUCCESS {
			t.Fatalf("first enrolment: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
		}
		// A challenge is read afresh at every use: creating one
		// leaves the caches alone.
		gen := in.app.store.AccessGeneration()
		ch := in.scepChallenge("mdm", "")
		if got := in.app.store.AccessGeneration(); got != gen {
			t.Errorf("creating a challenge moved the access generation from %d to %d", gen, got)
		}

		// The principal disabled on its own (principal disable, with the
		// provisioner left enabled): refused at once, nothing stored.
		in.must(http.StatusOK, "POST", "/api/v1/principals/scep:mdm/disable", nil, nil)
		before := in.certCount()
		if st, body := in.scepPost("mdm", dev.rawRequest("laptop-2", ch)); st != http.StatusForbidden || in.certCount() != before {
			t.Fatalf("enrolment right after the principal was disabled: %d %s, %d certificates stored", st, tTrim(body), in.certCount()-before)
		}

		// The provisioner disabled (and its principal with it): refused;
		// enabled again (its principal too), it enrols.
		in.must(http.StatusOK, "POST", "/api/v1/scep/provisioners/mdm/disable", nil, nil)
		if st, body := in.scepPost("mdm", dev.rawRequest("laptop-2", ch)); st != http.StatusForbidden || in.certCount() != before {
			t.Fatalf("enrolment right after the provisioner was disabled: %d %s, %d certificates stored", st, tTrim(body), in.certCount()-before)
		}
		if st, _ := in.scepGet("mdm", "GetCACaps"); st != http.StatusForbidden {
			t.Errorf("GetCACaps right after the provisioner was disabled: %d, want 403", st)
		}
		in.must(http.StatusOK, "POST", "/api/v1/scep/provisioners/mdm/enable", nil, nil)
		if rep := dev.request("laptop-3", ch, nil, nil); rep.PKIStatus != smscep.SUCCESS {
			t.Fatalf("enrolment right after the provisioner was enabled: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
		}

		in.must(http.StatusOK, "PATCH", "/api/v1/scep/provisioners/mdm", apitypes.UpdateSCEPProvisionerRequest{Profile: new("client_auth_1h")}, nil)
		rep := enrol("laptop-4")
		if rep.PKIStatus != smscep.SUCCESS {
			t.Fatalf("enrolment right after the profile changed: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
		}
		if got := tGetCert(t, in, strings.ToLower(rep.Certificate.SerialNumber.Text(16))); got.Profile != "client_auth_1h" {
			t.Errorf("the certificate after the profile changed is under %q, want client_auth_1h", got.Profile)
		}
	})
}
