package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/certwright/certwright/internal/acme"
)

// Statements of the operator's view of a provisioner (the console's ACME
// page). Each walks an index of migration 0018 from the newest row and
// stops at its LIMIT, whatever the tables hold.
const (
	// Each account with its orders counted up to a cap (the inner LIMIT)
	// and its newest order's creation, both from acme_orders_account.
	sqlRecentAccounts = `SELECT a.id, a.provisioner_id, a.key_thumbprint, a.key_jwk, a.contact, a.status, a.terms_agreed,
		a.eab_key_id, a.principal_id, a.created_at, a.created_ip,
		(SELECT COUNT(*) FROM (SELECT 1 FROM acme_orders o WHERE o.account_id = a.id LIMIT ?) n),
		(SELECT o.created_at FROM acme_orders o WHERE o.account_id = a.id ORDER BY o.created_at DESC LIMIT 1)
		FROM acme_accounts a WHERE a.provisioner_id = ? ORDER BY a.created_at DESC, a.id DESC LIMIT ?`
	sqlRecentOrders = `SELECT ` + orderColumns + ` FROM acme_orders WHERE provisioner_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`
	// A failed challenge makes its authorization invalid: the newest
	// invalid authorizations, then their failed challenges.
	sqlRecentFailures = `SELECT a.id, a.account_id, a.ident_type, a.ident_value, a.wildcard, c.id, c.type, c.validated, c.error
		FROM (SELECT id, created_at FROM acme_authorizations WHERE provisioner_id = ? AND status = '` + acme.StatusInvalid + `'
			ORDER BY created_at DESC, id DESC LIMIT ?) r
		JOIN acme_authorizations a ON a.id = r.id
		JOIN acme_challenges c ON c.authz_id = a.id AND c.status = '` + acme.StatusInvalid + `'
		ORDER BY r.created_at DESC, r.id DESC, c.position LIMIT ?`
)

// activityLimit bounds limit to [1, acme.ActivityLimit].
func activityLimit(limit int) int {
	if limit <= 0 || limit > acme.ActivityLimit {
		return acme.ActivityLimit
	}
	return limit
}

// RecentAccounts returns the provisioner's newest accounts, at most limit
// (capped at acme.ActivityLimit), each with its orders counted up to
// countCap and its last activity: its newest order's creation, or its own.
func (db *DB) RecentAccounts(ctx context.Context, provisionerID string, limit, countCap int) ([]*acme.AccountActivity, error) {
	if countCap <= 0 || countCap > acme.OrderCountCap {
		countCap = acme.OrderCountCap
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(sqlRecentAccounts), countCap, provisionerID, activityLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: recent ACME accounts of %q: %w", provisionerID, err)
	}
	out, err := collect(rows, func(s scanner) (*acme.AccountActivity, error) {
		var a acme.AccountActivity
		var contact string
		var eab, principal sql.NullString
		if err := s.Scan(&a.ID, &a.ProvisionerID, &a.KeyThumbprint, &a.KeyJWK, &contact, &a.Status, &a.TermsAgreed,
			&eab, &principal, timeScan{&a.CreatedAt}, &a.CreatedIP, &a.Orders, zeroTimeScan{&a.LastActivity}); err != nil {
			return nil, err
		}
		var err error
		if a.Contact, err = readList(contact); err != nil {
			return nil, fmt.Errorf("ACME account %q contact: %w", a.ID, err)
		}
		a.EABKeyID, a.PrincipalID = eab.String, principal.String
		if a.LastActivity.Before(a.CreatedAt) {
			a.LastActivity = a.CreatedAt
		}
		return &a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: recent ACME accounts of %q: %w", provisionerID, err)
	}
	return out, nil
}

// RecentOrders returns the provisioner's newest orders, at most limit
// (capped at acme.ActivityLimit).
func (db *DB) RecentOrders(ctx context.Context, provisionerID string, limit int) ([]*acme.Order, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(sqlRecentOrders), provisionerID, activityLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: recent ACME orders of %q: %w", provisionerID, err)
	}
	out, err := collect(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("store: recent ACME orders of %q: %w", provisionerID, err)
	}
	return out, nil
}

// RecentFailedValidations returns the failed challenges of the
// provisioner's newest invalid authorizations, at most limit (capped at
// acme.ActivityLimit), newest authorization first.
func (db *DB) RecentFailedValidations(ctx context.Context, provisionerID string, limit int) ([]*acme.FailedValidation, error) {
	limit = activityLimit(limit)
	rows, err := db.read.QueryContext(ctx, db.d.rebind(sqlRecentFailures), provisionerID, limit, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent failed ACME validations of %q: %w", provisionerID, err)
	}
	out, err := collect(rows, func(s scanner) (*acme.FailedValidation, error) {
		var f acme.FailedValidation
		var problem sql.NullString
		if err := s.Scan(&f.AuthzID, &f.AccountID, &f.Identifier.Type, &f.Identifier.Value, &f.Wildcard,
			&f.ChallengeID, &f.Type, zeroTimeScan{&f.At}, &problem); err != nil {
			return nil, err
		}
		var err error
		if f.Error, err = readProblem(problem); err != nil {
			return nil, fmt.Errorf("ACME challenge %q error: %w", f.ChallengeID, err)
		}
		return &f, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: recent failed ACME validations of %q: %w", provisionerID, err)
	}
	return out, nil
}
