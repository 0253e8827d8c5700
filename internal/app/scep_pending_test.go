package app

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestSCEPPendingCap checks the cap on a provisioner's requests waiting
// for approval, set to 2 on a second service over the server's store:
// the third request that would be held is refused badRequest and logged
// with the provisioner and the cap, holds nothing and, checked before the
// challenge, neither consumes nor audits it (it is counted with the
// anonymous refusals); a resend of a held request is still answered PENDING;
// another provisioner is not held back; once a request is decided the
// refused device gets in with the same challenge.
func TestSCEPPendingCap(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	p, _ := profile.Builtin("client_auth")
	p.Name, p.Builtin, p.RequireApproval = "client_approved", false, true
	if err := in.app.profiles.Create(ctx, authz.System(), p); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mdm", "lab"} {
		in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
			Name: name, CA: "issuing", Profile: p.Name, Challenge: "dynamic"}, nil)
	}
	var logs bytes.Buffer
	svc, err := scep.New(scep.Config{Clock: in.app.clock, Log: slog.New(slog.NewTextHandler(&logs, nil)), RAName: in.cfg.TLSNames[0],
		Refusals: in.app.refusals, MaxPending: 2, Revoker: in.app.revoker}, in.app.store, in.app.issuer, in.app.profiles, in.app.keys)
	if err != nil {
		t.Fatal(err)
	}
	send := func(prov string, raw []byte) *smscep.PKIMessage {
		t.Helper()
		out, _, err := svc.PKIOperation(ctx, prov, scep.Peer{Source: "127.0.0.1"}, raw)
		if err != nil {
			t.Fatalf("PKIOperation: %v", err)
		}
		rep, err := smscep.ParsePKIMessage(out)
		if err != nil {
			t.Fatalf("CertRep: %v", err)
		}
		return rep
	}
	pending := func() []apitypes.ApprovalRequest {
		t.Helper()
		var reqs apitypes.ApprovalRequestList
		in.must(http.StatusOK, "GET", "/api/v1/requests?status=pending", nil, &reqs)
		return reqs.Requests
	}

	first := tNewSCEPDevice(t, in, "mdm")
	for i, d := range []*tSCEPDevice{first, tNewSCEPDevice(t, in, "mdm")} {
		if rep := send("mdm", d.rawRequest("held-"+string(rune('1'+i)), in.scepChallenge("mdm", ""))); rep.PKIStatus != smscep.PENDING {
			t.Fatalf("request %d under the cap: %s %s, want PENDING", i+1, rep.PKIStatus, rep.FailInfo)
		}
	}
	late := tNewSCEPDevice(t, in, "mdm")
	ch := in.scepChallenge("mdm", "")
	tWantSCEPFailure(t, send("mdm", late.rawRequest("held-3", ch)), "a request past the cap")
	if n := len(pending()); n != 2 {
		t.Errorf("%d requests pending after the refusal, want 2 (nothing held past the cap)", n)
	}
	if l := logs.String(); !strings.Contains(l, "provisioner=mdm") || !strings.Contains(l, "cap=2") {
		t.Errorf("no log line naming the provisioner and the cap:\n%s", l)
	}
	// Checked before the challenge: neither consumed nor released, and
	// counted with the anonymous refusals, not audited alone.
	if acts := in.auditActions(start); acts["scep.challenge.use/success"] != 2 || acts["scep.enrol.refuse/denied"] != 0 {
		t.Errorf("audit after the refusal at the cap: %v, want the two held requests' challenges only", acts)
	}
	// A resend is a poll of a held request, not a new one.
	if rep := send("mdm", first.rawRequest("held-1", "")); rep.PKIStatus != smscep.PENDING {
		t.Errorf("resend at the cap: %s %s, want PENDING", rep.PKIStatus, rep.FailInfo)
	}
	// The cap is the provisioner's own.
	if rep := send("lab", tNewSCEPDevice(t, in, "lab").rawRequest("lab-1", in.scepChallenge("lab", ""))); rep.PKIStatus != smscep.PENDING {
		t.Errorf("another provisioner while mdm is at its cap: %s %s, want PENDING", rep.PKIStatus, rep.FailInfo)
	}
	// A decision frees a place; the refused device's challenge was given back.
	for _, r := range pending() {
		if r.Requester == "scep:mdm" {
			in.must(http.StatusOK, "POST", "/api/v1/requests/"+r.ID+"/reject", apitypes.Decision{Comment: "no"}, nil)
			break
		}
	}
	if rep := send("mdm", late.rawRequest("held-3", ch)); rep.PKIStatus != smscep.PENDING {
		t.Errorf("the refused device after a decision: %s %s, want PENDING: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
	}
	if acts := in.auditActions(start); acts["scep.enrol.refuse/denied"] != 0 {
		t.Errorf("audit: %v, want no scep.enrol.refuse (the refusal at the cap is counted, not audited alone)", acts)
	}
}
