package acme

import (
	"context"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/authz"
)

// Bounds of what ProvisionerActivity reads: the most recent
// ActivityLimit accounts, orders and failed validations, and each
// account's orders counted up to OrderCountCap (a count at the cap means
// "at least").
const (
	ActivityLimit = 100
	OrderCountCap = 1000
)

// AccountActivity is an account as an operator sees it: how many orders
// it placed (at most OrderCountCap counted) and when it last did
// something (its newest order, or its creation).
type AccountActivity struct {
	Account
	Orders       int
	LastActivity time.Time
}

// FailedValidation is one challenge that failed, with the identifier it
// was to prove and the problem the validation met.
type FailedValidation struct {
	AuthzID     string
	AccountID   string
	ChallengeID string
	Type        string
	Identifier  Identifier
	Wildcard    bool
	At          time.Time
	Error       *Problem
}

// Activity is the recent use of one provisioner: its newest accounts,
// orders and failed validations, newest first, each at most
// ActivityLimit.
type Activity struct {
	Accounts []*AccountActivity
	Orders   []*Order
	Failures []*FailedValidation
}

// ProvisionerActivity returns provisioner name's recent accounts, orders
// (each as it stands now) and failed validations. It needs ca:read over
// the provisioner's CA.
func (s *Service) ProvisionerActivity(ctx context.Context, p authz.Principal, name string) (*Activity, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: reading ACME activity needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	prov, err := s.findProvisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCARead, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}); err != nil {
		return nil, err
	}
	var a Activity
	if a.Accounts, err = s.store.RecentAccounts(ctx, prov.ID, ActivityLimit, OrderCountCap); err != nil {
		return nil, fmt.Errorf("acme: accounts of %s: %w", prov.Name, err)
	}
	if a.Orders, err = s.store.RecentOrders(ctx, prov.ID, ActivityLimit); err != nil {
		return nil, fmt.Errorf("acme: orders of %s: %w", prov.Name, err)
	}
	// A pending or ready order is stored as its client last saw it; shown
	// as it stands now (failed, expired, ready), as the client would be
	// told, without storing anything.
	for i, o := range a.Orders {
		if a.Orders[i], err = s.advance(ctx, o); err != nil {
			return nil, err
		}
	}
	if a.Failures, err = s.store.RecentFailedValidations(ctx, prov.ID, ActivityLimit); err != nil {
		return nil, fmt.Errorf("acme: failed validations of %s: %w", prov.Name, err)
	}
	return &a, nil
}
