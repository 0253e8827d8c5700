package acme_test

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// tarpit listens on addr:port, accepts connections and never answers,
// until the test ends.
func tarpit(t *testing.T, addr string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		t.Skipf("cannot listen on %s:%d: %v", addr, port, err)
	}
	validatetest.Tarpit(t, ln)
}

// TestValidationStarvation is the reported attack: account A queues many
// challenges against a tarpit (it accepts and never answers, so each one
// holds a worker for the whole validation timeout). A is refused with
// rateLimited past its in-flight limit, and account B's legitimate
// validation still completes promptly.
func TestValidationStarvation(t *testing.T) {
	t.Parallel()
	const limit = 6
	e := newEnv(t, func(c *acme.Config) {
		c.Workers = 4
		c.Limits.ValidationsInFlight = limit
	})
	tarpit(t, "127.0.0.9", e.httpPort)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "starve", Challenges: []string{acme.ChallengeHTTP01}})
	attacker := e.account(t, e.svc, prov)
	var names []string
	for i := range limit + 2 {
		n := "t" + strconv.Itoa(i) + ".tarpit.test"
		e.dns.SetA(n, netip.MustParseAddr("127.0.0.9"))
		names = append(names, n)
	}
	o, err := e.svc.NewOrder(ctx, prov, attacker, acme.OrderRequest{Identifiers: dnsIDs(names...)})
	if err != nil {
		t.Fatal(err)
	}
	var refused int
	for i, a := range authzs(t, e.svc, attacker, o) {
		ch := challengeOf(t, a, acme.ChallengeHTTP01)
		_, _, err := e.svc.RespondChallenge(ctx, attacker, a.ID, ch.ID, "")
		if i < limit {
			if err != nil {
				t.Fatalf("challenge %d within the limit: %v", i, err)
			}
			continue
		}
		p := wantProblem(t, err, acme.ErrRateLimited)
		if p.RetryAfterSeconds <= 0 || !strings.Contains(p.Detail, "this account has 6 challenges waiting for or in validation") {
			t.Errorf("refusal %+v", p)
		}
		refused++
		if a, err := e.svc.Authorization(ctx, attacker, a.ID); err != nil || challengeOf(t, a, acme.ChallengeHTTP01).Status != acme.StatusPending {
			t.Errorf("refused challenge is not pending: %+v, %v", a, err)
		}
	}
	if refused != 2 {
		t.Fatalf("%d challenges refused, want 2", refused)
	}

	// Every tarpit validation holds its worker for the 5 s timeout; B must
	// not wait for them.
	victim := e.account(t, e.svc, prov)
	start := time.Now()
	o2, err := e.svc.NewOrder(ctx, prov, victim, acme.OrderRequest{Identifiers: dnsIDs("legit.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	a := authzs(t, e.svc, victim, o2)[0]
	e.respond(t, e.svc, victim, a, acme.ChallengeHTTP01)
	waitAuthz(t, e.svc, victim, a.ID, acme.StatusValid)
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("account B's validation took %s behind account A's tarpit", d)
	}
}

// TestValidationTargetLimit: challenges against one identifier are
// counted across accounts.
func TestValidationTargetLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.Limits.TargetValidationsInFlight = 2 })
	tarpit(t, "127.0.0.10", e.httpPort)
	e.dns.SetA("slow.tarpit.test", netip.MustParseAddr("127.0.0.10"))
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "target", Challenges: []string{acme.ChallengeHTTP01}})
	var errs []error
	for range 3 {
		acct := e.account(t, e.svc, prov)
		o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("slow.tarpit.test")})
		if err != nil {
			t.Fatal(err)
		}
		a := authzs(t, e.svc, acct, o)[0]
		_, _, err = e.svc.RespondChallenge(ctx, acct, a.ID, challengeOf(t, a, acme.ChallengeHTTP01).ID, "")
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("within the target limit: %v", errs)
	}
	p := wantProblem(t, errs[2], acme.ErrRateLimited)
	if !strings.Contains(p.Detail, "slow.tarpit.test") {
		t.Errorf("refusal does not name the target: %s", p.Detail)
	}
}

// TestValidationAttemptsAudited: each validation attempt is an audit event
// naming the addresses it connected to and how it ended.
func TestValidationAttemptsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "audited"})
	acct := e.account(t, e.svc, prov)
	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("good.example.test", "bad.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	as := authzs(t, e.svc, acct, o)
	e.respond(t, e.svc, acct, as[0], acme.ChallengeHTTP01)
	waitAuthz(t, e.svc, acct, as[0].ID, acme.StatusValid)
	bad := challengeOf(t, as[1], acme.ChallengeHTTP01)
	e.serveHTTP01(bad.Token, "wrong")
	if _, _, err := e.svc.RespondChallenge(ctx, acct, as[1].ID, bad.ID, ""); err != nil {
		t.Fatal(err)
	}
	waitAuthz(t, e.svc, acct, as[1].ID, acme.StatusInvalid)

	want := map[string]audit.Outcome{"dns:good.example.test": audit.Success, "dns:bad.example.test": audit.Failed}
	target := "127.0.0.1:" + strconv.Itoa(e.httpPort)
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := map[string]bool{}
		for _, ev := range auditEvents(t, e) {
			if ev.Action != "acme.challenge.validate" {
				continue
			}
			var d struct {
				Targets []string `json:"targets"`
				Result  string   `json:"result"`
				Type    string   `json:"type"`
			}
			if err := json.Unmarshal(ev.Details, &d); err != nil {
				t.Fatal(err)
			}
			if ev.Outcome != want[ev.Target] || ev.Principal != "acme:audited/"+acct.ID || d.Type != acme.ChallengeHTTP01 {
				t.Errorf("event %s: outcome %s by %s, details %s", ev.Target, ev.Outcome, ev.Principal, ev.Details)
			}
			if len(d.Targets) != 1 || d.Targets[0] != target {
				t.Errorf("event %s: targets %v, want [%s]", ev.Target, d.Targets, target)
			}
			found[ev.Target] = true
		}
		if len(found) == len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("validation audit events for %v only", found)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestValidationSourceLimit: anonymous accounts answering challenges from
// one address share that address's in-flight limit, however many accounts
// there are; past it a challenge is refused with rateLimited and stays
// pending, while an account answering from another address, and an
// account with an external account binding answering from the same one,
// are still queued and validated.
func TestValidationSourceLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	e := newEnv(t, func(c *acme.Config) {
		c.Workers = 4
		c.Limits.SourceValidationsInFlight = limit
	})
	tarpit(t, "127.0.0.11", e.httpPort)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "sources", Challenges: []string{acme.ChallengeHTTP01}})
	const attacker = "192.0.2.1"
	var results []error
	var last *acme.Authorization
	var lastAcct *acme.Account
	for k := range 2 { // two accounts, two challenges each, one address
		acct := e.account(t, e.svc, prov)
		var names []string
		for i := range 2 {
			n := "s" + strconv.Itoa(k) + "-" + strconv.Itoa(i) + ".tarpit.test"
			e.dns.SetA(n, netip.MustParseAddr("127.0.0.11"))
			names = append(names, n)
		}
		o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs(names...)})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range authzs(t, e.svc, acct, o) {
			_, _, err := e.svc.RespondChallenge(ctx, acct, a.ID, challengeOf(t, a, acme.ChallengeHTTP01).ID, attacker)
			results = append(results, err)
			last, lastAcct = a, acct
		}
	}
	for i, err := range results[:limit] {
		if err != nil {
			t.Fatalf("challenge %d within the source limit: %v", i, err)
		}
	}
	p := wantProblem(t, results[limit], acme.ErrRateLimited)
	if p.RetryAfterSeconds <= 0 || !strings.Contains(p.Detail, "3 challenges from your address (192.0.2.1)") {
		t.Errorf("refusal %+v", p)
	}
	if a, err := e.svc.Authorization(ctx, lastAcct, last.ID); err != nil || challengeOf(t, a, acme.ChallengeHTTP01).Status != acme.StatusPending {
		t.Errorf("refused challenge is not pending: %+v, %v", a, err)
	}

	other := e.account(t, e.svc, prov)
	o, err := e.svc.NewOrder(ctx, prov, other, acme.OrderRequest{Identifiers: dnsIDs("other.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	a := authzs(t, e.svc, other, o)[0]
	e.respondFrom(t, e.svc, other, a, acme.ChallengeHTTP01, "192.0.2.2")
	waitAuthz(t, e.svc, other, a.ID, acme.StatusValid)

	k, _, err := e.svc.CreateEABKey(ctx, admin, "sources", e.eabPrincipal(t, "source-bot", authz.Scope{}), "same NAT as the attacker")
	if err != nil {
		t.Fatal(err)
	}
	req := newAccountReq(t)
	req.EABKeyID = k.ID
	bound, _, err := e.svc.NewAccount(ctx, prov, req)
	if err != nil {
		t.Fatal(err)
	}
	o, err = e.svc.NewOrder(ctx, prov, bound, acme.OrderRequest{Identifiers: dnsIDs("bound.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	a = authzs(t, e.svc, bound, o)[0]
	e.respondFrom(t, e.svc, bound, a, acme.ChallengeHTTP01, attacker)
	waitAuthz(t, e.svc, bound, a.ID, acme.StatusValid)
}
