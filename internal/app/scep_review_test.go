package app

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	smscep "github.com/smallstep/scep"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestSCEPReviewFixes checks the properties the SCEP security review
// found missing, on SQLite and PostgreSQL: a challenge bound to an
// identity enrols exactly that name; a certificate renews once, also
// without SANs and when raced; a stored transaction is a poll only while
// its request is pending and never hands out a revoked certificate.
func TestSCEPReviewFixes(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
				Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)

			t.Run("refusals are counted, not written one by one", func(t *testing.T) {
				start := time.Now().Add(-time.Second)
				ch := in.scepChallenge("mdm", "")
				d := tNewSCEPDevice(t, in, "mdm")
				raw := d.rawRequest("guess", "not-the-challenge")
				for i := range 30 {
					if st, body := in.scepPost("mdm", raw); st != http.StatusOK {
						t.Fatalf("wrong challenge %d: status %d %s", i, st, body)
					}
				}
				acts := in.auditActions(start)
				if n := acts["scep.enrol.refuse/denied"]; n != 0 {
					t.Errorf("30 wrong challenges wrote %d audit events, want 0 (counted per source and minute)", n)
				}
				if err := in.app.refusals.Flush(context.Background(), true); err != nil {
					t.Fatal(err)
				}
				// One event per source and minute: two when a minute
				// boundary falls among the 30 requests.
				if n := in.auditActions(start)[audit.ActionUnauthenticated+"/denied"]; n < 1 || n > 2 {
					t.Errorf("after the flush: %d refusal-count events for 30 refusals, want 1 (2 across a minute boundary)", n)
				}
				// A successful enrolment is audited with its HTTP request's
				// ID, its transaction and its challenge.
				rep := d.request("counted-1", ch, nil, nil)
				if rep.PKIStatus != smscep.SUCCESS {
					t.Fatalf("enrol: %s %s", rep.PKIStatus, string(rep.FailInfo))
				}
				var found bool
				err := in.app.store.EachAuditEventBetween(context.Background(), start, time.Now().Add(time.Minute), func(e *audit.Event) error {
					if e.Action == "certificate.issue" && e.Target == pki.SerialHex(rep.Certificate.SerialNumber) {
						found = true
						var det map[string]any
						_ = json.Unmarshal(e.Details, &det)
						if e.RequestID == "" || det["transaction_id"] != string(d.txID) || det["challenge"] == nil || det["challenge"] == "" {
							t.Errorf("issue event: request_id %q details %s", e.RequestID, e.Details)
						}
					}
					return nil
				})
				if err != nil || !found {
					t.Fatalf("no issue event for the enrolment: %v", err)
				}
			})

			t.Run("identity is exactly one name", func(t *testing.T) {
				before := in.certCount()
				ch := in.scepChallenge("mdm", "laptop-1")
				d := tNewSCEPDevice(t, in, "mdm")
				d.sans = []string{"payroll.example.com", "admin.example.com"}
				tWantSCEPFailure(t, d.request("laptop-1", ch, nil, nil), "extra SANs beside the challenge's identity")
				d.sans = []string{"laptop-1"}
				tWantSCEPFailure(t, d.request("laptop-2", ch, nil, nil), "another common name")
				if n := in.certCount(); n != before {
					t.Fatalf("refused identity requests stored %d certificates", n-before)
				}
				d.sans = nil
				if rep := d.request("laptop-1", ch, nil, nil); rep.PKIStatus != smscep.SUCCESS {
					t.Fatalf("exactly the identity: %s %s: %s", rep.PKIStatus, string(rep.FailInfo), in.lastSCEPRefusal())
				}
			})

			t.Run("a certificate renews once", func(t *testing.T) {
				d := tNewSCEPDevice(t, in, "mdm")
				rep := d.request("laptop-2", in.scepChallenge("mdm", ""), nil, nil)
				if rep.PKIStatus != smscep.SUCCESS {
					t.Fatalf("enrol: %s %s", rep.PKIStatus, string(rep.FailInfo))
				}
				old := rep.Certificate
				renewed := d.request("laptop-2", "", old, d.key)
				if renewed.PKIStatus != smscep.SUCCESS {
					t.Fatalf("first RenewalReq: %s %s: %s", renewed.PKIStatus, string(renewed.FailInfo), in.lastSCEPRefusal())
				}
				got := tGetCert(t, in, pki.SerialHex(renewed.Certificate.SerialNumber))
				if got.Replaces != pki.SerialHex(old.SerialNumber) {
					t.Errorf("renewal of a SAN-less certificate: replaces %q, want %s", got.Replaces, old.SerialNumber.Text(16))
				}
				for i := range 2 {
					tWantSCEPFailure(t, d.request("laptop-2", "", old, d.key), "RenewalReq from a renewed certificate "+string(rune('1'+i)))
				}
				// Two racing RenewalReqs from one certificate: one wins.
				d2 := tNewSCEPDevice(t, in, "mdm")
				rep = d2.request("laptop-3", in.scepChallenge("mdm", ""), nil, nil)
				if rep.PKIStatus != smscep.SUCCESS {
					t.Fatalf("enrol: %s %s", rep.PKIStatus, string(rep.FailInfo))
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				wins := 0
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if d2.request("laptop-3", "", rep.Certificate, d2.key).PKIStatus == smscep.SUCCESS {
							mu.Lock()
							wins++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if wins != 1 {
					t.Errorf("4 racing RenewalReqs from one certificate: %d won, want 1", wins)
				}
			})

			t.Run("a closed transaction is no poll", func(t *testing.T) {
				p, _ := profile.Builtin("client_auth")
				p.Name, p.Builtin, p.RequireApproval = "client_held", false, true
				if err := in.app.profiles.Create(context.Background(), authz.System(), p); err != nil {
					t.Fatal(err)
				}
				in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
					Name: "held", CA: "issuing", Profile: p.Name, Challenge: "dynamic"}, nil)
				d := tNewSCEPDevice(t, in, "held")
				if rep := d.request("held-1", in.scepChallenge("held", ""), nil, nil); rep.PKIStatus != smscep.PENDING {
					t.Fatalf("held: %s %s", rep.PKIStatus, string(rep.FailInfo))
				}
				// While pending, the same PKCSReq again is a poll.
				if rep := d.request("held-1", "wrong", nil, nil); rep.PKIStatus != smscep.PENDING {
					t.Fatalf("resent while pending: %s %s", rep.PKIStatus, string(rep.FailInfo))
				}
				var reqs apitypes.ApprovalRequestList
				in.must(http.StatusOK, "GET", "/api/v1/requests?status=pending", nil, &reqs)
				if len(reqs.Requests) != 1 {
					t.Fatalf("pending: %+v", reqs.Requests)
				}
				var issued apitypes.ApprovalRequest
				in.must(http.StatusOK, "POST", "/api/v1/requests/"+reqs.Requests[0].ID+"/approve", apitypes.Decision{Comment: "ok"}, &issued)
				if issued.Serial == "" {
					t.Fatalf("approved request: %+v", issued)
				}
				// Revoked before the device collected it: never handed out.
				in.must(http.StatusOK, "POST", "/api/v1/certificates/"+issued.Serial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
				if rep := d.poll(); rep.PKIStatus != smscep.FAILURE {
					t.Errorf("GetCertInitial for a revoked certificate: %s, want FAILURE", rep.PKIStatus)
				}
				// The same key and transaction with a wrong challenge: a
				// new PKCSReq, refused.
				if rep := d.request("held-1", "wrong", nil, nil); rep.PKIStatus != smscep.FAILURE {
					t.Errorf("PKCSReq with a wrong challenge on a closed transaction: %s, want FAILURE", rep.PKIStatus)
				}
			})
		})
	}
}
