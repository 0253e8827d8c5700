package acme

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/netsource"
	"github.com/certwright/certwright/internal/recovery"
)

// job is one challenge waiting for validation.
type job struct {
	authzID, chID string
	keyAuth       string
	accountID     string
	provisionerID string
	// provisionerName names the provisioner in the audit trail (a
	// provisioner's name never changes).
	provisionerName string
	// target is what the queue limits per target: the identifier.
	target string
	// source is the address that answered the challenge (sourceKey), and
	// bound says the account has an external account binding; the queue
	// limits anonymous accounts per source and in total.
	source string
	bound  bool
	// claim is the token of the claim this replica holds on the
	// challenge (Claim); the outcome is recorded only under it.
	claim string
	// result, when set, hears how the validation ended.
	result *jobResult
}

// jobResult is how a validation ended, for the challenge response waiting
// on it: done is closed when the worker is through with the job, and authz
// is then the authorization as the worker stored it (nil when it stored
// nothing, say because the authorization changed meanwhile).
type jobResult struct {
	done  chan struct{}
	authz *Authorization
}

// KeyAuthorization is the key authorization of a challenge token for an
// account key (RFC 8555 §8.1).
func KeyAuthorization(token, thumbprint string) string { return token + "." + thumbprint }

// RespondChallenge starts validation of a pending challenge; clientIP is
// the address of the request that asked for it (the per-source limit). It
// is idempotent: a challenge already processing, valid or invalid is
// returned as it stands. When the validation it starts is the account's
// only one in flight and ends within Config.RespondWait, the answer is its
// outcome, saving the client a poll (and a Retry-After wait); otherwise
// the answer is processing.
func (s *Service) RespondChallenge(ctx context.Context, acct *Account, authzID, chID, clientIP string) (*Challenge, *Authorization, error) {
	a, err := s.authorization(ctx, acct, authzID)
	if err != nil {
		return nil, nil, err
	}
	i := -1
	for k := range a.Challenges {
		if a.Challenges[k].ID == chID {
			i = k
		}
	}
	if i < 0 {
		return nil, nil, notFound("challenge", chID)
	}
	ch := &a.Challenges[i]
	if a.Status != StatusPending || ch.Status != StatusPending {
		return ch, a, nil
	}
	// Validation is something new: the provisioner as it stands now must
	// allow it (not disabled, EAB if required, the challenge type offered).
	prov, err := s.currentProvisioner(ctx, acct.ProvisionerID)
	if err != nil {
		return nil, nil, err
	}
	if err := prov.mayServe(acct, "challenge responses"); err != nil {
		return nil, nil, err
	}
	if !slices.Contains(prov.Challenges, ch.Type) {
		return nil, nil, NewProblem(ErrUnauthorized, "ACME provisioner %s no longer offers %s challenges; respond to one of its other challenges (%s) or place a new order",
			prov.Name, ch.Type, strings.Join(prov.Challenges, ", "))
	}
	now := s.cfg.Clock.Now()
	failed, err := s.store.CountFailedValidationsSince(ctx, acct.ID, now.Add(-time.Hour))
	if err != nil {
		return nil, nil, fmt.Errorf("acme: rate limit: %w", err)
	}
	if limit := s.settings().Limits.FailedValidationsPerHour; failed >= limit {
		pb := NewProblem(ErrRateLimited, "%d failed validations in the last hour; the limit is %d per account", failed, limit)
		pb.RetryAfterSeconds = 3600
		return nil, nil, pb
	}
	j := job{
		authzID: a.ID, chID: ch.ID, keyAuth: KeyAuthorization(ch.Token, acct.KeyThumbprint),
		accountID: acct.ID, provisionerID: acct.ProvisionerID, provisionerName: prov.Name,
		target: a.Identifier.Type + ":" + a.Identifier.Value,
		source: netsource.Key(clientIP), bound: acct.EABKeyID != "",
	}
	// The slot is claimed before the challenge leaves pending, so a
	// refused challenge can simply be retried.
	alone, err := s.queue.reserve(j)
	if err != nil {
		return nil, nil, queueProblem(err, s.settings().Limits, a.Identifier.Value, j.source)
	}
	next := *ch
	next.Status = StatusProcessing
	cl, err := s.newClaim()
	if err != nil {
		s.queue.release(j)
		return nil, nil, err
	}
	j.claim = cl.Token
	if err := s.store.ClaimChallenge(ctx, ch.ID, cl, j.source); err != nil {
		s.queue.release(j)
		if errors.Is(err, ErrConflict) { // responded to concurrently
			a, err := s.authorization(ctx, acct, authzID)
			if err != nil {
				return nil, nil, err
			}
			return &a.Challenges[i], a, nil
		}
		return nil, nil, fmt.Errorf("acme: challenge: %w", err)
	}
	// Only an account's lone validation is waited for: a client answering
	// many challenges one after another must not wait for each in turn.
	if alone && s.cfg.RespondWait > 0 {
		j.result = &jobResult{done: make(chan struct{})}
	}
	s.queue.submit(j)
	*ch = next
	if j.result != nil {
		if done := s.awaitValidation(ctx, j.result); done != nil {
			for k := range done.Challenges {
				if done.Challenges[k].ID == chID {
					return &done.Challenges[k], done, nil
				}
			}
		}
	}
	return ch, a, nil
}

// awaitValidation waits up to Config.RespondWait, or until ctx ends, for
// the validation of r to end, and returns the authorization it stored, or
// nil.
func (s *Service) awaitValidation(ctx context.Context, r *jobResult) *Authorization {
	t := time.NewTimer(s.cfg.RespondWait)
	defer t.Stop()
	select {
	case <-r.done:
		if r.authz != nil {
			a := *r.authz
			a.Status = effectiveStatus(&a, s.cfg.Clock.Now())
			return &a
		}
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// queueProblem tells the client which limit refused its challenge.
func queueProblem(err error, l Limits, target, source string) *Problem {
	var pb *Problem
	switch {
	case errors.Is(err, errAccountBacklog):
		pb = NewProblem(ErrRateLimited, "this account has %d challenges waiting for or in validation, the limit; retry once some complete", l.ValidationsInFlight)
		pb.RetryAfterSeconds = 10
	case errors.Is(err, errSourceBacklog):
		pb = NewProblem(ErrRateLimited, "%d challenges from your address (%s), by accounts without external account binding, are waiting for or in validation, the limit; retry once some complete", l.SourceValidationsInFlight, source)
		pb.RetryAfterSeconds = 10
	case errors.Is(err, errAnonymousFull):
		pb = NewProblem(ErrRateLimited, "the validation queue's share for accounts without external account binding is full; try again shortly")
		pb.RetryAfterSeconds = 5
	case errors.Is(err, errTargetBacklog):
		pb = NewProblem(ErrRateLimited, "%d challenges for %s are waiting for or in validation, the limit; retry shortly", l.TargetValidationsInFlight, target)
		pb.RetryAfterSeconds = 10
	default:
		pb = NewProblem(ErrRateLimited, "the validation queue is full; try again shortly")
		pb.RetryAfterSeconds = 5
	}
	return pb
}

// Run validates challenges with a bounded pool of workers, takes over
// the challenges and orders whose claims expired (at once, at start-up,
// those this replica claimed in a previous life) and forgets expired
// nonces, until ctx ends. On the way out it releases the claims of the
// challenges it had not validated, so that another replica takes them
// over at once.
func (s *Service) Run(ctx context.Context) error {
	done := make(chan struct{})
	for range s.cfg.Workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				j, ok := s.queue.take(ctx)
				if !ok {
					return
				}
				// A panic fails this validation only (its claim
				// expires and another attempt follows), never the
				// worker or the server.
				recovery.Do(s.cfg.Log, "acme validation of challenge "+j.chID, func() { s.validate(ctx, j) })
				s.queue.done(j)
				if j.result != nil {
					close(j.result.done)
				}
			}
		}()
	}
	s.sweep(ctx, true)
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	purge := time.NewTicker(10 * time.Minute)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			for range s.cfg.Workers {
				<-done
			}
			s.releaseQueued(ctx)
			return nil
		case <-sweep.C:
			s.sweep(ctx, false)
		case <-purge.C:
			if n, err := s.store.PurgeNonces(ctx, s.cfg.Clock.Now()); err != nil {
				s.cfg.Log.Warn("acme: purge used nonces", "err", err)
			} else if n > 0 {
				s.cfg.Log.Debug("acme: purged used nonces", "count", n)
			}
		}
	}
}

// newClaim returns a new claim of this replica's, holding for
// Config.ClaimTimeout.
func (s *Service) newClaim() (Claim, error) {
	tok, err := s.randomID(12)
	if err != nil {
		return Claim{}, err
	}
	return Claim{Replica: s.cfg.Replica, Token: s.life + tok, Life: s.life, Now: s.cfg.Clock.Now(), TTL: s.cfg.ClaimTimeout, Started: s.started}, nil
}

// sweepBatch bounds the challenges and orders one sweep takes over.
const sweepBatch = 100

// maxClaims is how many claims a challenge gets: one that was claimed
// this often without an outcome (each replica that took it died or
// stalled) is recorded invalid instead of tried again.
const maxClaims = 5

// sweep takes over the processing challenges whose claims expired, as
// many as the queue has room for, and sends the processing orders whose
// finalization's claim expired back to ready (no certificate was stored
// for them: a certificate and its order's completion commit together).
// own takes this replica's claims taken before this service started
// instead, whether expired or not: at start-up they are a previous
// life's.
func (s *Service) sweep(ctx context.Context, own bool) {
	cl, err := s.newClaim()
	if err != nil {
		s.cfg.Log.Error("acme: sweep", "err", err)
		return
	}
	if ids, err := s.store.ReturnStuckOrders(ctx, cl, own, sweepBatch); err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("acme: return interrupted finalizations to ready", "err", err)
		}
	} else if len(ids) > 0 {
		s.cfg.Log.Warn("acme: finalizations interrupted; orders are ready to finalize again", "orders", ids)
	}
	taken, err := s.store.TakeOverChallenges(ctx, cl, own, min(sweepBatch, s.queue.room()))
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("acme: take over challenges", "err", err)
		}
		return
	}
	for _, c := range taken {
		s.cfg.Log.Info("acme: took over a challenge whose validation was interrupted", "challenge", c.Challenge.ID,
			"authz", c.Challenge.AuthzID, "attempt", c.Attempts)
		j := job{
			authzID: c.Challenge.AuthzID, chID: c.Challenge.ID, keyAuth: KeyAuthorization(c.Challenge.Token, c.KeyThumbprint),
			accountID: c.AccountID, provisionerID: c.ProvisionerID, provisionerName: c.ProvisionerName,
			target: c.Identifier.Type + ":" + c.Identifier.Value, source: c.Source, bound: c.Bound, claim: cl.Token,
		}
		if c.Attempts > maxClaims {
			s.abandon(ctx, j)
			continue
		}
		s.queue.admit(j)
	}
}

// abandon records j's challenge invalid: its validation was claimed
// maxClaims times without an outcome.
func (s *Service) abandon(ctx context.Context, j job) {
	as, err := s.store.GetAuthorizations(ctx, j.authzID)
	if err != nil {
		s.cfg.Log.Error("acme: load authorization", "authz", j.authzID, "err", err)
		return
	}
	a := as[0]
	i := slices.IndexFunc(a.Challenges, func(c Challenge) bool { return c.ID == j.chID })
	if i < 0 {
		return
	}
	pb := &Problem{Type: ErrServerInternal, Identifier: &Identifier{Type: a.Identifier.Type, Value: a.Identifier.Value},
		Detail: fmt.Sprintf("validation was interrupted %d times; respond to a challenge of a new order", maxClaims)}
	s.record(ctx, j, a, &a.Challenges[i], nil, pb)
}

// releaseQueued releases the claims of the challenges still waiting in
// the queue, and of those whose validation shutting down cut short, so
// that another replica's sweep takes them over at once.
func (s *Service) releaseQueued(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, j := range s.queue.drain() {
		s.release(rctx, j)
		if j.result != nil {
			close(j.result.done)
		}
	}
}

// release ends this replica's claim on j's challenge now.
func (s *Service) release(ctx context.Context, j job) {
	cl := Claim{Replica: s.cfg.Replica, Token: j.claim, Now: s.cfg.Clock.Now()}
	if err := s.store.RenewChallengeClaim(ctx, j.chID, cl); err != nil && !errors.Is(err, ErrConflict) {
		s.cfg.Log.Warn("acme: release challenge claim; it expires by itself", "challenge", j.chID, "err", err)
	}
}

// validationTimeout bounds one validation; the validator has its own,
// shorter limits. The claim on the challenge outlasts it (ClaimTimeout).
const validationTimeout = 60 * time.Second

// validate runs one challenge and records the outcome on the challenge
// and its authorization, provided this replica's claim still holds.
func (s *Service) validate(ctx context.Context, j job) {
	// The claim restarts with the validation: the time it waited in the
	// queue does not count against it. A claim lost meanwhile (taken
	// over by another replica, or recorded) ends the job here.
	cl := Claim{Replica: s.cfg.Replica, Token: j.claim, Now: s.cfg.Clock.Now(), TTL: s.cfg.ClaimTimeout}
	if err := s.store.RenewChallengeClaim(ctx, j.chID, cl); err != nil {
		if !errors.Is(err, ErrConflict) && ctx.Err() == nil {
			s.cfg.Log.Error("acme: renew challenge claim", "challenge", j.chID, "err", err)
		}
		return
	}
	as, err := s.store.GetAuthorizations(ctx, j.authzID)
	if err != nil {
		s.cfg.Log.Error("acme: load authorization for validation", "authz", j.authzID, "err", err)
		return
	}
	a := as[0]
	i := slices.IndexFunc(a.Challenges, func(c Challenge) bool { return c.ID == j.chID })
	if i < 0 || a.Challenges[i].Status != StatusProcessing {
		return
	}
	ch := &a.Challenges[i]
	vctx, cancel := context.WithTimeout(ctx, validationTimeout)
	targets, verr := s.validator.ValidateAttempt(vctx, ch.Type, a.Identifier.Type, a.Identifier.Value, ch.Token, j.keyAuth)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: another replica takes the challenge over.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.release(rctx, j)
		return
	}
	var pb *Problem
	if verr != nil {
		pb = validationProblem(verr, a.Identifier)
	}
	s.record(ctx, j, a, ch, targets, pb)
}

// record stores how the validation of ch ended (pb nil: valid) with its
// audit event, under j's claim.
func (s *Service) record(ctx context.Context, j job, a *Authorization, ch *Challenge, targets []string, pb *Problem) {
	now := s.cfg.Clock.Now()
	ev := attemptEvent(j, a, ch, targets, pb, now)
	ch.Validated = now
	if pb == nil {
		ch.Status = StatusValid
		a.Status = StatusValid
		a.Expires = now.Add(s.settings().ValidAuthzLifetime)
	} else {
		ch.Status = StatusInvalid
		ch.Error = pb
		a.Status = StatusInvalid
	}
	if a.Status == StatusValid && !now.Before(a.Expires) {
		a.Status = StatusInvalid
	}
	// The outcome and its audit event commit together, under this
	// replica's claim. The attempt happened whatever becomes of it, so
	// the event is appended even when the claim was lost (another
	// replica took the challenge over and records its own attempt) or
	// the authorization changed meanwhile (deactivated or expired: the
	// challenge alone is recorded).
	updated, err := s.store.RecordValidation(ctx, a, ch, j.claim, ev)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			s.cfg.Log.Info("acme: validation outcome not recorded: another replica took the challenge over", "challenge", ch.ID)
			return
		}
		s.cfg.Log.Error("acme: record validation", "authz", a.ID, "err", err)
		return
	}
	if updated && j.result != nil {
		j.result.authz = a
	}
	s.cfg.Log.Debug("acme: challenge validated", "authz", a.ID, "type", ch.Type, "identifier", a.Identifier.Value, "status", ch.Status)
}

// attemptEvent is the audit event of one validation attempt: what it
// connected to and how it ended.
func attemptEvent(j job, a *Authorization, ch *Challenge, targets []string, pb *Problem, now time.Time) audit.Event {
	name := "acme:" + j.provisionerName + "/" + j.accountID
	p := authz.Principal{ID: "acme:" + j.accountID, Name: name, Kind: authz.KindMachine, Auth: "acme"}
	if targets == nil {
		targets = []string{}
	}
	details := map[string]any{
		"provisioner": j.provisionerName, "account": j.accountID, "authorization": a.ID, "challenge": ch.ID,
		"type": ch.Type, "identifier": a.Identifier, "targets": targets, "result": StatusValid,
	}
	if pb == nil {
		return audit.New(p, now, "acme.challenge.validate", a.Identifier.Type+":"+a.Identifier.Value, details)
	}
	details["result"] = StatusInvalid
	details["problem"] = string(pb.Type)
	details["detail"] = pb.Detail
	ev := audit.New(p, now, "acme.challenge.validate", a.Identifier.Type+":"+a.Identifier.Value, details)
	ev.Outcome = audit.Failed
	if pb.Type == ErrRejectedIdentifier {
		ev.Outcome = audit.Denied
	}
	return ev
}

// validationProblem turns a validator error into the challenge's problem.
func validationProblem(err error, ident Identifier) *Problem {
	t := ErrServerInternal
	var typed interface{ ACMEType() string }
	switch {
	case errors.As(err, &typed):
		t = ErrorType(typed.ACMEType())
		if _, ok := errorStatus[t]; !ok {
			t = ErrUnauthorized
		}
	case errors.Is(err, context.DeadlineExceeded):
		t = ErrConnection
	}
	pb := &Problem{Type: t, Detail: err.Error(), Identifier: &Identifier{Type: ident.Type, Value: ident.Value}}
	if t == ErrServerInternal {
		pb.Detail = "validation failed: internal error"
	}
	return pb
}
