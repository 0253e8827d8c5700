package issue_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/profile"
)

// TestApprovalKeepsRequesterAuth: a request held for approval is replayed
// with the authentication of the original request, so it becomes an mTLS
// credential only where the original request could have made one. ACME
// requests are never held (an ACME client cannot wait, and the replay of an
// account bound to a principal would act as that principal): they are
// refused with nothing stored, and a legacy held ACME request (tagged
// "acme", no recorded authentication) is issued as ACME, never as the
// bound principal's credential.
func TestApprovalKeepsRequesterAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	p, _ := profile.Builtin("internal_service") // clientAuth
	p.Name, p.RequireApproval, p.Builtin = "internal_service_approved", true, false
	if err := e.profiles.Create(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	const agentDNS = "agent.svc.internal"
	agent := e.principal(t, "agent", authz.KindMachine, grant{authz.RoleIssuer, authz.Scope{}})
	approver := e.principal(t, "appr", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{}})
	now := e.clk.Now()
	if err := e.db.AddIdentity(ctx, &authz.Identity{Kind: "dns", Value: agentDNS, PrincipalID: agent.ID, CreatedAt: now},
		audit.New(admin, now, "identity.add", agent.ID, nil)); err != nil {
		t.Fatal(err)
	}
	pending := func(t *testing.T) int {
		t.Helper()
		l, err := e.db.ListApprovalRequests(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}

	t.Run("ACME account bound to the principal is refused, nothing held", func(t *testing.T) {
		acct := agent
		acct.Name, acct.Auth = "acme:clients/acct1 (principal agent)", "acme"
		certs, held := e.count(t), pending(t)
		res, err := e.svc.Issue(ctx, issue.Request{Principal: acct, CA: "issuing", Profile: p.Name, CSR: dnsCSR(t, agentDNS), Tags: []string{"acme", "acme:clients"}})
		if !errors.Is(err, issue.ErrApprovalUnavailable) || !errors.Is(err, issue.ErrForbidden) {
			t.Fatalf("Issue by ACME under require_approval = %+v, %v; want ErrApprovalUnavailable (forbidden)", res, err)
		}
		if n := pending(t); n != held {
			t.Errorf("%d approval requests after the refusal, want %d", n, held)
		}
		if n := e.count(t); n != certs {
			t.Errorf("%d certificates after the refusal, want %d", n, certs)
		}
	})

	t.Run("legacy held ACME request is no credential", func(t *testing.T) {
		body, err := json.Marshal(map[string]any{"csr": dnsCSR(t, agentDNS).Raw, "ca": "issuing", "profile": p.Name, "tags": []string{"acme", "acme:clients"}})
		if err != nil {
			t.Fatal(err)
		}
		r := &issue.ApprovalRequest{ID: "req_legacyacme", RequesterID: agent.ID, Requester: "acme:clients/acct1 (principal agent)",
			CA: "issuing", Profile: p.Name, Names: []string{agentDNS}, Body: body, Status: issue.StatusPending,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := e.db.CreateApprovalRequest(ctx, r, audit.New(agent, now, "request.create", r.ID, nil)); err != nil {
			t.Fatal(err)
		}
		_, res, err := e.svc.Approve(ctx, approver, r.ID, "")
		if err != nil {
			t.Fatalf("Approve: %v", err)
		}
		if got, err := e.db.CredentialHolder(ctx, res.Cert.Serial); err != nil || got != "" {
			t.Errorf("legacy ACME request issued as the credential of %q (%v), want none", got, err)
		}
	})

	t.Run("the principal's own token request stays its credential", func(t *testing.T) {
		own := agent
		own.Auth = "token:t1"
		res, err := e.svc.Issue(ctx, issue.Request{Principal: own, CA: "issuing", Profile: p.Name, CSR: dnsCSR(t, agentDNS)})
		if err != nil || res.Pending == nil {
			t.Fatalf("Issue = %+v, %v; want held", res, err)
		}
		stored, err := e.db.GetApprovalRequest(ctx, res.Pending.ID)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			Auth string `json:"auth"`
		}
		if err := json.Unmarshal(stored.Body, &h); err != nil || h.Auth != "token:t1" {
			t.Errorf("held request records auth %q (%v), want token:t1", h.Auth, err)
		}
		_, out, err := e.svc.Approve(ctx, approver, res.Pending.ID, "")
		if err != nil {
			t.Fatalf("Approve: %v", err)
		}
		if got, err := e.db.CredentialHolder(ctx, out.Cert.Serial); err != nil || got != agent.ID {
			t.Errorf("credential of %q (%v), want %s", got, err, agent.ID)
		}
	})
}
