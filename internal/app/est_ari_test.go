package app

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestESTCertificatesGetRenewalInfo: a certificate a device enrolled over
// EST gets the renewal window every other certificate gets, from the
// ACME renewal-information endpoint's computation (RFC 9773, what ARI
// clients ask) and from the API's renewal-info route (what the agent
// asks), and both agree.
func TestESTCertificatesGetRenewalInfo(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "lab", Auth: "basic", CA: "issuing", Profile: "internal_service"})
		const id = "dev-1.lab.example.com"
		c := tESTClient(e.in, "lab")
		c.Username, c.Password = id, e.secret(t, "lab", id)
		cert, err := c.Enroll(context.Background(), tESTCSR(t, tECKey(t, elliptic.P256()), id, id))
		if err != nil {
			t.Fatalf("enrol: %v", err)
		}
		ariID, err := certificate.MakeARICertID(cert)
		if err != nil {
			t.Fatal(err)
		}
		ari, err := e.in.app.acme.RenewalInfo(context.Background(), ariID)
		if err != nil {
			t.Fatalf("ACME renewal information for an EST certificate: %v", err)
		}
		if ari.Start.IsZero() || !ari.Start.Before(ari.End) || !ari.End.Before(cert.NotAfter) || ari.Start.Before(cert.NotBefore) {
			t.Errorf("ACME window %s..%s for a certificate valid %s..%s", ari.Start, ari.End, cert.NotBefore, cert.NotAfter)
		}
		var ri apitypes.RenewalInfo
		e.in.must(http.StatusOK, "GET", "/api/v1/certificates/"+pki.SerialHex(cert.SerialNumber)+"/renewal-info", nil, &ri)
		if !ri.WindowStart.Truncate(time.Second).Equal(ari.Start) || !ri.WindowEnd.Truncate(time.Second).Equal(ari.End) {
			t.Errorf("API window %s..%s, ACME window %s..%s: want the same", ri.WindowStart, ri.WindowEnd, ari.Start, ari.End)
		}
	})
}
