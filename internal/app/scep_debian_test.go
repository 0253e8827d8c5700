package app

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// tScepclient runs Debian's scepclient (package scep) in a fresh device
// directory and returns its output, the certificate it wrote (nil:
// none) and how it exited (nil: status 0).
func tScepclient(t *testing.T, in *tInstance, prov, fingerprint, challenge, cn string) (string, *x509.Certificate, error) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "scepclient", "-server-url", in.scepURL(prov), "-ca-fingerprint", fingerprint,
		"-challenge", challenge, "-cn", cn, "-private-key", filepath.Join(dir, "device.key"), "-certificate", filepath.Join(dir, "device.pem"))
	cmd.Dir = dir
	out, runErr := cmd.CombinedOutput()
	b, err := os.ReadFile(filepath.Join(dir, "device.pem"))
	if err != nil {
		return string(out), nil, runErr
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("scepclient wrote no PEM certificate: %s", out)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), c, runErr
}

// TestSCEPDebianClient enrols with Debian's scepclient, the independent
// client: a dynamic challenge works once and its reuse is refused; a
// static challenge works, a wrong one does not. scepclient 2.1 encrypts
// with single DES and signs with SHA-1 whatever GetCACaps says, so its
// provisioners allow legacy crypto; one that does not refuses it (badAlg).
func TestSCEPDebianClient(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("scepclient"); err != nil {
		t.Skip("scepclient not installed: apt-get install scep")
	}
	in := tNewServer(t, "")
	var dyn, static apitypes.SCEPProvisioner
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic", AllowLegacyCrypto: true}, &dyn)
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "kiosk", CA: "issuing", Profile: "client_auth", Challenge: "static", StaticChallenge: "kiosk-secret-0123456789",
		AllowLegacyCrypto: true}, &static)

	ch := in.scepChallenge("mdm", "")
	out, cert, _ := tScepclient(t, in, "mdm", dyn.RASHA256, ch, "laptop-1")
	if cert == nil || cert.Subject.CommonName != "laptop-1" {
		t.Fatalf("scepclient did not enrol: %s", out)
	}
	if got := tGetCert(t, in, strings.ToLower(cert.SerialNumber.Text(16))); got.Requester != "scep:mdm" {
		t.Errorf("requester %q, want scep:mdm", got.Requester)
	}
	out, cert, _ = tScepclient(t, in, "mdm", dyn.RASHA256, ch, "laptop-2")
	if cert != nil || !strings.Contains(out, "badRequest") {
		t.Errorf("reused challenge: certificate %v, output %s; want a badRequest failure", cert != nil, out)
	}
	if r := in.lastSCEPRefusal(); !strings.Contains(r, "used already") {
		t.Errorf("last refusal %s, want the reuse", r)
	}
	if out, cert, _ = tScepclient(t, in, "kiosk", static.RASHA256, "kiosk-secret-0123456789", "kiosk-1"); cert == nil {
		t.Errorf("static challenge: %s", out)
	}
	if out, cert, _ = tScepclient(t, in, "kiosk", static.RASHA256, "wrong-secret-0123456789", "kiosk-2"); cert != nil || !strings.Contains(out, "badRequest") {
		t.Errorf("wrong static challenge: certificate %v, output %s", cert != nil, out)
	}

	// Without legacy crypto the same client is refused, its challenge unused.
	var strict apitypes.SCEPProvisioner
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "strict", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, &strict)
	ch = in.scepChallenge("strict", "")
	out, cert, err := tScepclient(t, in, "strict", strict.RASHA256, ch, "laptop-3")
	if cert != nil || err == nil || !strings.Contains(out, "badAlg") {
		t.Errorf("scepclient on a provisioner without legacy crypto: certificate %v, exit %v, output %s; want a badAlg failure", cert != nil, err, out)
	}
	yes := true
	in.must(http.StatusOK, "PATCH", "/api/v1/scep/provisioners/strict", apitypes.UpdateSCEPProvisionerRequest{AllowLegacyCrypto: &yes}, nil)
	if out, cert, _ = tScepclient(t, in, "strict", strict.RASHA256, ch, "laptop-3"); cert == nil {
		t.Errorf("the refused challenge, once legacy crypto is allowed: %s", out)
	}
}
