package acme

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/recovery"
)

// job is one challenge waiting for validation.
type job struct {
	authzID, chID string
	keyAuth       string
}

// KeyAuthorization is the key authorization of a challenge token for an
// account key (RFC 8555 §8.1).
func KeyAuthorization(token, thumbprint string) string { return token + "." + thumbprint }

// RespondChallenge starts validation of a pending challenge. It is
// idempotent: a challenge already processing, valid or invalid is returned
// as it stands.
func (s *Service) RespondChallenge(ctx context.Context, acct *Account, authzID, chID string) (*Challenge, *Authorization, error) {
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
	now := s.cfg.Clock.Now()
	failed, err := s.store.CountFailedValidationsSince(ctx, acct.ID, now.Add(-time.Hour))
	if err != nil {
		return nil, nil, fmt.Errorf("acme: rate limit: %w", err)
	}
	if failed >= s.cfg.Limits.FailedValidationsPerHour {
		pb := NewProblem(ErrRateLimited, "%d failed validations in the last hour; the limit is %d per account", failed, s.cfg.Limits.FailedValidationsPerHour)
		pb.RetryAfterSeconds = 3600
		return nil, nil, pb
	}
	next := *ch
	next.Status = StatusProcessing
	if err := s.store.UpdateChallenge(ctx, &next, StatusPending); err != nil {
		if errors.Is(err, ErrConflict) { // responded to concurrently
			a, err := s.authorization(ctx, acct, authzID)
			if err != nil {
				return nil, nil, err
			}
			return &a.Challenges[i], a, nil
		}
		return nil, nil, fmt.Errorf("acme: challenge: %w", err)
	}
	select {
	case s.queue <- job{authzID: a.ID, chID: ch.ID, keyAuth: KeyAuthorization(ch.Token, acct.KeyThumbprint)}:
	default:
		_ = s.store.UpdateChallenge(ctx, ch, StatusProcessing)
		pb := NewProblem(ErrRateLimited, "the validation queue is full; try again shortly")
		pb.RetryAfterSeconds = 5
		return nil, nil, pb
	}
	*ch = next
	return ch, a, nil
}

// Run validates challenges with a bounded pool of workers and forgets
// expired nonces, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	done := make(chan struct{})
	for range s.cfg.Workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-s.queue:
					// A panic fails this validation only (it stays
					// processing and expires), never the worker or the server.
					recovery.Do(s.cfg.Log, "acme validation of challenge "+j.chID, func() { s.validate(ctx, j) })
				}
			}
		}()
	}
	purge := time.NewTicker(10 * time.Minute)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			for range s.cfg.Workers {
				<-done
			}
			return nil
		case <-purge.C:
			if n, err := s.store.PurgeNonces(ctx, s.cfg.Clock.Now()); err != nil {
				s.cfg.Log.Warn("acme: purge used nonces", "err", err)
			} else if n > 0 {
				s.cfg.Log.Debug("acme: purged used nonces", "count", n)
			}
		}
	}
}

// validationTimeout bounds one validation; the validator has its own,
// shorter limits.
const validationTimeout = 60 * time.Second

// validate runs one challenge and records the outcome on the challenge
// and its authorization.
func (s *Service) validate(ctx context.Context, j job) {
	as, err := s.store.GetAuthorizations(ctx, j.authzID)
	if err != nil {
		s.cfg.Log.Error("acme: load authorization for validation", "authz", j.authzID, "err", err)
		return
	}
	a := as[0]
	i := -1
	for k := range a.Challenges {
		if a.Challenges[k].ID == j.chID {
			i = k
		}
	}
	if i < 0 || a.Challenges[i].Status != StatusProcessing {
		return
	}
	ch := &a.Challenges[i]
	vctx, cancel := context.WithTimeout(ctx, validationTimeout)
	verr := s.validator.Validate(vctx, ch.Type, a.Identifier.Type, a.Identifier.Value, ch.Token, j.keyAuth)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the challenge stays processing
	}
	now := s.cfg.Clock.Now()
	ch.Validated = now
	if verr == nil {
		ch.Status = StatusValid
		a.Status = StatusValid
		a.Expires = now.Add(s.cfg.ValidAuthzLifetime)
	} else {
		ch.Status = StatusInvalid
		ch.Error = validationProblem(verr, a.Identifier)
		a.Status = StatusInvalid
	}
	if a.Status == StatusValid && !now.Before(a.Expires) {
		a.Status = StatusInvalid
	}
	if err := s.store.UpdateAuthorization(ctx, a, StatusPending); err != nil {
		if errors.Is(err, ErrConflict) {
			// Deactivated or expired meanwhile: record the challenge only.
			_ = s.store.UpdateChallenge(ctx, ch, StatusProcessing)
			return
		}
		s.cfg.Log.Error("acme: record validation", "authz", a.ID, "err", err)
		return
	}
	s.cfg.Log.Debug("acme: challenge validated", "authz", a.ID, "type", ch.Type, "identifier", a.Identifier.Value, "status", ch.Status)
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
