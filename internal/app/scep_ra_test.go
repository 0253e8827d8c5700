package app

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/pki"
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
			enrolled := d.request("before-1", in.scepChallenge("mdm", ""), nil, nil)
			if enrolled.PKIStatus != smscep.SUCCESS {
				t.Fatalf("enrol before the revocation: %s %s", enrolled.PKIStatus, string(enrolled.FailInfo))
			}
			raw := d.rawRequest("after-1", in.scepChallenge("mdm", ""))
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+prov.RASerial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
			if st, body := in.scepGet("mdm", "GetCACert"); st != http.StatusServiceUnavailable || !strings.Contains(string(body), "revoked") {
				t.Errorf("GetCACert with a revoked RA: %d %s, want 503 naming the revocation", st, body)
			}
			if st, body := in.scepPost("mdm", raw); st != http.StatusServiceUnavailable || !strings.Contains(string(body), "rotate-ra") {
				t.Errorf("PKIOperation with a revoked RA: %d (%d bytes) %q, want 503 naming the fix", st, len(body), body[:min(len(body), 200)])
			}

			// rotate-ra: a new RA, the same provisioner and principal, so
			// the device enrolled before renews with its certificate.
			start := time.Now().Add(-time.Second)
			var rotated apitypes.SCEPProvisioner
			in.must(http.StatusOK, "POST", "/api/v1/scep/provisioners/mdm/rotate-ra", nil, &rotated)
			if rotated.RASerial == prov.RASerial || rotated.RASHA256 == prov.RASHA256 || rotated.ID != prov.ID || rotated.Principal != prov.Principal {
				t.Fatalf("rotated: %+v, was %+v", rotated, prov)
			}
			if rotated.RANotAfter == nil || !rotated.RANotAfter.After(time.Now()) {
				t.Errorf("rotated RA not_after %v", rotated.RANotAfter)
			}
			if n := in.auditActions(start)["scep.ra.rotate/success"]; n != 1 {
				t.Errorf("%d scep.ra.rotate events, want 1: %v", n, in.auditActions(start))
			}
			d2 := tNewSCEPDevice(t, in, "mdm")
			if pki.SerialHex(d2.ra.SerialNumber) != rotated.RASerial {
				t.Fatalf("GetCACert after rotate-ra serves RA %s, want %s", pki.SerialHex(d2.ra.SerialNumber), rotated.RASerial)
			}
			d.ra = d2.ra
			if rep := d.request("before-1", "", enrolled.Certificate, d.key); rep.PKIStatus != smscep.SUCCESS {
				t.Fatalf("RenewalReq after rotate-ra: %s %s: %s", rep.PKIStatus, string(rep.FailInfo), in.lastSCEPRefusal())
			}
			if rep := d2.request("after-2", in.scepChallenge("mdm", ""), nil, nil); rep.PKIStatus != smscep.SUCCESS {
				t.Fatalf("enrol after rotate-ra: %s %s", rep.PKIStatus, string(rep.FailInfo))
			}
		})
	}
}

// TestSCEPReadScope (review L10): list and show answer only provisioners
// on CAs the caller may read, and "not found" names no provisioner the
// caller cannot read; ca:manage over another CA does not reveal one.
func TestSCEPReadScope(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, tBackends[0].dbURL(t))
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "secretfleet", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)
	rootOnly := tESTToken(t, in, "rooty", "human", "viewer", apitypes.Scope{CAs: []string{"root"}})
	rootAdmin := tESTToken(t, in, "rita", "human", authz.RoleCAAdmin, apitypes.Scope{CAs: []string{"root"}})
	issuing := tESTToken(t, in, "issy", "human", "viewer", apitypes.Scope{CAs: []string{"issuing"}})
	var list apitypes.SCEPProvisionerList
	r := in.raw("GET", "/api/v1/scep/provisioners", rootOnly, nil)
	if err := json.Unmarshal(r.body, &list); r.status != http.StatusOK || err != nil || len(list.Provisioners) != 0 {
		t.Errorf("list by a viewer of another CA: %d %s, want 200 and none", r.status, tTrim(r.body))
	}
	if r := in.raw("GET", "/api/v1/scep/provisioners/secretfleet", rootOnly, nil); r.status != http.StatusNotFound {
		t.Errorf("show by a viewer of another CA: %d %s, want 404", r.status, tTrim(r.body))
	}
	if r := in.raw("GET", "/api/v1/scep/provisioners/nosuch", rootOnly, nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "secretfleet") {
		t.Errorf("not found by a viewer of another CA: %d %s, want 404 naming no provisioner it cannot read", r.status, tTrim(r.body))
	}
	if r := in.raw("POST", "/api/v1/scep/provisioners/secretfleet/disable", rootAdmin, strings.NewReader("{}")); r.status != http.StatusNotFound {
		t.Errorf("disable by a CA admin of another CA: %d %s, want 404", r.status, tTrim(r.body))
	}
	r = in.raw("GET", "/api/v1/scep/provisioners", issuing, nil)
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Provisioners) != 1 {
		t.Errorf("list by a viewer of its CA: %d %s, want the provisioner", r.status, tTrim(r.body))
	}
	if r := in.raw("GET", "/api/v1/scep/provisioners/nosuch", issuing, nil); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "secretfleet") {
		t.Errorf("not found by a viewer of its CA: %d %s, want 404 naming the provisioner it may read", r.status, tTrim(r.body))
	}
}
