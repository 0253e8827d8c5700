package acme

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// ProvisionerUpdate changes a provisioner's policy: nil fields stay as
// they are. The name, the ID and the accounts never change.
type ProvisionerUpdate struct {
	CA                 *string   `json:"ca,omitempty"` // ID or name
	Profile            *string   `json:"profile,omitempty"`
	Challenges         *[]string `json:"challenges,omitempty"`
	AllowNames         *[]string `json:"allow_names,omitempty"`
	RequireEAB         *bool     `json:"require_eab,omitempty"`
	AllowSubjectFields *bool     `json:"allow_subject_fields,omitempty"`
	TermsOfService     *string   `json:"terms_of_service,omitempty"`
	Website            *string   `json:"website,omitempty"`
}

// Empty reports whether u changes nothing.
func (u ProvisionerUpdate) Empty() bool { return u == ProvisionerUpdate{} }

// Change is one field an update changed, for the caller and the audit log.
type Change struct {
	Field string `json:"field"`
	From  any    `json:"from"`
	To    any    `json:"to"`
}

// findProvisioner returns the provisioner named (or with ID) name; an
// unknown name is ErrNotFound with the provisioners that exist.
func (s *Service) findProvisioner(ctx context.Context, name string) (*Provisioner, error) {
	prov, err := s.store.GetProvisioner(ctx, name)
	if err == nil {
		return prov, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("acme: provisioner %q: %w", name, err)
	}
	all, lerr := s.store.ListProvisioners(ctx)
	if lerr != nil {
		return nil, fmt.Errorf("acme: provisioner %q: %w", name, err)
	}
	names := make([]string, len(all))
	for i, p := range all {
		names[i] = p.Name
	}
	if len(names) == 0 {
		return nil, notFoundf("no ACME provisioner %q; there are none (create one with certwright acme create)", name)
	}
	return nil, notFoundf("no ACME provisioner %q; the provisioners are: %s", name, strings.Join(names, ", "))
}

// operatorError is a sentinel (ErrNotFound, ErrConflict) with a message
// of its own, for operators: it says what is wrong and what to do, without
// the sentinel's text.
type operatorError struct {
	kind error
	msg  string
}

func (e *operatorError) Error() string { return e.msg }
func (e *operatorError) Unwrap() error { return e.kind }

func notFoundf(format string, args ...any) error {
	return &operatorError{kind: ErrNotFound, msg: fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) error {
	return &operatorError{kind: ErrConflict, msg: fmt.Sprintf(format, args...)}
}

// currentProvisioner reads provisioner id from the store, bypassing the
// cache: finalization and validation act on the provisioner as it is now.
// A provisioner deleted since is a problem, not ErrNotFound.
func (s *Service) currentProvisioner(ctx context.Context, id string) (*Provisioner, error) {
	prov, err := s.store.GetProvisioner(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && prov.ID != id) {
		return nil, NewProblem(ErrUnauthorized, "the ACME provisioner of this account was deleted by its operator")
	}
	if err != nil {
		return nil, fmt.Errorf("acme: provisioner %s: %w", id, err)
	}
	return prov, nil
}

// refuseNew is the problem answering a request for something new (an
// account, an order, a validation, a certificate) on a disabled
// provisioner; nil while it is enabled.
func (p *Provisioner) refuseNew(what string) error {
	if !p.Disabled() {
		return nil
	}
	return NewProblem(ErrUnauthorized, "ACME provisioner %s was disabled by its operator on %s and takes no %s; "+
		"certificates it issued stay valid, can be revoked and keep their renewal information. "+
		"Ask the operator to enable it (certwright acme enable %s) or use another ACME directory",
		p.Name, p.DisabledAt.UTC().Format(time.RFC3339), what, p.Name)
}

// UpdateProvisioner changes provisioner name's policy as u says, checked
// as create checks it. It needs ca:manage over the CA the provisioner
// issues from and, when u moves it, over the new CA. The change applies to
// orders already open: finalization reads the provisioner afresh. An
// update that changes nothing is no error and writes nothing; the changes
// are returned.
func (s *Service) UpdateProvisioner(ctx context.Context, p authz.Principal, name string, u ProvisionerUpdate) (*Provisioner, []Change, error) {
	if u.Empty() {
		return nil, nil, invalid("nothing to change: give at least one of the CA, profile, challenges, allowed names, EAB requirement, subject-field policy, terms of service and website")
	}
	cur, err := s.findProvisioner(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: cur.CAID, CAName: cur.CAName}); err != nil {
		return nil, nil, err
	}
	next := *cur
	caRef := cur.CAID
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&caRef, u.CA)
	set(&next.Profile, u.Profile)
	set(&next.TermsOfService, u.TermsOfService)
	set(&next.Website, u.Website)
	if u.Challenges != nil {
		next.Challenges = slices.Clone(*u.Challenges)
	}
	if u.AllowNames != nil {
		next.AllowNames = slices.Clone(*u.AllowNames)
	}
	if u.RequireEAB != nil {
		next.RequireEAB = *u.RequireEAB
	}
	if u.AllowSubjectFields != nil {
		next.AllowSubjectFields = *u.AllowSubjectFields
	}
	if caRef == "" || next.Profile == "" {
		return nil, nil, invalid("a provisioner needs a CA and a profile")
	}
	if err := s.checkPolicy(ctx, p, &next, caRef); err != nil {
		return nil, nil, err
	}
	changes := diffPolicy(cur, &next)
	if len(changes) == 0 {
		return cur, changes, nil
	}
	ev := audit.New(p, s.cfg.Clock.Now().UTC(), "acme.provisioner.update", cur.Name, map[string]any{
		"id": cur.ID, "changes": changes,
	})
	if err := s.store.UpdateProvisioner(ctx, &next, ev); err != nil {
		return nil, nil, fmt.Errorf("acme: update provisioner %s: %w", cur.Name, err)
	}
	fields := make([]string, len(changes))
	for i, c := range changes {
		fields[i] = c.Field
	}
	s.cfg.Log.Info("acme provisioner updated", "name", cur.Name, "changed", strings.Join(fields, ","), "by", p.Name)
	return &next, changes, nil
}

// diffPolicy lists the policy fields that differ between a and b, in a
// fixed order.
func diffPolicy(a, b *Provisioner) []Change {
	out := []Change{}
	add := func(field string, from, to any, same bool) {
		if !same {
			out = append(out, Change{Field: field, From: from, To: to})
		}
	}
	add("ca", a.CAName, b.CAName, a.CAID == b.CAID)
	add("profile", a.Profile, b.Profile, a.Profile == b.Profile)
	add("challenges", a.Challenges, b.Challenges, slices.Equal(a.Challenges, b.Challenges))
	add("allow_names", a.AllowNames, b.AllowNames, slices.Equal(a.AllowNames, b.AllowNames))
	add("require_eab", a.RequireEAB, b.RequireEAB, a.RequireEAB == b.RequireEAB)
	add("allow_subject_fields", a.AllowSubjectFields, b.AllowSubjectFields, a.AllowSubjectFields == b.AllowSubjectFields)
	add("terms_of_service", a.TermsOfService, b.TermsOfService, a.TermsOfService == b.TermsOfService)
	add("website", a.Website, b.Website, a.Website == b.Website)
	return out
}

// DisableProvisioner stops provisioner name from taking new accounts,
// orders, challenge responses and finalizations; revocation, renewal
// information and reading existing objects go on. It needs ca:manage over
// the provisioner's CA. Disabling a disabled provisioner is ErrConflict.
func (s *Service) DisableProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	return s.setDisabled(ctx, p, name, true)
}

// EnableProvisioner undoes DisableProvisioner.
func (s *Service) EnableProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	return s.setDisabled(ctx, p, name, false)
}

func (s *Service) setDisabled(ctx context.Context, p authz.Principal, name string, disable bool) (*Provisioner, error) {
	prov, err := s.findProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now().UTC()
	verb, at, by := "enable", time.Time{}, ""
	switch {
	case disable && prov.Disabled():
		return nil, conflictf("ACME provisioner %s is disabled already (since %s, by %s)", prov.Name, prov.DisabledAt.UTC().Format(time.RFC3339), prov.DisabledBy)
	case !disable && !prov.Disabled():
		return nil, conflictf("ACME provisioner %s is enabled already", prov.Name)
	case disable:
		verb, at, by = "disable", now, p.Name
	}
	ev := audit.New(p, now, "acme.provisioner."+verb, prov.Name, map[string]any{"id": prov.ID})
	if err := s.store.SetProvisionerDisabled(ctx, prov.ID, at, by, ev); err != nil {
		return nil, fmt.Errorf("acme: %s provisioner %s: %w", verb, prov.Name, err)
	}
	prov.DisabledAt, prov.DisabledBy = s.storedTime(at), by // the zero time stays zero
	s.cfg.Log.Info("acme provisioner "+verb+"d", "name", prov.Name, "by", p.Name)
	return prov, nil
}

// storedTime is t as the store keeps it (UTC, microseconds).
func (s *Service) storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// DeleteProvisioner removes provisioner name, which must be disabled
// first. Its accounts are deactivated, its pending and ready orders made
// invalid and its external account keys revoked, all kept on record with
// the certificates it issued; a provisioner created later under the same
// name gets a new ID and none of them. It needs ca:manage over the
// provisioner's CA.
func (s *Service) DeleteProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, DeleteCounts, error) {
	prov, err := s.findProvisioner(ctx, name)
	if err != nil {
		return nil, DeleteCounts{}, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}); err != nil {
		return nil, DeleteCounts{}, err
	}
	if !prov.Disabled() {
		return nil, DeleteCounts{}, conflictf("ACME provisioner %s is enabled; disable it first (certwright acme disable %s), then delete it", prov.Name, prov.Name)
	}
	now := s.cfg.Clock.Now().UTC()
	reason := NewProblem(ErrUnauthorized, "ACME provisioner %s was deleted by its operator", prov.Name)
	counts, err := s.store.DeleteProvisioner(ctx, prov.ID, now, p.Name, reason, func(c DeleteCounts) audit.Event {
		return audit.New(p, now, "acme.provisioner.delete", prov.Name, map[string]any{
			"id": prov.ID, "ca": prov.CAName, "ca_id": prov.CAID, "profile": prov.Profile,
			"accounts_deactivated": c.Accounts, "orders_ended": c.Orders, "eab_keys_revoked": c.EABKeys,
		})
	})
	if err != nil {
		return nil, DeleteCounts{}, fmt.Errorf("acme: delete provisioner %s: %w", prov.Name, err)
	}
	s.cfg.Log.Info("acme provisioner deleted", "name", prov.Name, "id", prov.ID, "accounts_deactivated", counts.Accounts, "by", p.Name)
	return prov, counts, nil
}

// RevokeEABKey revokes external account key keyID: unused, it can no
// longer bind an account; bound, the account it bound is deactivated
// (RFC 8555 §7.3.6), so that it gets no more certificates. Certificates
// already issued stay valid: revoke them on their own. It needs
// principal:manage and, for a key acting as a principal, the right to act
// on that principal (as creating the key did). It returns the key as
// revoked and whether an account was deactivated now.
func (s *Service) RevokeEABKey(ctx context.Context, p authz.Principal, keyID string) (*EABKey, bool, error) {
	if err := p.Allow(authz.PermPrincipalAdmin, authz.Resource{}); err != nil {
		return nil, false, err
	}
	k, err := s.store.GetEABKey(ctx, keyID)
	if errors.Is(err, ErrNotFound) {
		return nil, false, notFoundf("no external account binding key %q; list a provisioner's keys with certwright acme eab list --provisioner NAME", keyID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("acme: external account key %q: %w", keyID, err)
	}
	if k.PrincipalID != "" {
		target, _, err := s.store.LoadPrincipal(ctx, k.PrincipalID)
		switch {
		case err == nil:
			if err := access.MayActOn(p, *target); err != nil {
				return nil, false, err
			}
		case !errors.Is(err, ErrNotFound):
			return nil, false, fmt.Errorf("acme: external account key %s: principal %s: %w", k.ID, k.PrincipalID, err)
		}
	}
	if !k.RevokedAt.IsZero() {
		return nil, false, conflictf("external account key %s is revoked already (since %s, by %s)", k.ID, k.RevokedAt.UTC().Format(time.RFC3339), k.RevokedBy)
	}
	provName := k.ProvisionerID
	if prov, err := s.store.GetProvisioner(ctx, k.ProvisionerID); err == nil {
		provName = prov.Name
	}
	now := s.cfg.Clock.Now().UTC()
	account, deactivated, err := s.store.RevokeEABKey(ctx, k.ID, now, p.Name, func(account string, deactivated bool) audit.Event {
		return audit.New(p, now, "acme.eab.revoke", k.ID, map[string]any{
			"provisioner": provName, "provisioner_id": k.ProvisionerID, "principal_id": k.PrincipalID,
			"account": account, "account_deactivated": deactivated,
		})
	})
	if err != nil {
		return nil, false, fmt.Errorf("acme: revoke external account key %s: %w", k.ID, err)
	}
	k.AccountID, k.RevokedAt, k.RevokedBy = account, s.storedTime(now), p.Name
	s.cfg.Log.Info("acme external account key revoked", "key", k.ID, "provisioner", provName, "account", account, "account_deactivated", deactivated, "by", p.Name)
	return k, deactivated, nil
}
