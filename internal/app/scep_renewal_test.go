package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tSCEPEnrolled creates dynamic provisioner mdm and enrols one device
// with the library client; it returns the device and its certificate.
func tSCEPEnrolled(t *testing.T, in *tInstance) (*tSCEPDevice, *smscep.PKIMessage) {
	t.Helper()
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)
	d := tNewSCEPDevice(t, in, "mdm")
	rep := d.request("laptop-1", in.scepChallenge("mdm", ""), nil, nil)
	if rep.PKIStatus != smscep.SUCCESS {
		t.Fatalf("enrol: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
	}
	return d, rep
}

// TestSCEPRenewalKind checks that a certificate renewed with RenewalReq
// is recorded as a SCEP renewal (renewal_kind scep, as EST's and ACME's
// are est and acme), linked both ways to the certificate it replaces.
func TestSCEPRenewalKind(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	d, enrolled := tSCEPEnrolled(t, in)
	renewed := d.request("laptop-1", "", enrolled.Certificate, d.key)
	if renewed.PKIStatus != smscep.SUCCESS {
		t.Fatalf("RenewalReq: %s %s: %s", renewed.PKIStatus, renewed.FailInfo, in.lastSCEPRefusal())
	}
	oldSerial, newSerial := pki.SerialHex(enrolled.Certificate.SerialNumber), pki.SerialHex(renewed.Certificate.SerialNumber)
	if c := tGetCert(t, in, newSerial); c.RenewalKind != string(inventory.RenewalSCEP) || c.Replaces != oldSerial {
		t.Errorf("renewed certificate: renewal_kind %q replaces %q, want %q and %s", c.RenewalKind, c.Replaces, inventory.RenewalSCEP, oldSerial)
	}
	if c := tGetCert(t, in, oldSerial); c.RenewedBy != newSerial {
		t.Errorf("old certificate: renewed_by %q, want %s", c.RenewedBy, newSerial)
	}
	if !inventory.RenewalSCEP.Automated() {
		t.Error("a SCEP renewal counts as a person's, not automation")
	}
}

// TestSCEPCertificatesGetRenewalInfo: a certificate a device enrolled
// over SCEP gets the renewal window every other certificate gets, from
// the ACME renewal-information endpoint's computation (RFC 9773) and
// from the API's renewal-info route, and both agree.
func TestSCEPCertificatesGetRenewalInfo(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			_, enrolled := tSCEPEnrolled(t, in)
			cert := enrolled.Certificate
			ariID, err := certificate.MakeARICertID(cert)
			if err != nil {
				t.Fatal(err)
			}
			ari, err := in.app.acme.RenewalInfo(context.Background(), ariID)
			if err != nil {
				t.Fatalf("ACME renewal information for a SCEP certificate: %v", err)
			}
			if ari.Start.IsZero() || !ari.Start.Before(ari.End) || !ari.End.Before(cert.NotAfter) || ari.Start.Before(cert.NotBefore) {
				t.Errorf("ACME window %s..%s for a certificate valid %s..%s", ari.Start, ari.End, cert.NotBefore, cert.NotAfter)
			}
			var ri apitypes.RenewalInfo
			in.must(http.StatusOK, "GET", "/api/v1/certificates/"+pki.SerialHex(cert.SerialNumber)+"/renewal-info", nil, &ri)
			if !ri.WindowStart.Truncate(time.Second).Equal(ari.Start) || !ri.WindowEnd.Truncate(time.Second).Equal(ari.End) {
				t.Errorf("API window %s..%s, ACME window %s..%s: want the same", ri.WindowStart, ri.WindowEnd, ari.Start, ari.End)
			}
			if !strings.HasPrefix(tGetCert(t, in, pki.SerialHex(cert.SerialNumber)).Requester, "scep:") {
				t.Error("the certificate was not enrolled through SCEP")
			}
		})
	}
}

// TestSCEPHeldRenewal: a RenewalReq held for approval is, once approved,
// a SCEP renewal linked to the certificate it replaces; while it waits,
// another RenewalReq of that certificate (a fresh key, so a fresh
// transaction) is refused badRequest and holds nothing.
func TestSCEPHeldRenewal(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	p, _ := profile.Builtin("client_auth")
	p.Name, p.Builtin, p.RequireApproval = "client_approved", false, true
	if err := in.app.profiles.Create(context.Background(), authz.System(), p); err != nil {
		t.Fatal(err)
	}
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: p.Name, Challenge: "dynamic"}, nil)
	approve := func() {
		t.Helper()
		var reqs apitypes.ApprovalRequestList
		in.must(http.StatusOK, "GET", "/api/v1/requests?status=pending", nil, &reqs)
		if len(reqs.Requests) != 1 {
			t.Fatalf("%d pending requests, want 1", len(reqs.Requests))
		}
		in.must(http.StatusOK, "POST", "/api/v1/requests/"+reqs.Requests[0].ID+"/approve", apitypes.Decision{Comment: "ok"}, nil)
	}
	d := tNewSCEPDevice(t, in, "mdm")
	if rep := d.request("laptop-1", in.scepChallenge("mdm", ""), nil, nil); rep.PKIStatus != smscep.PENDING {
		t.Fatalf("PKCSReq under require_approval: %s %s, want PENDING", rep.PKIStatus, rep.FailInfo)
	}
	approve()
	enrolled := d.poll()
	if enrolled.PKIStatus != smscep.SUCCESS {
		t.Fatalf("GetCertInitial after approval: %s %s", enrolled.PKIStatus, enrolled.FailInfo)
	}
	if rep := d.request("laptop-1", "", enrolled.Certificate, d.key); rep.PKIStatus != smscep.PENDING {
		t.Fatalf("RenewalReq under require_approval: %s %s, want PENDING: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
	}
	again := tNewSCEPDevice(t, in, "mdm")
	if rep := again.request("laptop-1", "", enrolled.Certificate, d.key); rep.PKIStatus != smscep.FAILURE || rep.FailInfo != smscep.BadRequest {
		t.Errorf("a second RenewalReq of a certificate whose renewal waits: %s %q, want FAILURE badRequest", rep.PKIStatus, string(rep.FailInfo))
	}
	approve() // the first renewal's request only
	rep := d.poll()
	if rep.PKIStatus != smscep.SUCCESS {
		t.Fatalf("GetCertInitial after approval: %s %s", rep.PKIStatus, rep.FailInfo)
	}
	oldSerial, newSerial := pki.SerialHex(enrolled.Certificate.SerialNumber), pki.SerialHex(rep.Certificate.SerialNumber)
	if c := tGetCert(t, in, newSerial); c.RenewalKind != string(inventory.RenewalSCEP) || c.Replaces != oldSerial {
		t.Errorf("approved renewal: renewal_kind %q replaces %q, want %q and %s", c.RenewalKind, c.Replaces, inventory.RenewalSCEP, oldSerial)
	}
	if c := tGetCert(t, in, oldSerial); c.RenewedBy != newSerial {
		t.Errorf("old certificate: renewed_by %q, want %s", c.RenewedBy, newSerial)
	}
}
