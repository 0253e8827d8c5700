package acme_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// Several replicas on one database (README "Several replicas"): on SQLite
// the services share one store, on PostgreSQL each opens its own.

// deadReplica is a service that answers requests but never runs: what it
// claims stays claimed until the claim expires, as when its process died
// after the claim.
func (e *env) deadReplica(t *testing.T, name string, claim time.Duration) *acme.Service {
	t.Helper()
	svc, err := acme.New(acme.Config{Clock: e.clk, Log: e.log, Workers: 4, Replica: name, ClaimTimeout: claim, RespondWait: -1},
		e.db, e.issuer, e.revoker, e.profiles, e.val, e.kp)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// replicaOn returns a service on db, another replica's own store (its
// own connection pool on PostgreSQL), with its own issuance and
// revocation services, running until the test ends.
func (e *env) replicaOn(t *testing.T, db *store.DB, name string) *acme.Service {
	t.Helper()
	linter, err := lint.New(lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	profiles := profile.NewCatalog(db, e.clk.Now)
	iss, err := issue.New(issue.Config{PublicHTTPBase: "http://pki.example.internal:8080", Clock: e.clk, Log: e.log},
		db, profiles, e.kp, linter)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := revoke.New(revoke.Config{Clock: e.clk, Log: e.log}, db, e.kp, linter)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := acme.New(acme.Config{Clock: e.clk, Log: e.log, Workers: 4, Replica: name}, db, iss, rv, profiles, e.val, e.kp)
	if err != nil {
		t.Fatal(err)
	}
	return running(t, svc)
}

// audited counts the audit events of action whose principal starts with
// prefix and whose details mention detail.
func audited(t *testing.T, e *env, action, prefix, detail string) int {
	t.Helper()
	n := 0
	for _, ev := range auditEvents(t, e) {
		if ev.Action == action && strings.HasPrefix(ev.Principal, prefix) && strings.Contains(string(ev.Details), detail) {
			n++
		}
	}
	return n
}

// A challenge claimed by a replica that died is validated by another once
// the claim expires, once.
func TestChallengeTakenOverFromDeadReplica(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		const claim = 300 * time.Millisecond
		e := newEnvOn(t, open(t), func(c *acme.Config) { c.SweepInterval = 20 * time.Millisecond })
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "takeover"})
		acct := e.account(t, e.svc, prov)
		dead := e.deadReplica(t, "dead", claim)
		o, err := dead.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("takeover.example.test")})
		if err != nil {
			t.Fatal(err)
		}
		a := authzs(t, dead, acct, o)[0]
		ch := e.respond(t, dead, acct, a, acme.ChallengeHTTP01)
		if ch.Status != acme.StatusProcessing {
			t.Fatalf("challenge is %s after the response, want processing", ch.Status)
		}
		// Within the claim nobody else touches it.
		time.Sleep(100 * time.Millisecond)
		if got := waitStatus(t, e.svc, acct, a.ID, 0); got.Status != acme.StatusPending {
			t.Fatalf("authorization is %s within the dead replica's claim", got.Status)
		}
		// Past it (the fake clock on SQLite, PostgreSQL's own clock) the
		// live replica takes the challenge over and validates it.
		e.clk.Advance(claim)
		time.Sleep(claim)
		waitAuthz(t, e.svc, acct, a.ID, acme.StatusValid)
		if n := audited(t, e, "acme.challenge.validate", "", ch.ID); n != 1 {
			t.Errorf("%d validation attempts audited, want 1", n)
		}
	})
}

// waitStatus returns the authorization after at most d (0: at once).
func waitStatus(t *testing.T, svc *acme.Service, acct *acme.Account, id string, d time.Duration) *acme.Authorization {
	t.Helper()
	time.Sleep(d)
	a, err := svc.Authorization(context.Background(), acct, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// answered orders name through svc and answers its HTTP-01 challenge,
// which svc claims; it returns the authorization.
func (e *env) answered(t *testing.T, svc *acme.Service, prov *acme.Provisioner, acct *acme.Account, name string) *acme.Authorization {
	t.Helper()
	o, err := svc.NewOrder(context.Background(), prov, acct, acme.OrderRequest{Identifiers: dnsIDs(name)})
	if err != nil {
		t.Fatal(err)
	}
	a := authzs(t, svc, acct, o)[0]
	e.respond(t, svc, acct, a, acme.ChallengeHTTP01)
	return a
}

// A replica restarted under the same name takes back its previous life's
// claims at once, without waiting for them to expire.
func TestRestartTakesBackOwnClaims(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "restart"})
		acct := e.account(t, e.svc, prov)
		before := e.deadReplica(t, "r1", time.Hour)
		a := e.answered(t, before, prov, acct, "restart.example.test")
		after := e.service(t, func(c *acme.Config) { c.Replica = "r1" })
		waitAuthz(t, after, acct, a.ID, acme.StatusValid)
	})
}

// A replica's start-up sweep takes back only the claims its name took
// before it started: one a live replica under the same name (a
// misconfiguration the registry refuses at start) took since stays that
// replica's.
func TestRestartLeavesClaimsTakenSince(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "twin"})
		acct := e.account(t, e.svc, prov)
		starting := e.deadReplica(t, "r1", time.Hour)
		e.clk.Advance(time.Second)
		twin := e.deadReplica(t, "r1", time.Hour)
		a := e.answered(t, twin, prov, acct, "twin.example.test")
		running(t, starting)
		time.Sleep(500 * time.Millisecond)
		got, err := starting.Authorization(ctx, acct, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != acme.StatusPending {
			t.Fatalf("authorization %s: the starting replica took the live twin's claim and validated it", got.Status)
		}
	})
}

// A replica's start-up sweep leaves alone the claims this process took
// itself, also those taken at the instant it started by the clock (a
// test's fixed clock; a coarse one): the response waiting for such a
// validation hears its outcome.
func TestStartupSweepLeavesOwnClaims(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "own"})
		acct := e.account(t, e.svc, prov)
		svc, err := acme.New(acme.Config{Clock: e.clk, Log: e.log, Workers: 4, Replica: "r1", RespondWait: 10 * time.Second},
			e.db, e.issuer, e.revoker, e.profiles, e.val, e.kp)
		if err != nil {
			t.Fatal(err)
		}
		o, err := svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("own.example.test")})
		if err != nil {
			t.Fatal(err)
		}
		a := authzs(t, svc, acct, o)[0]
		ch := challengeOf(t, a, acme.ChallengeHTTP01)
		e.serveHTTP01(ch.Token, acme.KeyAuthorization(ch.Token, acct.KeyThumbprint))
		answer := make(chan *acme.Challenge, 1)
		go func() {
			got, _, err := svc.RespondChallenge(ctx, acct, a.ID, ch.ID, "")
			if err != nil {
				t.Errorf("RespondChallenge: %v", err)
			}
			answer <- got
		}()
		for deadline := time.Now().Add(5 * time.Second); challengeOf(t, waitStatus(t, svc, acct, a.ID, 0), acme.ChallengeHTTP01).Status != acme.StatusProcessing; {
			if time.Now().After(deadline) {
				t.Fatal("the challenge never went to processing")
			}
			time.Sleep(5 * time.Millisecond)
		}
		running(t, svc)
		select {
		case got := <-answer:
			if got == nil || got.Status != acme.StatusValid {
				t.Fatalf("the response answered %+v, want valid: the start-up sweep took over this process's own claim", got)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the response never answered")
		}
		if n := audited(t, e, "acme.challenge.validate", "", ch.ID); n != 1 {
			t.Errorf("%d validation attempts audited, want 1", n)
		}
	})
}

// A replica shutting down releases the claims it had not started on, and
// another replica takes them over at once.
func TestShutdownReleasesClaims(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), func(c *acme.Config) { c.SweepInterval = 20 * time.Millisecond })
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "shutdown"})
		acct := e.account(t, e.svc, prov)
		leaving := e.deadReplica(t, "leaving", time.Hour)
		o, err := leaving.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("a.shutdown.test", "b.shutdown.test")})
		if err != nil {
			t.Fatal(err)
		}
		as := authzs(t, leaving, acct, o)
		for _, a := range as {
			e.respond(t, leaving, acct, a, acme.ChallengeHTTP01)
		}
		// Run on an ended context: the workers take nothing, and the
		// queued challenges are released on the way out.
		stopped, cancel := context.WithCancel(ctx)
		cancel()
		if err := leaving.Run(stopped); err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			waitAuthz(t, e.svc, acct, a.ID, acme.StatusValid)
		}
	})
}

// Fifty identical finalizations of one order, spread over two replicas,
// issue one certificate; every other answer is orderNotReady.
func TestFinalizeConcurrentReplicas(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "fifty"})
		acct := e.account(t, e.svc, prov)
		o := e.readyOrder(t, e.svc, prov, acct, dnsIDs("fifty.example.test")...)
		replica := e.replicaOn(t, open(t), "other")
		csr := csrFor(t, newKey(t), "", []string{"fifty.example.test"})
		const n = 50
		var wg sync.WaitGroup
		results := make([]*acme.Order, n)
		errs := make([]error, n)
		for i := range n {
			svc := e.svc
			if i%2 == 1 {
				svc = replica
			}
			wg.Go(func() { results[i], errs[i] = svc.Finalize(ctx, prov, acct, o.ID, csr) })
		}
		wg.Wait()
		var won *acme.Order
		for i := range n {
			if errs[i] == nil {
				if won != nil {
					t.Fatalf("two finalizations succeeded: %s and %s", won.CertSerial, results[i].CertSerial)
				}
				won = results[i]
				continue
			}
			pb := wantProblem(t, errs[i], acme.ErrOrderNotReady)
			if s := pb.Status(); s != http.StatusForbidden {
				t.Errorf("loser answered %d, want 403", s)
			}
		}
		if won == nil {
			t.Fatal("no finalization succeeded")
		}
		if issued := audited(t, e, "certificate.issue", "acme:fifty/", ""); issued != 1 {
			t.Errorf("%d certificates issued, want 1", issued)
		}
		got, err := replica.Order(ctx, acct, o.ID)
		if err != nil || got.Status != acme.StatusValid || got.CertSerial != won.CertSerial {
			t.Errorf("order after finalization: %+v, %v; want valid with %s", got, err, won.CertSerial)
		}
	})
}

// An order left processing by a finalization whose replica died goes back
// to ready once its claim expires, and finalizes; the dead finalization,
// should it wake, stores nothing.
func TestStuckOrderRecovered(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		const claim = 300 * time.Millisecond
		e := newEnvOn(t, open(t), func(c *acme.Config) { c.SweepInterval = 20 * time.Millisecond })
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "stuck"})
		acct := e.account(t, e.svc, prov)
		o := e.readyOrder(t, e.svc, prov, acct, dnsIDs("stuck.example.test")...)
		// The dead replica's finalization claimed the order and died.
		dead := acme.Claim{Replica: "dead", Token: "dead-token", Now: e.clk.Now(), TTL: claim}
		processing := *o
		processing.Status = acme.StatusProcessing
		if err := e.db.ClaimOrder(ctx, &processing, acme.StatusReady, dead); err != nil {
			t.Fatal(err)
		}
		csr := csrFor(t, newKey(t), "", []string{"stuck.example.test"})
		_, err := e.svc.Finalize(ctx, prov, acct, o.ID, csr)
		wantProblem(t, err, acme.ErrOrderNotReady)

		e.clk.Advance(claim)
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := e.svc.Order(ctx, acct, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == acme.StatusReady {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("order still %s 5s after its claim expired", got.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		done, err := e.svc.Finalize(ctx, prov, acct, o.ID, csr)
		if err != nil || done.Status != acme.StatusValid {
			t.Fatalf("finalize after recovery: %+v, %v", done, err)
		}

		// The dead finalization's issuance, arriving now, is not stored.
		req, err := x509.ParseCertificateRequest(csr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.issuer.Issue(ctx, issue.Request{Principal: admin, CA: prov.CAID, Profile: prov.Profile, CSR: req,
			Completes: &inventory.OrderClaim{ID: o.ID, Claim: dead.Token, UpdatedAt: e.clk.Now()}})
		if !errors.Is(err, acme.ErrConflict) {
			t.Fatalf("issuance under the lost claim: %v, want a conflict", err)
		}
		if n := audited(t, e, "certificate.issue", "", ""); n != 1 {
			t.Errorf("%d certificates issued, want 1", n)
		}
		// Its certificate was signed all the same: the signature is
		// audited, as discarded.
		if n := audited(t, e, "certificate.discard", "", o.ID); n != 1 {
			t.Errorf("%d certificate.discard events naming order %s, want 1", n, o.ID)
		}
		got, err := e.svc.Order(ctx, acct, o.ID)
		if err != nil || got.CertSerial != done.CertSerial {
			t.Errorf("order after the stale issuance: %+v, %v", got, err)
		}
	})
}

// An account update verified against a copy read before another replica
// deactivated the account (or rolled its key over) changes nothing and is
// refused with unauthorized.
func TestAccountUpdateAfterChangeElsewhere(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		e := newEnvOn(t, open(t), nil)
		ctx := context.Background()
		prov := e.provisioner(t, acme.ProvisionerSpec{Name: "stale"})
		other := e.service(t, nil)

		acct := e.account(t, e.svc, prov)
		if _, err := other.UpdateAccount(ctx, prov, acct, nil, true); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.UpdateAccount(ctx, prov, acct, []string{"mailto:late@example.test"}, false)
		wantProblem(t, err, acme.ErrUnauthorized)
		_, err = e.svc.ChangeKey(ctx, prov, acct, thumbprint(t), []byte(`{"kty":"EC"}`))
		wantProblem(t, err, acme.ErrUnauthorized)
		if got, err := e.db.GetAccount(ctx, acct.ID); err != nil || got.Status != acme.StatusDeactivated || got.KeyThumbprint != acct.KeyThumbprint {
			t.Fatalf("account after stale updates: %+v, %v", got, err)
		}

		// Two rollovers from the same key, one per replica: one wins.
		acct = e.account(t, e.svc, prov)
		k1, k2 := thumbprint(t), thumbprint(t)
		_, err1 := e.svc.ChangeKey(ctx, prov, acct, k1, []byte(`{"k":1}`))
		_, err2 := other.ChangeKey(ctx, prov, acct, k2, []byte(`{"k":2}`))
		if err1 != nil {
			t.Fatal(err1)
		}
		wantProblem(t, err2, acme.ErrUnauthorized)
		if got, err := e.db.GetAccount(ctx, acct.ID); err != nil || got.KeyThumbprint != k1 {
			t.Fatalf("account after racing rollovers: %+v, %v; want key %s", got, err, k1)
		}
	})
}
