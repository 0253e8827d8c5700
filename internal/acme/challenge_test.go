package acme_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
)

// oneAuthzOrder creates an order for one identifier and returns it with its
// authorization.
func oneAuthzOrder(t *testing.T, svc *acme.Service, prov *acme.Provisioner, acct *acme.Account, id acme.Identifier) (*acme.Order, *acme.Authorization) {
	t.Helper()
	o, err := svc.NewOrder(context.Background(), prov, acct, acme.OrderRequest{Identifiers: []acme.Identifier{id}})
	if err != nil {
		t.Fatalf("NewOrder %v: %v", id, err)
	}
	return o, authzs(t, svc, acct, o)[0]
}

func TestChallengeSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "challenges"})

	for _, tc := range []struct {
		name, typ string
		id        acme.Identifier
	}{
		{"http-01", acme.ChallengeHTTP01, acme.Identifier{Type: "dns", Value: "http.example.test"}},
		{"http-01 ip", acme.ChallengeHTTP01, acme.Identifier{Type: "ip", Value: "127.0.0.1"}},
		{"dns-01", acme.ChallengeDNS01, acme.Identifier{Type: "dns", Value: "dns.example.test"}},
		{"tls-alpn-01", acme.ChallengeTLSALPN01, acme.Identifier{Type: "dns", Value: "tls.example.test"}},
		{"tls-alpn-01 ip", acme.ChallengeTLSALPN01, acme.Identifier{Type: "ip", Value: "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each subtest has its own account: valid authorizations
			// would otherwise be reused.
			acct := e.account(t, e.svc, prov)
			o, a := oneAuthzOrder(t, e.svc, prov, acct, tc.id)
			ch := e.respond(t, e.svc, acct, a, tc.typ)
			if ch.Status != acme.StatusProcessing && ch.Status != acme.StatusValid {
				t.Errorf("challenge after responding is %s", ch.Status)
			}
			a = waitAuthz(t, e.svc, acct, a.ID, acme.StatusValid)
			got := challengeOf(t, a, tc.typ)
			if got.Status != acme.StatusValid || got.Error != nil || !got.Validated.Equal(start) {
				t.Errorf("validated challenge %+v", got)
			}
			for _, c := range a.Challenges {
				if c.Type != tc.typ && c.Status != acme.StatusPending {
					t.Errorf("untried challenge %s is %s", c.Type, c.Status)
				}
			}
			if !a.Expires.Equal(start.Add(30 * day)) {
				t.Errorf("valid authorization expires %s, want %s", a.Expires, start.Add(30*day))
			}
			o, err := e.svc.Order(ctx, acct, o.ID)
			if err != nil || o.Status != acme.StatusReady {
				t.Fatalf("order after validation: %+v, %v", o, err)
			}
		})
	}
}

func TestChallengeFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "failures"})

	for _, tc := range []struct {
		name, typ string
		serve     func(t *testing.T, acct *acme.Account, a *acme.Authorization, ch *acme.Challenge)
		want      []acme.ErrorType
	}{
		{"http-01 wrong key authorization", acme.ChallengeHTTP01, func(t *testing.T, acct *acme.Account, a *acme.Authorization, ch *acme.Challenge) {
			e.serveHTTP01(ch.Token, acme.KeyAuthorization(ch.Token, thumbprint(t)))
		}, []acme.ErrorType{acme.ErrIncorrectResponse, acme.ErrUnauthorized}},
		{"http-01 not served", acme.ChallengeHTTP01, func(*testing.T, *acme.Account, *acme.Authorization, *acme.Challenge) {},
			[]acme.ErrorType{acme.ErrIncorrectResponse, acme.ErrUnauthorized}},
		{"dns-01 wrong record", acme.ChallengeDNS01, func(t *testing.T, acct *acme.Account, a *acme.Authorization, ch *acme.Challenge) {
			e.dns.SetTXT("_acme-challenge."+a.Identifier.Value, dns01Value(acme.KeyAuthorization(ch.Token, thumbprint(t))))
		}, []acme.ErrorType{acme.ErrIncorrectResponse, acme.ErrUnauthorized}},
		{"tls-alpn-01 wrong certificate", acme.ChallengeTLSALPN01, func(t *testing.T, acct *acme.Account, a *acme.Authorization, ch *acme.Challenge) {
			e.serveTLSALPN01(t, a.Identifier, acme.KeyAuthorization(ch.Token, thumbprint(t)))
		}, []acme.ErrorType{acme.ErrIncorrectResponse, acme.ErrUnauthorized}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := e.account(t, e.svc, prov)
			id := acme.Identifier{Type: "dns", Value: "fail-" + tc.typ + ".example.test"}
			if tc.name == "http-01 not served" {
				id.Value = "notserved.example.test"
			}
			o, a := oneAuthzOrder(t, e.svc, prov, acct, id)
			ch := challengeOf(t, a, tc.typ)
			tc.serve(t, acct, a, ch)
			if _, _, err := e.svc.RespondChallenge(ctx, acct, a.ID, ch.ID, ""); err != nil {
				t.Fatal(err)
			}
			a = waitAuthz(t, e.svc, acct, a.ID, acme.StatusInvalid)
			got := challengeOf(t, a, tc.typ)
			if got.Status != acme.StatusInvalid || got.Error == nil || got.Validated.IsZero() {
				t.Fatalf("failed challenge %+v", got)
			}
			if !containsType(tc.want, got.Error.Type) {
				t.Errorf("challenge error %s (%s), want one of %v", got.Error.Type, got.Error.Detail, tc.want)
			}
			if got.Error.Identifier == nil || *got.Error.Identifier != a.Identifier {
				t.Errorf("challenge error identifier %v", got.Error.Identifier)
			}
			o, err := e.svc.Order(ctx, acct, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != acme.StatusInvalid || o.Error == nil || !containsType(tc.want, o.Error.Type) {
				t.Fatalf("order after a failed challenge: status %s, error %+v", o.Status, o.Error)
			}
			if o.Error.Detail != got.Error.Detail {
				t.Errorf("order error %q, want the challenge's %q", o.Error.Detail, got.Error.Detail)
			}
			// Another challenge of the invalid authorization is not started.
			for _, c := range a.Challenges {
				if c.ID == ch.ID {
					continue
				}
				c2, _, err := e.svc.RespondChallenge(ctx, acct, a.ID, c.ID, "")
				if err != nil || c2.Status != acme.StatusPending {
					t.Errorf("responding to %s of an invalid authorization: %+v, %v", c.Type, c2, err)
				}
			}
		})
	}
}

func containsType(list []acme.ErrorType, t acme.ErrorType) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

func TestRespondChallengeIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "idem"})
	acct := e.account(t, e.svc, prov)
	_, a := oneAuthzOrder(t, e.svc, prov, acct, acme.Identifier{Type: "dns", Value: "idem.example.test"})

	first := e.respond(t, e.svc, acct, a, acme.ChallengeHTTP01)
	again, a2, err := e.svc.RespondChallenge(ctx, acct, a.ID, first.ID, "")
	if err != nil {
		t.Fatalf("responding again: %v", err)
	}
	if again.ID != first.ID || (again.Status != acme.StatusProcessing && again.Status != acme.StatusValid) || a2.ID != a.ID {
		t.Errorf("second response: challenge %+v", again)
	}
	waitAuthz(t, e.svc, acct, a.ID, acme.StatusValid)
	for range 3 {
		c, got, err := e.svc.RespondChallenge(ctx, acct, a.ID, first.ID, "")
		if err != nil || c.Status != acme.StatusValid || got.Status != acme.StatusValid {
			t.Fatalf("responding to a valid challenge: %+v, %v", c, err)
		}
	}
	// The other challenges of a valid authorization stay as they are.
	dns := challengeOf(t, a, acme.ChallengeDNS01)
	c, _, err := e.svc.RespondChallenge(ctx, acct, a.ID, dns.ID, "")
	if err != nil || c.Status != acme.StatusPending {
		t.Errorf("responding to dns-01 of a valid authorization: %+v, %v", c, err)
	}

	_, _, err = e.svc.RespondChallenge(ctx, acct, a.ID, "no-such-challenge", "")
	if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
		t.Errorf("unknown challenge: status %d", p.Status())
	}
	other := e.account(t, e.svc, prov)
	_, _, err = e.svc.RespondChallenge(ctx, other, a.ID, first.ID, "")
	if p := wantProblem(t, err, acme.ErrMalformed); p.Status() != 404 {
		t.Errorf("another account's challenge: status %d", p.Status())
	}
}

func TestFailedValidationsLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.Limits.FailedValidationsPerHour = 1 })
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "failed"})
	acct := e.account(t, e.svc, prov)
	o, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("f1.example.test", "f2.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	as := authzs(t, e.svc, acct, o)
	// Nothing is served for f1: its validation fails.
	if _, _, err := e.svc.RespondChallenge(ctx, acct, as[0].ID, challengeOf(t, as[0], acme.ChallengeHTTP01).ID, ""); err != nil {
		t.Fatal(err)
	}
	waitAuthz(t, e.svc, acct, as[0].ID, acme.StatusInvalid)

	ch := challengeOf(t, as[1], acme.ChallengeHTTP01)
	e.serveHTTP01(ch.Token, acme.KeyAuthorization(ch.Token, acct.KeyThumbprint))
	_, _, err = e.svc.RespondChallenge(ctx, acct, as[1].ID, ch.ID, "")
	if p := wantProblem(t, err, acme.ErrRateLimited); p.RetryAfterSeconds <= 0 {
		t.Errorf("retry after %d", p.RetryAfterSeconds)
	}
	if a, err := e.svc.Authorization(ctx, acct, as[1].ID); err != nil || a.Status != acme.StatusPending ||
		challengeOf(t, a, acme.ChallengeHTTP01).Status != acme.StatusPending {
		t.Errorf("refused challenge changed: %+v, %v", a, err)
	}

	// Other accounts are not limited.
	other := e.account(t, e.svc, prov)
	_, a := oneAuthzOrder(t, e.svc, prov, other, acme.Identifier{Type: "dns", Value: "f2.example.test"})
	e.respond(t, e.svc, other, a, acme.ChallengeHTTP01)
	waitAuthz(t, e.svc, other, a.ID, acme.StatusValid)

	// The failure ages out after an hour.
	e.clk.Advance(time.Hour + time.Second)
	if _, _, err := e.svc.RespondChallenge(ctx, acct, as[1].ID, ch.ID, ""); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	waitAuthz(t, e.svc, acct, as[1].ID, acme.StatusValid)
}

func TestRespondChallengeConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "concurrent"})
	acct := e.account(t, e.svc, prov)
	replica := e.service(t, nil)
	_, a := oneAuthzOrder(t, e.svc, prov, acct, acme.Identifier{Type: "dns", Value: "concurrent.example.test"})
	ch := challengeOf(t, a, acme.ChallengeHTTP01)
	e.serveHTTP01(ch.Token, acme.KeyAuthorization(ch.Token, acct.KeyThumbprint))

	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		svc := e.svc
		if i%2 == 1 {
			svc = replica
		}
		wg.Go(func() { _, _, errs[i] = svc.RespondChallenge(ctx, acct, a.ID, ch.ID, "") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("response %d: %v", i, err)
		}
	}
	waitAuthz(t, e.svc, acct, a.ID, acme.StatusValid)
}

// With no worker free and the queue full, a response is refused and the
// challenge stays pending for a later try.
func TestRespondChallengeQueueFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "queue"})
	acct := e.account(t, e.svc, prov)
	// Not running: nothing takes jobs off the queue.
	idle, err := acme.New(acme.Config{Clock: e.clk, Log: e.log, QueueSize: 1, RespondWait: -1}, e.db, e.issuer, e.revoker, e.profiles, e.val, e.kp)
	if err != nil {
		t.Fatal(err)
	}
	o, err := idle.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs("q1.example.test", "q2.example.test")})
	if err != nil {
		t.Fatal(err)
	}
	as := authzs(t, idle, acct, o)
	c1 := challengeOf(t, as[0], acme.ChallengeHTTP01)
	if got, _, err := idle.RespondChallenge(ctx, acct, as[0].ID, c1.ID, ""); err != nil || got.Status != acme.StatusProcessing {
		t.Fatalf("first response: %+v, %v", got, err)
	}
	c2 := challengeOf(t, as[1], acme.ChallengeHTTP01)
	_, _, err = idle.RespondChallenge(ctx, acct, as[1].ID, c2.ID, "")
	if p := wantProblem(t, err, acme.ErrRateLimited); p.RetryAfterSeconds <= 0 {
		t.Errorf("retry after %d", p.RetryAfterSeconds)
	}
	a2, err := idle.Authorization(ctx, acct, as[1].ID)
	if err != nil || challengeOf(t, a2, acme.ChallengeHTTP01).Status != acme.StatusPending {
		t.Fatalf("refused challenge: %+v, %v", a2, err)
	}
	// A running service takes the refused one.
	e.respond(t, e.svc, acct, a2, acme.ChallengeHTTP01)
	waitAuthz(t, e.svc, acct, a2.ID, acme.StatusValid)
}

// A challenge response waits for its validation when it is the account's
// only one in flight, and answers with the outcome; with another of the
// account's validations in flight it answers processing at once.
func TestRespondChallengeAnswersOutcome(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.RespondWait = 10 * time.Second })
	tarpit(t, "127.0.0.11", e.httpPort)
	e.dns.SetA("held.tarpit.test", netip.MustParseAddr("127.0.0.11"))
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "answer", Challenges: []string{acme.ChallengeHTTP01}})

	acct := e.account(t, e.svc, prov)
	_, a := oneAuthzOrder(t, e.svc, prov, acct, acme.Identifier{Type: "dns", Value: "good.example.test"})
	if ch := e.respond(t, e.svc, acct, a, acme.ChallengeHTTP01); ch.Status != acme.StatusValid || ch.Validated.IsZero() {
		t.Errorf("lone valid challenge answered %+v", ch)
	}
	_, a = oneAuthzOrder(t, e.svc, prov, acct, acme.Identifier{Type: "dns", Value: "bad.example.test"})
	bad := challengeOf(t, a, acme.ChallengeHTTP01)
	e.serveHTTP01(bad.Token, "wrong")
	ch, az, err := e.svc.RespondChallenge(ctx, acct, a.ID, bad.ID, "")
	if err != nil || ch.Status != acme.StatusInvalid || ch.Error == nil || az.Status != acme.StatusInvalid {
		t.Errorf("lone invalid challenge answered %+v (authorization %+v), %v", ch, az, err)
	}

	// The tarpit holds the first validation; the second is answered at once.
	other := e.account(t, e.svc, prov)
	_, held := oneAuthzOrder(t, e.svc, prov, other, acme.Identifier{Type: "dns", Value: "held.tarpit.test"})
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if ch, _, err := e.svc.RespondChallenge(wctx, other, held.ID, challengeOf(t, held, acme.ChallengeHTTP01).ID, ""); err != nil || ch.Status != acme.StatusProcessing {
		t.Fatalf("held challenge answered %+v, %v", ch, err)
	}
	_, quick := oneAuthzOrder(t, e.svc, prov, other, acme.Identifier{Type: "dns", Value: "quick.example.test"})
	start := time.Now()
	if ch := e.respond(t, e.svc, other, quick, acme.ChallengeHTTP01); ch.Status != acme.StatusProcessing {
		t.Errorf("challenge with another in flight answered %s, want processing", ch.Status)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("challenge with another in flight answered after %s", d)
	}
	waitAuthz(t, e.svc, other, quick.ID, acme.StatusValid)
}
