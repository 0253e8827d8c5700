package issue_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store"
)

// grant is one role binding of a test principal.
type grant struct {
	role  string
	scope authz.Scope
}

// principal stores a principal (ID "p_<name>") with one binding per grant
// and returns it as the authenticator would load it.
func (e *env) principal(t *testing.T, name string, kind authz.Kind, grants ...grant) authz.Principal {
	t.Helper()
	ctx := context.Background()
	now := e.clk.Now()
	id := "p_" + name
	if err := e.db.CreatePrincipal(ctx, &authz.PrincipalRecord{ID: id, Name: name, Kind: kind, CreatedAt: now, CreatedBy: admin.Name},
		audit.New(admin, now, "principal.create", id, nil)); err != nil {
		t.Fatal(err)
	}
	for i, g := range grants {
		r, ok := authz.BuiltinRole(g.role)
		if !ok {
			t.Fatalf("no built-in role %q", g.role)
		}
		b := &authz.Binding{ID: id + "_" + string(rune('a'+i)), PrincipalID: id, Role: r, Scope: g.scope, CreatedAt: now, CreatedBy: admin.Name}
		if err := e.db.CreateBinding(ctx, b, audit.New(admin, now, "binding.create", b.ID, nil)); err != nil {
			t.Fatal(err)
		}
	}
	p, _, err := e.db.LoadPrincipal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}

// auditEvents returns every audit event, oldest first.
func (e *env) auditEvents(t *testing.T) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	if err := e.db.EachAuditEvent(context.Background(), 0, func(ev *audit.Event) error {
		// The store reuses ev and its slices across calls: copy them.
		c := *ev
		c.Details, c.PrevHash, c.Hash = bytes.Clone(ev.Details), bytes.Clone(ev.PrevHash), bytes.Clone(ev.Hash)
		out = append(out, &c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// approvalProfile stores web_server_approved: web_server with require_approval.
func (e *env) approvalProfile(t *testing.T) *profile.Profile {
	t.Helper()
	p, _ := profile.Builtin("web_server")
	p.Name, p.RequireApproval, p.Builtin = "web_server_approved", true, false
	if err := e.profiles.Create(context.Background(), admin, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// retainProfile stores machine_retain: a managed-key profile whose keys
// the server keeps for later hand-out.
func (e *env) retainProfile(t *testing.T) *profile.Profile {
	t.Helper()
	p := &profile.Profile{
		Name: "machine_retain", Keys: []profile.KeyRule{{Algorithm: pki.FamilyECDSA, MinBits: 256}},
		MaxValidityDays: 30, RenewBeforeDays: 7,
		KeyUsage: []string{"digital_signature", "key_agreement"}, ExtKeyUsage: []string{"client_auth"},
		Names:         profile.NameRules{DNS: profile.DNSRule{Allow: true}, RequireSAN: true},
		SubjectFields: []string{"common_name"}, KeyExport: profile.KeyExportRetain,
	}
	if err := e.profiles.Create(context.Background(), admin, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func dnsCSR(t *testing.T, dns ...string) *x509.CertificateRequest {
	t.Helper()
	return mustCSR(t, mustKey(t, pki.ECDSAP256), &x509.CertificateRequest{DNSNames: dns})
}

// TestIssueScoped: an issuer bound to one profile and a name pattern issues
// within them and nowhere else.
func TestIssueScoped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.intermediate(t, "root", "other", pki.ECDSAP256, 365*day, 0, nil)
	scope := authz.Scope{Profiles: []string{"internal_service"}, Names: []string{"*.svc.internal"}}
	for _, kind := range []authz.Kind{authz.KindHuman, authz.KindMachine} {
		p := authz.WithRole("svc-"+string(kind), kind, authz.RoleIssuer, scope)
		res, err := e.svc.Issue(ctx, issue.Request{Principal: p, CA: "issuing", Profile: "internal_service", CSR: dnsCSR(t, "a.svc.internal")})
		if err != nil {
			t.Fatalf("%s issuer within its scope: %v", kind, err)
		}
		if res.Pending != nil || res.Cert == nil || res.Cert.Requester != p.Name || !slices.Equal(res.Cert.SANs, []string{"a.svc.internal"}) {
			t.Fatalf("%s issuer: result %+v", kind, res)
		}
	}
	// Deeper names match too.
	issuer := authz.WithRole("svc", authz.KindMachine, authz.RoleIssuer, scope)
	if _, err := e.svc.Issue(ctx, issue.Request{Principal: issuer, CA: "issuing", Profile: "internal_service", CSR: dnsCSR(t, "x.y.svc.internal", "b.svc.internal")}); err != nil {
		t.Fatalf("two names below svc.internal: %v", err)
	}

	n := e.count(t)
	refused := []struct {
		name string
		req  issue.Request
	}{
		{"name outside the pattern", issue.Request{Profile: "internal_service", CSR: dnsCSR(t, "a.other.internal")}},
		{"one name of two outside", issue.Request{Profile: "internal_service", CSR: dnsCSR(t, "a.svc.internal", "a.other.internal")}},
		{"the bare suffix", issue.Request{Profile: "internal_service", CSR: dnsCSR(t, "svc.internal")}},
		{"look-alike suffix", issue.Request{Profile: "internal_service", CSR: dnsCSR(t, "a.evilsvc.internal")}},
		{"common name outside", issue.Request{Profile: "internal_service", CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "billing"}, DNSNames: []string{"a.svc.internal"}})}},
		{"names of another domain, an IP and a URI", issue.Request{Profile: "internal_service", CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("internal_service"))}},
		{"managed key outside the pattern", issue.Request{Profile: "internal_service", DNSNames: []string{"a.other.internal"}}},
	}
	for _, b := range profile.Builtins() {
		if b.Name != "internal_service" {
			refused = append(refused, struct {
				name string
				req  issue.Request
			}{"profile " + b.Name, issue.Request{Profile: b.Name, CSR: dnsCSR(t, "a.svc.internal")}})
		}
	}
	for _, tt := range refused {
		req := tt.req
		req.Principal, req.CA = issuer, "issuing"
		res, err := e.svc.Issue(ctx, req)
		if !errors.Is(err, authz.ErrForbidden) || !errors.Is(err, issue.ErrForbidden) {
			t.Errorf("%s: Issue = %+v, %v; want ErrForbidden", tt.name, res, err)
		}
	}

	// The CA dimension: by ID or name; another CA is outside.
	for _, tt := range []struct {
		cas []string
		ok  bool
	}{
		{[]string{e.inter.ID}, true},
		{[]string{"issuing"}, true},
		{[]string{"other"}, false},
		{[]string{"root"}, false},
	} {
		p := authz.WithRole("ca-scoped", authz.KindMachine, authz.RoleIssuer, authz.Scope{CAs: tt.cas})
		_, err := e.svc.Issue(ctx, issue.Request{Principal: p, CA: "issuing", Profile: "internal_service", CSR: dnsCSR(t, "a.svc.internal")})
		if tt.ok && err != nil {
			t.Errorf("issuer scoped to CAs %v: %v", tt.cas, err)
		}
		if !tt.ok && !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("issuer scoped to CAs %v = %v, want ErrForbidden", tt.cas, err)
		}
		if tt.ok {
			n++
		}
	}
	if got := e.count(t); got != n {
		t.Errorf("refused requests stored %d certificates", got-n)
	}
}

// TestIssueManagedKeyPrincipals: a server-generated key goes only to a
// machine whose key:export covers the request.
func TestIssueManagedKeyPrincipals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	req := func(p authz.Principal, dns string) issue.Request {
		return issue.Request{Principal: p, CA: "issuing", Profile: "internal_service", DNSNames: []string{dns}}
	}
	issueOnly := authz.Role{Name: "csr_only", Permissions: []authz.Permission{authz.PermCertRead, authz.PermCertIssue}}
	issuer, _ := authz.BuiltinRole(authz.RoleIssuer)
	n := e.count(t)
	for _, tt := range []struct {
		name string
		p    authz.Principal
	}{
		{"human issuer", authz.WithRole("hugo", authz.KindHuman, authz.RoleIssuer, authz.Scope{})},
		{"human admin", authz.WithRole("root-admin", authz.KindHuman, authz.RoleAdmin, authz.Scope{})},
		{"machine without key:export", authz.Principal{ID: "m1", Name: "m1", Kind: authz.KindMachine,
			Bindings: []authz.Binding{{ID: "b1", Role: issueOnly}}}},
		{"machine whose key:export does not cover the name", authz.Principal{ID: "m2", Name: "m2", Kind: authz.KindMachine,
			Bindings: []authz.Binding{{ID: "b1", Role: issueOnly}, {ID: "b2", Role: issuer, Scope: authz.Scope{Names: []string{"*.svc.internal"}}}}}},
		{"principal of no kind", authz.Principal{ID: "m3", Name: "m3", Bindings: []authz.Binding{{ID: "b1", Role: issuer}}}},
	} {
		res, err := e.svc.Issue(ctx, req(tt.p, "a.example.internal"))
		if !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("%s: Issue = %+v, %v; want ErrForbidden", tt.name, res, err)
		}
	}
	if got := e.count(t); got != n {
		t.Fatalf("refused managed-key requests stored %d certificates", got-n)
	}

	// A machine with key:export gets its key; the human gets one through a CSR.
	bot := authz.WithRole("bot", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
	res, err := e.svc.Issue(ctx, req(bot, "a.example.internal"))
	if err != nil || res.Key == nil || res.Cert.Requester != "bot" {
		t.Fatalf("machine issuer: %+v, %v", res, err)
	}
	human := authz.WithRole("hugo", authz.KindHuman, authz.RoleIssuer, authz.Scope{})
	if _, err := e.svc.Issue(ctx, issue.Request{Principal: human, CA: "issuing", Profile: "internal_service", CSR: dnsCSR(t, "a.example.internal")}); err != nil {
		t.Fatalf("human issuer with a CSR: %v", err)
	}
}

// TestApprovalWorkflow runs a held request from submission to issuance.
func TestApprovalWorkflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof := e.approvalProfile(t)
	// The requester may approve too, just not its own request.
	rita := e.principal(t, "rita", authz.KindHuman, grant{authz.RoleIssuer, authz.Scope{}}, grant{authz.RoleApprover, authz.Scope{}})
	other := e.principal(t, "otto", authz.KindHuman, grant{authz.RoleIssuer, authz.Scope{}})
	narrow := e.principal(t, "nina", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{Profiles: []string{"internal_service"}}})
	otherCA := e.principal(t, "olaf", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{CAs: []string{"root"}}})
	viewer := e.principal(t, "vic", authz.KindHuman, grant{authz.RoleViewer, authz.Scope{}})
	// alex approves within the issuing CA (bound by ID) and the profile.
	alex := e.principal(t, "alex", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{CAs: []string{e.inter.ID}, Profiles: []string{prof.Name}}})
	n := e.count(t)
	seq := len(e.auditEvents(t))

	csr := mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))
	res, err := e.svc.Issue(ctx, issue.Request{Principal: rita, CA: "issuing", Profile: prof.Name, CSR: csr, Tags: []string{"team-a"}})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	r := res.Pending
	if r == nil || res.Cert != nil || res.Leaf != nil {
		t.Fatalf("Issue = %+v; want a pending request and no certificate", res)
	}
	if !strings.HasPrefix(r.ID, "req_") || r.Status != issue.StatusPending || r.RequesterID != rita.ID || r.Requester != "rita" ||
		r.CA != "issuing" || r.Profile != prof.Name || !r.CreatedAt.Equal(start) || !r.ExpiresAt.Equal(start.Add(72*time.Hour)) {
		t.Errorf("pending request = %+v", r)
	}
	if want := []string{"www.example.internal", "api.example.internal", "10.0.0.5"}; !sameSet(r.Names, want) {
		t.Errorf("request names = %v, want %v", r.Names, want)
	}
	if got := e.count(t); got != n {
		t.Fatalf("a held request stored %d certificates", got-n)
	}

	// Who sees it.
	for _, p := range []authz.Principal{rita, alex} {
		got, err := e.svc.GetRequest(ctx, p, r.ID)
		if err != nil || got.Status != issue.StatusPending {
			t.Errorf("GetRequest by %s = %+v, %v", p.Name, got, err)
		}
		list, err := e.svc.ListRequests(ctx, p, issue.StatusPending, 0)
		if err != nil || len(list) != 1 || list[0].ID != r.ID {
			t.Errorf("ListRequests by %s = %v, %v; want the request", p.Name, list, err)
		}
	}
	for _, p := range []authz.Principal{other, narrow, otherCA, viewer} {
		if got, err := e.svc.GetRequest(ctx, p, r.ID); !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("GetRequest by %s = %+v, %v; want ErrForbidden", p.Name, got, err)
		}
		if list, err := e.svc.ListRequests(ctx, p, "", 0); err != nil || len(list) != 0 {
			t.Errorf("ListRequests by %s = %v, %v; want none", p.Name, list, err)
		}
	}

	// Who may not decide.
	for _, tt := range []struct {
		name string
		p    authz.Principal
		rule authz.Rule // the rule the refusal names
	}{
		{"the requester", rita, authz.RuleTwoPerson},
		{"an issuer", other, authz.RuleRole},
		{"an approver of another profile", narrow, authz.RuleScope},
		{"an approver of another CA", otherCA, authz.RuleScope},
		{"a viewer", viewer, authz.RuleRole},
		{"nobody", authz.Principal{}, authz.RuleRole},
	} {
		if got, _, err := e.svc.Approve(ctx, tt.p, r.ID, "ok"); !errors.Is(err, authz.ErrForbidden) || !errors.Is(err, issue.ErrForbidden) {
			t.Errorf("Approve by %s = %+v, %v; want ErrForbidden", tt.name, got, err)
		} else if rule := authz.RuleOf(err); rule != tt.rule {
			t.Errorf("Approve by %s = %v: rule %q, want %q", tt.name, err, rule, tt.rule)
		}
		if got, err := e.svc.Reject(ctx, tt.p, r.ID, "no"); !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("Reject by %s = %+v, %v; want ErrForbidden", tt.name, got, err)
		}
	}
	if got, err := e.svc.GetRequest(ctx, rita, r.ID); err != nil || got.Status != issue.StatusPending || got.DecidedBy != "" {
		t.Fatalf("after refused decisions the request is %+v, %v", got, err)
	}
	if _, _, err := e.svc.Approve(ctx, alex, "req_unknown", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Approve(unknown) = %v, want store.ErrNotFound", err)
	}
	if _, _, err := e.svc.Approve(ctx, alex, r.ID, strings.Repeat("x", 2001)); !errors.Is(err, issue.ErrInvalid) {
		t.Errorf("Approve with an over-long comment = %v, want ErrInvalid", err)
	}

	// A second principal approves: the certificate is issued as the requester's.
	e.clk.Advance(time.Hour)
	final, ires, err := e.svc.Approve(ctx, alex, r.ID, "looks right")
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if final.Status != issue.StatusIssued || final.Serial == "" || final.DecidedBy != "alex" || final.Comment != "looks right" ||
		final.DecidedAt == nil || !final.DecidedAt.Equal(e.clk.Now()) || final.Error != "" {
		t.Errorf("approved request = %+v", final)
	}
	if ires == nil || ires.Cert == nil || ires.Cert.Serial != final.Serial || ires.Leaf == nil || ires.Key != nil {
		t.Fatalf("Approve result = %+v", ires)
	}
	if !ires.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Error("the issued certificate does not carry the CSR's key")
	}
	if err := verify(ires.Leaf, ires.Chain, e.clk.Now()); err != nil {
		t.Errorf("issued certificate does not verify: %v", err)
	}
	stored, err := e.db.GetCertificate(ctx, final.Serial)
	if err != nil {
		t.Fatalf("approved certificate not in the inventory: %v", err)
	}
	if stored.Requester != "rita" || stored.Profile != prof.Name || stored.CAID != e.inter.ID || !slices.Equal(stored.Tags, []string{"team-a"}) {
		t.Errorf("stored certificate = requester %q, profile %q, CA %q, tags %v", stored.Requester, stored.Profile, stored.CAID, stored.Tags)
	}
	if got := e.count(t); got != n+1 {
		t.Errorf("inventory grew by %d, want 1", got-n)
	}
	if got, err := e.svc.GetRequest(ctx, rita, r.ID); err != nil || got.Status != issue.StatusIssued || got.Serial != final.Serial {
		t.Errorf("stored request = %+v, %v", got, err)
	}

	// Decided once: a second decision is refused.
	if _, _, err := e.svc.Approve(ctx, alex, r.ID, ""); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("second Approve = %v, want ErrNotPending", err)
	}
	if _, err := e.svc.Reject(ctx, alex, r.ID, "changed my mind"); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("Reject after approval = %v, want ErrNotPending", err)
	}
	if got := e.count(t); got != n+1 {
		t.Errorf("second decision stored a certificate")
	}

	// The audit trail, in the order things happened: the request, the
	// decision, the certificate (by the requester, naming the approval),
	// and the request's outcome.
	type ev struct{ principal, action, target string }
	var got []ev
	var certEv *audit.Event
	for _, x := range e.auditEvents(t)[seq:] {
		got = append(got, ev{x.Principal, x.Action, x.Target})
		if x.Action == "certificate.issue" {
			certEv = x
		}
		if x.Outcome != audit.Success {
			t.Errorf("event %s %s has outcome %s", x.Action, x.Target, x.Outcome)
		}
	}
	want := []ev{
		{"rita", "request.create", r.ID},
		{"alex", "request.approve", r.ID},
		{"rita", "certificate.issue", final.Serial},
		{"alex", "request.issued", r.ID},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit events = %v, want %v", got, want)
	}
	for _, s := range []string{`"approval_request":"` + r.ID + `"`, `"approved_by":"alex"`} {
		if !strings.Contains(string(certEv.Details), s) {
			t.Errorf("certificate.issue details %s lack %s", certEv.Details, s)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestApprovalReject: a rejection says why and ends the request.
func TestApprovalReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof := e.approvalProfile(t)
	rita := e.principal(t, "rita", authz.KindHuman, grant{authz.RoleIssuer, authz.Scope{}})
	alex := e.principal(t, "alex", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{}})
	n := e.count(t)
	res, err := e.svc.Issue(ctx, issue.Request{Principal: rita, CA: "issuing", Profile: prof.Name, CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
	if err != nil || res.Pending == nil {
		t.Fatalf("Issue = %+v, %v", res, err)
	}
	id := res.Pending.ID

	for _, comment := range []string{"", "   ", "\n\t"} {
		if got, err := e.svc.Reject(ctx, alex, id, comment); !errors.Is(err, issue.ErrInvalid) {
			t.Errorf("Reject with comment %q = %+v, %v; want ErrInvalid", comment, got, err)
		}
	}
	if _, err := e.svc.Reject(ctx, alex, id, strings.Repeat("x", 2001)); !errors.Is(err, issue.ErrInvalid) {
		t.Errorf("Reject with an over-long comment = %v, want ErrInvalid", err)
	}
	if _, err := e.svc.Reject(ctx, rita, id, "withdrawn"); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("Reject by the requester (no approver role) = %v, want ErrForbidden", err)
	}
	if got, err := e.svc.GetRequest(ctx, rita, id); err != nil || got.Status != issue.StatusPending {
		t.Fatalf("after refused rejections the request is %+v, %v", got, err)
	}

	seq := len(e.auditEvents(t))
	got, err := e.svc.Reject(ctx, alex, id, "wrong CA for this service")
	if err != nil {
		t.Fatalf("Reject: %v", err)
	}
	if got.Status != issue.StatusRejected || got.DecidedBy != "alex" || got.Comment != "wrong CA for this service" || got.Serial != "" {
		t.Errorf("rejected request = %+v", got)
	}
	stored, err := e.svc.GetRequest(ctx, rita, id)
	if err != nil || stored.Status != issue.StatusRejected || stored.Comment != "wrong CA for this service" || stored.DecidedAt == nil {
		t.Errorf("stored request = %+v, %v", stored, err)
	}
	evs := e.auditEvents(t)[seq:]
	if len(evs) != 1 || evs[0].Action != "request.reject" || evs[0].Target != id || evs[0].Principal != "alex" ||
		!strings.Contains(string(evs[0].Details), "wrong CA for this service") {
		t.Errorf("audit events after Reject = %+v", evs)
	}

	// Ended: neither decision is possible any more.
	if _, _, err := e.svc.Approve(ctx, alex, id, ""); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("Approve after rejection = %v, want ErrNotPending", err)
	}
	if _, err := e.svc.Reject(ctx, alex, id, "again"); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("Reject after rejection = %v, want ErrNotPending", err)
	}
	if list, err := e.svc.ListRequests(ctx, alex, issue.StatusPending, 0); err != nil || len(list) != 0 {
		t.Errorf("pending requests after rejection = %v, %v", list, err)
	}
	if list, err := e.svc.ListRequests(ctx, alex, issue.StatusRejected, 0); err != nil || len(list) != 1 {
		t.Errorf("rejected requests = %v, %v", list, err)
	}
	if _, err := e.svc.ListRequests(ctx, alex, "bogus", 0); !errors.Is(err, issue.ErrInvalid) {
		t.Errorf("ListRequests(bogus status) = %v, want ErrInvalid", err)
	}
	if got := e.count(t); got != n {
		t.Errorf("a rejected request stored %d certificates", got-n)
	}
}

// TestApprovalExpiry: a request not decided within ApprovalLifetime cannot
// be approved, and the sweep marks it expired.
func TestApprovalExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	svc, err := issue.New(issue.Config{PublicHTTPBase: base, Clock: e.clk, Log: slog.New(slog.DiscardHandler), ApprovalLifetime: time.Hour},
		e.db, e.profiles, e.kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	prof := e.approvalProfile(t)
	rita := e.principal(t, "rita", authz.KindHuman, grant{authz.RoleIssuer, authz.Scope{}})
	alex := e.principal(t, "alex", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{}})
	n := e.count(t)
	hold := func() string {
		t.Helper()
		res, err := svc.Issue(ctx, issue.Request{Principal: rita, CA: "issuing", Profile: prof.Name, CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
		if err != nil || res.Pending == nil {
			t.Fatalf("Issue = %+v, %v", res, err)
		}
		if !res.Pending.ExpiresAt.Equal(e.clk.Now().Add(time.Hour)) {
			t.Errorf("request expires at %s, want %s", res.Pending.ExpiresAt, e.clk.Now().Add(time.Hour))
		}
		return res.Pending.ID
	}
	early := hold()
	e.clk.Advance(30 * time.Minute)
	late := hold()

	if ids, err := svc.ExpireRequests(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("ExpireRequests before any lifetime ended = %v, %v", ids, err)
	}

	// At its expiry the early request can no longer be decided, even before the sweep.
	e.clk.Set(start.Add(time.Hour))
	if _, _, err := svc.Approve(ctx, alex, early, "ok"); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("Approve at expiry = %v, want ErrNotPending", err)
	}
	if _, err := svc.Reject(ctx, alex, early, "too late"); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("Reject at expiry = %v, want ErrNotPending", err)
	}
	seq := len(e.auditEvents(t))
	ids, err := svc.ExpireRequests(ctx)
	if err != nil || !slices.Equal(ids, []string{early}) {
		t.Fatalf("ExpireRequests = %v, %v; want [%s]", ids, err, early)
	}
	if got, err := svc.GetRequest(ctx, rita, early); err != nil || got.Status != issue.StatusExpired {
		t.Errorf("expired request = %+v, %v", got, err)
	}
	evs := e.auditEvents(t)[seq:]
	if len(evs) != 1 || evs[0].Action != "request.expire" || evs[0].Target != early || evs[0].Principal != "system" {
		t.Errorf("audit events of the sweep = %+v", evs)
	}
	if _, _, err := svc.Approve(ctx, alex, early, "ok"); !errors.Is(err, issue.ErrNotPending) {
		t.Errorf("Approve after the sweep = %v, want ErrNotPending", err)
	}
	if ids, err := svc.ExpireRequests(ctx); err != nil || len(ids) != 0 {
		t.Errorf("second sweep = %v, %v; want none", ids, err)
	}

	// The later request is still within its hour.
	final, _, err := svc.Approve(ctx, alex, late, "ok")
	if err != nil || final.Status != issue.StatusIssued {
		t.Fatalf("Approve of the unexpired request = %+v, %v", final, err)
	}
	if got := e.count(t); got != n+1 {
		t.Errorf("inventory grew by %d, want 1 (the unexpired request)", got-n)
	}
}

// TestApprovalManagedKeyRefused: a server-generated key is not held for
// approval; nothing is stored.
func TestApprovalManagedKeyRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof := e.approvalProfile(t)
	bot := authz.WithRole("bot", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
	n := e.count(t)
	res, err := e.svc.Issue(ctx, issue.Request{Principal: bot, CA: "issuing", Profile: prof.Name, DNSNames: []string{"a.example.internal"}})
	if !errors.Is(err, issue.ErrInvalid) {
		t.Fatalf("managed-key Issue under require_approval = %+v, %v; want ErrInvalid", res, err)
	}
	if list, err := e.db.ListApprovalRequests(ctx, "", 0); err != nil || len(list) != 0 {
		t.Errorf("approval requests stored: %v, %v", list, err)
	}
	if got := e.count(t); got != n {
		t.Errorf("refused request stored %d certificates", got-n)
	}
}

// TestApprovalKeyReuseRefused: a renewal that certifies a stored key
// again (no CSR) under a profile that requires approval fails with an
// error naming the rule, instead of dereferencing the missing CSR (issue
// 13 #8: the renewal job panicked and crash-looped the server). Nothing
// is stored.
func TestApprovalKeyReuseRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	p, _ := profile.Builtin("web_server")
	p.Name, p.RequireApproval, p.AllowKeyReuse, p.Builtin = "web_server_reuse_approved", true, true, false
	if err := e.profiles.Create(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	n := e.count(t)
	key := mustKey(t, pki.ECDSAP256)
	var res *issue.Result
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("Issue panicked: %v", v)
			}
		}()
		res, err = e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: p.Name,
			PublicKey: key.Public(), DNSNames: []string{"reuse.example.internal"}})
		return err
	}()
	if !errors.Is(err, issue.ErrInvalid) || !strings.Contains(err.Error(), "requires approval") {
		t.Fatalf("key-reuse Issue under require_approval = %+v, %v; want ErrInvalid naming the approval rule", res, err)
	}
	if list, err := e.db.ListApprovalRequests(ctx, "", 0); err != nil || len(list) != 0 {
		t.Errorf("approval requests stored: %v, %v", list, err)
	}
	if got := e.count(t); got != n {
		t.Errorf("refused request stored %d certificates", got-n)
	}
}

// TestApprovalRequesterDisabled: the requester's authority is checked again
// on approval; a disabled requester's request fails and is audited so.
func TestApprovalRequesterDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof := e.approvalProfile(t)
	rita := e.principal(t, "rita", authz.KindHuman, grant{authz.RoleIssuer, authz.Scope{}})
	alex := e.principal(t, "alex", authz.KindHuman, grant{authz.RoleApprover, authz.Scope{}})
	n := e.count(t)
	res, err := e.svc.Issue(ctx, issue.Request{Principal: rita, CA: "issuing", Profile: prof.Name, CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))})
	if err != nil || res.Pending == nil {
		t.Fatalf("Issue = %+v, %v", res, err)
	}
	if err := e.db.DisablePrincipal(ctx, rita.ID, e.clk.Now(), audit.New(admin, e.clk.Now(), "principal.disable", rita.ID, nil)); err != nil {
		t.Fatal(err)
	}
	final, ires, err := e.svc.Approve(ctx, alex, res.Pending.ID, "ok")
	if !errors.Is(err, authz.ErrForbidden) || ires != nil {
		t.Fatalf("Approve for a disabled requester = %+v, %v; want ErrForbidden", ires, err)
	}
	if final == nil || final.Status != issue.StatusFailed || final.Error == "" {
		t.Errorf("request after the failed issuance = %+v", final)
	}
	stored, err := e.svc.GetRequest(ctx, alex, res.Pending.ID)
	if err != nil || stored.Status != issue.StatusFailed || stored.Serial != "" {
		t.Errorf("stored request = %+v, %v", stored, err)
	}
	evs := e.auditEvents(t)
	last := evs[len(evs)-1]
	if last.Action != "request.failed" || last.Outcome != audit.Failed || last.Target != res.Pending.ID {
		t.Errorf("last audit event = %+v, want a failed request.failed", last)
	}
	if got := e.count(t); got != n {
		t.Errorf("a failed approval stored %d certificates", got-n)
	}
}

// TestExportKey: a retained managed key goes to machines with key:export
// over the certificate, every hand-out audited; the server's own key never.
func TestExportKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof := e.retainProfile(t)
	bot := authz.WithRole("bot", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
	issueAs := func(p authz.Principal, profileName string, retain bool) *issue.Result {
		t.Helper()
		res, err := e.svc.Issue(ctx, issue.Request{Principal: p, CA: "issuing", Profile: profileName,
			Subject: pkix.Name{CommonName: "m1.example.internal"}, RetainKey: retain})
		if err != nil {
			t.Fatalf("Issue %s as %s: %v", profileName, p.Name, err)
		}
		return res
	}
	retained := issueAs(bot, prof.Name, false)
	serial := retained.Cert.Serial

	checkKey := func(pemBytes []byte) {
		t.Helper()
		block, rest := pem.Decode(pemBytes)
		if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
			t.Fatalf("ExportKey returned %q, want one PRIVATE KEY block", pemBytes)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("not PKCS#8: %v", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok || !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(retained.Leaf.PublicKey) {
			t.Fatal("exported key does not match the certificate")
		}
	}
	exports := func() []*audit.Event {
		var out []*audit.Event
		for _, ev := range e.auditEvents(t) {
			if ev.Action == "key.export" {
				out = append(out, ev)
			}
		}
		return out
	}

	// The requesting machine gets the key, twice; each hand-out is
	// audited. The certificate can authenticate a TLS client, so it is
	// bot's mTLS credential: another machine whose key:export covers it is
	// refused below (it would log in as bot); it gets the key of a
	// server-only certificate.
	other := authz.WithRole("bot2", authz.KindMachine, authz.RoleIssuer, authz.Scope{Profiles: []string{prof.Name, "server_retain"}, Names: []string{"*.example.internal"}})
	for i, p := range []authz.Principal{bot, bot} {
		key, err := e.svc.ExportKey(ctx, p, serial)
		if err != nil {
			t.Fatalf("ExportKey by %s: %v", p.Name, err)
		}
		checkKey(key)
		evs := exports()
		if len(evs) != i+1 {
			t.Fatalf("after %d hand-outs there are %d key.export events", i+1, len(evs))
		}
		if ev := evs[i]; ev.Principal != p.Name || ev.Target != serial || ev.Outcome != audit.Success ||
			!strings.Contains(string(ev.Details), `"profile":"`+prof.Name+`"`) {
			t.Errorf("key.export event = %+v", ev)
		}
	}

	serverOnly := *prof
	serverOnly.Name, serverOnly.ExtKeyUsage = "server_retain", []string{"server_auth"}
	if err := e.profiles.Create(ctx, admin, &serverOnly); err != nil {
		t.Fatal(err)
	}
	if res := issueAs(bot, serverOnly.Name, false); res.Cert.ManagedKey == nil {
		t.Fatal("server_retain kept no key")
	} else if key, err := e.svc.ExportKey(ctx, other, res.Cert.Serial); err != nil || !strings.Contains(string(key), "PRIVATE KEY") {
		t.Fatalf("ExportKey of a server-only certificate by another machine: %v", err)
	}

	// The server's own key: issued to the system, retained, never handed out.
	own := issueAs(authz.System(), "web_server", true)
	if own.Cert.ManagedKey == nil {
		t.Fatal("the server's own key was not retained")
	}
	csrCert, err := e.svc.Issue(ctx, issue.Request{Principal: bot, CA: "issuing", Profile: prof.Name, CSR: dnsCSR(t, "c.example.internal")})
	if err != nil {
		t.Fatal(err)
	}
	once := issueAs(bot, "internal_service", false)

	before := len(exports())
	for _, tt := range []struct {
		name    string
		p       authz.Principal
		serial  string
		wantErr error
	}{
		{"human issuer", authz.WithRole("hugo", authz.KindHuman, authz.RoleIssuer, authz.Scope{}), serial, authz.ErrForbidden},
		{"human admin", authz.WithRole("root-admin", authz.KindHuman, authz.RoleAdmin, authz.Scope{}), serial, authz.ErrForbidden},
		{"CA admin (human)", authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{}), serial, authz.ErrForbidden},
		{"CA admin (machine)", authz.WithRole("carol-bot", authz.KindMachine, authz.RoleCAAdmin, authz.Scope{}), serial, authz.ErrForbidden},
		{"machine approver", authz.WithRole("approve-bot", authz.KindMachine, authz.RoleApprover, authz.Scope{}), serial, authz.ErrForbidden},
		{"machine outside its names", authz.WithRole("svc-bot", authz.KindMachine, authz.RoleIssuer, authz.Scope{Names: []string{"*.svc.internal"}}), serial, authz.ErrForbidden},
		{"machine outside its profiles", authz.WithRole("svc-bot", authz.KindMachine, authz.RoleIssuer, authz.Scope{Profiles: []string{"internal_service"}}), serial, authz.ErrForbidden},
		{"nobody", authz.Principal{}, serial, authz.ErrForbidden},
		{"another machine: the certificate is bot's mTLS credential", other, serial, authz.ErrForbidden},
		{"the server's own key", bot, own.Cert.Serial, authz.ErrForbidden},
		{"the server's own key, to the system", authz.System(), own.Cert.Serial, authz.ErrForbidden},
		{"key from a CSR", bot, csrCert.Cert.Serial, issue.ErrConflict},
		{"key handed out once", bot, once.Cert.Serial, issue.ErrConflict},
		{"unknown serial", bot, "01", store.ErrNotFound},
	} {
		key, err := e.svc.ExportKey(ctx, tt.p, tt.serial)
		if !errors.Is(err, tt.wantErr) || key != nil {
			t.Errorf("ExportKey %s = %d bytes, %v; want %v", tt.name, len(key), err, tt.wantErr)
		}
	}
	if got := len(exports()); got != before {
		t.Errorf("refused hand-outs wrote %d key.export events", got-before)
	}
}
