package acme

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
)

// NewAccountRequest is a verified newAccount request.
type NewAccountRequest struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the account key,
	// base64url; JWK is the public key as JSON.
	Thumbprint         string
	JWK                []byte
	Contact            []string
	TermsAgreed        bool
	OnlyReturnExisting bool
	// EABKeyID is set only after the edge verified the external account
	// binding with the key from EABKey.
	EABKeyID string
	ClientIP string
}

const (
	maxContacts   = 10
	maxContactLen = 320
)

func checkContacts(contact []string) error {
	if len(contact) > maxContacts {
		return NewProblem(ErrInvalidContact, "%d contacts; at most %d", len(contact), maxContacts)
	}
	for _, c := range contact {
		if len(c) > maxContactLen {
			return NewProblem(ErrInvalidContact, "contact longer than %d characters", maxContactLen)
		}
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			if a, err := mail.ParseAddress(c); err == nil && a.Address == c && a.Name == "" {
				return NewProblem(ErrUnsupportedContact, "contact %q has no scheme: use \"mailto:%s\"", c, c)
			}
			return NewProblem(ErrUnsupportedContact, "contact %q: only mailto: contacts are supported, for example \"mailto:ops@example.com\"", c)
		}
		if strings.ContainsAny(addr, "?,") {
			return NewProblem(ErrInvalidContact, "contact %q: one address per mailto: URL, without header fields", c)
		}
		a, err := mail.ParseAddress(addr)
		if err != nil || a.Address != addr || a.Name != "" {
			return NewProblem(ErrInvalidContact, "contact %q is not an email address", c)
		}
	}
	return nil
}

// NewAccount registers an account, or returns the one already registered
// with the key; created reports which.
func (s *Service) NewAccount(ctx context.Context, prov *Provisioner, req NewAccountRequest) (*Account, bool, error) {
	existing, err := s.store.AccountByThumbprint(ctx, prov.ID, req.Thumbprint)
	switch {
	case err == nil:
		if existing.Status != StatusValid {
			return nil, false, NewProblem(ErrUnauthorized, "the account for this key is %s", existing.Status)
		}
		return existing, false, nil
	case !errors.Is(err, ErrNotFound):
		return nil, false, fmt.Errorf("acme: find account: %w", err)
	}
	if req.OnlyReturnExisting {
		return nil, false, NewProblem(ErrAccountDoesNotExist, "no account is registered with this key")
	}
	if err := prov.refuseNew("new accounts"); err != nil {
		return nil, false, err
	}
	if prov.RequireEAB && req.EABKeyID == "" {
		return nil, false, NewProblem(ErrExternalAccountRequired, "provisioner %s requires an external account binding: ask an operator for a key (certwright acme eab create --provisioner %s)", prov.Name, prov.Name)
	}
	if prov.TermsOfService != "" && !req.TermsAgreed {
		return nil, false, NewProblem(ErrUserActionRequired, "agree to the terms of service at %s (termsOfServiceAgreed)", prov.TermsOfService)
	}
	if err := checkContacts(req.Contact); err != nil {
		return nil, false, err
	}
	now := s.cfg.Clock.Now()
	if req.ClientIP != "" {
		n, err := s.store.CountAccountsSince(ctx, prov.ID, req.ClientIP, now.Add(-time.Hour))
		if err != nil {
			return nil, false, fmt.Errorf("acme: rate limit: %w", err)
		}
		if limit := s.settings().Limits.AccountsPerHour; n >= limit {
			p := NewProblem(ErrRateLimited, "%d new accounts from %s in the last hour; the limit is %d", n, req.ClientIP, limit)
			p.RetryAfterSeconds = 3600
			return nil, false, p
		}
	}
	id, err := s.randomID(12)
	if err != nil {
		return nil, false, err
	}
	acct := &Account{
		ID: id, ProvisionerID: prov.ID, KeyThumbprint: req.Thumbprint, KeyJWK: req.JWK,
		Contact: nonNil(req.Contact), Status: StatusValid, TermsAgreed: req.TermsAgreed,
		CreatedAt: now, CreatedIP: req.ClientIP,
	}
	if req.EABKeyID != "" {
		k, err := s.store.GetEABKey(ctx, req.EABKeyID)
		if err != nil || k.ProvisionerID != prov.ID {
			return nil, false, NewProblem(ErrUnauthorized, "external account key %q is unknown to provisioner %s", req.EABKeyID, prov.Name)
		}
		acct.EABKeyID, acct.PrincipalID = k.ID, k.PrincipalID
	}
	p, err := s.principal(ctx, prov, acct)
	if err != nil {
		return nil, false, err
	}
	details := map[string]any{"provisioner": prov.Name, "contact": acct.Contact, "key_thumbprint": acct.KeyThumbprint, "ip": acct.CreatedIP}
	if acct.EABKeyID != "" {
		details["eab_key"] = acct.EABKeyID
		details["principal_id"] = acct.PrincipalID
	}
	if err := s.store.CreateAccount(ctx, acct, audit.New(p, now, "acme.account.create", acct.ID, details)); err != nil {
		if errors.Is(err, ErrConflict) {
			if acct.EABKeyID != "" {
				if _, err2 := s.store.AccountByThumbprint(ctx, prov.ID, req.Thumbprint); err2 != nil {
					if k, err3 := s.store.GetEABKey(ctx, acct.EABKeyID); err3 == nil && !k.RevokedAt.IsZero() {
						return nil, false, NewProblem(ErrUnauthorized, "external account key %q is revoked", acct.EABKeyID)
					}
					return nil, false, NewProblem(ErrUnauthorized, "external account key %q is already bound to an account", acct.EABKeyID)
				}
			}
			// Registered concurrently with the same key: return that one.
			if a, err2 := s.store.AccountByThumbprint(ctx, prov.ID, req.Thumbprint); err2 == nil {
				return a, false, nil
			}
		}
		return nil, false, fmt.Errorf("acme: create account: %w", err)
	}
	s.cfg.Log.Info("acme account created", "provisioner", prov.Name, "account", acct.ID, "eab", acct.EABKeyID != "")
	return acct, true, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// EABKey returns the HMAC key of prov's unbound external account key keyID.
func (s *Service) EABKey(ctx context.Context, prov *Provisioner, keyID string) ([]byte, error) {
	k, err := s.store.GetEABKey(ctx, keyID)
	if errors.Is(err, ErrNotFound) || (err == nil && k.ProvisionerID != prov.ID) {
		return nil, NewProblem(ErrUnauthorized, "external account key %q is unknown to provisioner %s", keyID, prov.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: external account key: %w", err)
	}
	if !k.RevokedAt.IsZero() {
		return nil, NewProblem(ErrUnauthorized, "external account key %q was revoked by the operator: ask for a new one", keyID)
	}
	if k.AccountID != "" {
		return nil, NewProblem(ErrUnauthorized, "external account key %q is already bound to an account", keyID)
	}
	key, err := s.sealer.Open(k.Sealed, EABSealAAD(k.ID))
	if err != nil {
		return nil, fmt.Errorf("acme: open external account key %s: %w", k.ID, err)
	}
	return key, nil
}

// AccountByKey returns the account registered with the key thumbprint.
func (s *Service) AccountByKey(ctx context.Context, prov *Provisioner, thumbprint string) (*Account, error) {
	a, err := s.store.AccountByThumbprint(ctx, prov.ID, thumbprint)
	if errors.Is(err, ErrNotFound) {
		return nil, NewProblem(ErrAccountDoesNotExist, "no account is registered with this key")
	}
	if err != nil {
		return nil, fmt.Errorf("acme: account: %w", err)
	}
	if a.Status != StatusValid {
		return nil, NewProblem(ErrUnauthorized, "account is %s", a.Status)
	}
	return a, nil
}

// Account loads prov's account id and checks that it may act. A valid
// account is cached (AccountCacheMaxAge, AccountCacheSize); the checks
// run on every call.
func (s *Service) Account(ctx context.Context, prov *Provisioner, id string) (*Account, error) {
	gen, now := s.store.ACMEGeneration(), s.cfg.Clock.Now()
	a, ok := s.accounts.Get(id, gen, now)
	var err error
	if !ok {
		if a, err = s.store.GetAccount(ctx, id); err == nil && a.Status == StatusValid {
			s.accounts.Put(id, gen, now, a)
		}
	}
	if errors.Is(err, ErrNotFound) || (err == nil && a.ProvisionerID != prov.ID) {
		return nil, NewProblem(ErrAccountDoesNotExist, "account %q does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: account: %w", err)
	}
	if a.Status != StatusValid {
		return nil, NewProblem(ErrUnauthorized, "account is %s", a.Status)
	}
	return a, nil
}

// UpdateAccount replaces the contacts (when contact is not nil) and/or
// deactivates the account; deactivation is permanent.
func (s *Service) UpdateAccount(ctx context.Context, prov *Provisioner, acct *Account, contact []string, deactivate bool) (*Account, error) {
	if contact == nil && !deactivate {
		return acct, nil
	}
	upd := *acct
	action := "acme.account.update"
	details := map[string]any{"provisioner": prov.Name}
	if contact != nil {
		if err := checkContacts(contact); err != nil {
			return nil, err
		}
		upd.Contact = contact
		details["contact"] = contact
	}
	if deactivate {
		upd.Status = StatusDeactivated
		action = "acme.account.deactivate"
	}
	p, err := s.principal(ctx, prov, acct)
	if err != nil {
		return nil, err
	}
	if err := s.store.UpdateAccount(ctx, &upd, acct.KeyThumbprint, audit.New(p, s.cfg.Clock.Now(), action, acct.ID, details)); err != nil {
		if pb := staleAccount(err); pb != nil {
			return nil, pb
		}
		return nil, fmt.Errorf("acme: update account: %w", err)
	}
	return &upd, nil
}

// ChangeKey rolls acct over to a new key (RFC 8555 §7.3.5).
func (s *Service) ChangeKey(ctx context.Context, prov *Provisioner, acct *Account, thumbprint string, jwk []byte) (*Account, error) {
	if thumbprint == acct.KeyThumbprint {
		return nil, NewProblem(ErrMalformed, "the new key is the account's current key")
	}
	if other, err := s.store.AccountByThumbprint(ctx, prov.ID, thumbprint); err == nil {
		p := NewProblem(errConflict, "the new key is already registered to another account")
		p.Location = "account/" + other.ID
		return nil, p
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("acme: key change: %w", err)
	}
	upd := *acct
	upd.KeyThumbprint, upd.KeyJWK = thumbprint, jwk
	p, err := s.principal(ctx, prov, acct)
	if err != nil {
		return nil, err
	}
	ev := audit.New(p, s.cfg.Clock.Now(), "acme.account.key_change", acct.ID, map[string]any{
		"provisioner": prov.Name, "old_key_thumbprint": acct.KeyThumbprint, "new_key_thumbprint": thumbprint,
	})
	if err := s.store.UpdateAccount(ctx, &upd, acct.KeyThumbprint, ev); err != nil {
		if pb := staleAccount(err); pb != nil {
			return nil, pb
		}
		if errors.Is(err, ErrConflict) {
			p := NewProblem(errConflict, "the new key is already registered to another account")
			if other, err2 := s.store.AccountByThumbprint(ctx, prov.ID, thumbprint); err2 == nil {
				p.Location = "account/" + other.ID
			}
			return nil, p
		}
		return nil, fmt.Errorf("acme: key change: %w", err)
	}
	return &upd, nil
}

// staleAccount is the problem for an account update refused because the
// account changed since the request was verified (on another replica,
// within the account cache's second): deactivated, or rolled over to
// another key. Either way the request's key no longer speaks for the
// account (RFC 8555 §7.3.5, §7.3.6). Nil for any other error.
func staleAccount(err error) *Problem {
	if !errors.Is(err, ErrStale) {
		return nil
	}
	return NewProblem(ErrUnauthorized, "the account was deactivated or changed its key while this request was in flight; nothing was changed. Fetch the account again (with its current key) before retrying")
}
