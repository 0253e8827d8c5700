package acme

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
)

// OrderRequest is a verified newOrder payload.
type OrderRequest struct {
	Identifiers []Identifier
	// NotBefore and NotAfter are the raw payload fields ("" when absent).
	NotBefore, NotAfter string
	// Replaces is the RFC 9773 ID of the certificate this order renews.
	Replaces string
}

const maxIdentifiers = 100

// absentTime reports whether an order's notBefore/notAfter asks for
// nothing: empty, or the zero time. The smallstep step CLI always sends
// "0001-01-01T00:00:00Z" for both (Go's zero time.Time marshalled), as
// Vault and OpenBao accept.
func absentTime(s string) bool {
	if s == "" {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && t.IsZero()
}

// normalizeIdentifier returns the canonical form of an identifier, or a
// problem naming what is wrong with it.
func normalizeIdentifier(id Identifier) (Identifier, *Problem) {
	bad := func(t ErrorType, format string, args ...any) (Identifier, *Problem) {
		p := NewProblem(t, format, args...)
		p.Identifier = &Identifier{Type: id.Type, Value: id.Value}
		return Identifier{}, p
	}
	switch id.Type {
	case IdentifierDNS:
		v := strings.ToLower(strings.TrimSuffix(id.Value, "."))
		if _, err := netip.ParseAddr(v); err == nil {
			return bad(ErrMalformed, "%q is an IP address: use an identifier of type ip", id.Value)
		}
		base, wild := strings.CutPrefix(v, "*.")
		if why := dnsNameProblem(base); why != "" {
			return bad(ErrRejectedIdentifier, "%q is not a valid DNS name: %s", id.Value, why)
		}
		if wild {
			return Identifier{Type: IdentifierDNS, Value: "*." + base}, nil
		}
		return Identifier{Type: IdentifierDNS, Value: base}, nil
	case IdentifierIP:
		a, err := netip.ParseAddr(id.Value)
		if err != nil || a.Zone() != "" {
			return bad(ErrMalformed, "%q is not an IP address", id.Value)
		}
		return Identifier{Type: IdentifierIP, Value: a.Unmap().String()}, nil
	default:
		return bad(ErrUnsupportedIdentifier, "identifier type %q is not supported (dns, ip)", id.Type)
	}
}

// dnsNameProblem says what is wrong with a DNS name, or "".
func dnsNameProblem(name string) string {
	if name == "" {
		return "empty"
	}
	if len(name) > 253 {
		return "longer than 253 characters"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label"
		}
		if len(l) > 63 {
			return "label longer than 63 characters"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "label starts or ends with a hyphen"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("character %q not allowed (letters, digits and hyphens only; use punycode for IDNs)", c)
			}
		}
	}
	return ""
}

// challengeTypesFor lists prov's challenge types that can prove ident.
func challengeTypesFor(prov *Provisioner, ident Identifier, wildcard bool) []string {
	var out []string
	for _, t := range prov.Challenges {
		switch {
		case wildcard && t != ChallengeDNS01:
		case ident.Type == IdentifierIP && t == ChallengeDNS01:
		default:
			out = append(out, t)
		}
	}
	return out
}

// NewOrder creates an order for the identifiers, reusing the account's
// valid authorizations and creating the rest.
func (s *Service) NewOrder(ctx context.Context, prov *Provisioner, acct *Account, req OrderRequest) (*Order, error) {
	if err := prov.mayServe(acct, "new orders"); err != nil {
		return nil, err
	}
	if !absentTime(req.NotBefore) || !absentTime(req.NotAfter) {
		return nil, NewProblem(ErrMalformed, "notBefore and notAfter are not supported: profile %s sets the validity; leave them out", prov.Profile)
	}
	if len(req.Identifiers) == 0 {
		return nil, NewProblem(ErrMalformed, "an order needs at least one identifier")
	}
	if len(req.Identifiers) > maxIdentifiers {
		return nil, NewProblem(ErrRejectedIdentifier, "%d identifiers; at most %d per order", len(req.Identifiers), maxIdentifiers)
	}
	idents := make([]Identifier, 0, len(req.Identifiers))
	var subs []*Problem
	for _, raw := range req.Identifiers {
		id, p := normalizeIdentifier(raw)
		if p != nil {
			subs = append(subs, p)
			continue
		}
		if !slices.Contains(idents, id) {
			idents = append(idents, id)
		}
	}
	if len(subs) > 0 {
		return nil, compound(subs, "order has %d unacceptable identifier(s)", len(subs))
	}

	// Policy: the provisioner's names, the challenges it offers, the
	// account's principal and the profile's name rules.
	p, err := s.principal(ctx, prov, acct)
	if err != nil {
		return nil, err
	}
	prof, err := s.profiles.Get(ctx, prov.Profile)
	if err != nil {
		return nil, fmt.Errorf("acme: provisioner %s: profile %s: %w", prov.Name, prov.Profile, err)
	}
	var pr profile.Request
	for _, id := range idents {
		sub := func(t ErrorType, format string, args ...any) {
			pb := NewProblem(t, format, args...)
			pb.Identifier = &Identifier{Type: id.Type, Value: id.Value}
			subs = append(subs, pb)
		}
		base, wild := strings.CutPrefix(id.Value, "*.")
		if !prov.allowsName(id.Value) {
			sub(ErrRejectedIdentifier, "%s is not among the names provisioner %s issues for (%s)", id.Value, prov.Name, strings.Join(prov.AllowNames, ", "))
			continue
		}
		if len(challengeTypesFor(prov, Identifier{Type: id.Type, Value: base}, wild)) == 0 {
			sub(ErrRejectedIdentifier, "no challenge offered by provisioner %s can prove %s (wildcards need dns-01; IP addresses need http-01 or tls-alpn-01)", prov.Name, id.Value)
			continue
		}
		if err := p.Allow(authz.PermCertIssue, authz.Resource{CAID: prov.CAID, CAName: prov.CAName, Profile: prov.Profile, Names: []string{id.Value}}); err != nil {
			sub(ErrRejectedIdentifier, "%v", err)
			continue
		}
		if id.Type == IdentifierDNS {
			pr.DNSNames = append(pr.DNSNames, id.Value)
		} else {
			a, _ := netip.ParseAddr(id.Value)
			pr.IPAddresses = append(pr.IPAddresses, a.AsSlice())
		}
	}
	if len(subs) > 0 {
		return nil, compound(subs, "order has %d identifier(s) this account may not get", len(subs))
	}
	if err := prof.CheckNames(pr); err != nil {
		pb := NewProblem(ErrRejectedIdentifier, "%v", err)
		var v *profile.Violation
		if errors.As(err, &v) && v.Value != "" {
			for _, id := range idents {
				if id.Value == strings.ToLower(v.Value) {
					pb.Identifier = &Identifier{Type: id.Type, Value: id.Value}
				}
			}
		}
		return nil, pb
	}

	now := s.cfg.Clock.Now()
	if err := s.checkReplaces(ctx, acct, req.Replaces, idents); err != nil {
		return nil, err
	}
	n, err := s.store.CountOrdersSince(ctx, acct.ID, now.Add(-time.Hour))
	if err != nil {
		return nil, fmt.Errorf("acme: rate limit: %w", err)
	}
	if limit := s.settings().Limits.OrdersPerHour; n >= limit {
		pb := NewProblem(ErrRateLimited, "%d new orders in the last hour; the limit is %d per account", n, limit)
		pb.RetryAfterSeconds = 300
		return nil, pb
	}
	pending, err := s.store.CountPendingAuthorizations(ctx, acct.ID, now)
	if err != nil {
		return nil, fmt.Errorf("acme: rate limit: %w", err)
	}

	o := &Order{
		AccountID: acct.ID, ProvisionerID: prov.ID, Status: StatusPending, Identifiers: idents,
		Expires: now.Add(s.settings().OrderLifetime), Replaces: req.Replaces, CreatedAt: now, UpdatedAt: now,
	}
	if o.ID, err = s.orderedID(12); err != nil {
		return nil, err
	}
	var fresh []*Authorization
	allValid := true
	for _, id := range idents {
		base, wild := strings.CutPrefix(id.Value, "*.")
		ident := Identifier{Type: id.Type, Value: base}
		a, err := s.store.ReusableAuthorization(ctx, acct.ID, ident, wild, now.Add(time.Hour))
		if err == nil && !provedByOffered(prov, a) {
			err = ErrNotFound // proved by a challenge the provisioner no longer offers: prove it again
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			allValid = false
			if limit := s.settings().Limits.PendingAuthorizations; pending+len(fresh) >= limit {
				pb := NewProblem(ErrRateLimited, "the account has %d pending authorizations; the limit is %d: complete or deactivate some", pending+len(fresh), limit)
				pb.RetryAfterSeconds = 3600
				return nil, pb
			}
			if a, err = s.newAuthorization(prov, acct, ident, wild, now); err != nil {
				return nil, err
			}
			fresh = append(fresh, a)
		default:
			return nil, fmt.Errorf("acme: reuse authorization: %w", err)
		}
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
		if a.Expires.Before(o.Expires) {
			o.Expires = a.Expires
		}
	}
	if allValid {
		o.Status = StatusReady
	}
	if err := s.store.CreateOrder(ctx, o, fresh); err != nil {
		return nil, fmt.Errorf("acme: create order: %w", err)
	}
	return o, nil
}

func compound(subs []*Problem, format string, args ...any) *Problem {
	if len(subs) == 1 {
		return subs[0]
	}
	t := subs[0].Type
	for _, sp := range subs[1:] {
		if sp.Type != t {
			t = ErrCompound
		}
	}
	pb := NewProblem(t, format, args...)
	pb.Subproblems = subs
	return pb
}

func (s *Service) newAuthorization(prov *Provisioner, acct *Account, ident Identifier, wild bool, now time.Time) (*Authorization, error) {
	id, err := s.orderedID(12)
	if err != nil {
		return nil, err
	}
	a := &Authorization{
		ID: id, AccountID: acct.ID, ProvisionerID: prov.ID, Identifier: ident, Wildcard: wild,
		Status: StatusPending, Expires: now.Add(s.settings().PendingAuthzLifetime), CreatedAt: now,
	}
	for _, t := range challengeTypesFor(prov, ident, wild) {
		chID, err := s.orderedID(9)
		if err != nil {
			return nil, err
		}
		tok, err := s.randomID(32)
		if err != nil {
			return nil, err
		}
		a.Challenges = append(a.Challenges, Challenge{ID: chID, AuthzID: id, Type: t, Token: tok, Status: StatusPending})
	}
	return a, nil
}

// Order returns the account's order with its status brought up to date.
func (s *Service) Order(ctx context.Context, acct *Account, id string) (*Order, error) {
	o, err := s.ownOrder(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return s.refresh(ctx, o)
}

// ownOrder returns acct's order id as stored.
func (s *Service) ownOrder(ctx context.Context, acct *Account, id string) (*Order, error) {
	o, err := s.store.GetOrder(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && o.AccountID != acct.ID) {
		return nil, notFound("order", id)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: order: %w", err)
	}
	return o, nil
}

// refresh moves an order on when its authorizations or its expiry say so,
// and stores the change.
func (s *Service) refresh(ctx context.Context, o *Order) (*Order, error) {
	next, err := s.advance(ctx, o)
	if err != nil || next == o {
		return next, err
	}
	if err := s.store.UpdateOrder(ctx, next, o.Status); err != nil {
		if errors.Is(err, ErrConflict) {
			return s.store.GetOrder(ctx, o.ID)
		}
		return nil, fmt.Errorf("acme: update order %s: %w", o.ID, err)
	}
	return next, nil
}

// advance returns the order as its authorizations and its expiry say it
// stands now, without storing anything: o itself when nothing changed, a
// changed copy otherwise.
func (s *Service) advance(ctx context.Context, o *Order) (*Order, error) {
	if o.Status != StatusPending && o.Status != StatusReady {
		return o, nil
	}
	now := s.cfg.Clock.Now()
	next := *o
	if !now.Before(o.Expires) {
		next.Status = StatusInvalid
		next.Error = NewProblem(ErrMalformed, "order expired at %s", o.Expires.UTC().Format(time.RFC3339))
	} else if o.Status == StatusPending {
		authzs, err := s.store.GetAuthorizations(ctx, o.AuthzIDs...)
		if err != nil {
			return nil, fmt.Errorf("acme: order %s: %w", o.ID, err)
		}
		ready := true
		for _, a := range authzs {
			st := effectiveStatus(a, now)
			if st == StatusPending {
				ready = false
				continue
			}
			if st != StatusValid {
				next.Status = StatusInvalid
				pb := NewProblem(ErrUnauthorized, "authorization for %s is %s", a.Identifier.Value, st)
				for _, c := range a.Challenges {
					if c.Error != nil {
						pb = c.Error
						break
					}
				}
				next.Error = pb
				ready = false
				break
			}
		}
		if ready {
			next.Status = StatusReady
		}
	}
	if next.Status == o.Status {
		return o, nil
	}
	next.UpdatedAt = now
	return &next, nil
}

// effectiveStatus is an authorization's status as of now: a pending or
// valid authorization past its expiry has expired.
func effectiveStatus(a *Authorization, now time.Time) string {
	if (a.Status == StatusPending || a.Status == StatusValid) && !now.Before(a.Expires) {
		return StatusExpired
	}
	return a.Status
}

// OrderIDs lists the account's orders, oldest first, after the order ID
// after ("" for the start).
func (s *Service) OrderIDs(ctx context.Context, acct *Account, after string, limit int) ([]string, error) {
	ids, err := s.store.ListOrderIDs(ctx, acct.ID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("acme: list orders: %w", err)
	}
	return ids, nil
}

func (s *Service) authorization(ctx context.Context, acct *Account, id string) (*Authorization, error) {
	as, err := s.store.GetAuthorizations(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && as[0].AccountID != acct.ID) {
		return nil, notFound("authorization", id)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: authorization: %w", err)
	}
	a := as[0]
	a.Status = effectiveStatus(a, s.cfg.Clock.Now())
	return a, nil
}

// Authorization returns the account's authorization id.
func (s *Service) Authorization(ctx context.Context, acct *Account, id string) (*Authorization, error) {
	return s.authorization(ctx, acct, id)
}

// DeactivateAuthorization gives up a pending or valid authorization.
func (s *Service) DeactivateAuthorization(ctx context.Context, acct *Account, id string) (*Authorization, error) {
	a, err := s.authorization(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	if a.Status != StatusPending && a.Status != StatusValid {
		return nil, NewProblem(ErrMalformed, "authorization is %s; only pending or valid ones can be deactivated", a.Status)
	}
	from := a.Status
	a.Status = StatusDeactivated
	if err := s.store.UpdateAuthorization(ctx, a, from); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, NewProblem(ErrMalformed, "authorization changed meanwhile; fetch it again")
		}
		return nil, fmt.Errorf("acme: deactivate authorization: %w", err)
	}
	return a, nil
}

// allowsName reports whether the provisioner's allowed names admit the
// identifier value (every name when it lists none).
func (p *Provisioner) allowsName(value string) bool {
	return len(p.AllowNames) == 0 || slices.ContainsFunc(p.AllowNames, func(pat string) bool { return authz.MatchName(pat, value) })
}

// mayServe is the problem refusing acct something new (what) on the
// provisioner: it is disabled, or it requires external account binding and
// acct has none (require-EAB turned on after the account was made).
func (p *Provisioner) mayServe(acct *Account, what string) error {
	if err := p.refuseNew(what); err != nil {
		return err
	}
	if p.RequireEAB && acct.EABKeyID == "" {
		return NewProblem(ErrExternalAccountRequired, "ACME provisioner %s now requires external account binding and this account has none: register a new account with a key from the operator (certwright acme eab create --provisioner %s)", p.Name, p.Name)
	}
	return nil
}

// provedByOffered reports whether a valid authorization was proved by a
// challenge type the provisioner still offers.
func provedByOffered(p *Provisioner, a *Authorization) bool {
	for _, c := range a.Challenges {
		if c.Status == StatusValid {
			return slices.Contains(p.Challenges, c.Type)
		}
	}
	return false
}
