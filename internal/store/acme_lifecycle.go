package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
)

// UpdateProvisioner writes p's policy (CA, profile, challenges, allowed
// names, EAB requirement, subject-field policy, terms of service and
// website), never its name, creation or disabled state, and appends ev, in
// one transaction. An unknown ID is ErrNotFound.
func (db *DB) UpdateProvisioner(ctx context.Context, p *acme.Provisioner, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: update ACME provisioner %q: %w", p.Name, err)
	}
	challenges, allow, err := provisionerLists(p)
	if err != nil {
		return fmt.Errorf("store: update ACME provisioner %q: %w", p.Name, err)
	}
	err = db.acmeTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlUpdateProvisioner), p.CAID, p.Profile, challenges, allow,
			p.RequireEAB, p.AllowSubjectFields, p.TermsOfService, p.Website, p.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("ACME provisioner", p.ID)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: update ACME provisioner %q: %w", p.Name, err)
	}
	return nil
}

// SetProvisionerDisabled disables provisioner id as of at by by, or
// enables it when at is zero, and appends ev, in one transaction. An
// unknown ID is ErrNotFound.
func (db *DB) SetProvisionerDisabled(ctx context.Context, id string, at time.Time, by string, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: disable ACME provisioner %q: %w", id, err)
	}
	if at.IsZero() {
		by = ""
	}
	err := db.acmeTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlSetProvisionerDisabled), db.zeroNullTimeArg(at), by, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("ACME provisioner", id)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: disable ACME provisioner %q: %w", id, err)
	}
	return nil
}

// DeleteProvisioner removes the disabled provisioner id and, in the same
// transaction, deactivates its valid accounts, makes its pending and ready
// orders invalid with reason, revokes its external account keys and
// appends the event ev builds from those counts. Accounts, orders,
// authorizations and keys stay on record (under the old, never reused ID),
// as do the certificates issued. An enabled provisioner is ErrConflict, an
// unknown one ErrNotFound.
func (db *DB) DeleteProvisioner(ctx context.Context, id string, at time.Time, by string, reason *acme.Problem,
	ev func(acme.DeleteCounts) audit.Event) (acme.DeleteCounts, error) {
	var counts acme.DeleteCounts
	problem, err := problemArg(reason)
	if err != nil {
		return counts, fmt.Errorf("store: delete ACME provisioner %q: %w", id, err)
	}
	err = db.acmeTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteProvisioner), id)
		if err != nil {
			return err
		}
		if n == 0 {
			var ids int
			if err := tx.QueryRowContext(ctx, db.d.rebind(sqlProvisionerExists), id).Scan(&ids); err != nil {
				return err
			}
			if ids == 0 {
				return notFound("ACME provisioner", id)
			}
			return fmt.Errorf("%w: ACME provisioner %q is enabled; disable it first", ErrConflict, id)
		}
		if counts.Accounts, err = execAffected(ctx, tx, db.d.rebind(sqlDeactivateAccountsOf), id); err != nil {
			return err
		}
		if counts.Orders, err = execAffected(ctx, tx, db.d.rebind(sqlEndOrdersOf), problem, db.timeArg(at), id); err != nil {
			return err
		}
		if counts.EABKeys, err = execAffected(ctx, tx, db.d.rebind(sqlRevokeEABKeysOf), db.timeArg(at), by, id); err != nil {
			return err
		}
		e := ev(counts)
		if err := normalizeEvent(&e); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &e)
	})
	if err != nil {
		return acme.DeleteCounts{}, fmt.Errorf("store: delete ACME provisioner %q: %w", id, err)
	}
	return counts, nil
}

// RevokeEABKey revokes external account key id as of at by by and, when
// the key bound an account that is still valid, deactivates that account,
// and appends the event ev builds from the bound account's ID ("" when
// none) and whether it was deactivated, in one transaction. A key revoked
// already is ErrConflict, an unknown one ErrNotFound.
func (db *DB) RevokeEABKey(ctx context.Context, id string, at time.Time, by string,
	ev func(accountID string, deactivated bool) audit.Event) (accountID string, deactivated bool, err error) {
	err = db.acmeTx(ctx, func(tx *sql.Tx) error {
		accountID, deactivated = "", false
		err := tx.QueryRowContext(ctx, db.d.rebind(sqlRevokeEABKey), db.timeArg(at), by, id).Scan(&accountID)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := scanEABKey(tx.QueryRowContext(ctx, db.d.rebind(sqlGetEABKey), id)); errors.Is(err, sql.ErrNoRows) {
				return notFound("external account key", id)
			} else if err != nil {
				return err
			}
			return fmt.Errorf("%w: external account key %q is revoked already", ErrConflict, id)
		}
		if err != nil {
			return err
		}
		if accountID != "" {
			n, err := execAffected(ctx, tx, db.d.rebind(sqlDeactivateAccount), accountID)
			if err != nil {
				return err
			}
			deactivated = n > 0
		}
		e := ev(accountID, deactivated)
		if err := normalizeEvent(&e); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &e)
	})
	if err != nil {
		return "", false, fmt.Errorf("store: revoke external account key %q: %w", id, err)
	}
	return accountID, deactivated, nil
}
