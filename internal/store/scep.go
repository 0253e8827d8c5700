package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/scep"
)

var _ scep.Store = (*DB)(nil)

const (
	scepProvisionerColumns = `p.id, p.name, p.ca_id, COALESCE(c.name, ''), p.profile, p.challenge, p.static_salt, p.static_hash,
		p.principal_id, COALESCE(pr.name, ''), p.ra_serial, p.ra_sha256, p.created_at, p.created_by, p.disabled_at, p.disabled_by, p.allow_legacy_crypto`
	scepProvisionerSelect = `SELECT ` + scepProvisionerColumns + ` FROM scep_provisioners p
		LEFT JOIN cas c ON c.id = p.ca_id LEFT JOIN principals pr ON pr.id = p.principal_id`
	sqlInsertSCEPProvisioner = `INSERT INTO scep_provisioners (id, name, ca_id, profile, challenge, static_salt, static_hash,
		principal_id, ra_serial, ra_sha256, created_at, created_by, allow_legacy_crypto)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetSCEPProvisioner    = scepProvisionerSelect + ` WHERE p.id = ? OR p.name = ? ORDER BY p.id = ? DESC LIMIT 1`
	sqlListSCEPProvisioners  = scepProvisionerSelect + ` ORDER BY p.name`
	sqlUpdateSCEPProvisioner = `UPDATE scep_provisioners SET profile = ?, static_salt = ?, static_hash = ?, disabled_at = ?, disabled_by = ?,
		ra_serial = ?, ra_sha256 = ?, allow_legacy_crypto = ? WHERE id = ? AND ra_serial = ?`
	sqlSetSCEPProvisionerRA = `UPDATE scep_provisioners SET ra_serial = ?, ra_sha256 = ? WHERE id = ? AND ra_serial = ?`
	sqlSCEPProvisionerRA    = `SELECT ra_serial FROM scep_provisioners WHERE id = ?`
	sqlSCEPBindingProfile   = `UPDATE role_bindings SET profiles = ? WHERE principal_id = ? AND source = ?`
	sqlSCEPPrincipalState   = `UPDATE principals SET disabled_at = ? WHERE id = ?`
	sqlDeleteSCEPBinding    = `DELETE FROM role_bindings WHERE principal_id = ? AND source = ?`
	sqlDeleteSCEPChallenges = `DELETE FROM scep_challenges WHERE provisioner_id = ?`
	sqlDeleteSCEPTxs        = `DELETE FROM scep_transactions WHERE provisioner_id = ?`
	sqlDeleteSCEPProv       = `DELETE FROM scep_provisioners WHERE id = ?`

	sqlInsertSCEPChallenge = `INSERT INTO scep_challenges (id, provisioner_id, hash, identity, created_at, created_by, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	// The guard makes consumption atomic on both dialects: of two
	// concurrent updates of the row, the second sees used_at set and
	// touches nothing.
	sqlConsumeSCEPChallenge = `UPDATE scep_challenges SET used_at = ?, used_by = ?
		WHERE provisioner_id = ? AND hash = ? AND used_at IS NULL AND expires_at > ?`
	sqlGetSCEPChallenge = `SELECT id, provisioner_id, hash, identity, created_at, created_by, expires_at, used_at, used_by
		FROM scep_challenges WHERE hash = ?`
	sqlReleaseSCEPChallenge = `UPDATE scep_challenges SET used_at = NULL, used_by = '' WHERE id = ? AND used_at = ?`

	sqlInsertSCEPTx = `INSERT INTO scep_transactions (provisioner_id, transaction_id, request_id, key_hash, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlDeleteSCEPTx = `DELETE FROM scep_transactions WHERE provisioner_id = ? AND transaction_id = ?`
	sqlPruneSCEPTxs = `DELETE FROM scep_transactions WHERE created_at < ?`
	sqlGetSCEPTx    = `SELECT provisioner_id, transaction_id, request_id, key_hash, created_at
		FROM scep_transactions WHERE provisioner_id = ? AND transaction_id = ?`
)

// scepBindingSource marks the binding a SCEP provisioner's principal
// holds, so that update and delete find it.
func scepBindingSource(provID string) string { return "scep:" + provID }

func scepNotFound(what, key string) error {
	return fmt.Errorf("%w (%w): %s %q", ErrNotFound, scep.ErrNotFound, what, key)
}

func scanSCEPProvisioner(s scanner) (*scep.Provisioner, error) {
	var p scep.Provisioner
	err := s.Scan(&p.ID, &p.Name, &p.CAID, &p.CAName, &p.Profile, &p.Challenge, &p.StaticSalt, &p.StaticHash,
		&p.PrincipalID, &p.PrincipalName, &p.RASerial, &p.RASHA256, timeScan{&p.CreatedAt}, &p.CreatedBy, nullTimeScan{&p.DisabledAt}, &p.DisabledBy,
		&p.AllowLegacyCrypto)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateSCEPProvisioner stores p, its principal and binding, and ev.
func (db *DB) CreateSCEPProvisioner(ctx context.Context, p *scep.Provisioner, pr *authz.PrincipalRecord, b *authz.Binding, ev audit.Event) error {
	if p.ID == "" || p.Name == "" || pr.ID == "" || b.ID == "" {
		return errors.New("store: create SCEP provisioner: IDs and name are required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create SCEP provisioner %q: %w", p.Name, err)
	}
	var lists [3]string
	for i, l := range [][]string{b.Scope.CAs, b.Scope.Profiles, b.Scope.Names} {
		s, err := jsonList(l)
		if err != nil {
			return fmt.Errorf("store: create SCEP provisioner %q: %w", p.Name, err)
		}
		lists[i] = s
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertPrincipal), pr.ID, pr.Name, string(pr.Kind), pr.Description,
			db.timeArg(pr.CreatedAt), pr.CreatedBy, db.nullTimeArg(pr.DisabledAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w (%w): principal %q", ErrConflict, scep.ErrConflict, pr.Name)
		}
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertBinding), b.ID, b.PrincipalID, b.Role.Name,
			lists[0], lists[1], lists[2], db.timeArg(b.CreatedAt), b.CreatedBy, b.Source); err != nil {
			return err
		}
		n, err = execAffected(ctx, tx, db.d.rebind(sqlInsertSCEPProvisioner), p.ID, p.Name, p.CAID, p.Profile, p.Challenge,
			nonNilBytes(p.StaticSalt), nonNilBytes(p.StaticHash), p.PrincipalID, p.RASerial, p.RASHA256, db.timeArg(p.CreatedAt), p.CreatedBy,
			p.AllowLegacyCrypto)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w (%w): SCEP provisioner %q", ErrConflict, scep.ErrConflict, p.Name)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create SCEP provisioner %q: %w", p.Name, err)
	}
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetSCEPProvisioner returns the provisioner whose ID or name is idOrName.
func (db *DB) GetSCEPProvisioner(ctx context.Context, idOrName string) (*scep.Provisioner, error) {
	p, err := scanSCEPProvisioner(db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetSCEPProvisioner), idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, scepNotFound("SCEP provisioner", idOrName)
	}
	if err != nil {
		return nil, fmt.Errorf("store: SCEP provisioner %q: %w", idOrName, err)
	}
	return p, nil
}

// ListSCEPProvisioners lists every SCEP provisioner by name.
func (db *DB) ListSCEPProvisioners(ctx context.Context) ([]*scep.Provisioner, error) {
	rows, err := db.rd.QueryContext(ctx, db.d.rebind(sqlListSCEPProvisioners))
	if err != nil {
		return nil, fmt.Errorf("store: list SCEP provisioners: %w", err)
	}
	out, err := collect(rows, scanSCEPProvisioner)
	if err != nil {
		return nil, fmt.Errorf("store: list SCEP provisioners: %w", err)
	}
	return out, nil
}

// UpdateSCEPProvisioner writes p's changeable fields, its binding's
// profile and its principal's state, and ev, if p's RA is still fromRA.
func (db *DB) UpdateSCEPProvisioner(ctx context.Context, p *scep.Provisioner, fromRA string, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: update SCEP provisioner %q: %w", p.Name, err)
	}
	profiles, err := jsonList([]string{p.Profile})
	if err != nil {
		return err
	}
	err = db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlUpdateSCEPProvisioner), p.Profile, nonNilBytes(p.StaticSalt),
			nonNilBytes(p.StaticHash), db.nullTimeArg(p.DisabledAt), p.DisabledBy, p.RASerial, p.RASHA256, p.AllowLegacyCrypto, p.ID, fromRA)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.scepRAMoved(ctx, tx, p, fromRA)
		}
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlSCEPBindingProfile), profiles, p.PrincipalID, scepBindingSource(p.ID)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlSCEPPrincipalState), db.nullTimeArg(p.DisabledAt), p.PrincipalID); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: update SCEP provisioner %q: %w", p.Name, err)
	}
	return nil
}

// scepRAMoved explains why a write guarded by p's RA being fromRA
// touched no row: p is gone, or its RA was replaced meanwhile.
func (db *DB) scepRAMoved(ctx context.Context, tx *sql.Tx, p *scep.Provisioner, fromRA string) error {
	var cur string
	err := tx.QueryRowContext(ctx, db.d.rebind(sqlSCEPProvisionerRA), p.ID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return scepNotFound("SCEP provisioner", p.Name)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w (%w): the RA certificate of SCEP provisioner %q was replaced meanwhile (it is %s now, not %s); look again (scep show) and retry if the change is still wanted",
		ErrConflict, scep.ErrConflict, p.Name, cur, fromRA)
}

// SetSCEPProvisionerRA writes p's RA serial and fingerprint, and ev, if
// p's RA is still fromRA; it writes no other field, so that changes
// committed since p was read stay. It runs in accessTx like
// UpdateSCEPProvisioner, of which it is the narrow case, so that every
// write to a provisioner moves the access generation alike.
func (db *DB) SetSCEPProvisionerRA(ctx context.Context, p *scep.Provisioner, fromRA string, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: set the RA of SCEP provisioner %q: %w", p.Name, err)
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlSetSCEPProvisionerRA), p.RASerial, p.RASHA256, p.ID, fromRA)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.scepRAMoved(ctx, tx, p, fromRA)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: set the RA of SCEP provisioner %q: %w", p.Name, err)
	}
	return nil
}

// DeleteSCEPProvisioner deletes p with its challenges, transactions and
// binding, disables its principal (kept: certificates name it as their
// requester), and appends ev.
func (db *DB) DeleteSCEPProvisioner(ctx context.Context, p *scep.Provisioner, at time.Time, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: delete SCEP provisioner %q: %w", p.Name, err)
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteSCEPProv), p.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return scepNotFound("SCEP provisioner", p.Name)
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{sqlDeleteSCEPChallenges, []any{p.ID}},
			{sqlDeleteSCEPTxs, []any{p.ID}},
			{sqlDeleteSCEPBinding, []any{p.PrincipalID, scepBindingSource(p.ID)}},
			{sqlSCEPPrincipalState, []any{db.timeArg(at), p.PrincipalID}},
		} {
			if _, err := tx.ExecContext(ctx, db.d.rebind(q.sql), q.args...); err != nil {
				return err
			}
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: delete SCEP provisioner %q: %w", p.Name, err)
	}
	return nil
}

// CreateSCEPChallenge stores a dynamic challenge's hash and ev.
func (db *DB) CreateSCEPChallenge(ctx context.Context, c *scep.OneTime, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create SCEP challenge: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertSCEPChallenge), c.ID, c.ProvisionerID, c.Hash, c.Identity,
			db.timeArg(c.CreatedAt), c.CreatedBy, db.timeArg(c.ExpiresAt)); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create SCEP challenge: %w", err)
	}
	return nil
}

func scanSCEPChallenge(s scanner) (*scep.OneTime, error) {
	var c scep.OneTime
	if err := s.Scan(&c.ID, &c.ProvisionerID, &c.Hash, &c.Identity, timeScan{&c.CreatedAt}, &c.CreatedBy,
		timeScan{&c.ExpiresAt}, nullTimeScan{&c.UsedAt}, &c.UsedBy); err != nil {
		return nil, err
	}
	return &c, nil
}

// ConsumeSCEPChallenge uses a challenge once (see scep.Store).
func (db *DB) ConsumeSCEPChallenge(ctx context.Context, provID string, hash []byte, now time.Time, txID string, ev func(*scep.OneTime) audit.Event) (*scep.OneTime, error) {
	var out *scep.OneTime
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		ptx := db.wr.tx(tx)
		n, err := execAffected(ctx, ptx, db.d.rebind(sqlConsumeSCEPChallenge), db.timeArg(now), txID, provID, hash, db.timeArg(now))
		if err != nil {
			return err
		}
		c, err := scanSCEPChallenge(ptx.QueryRowContext(ctx, db.d.rebind(sqlGetSCEPChallenge), hash))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return scep.ErrChallengeUnknown
		case err != nil:
			return err
		case c.ProvisionerID != provID:
			return scep.ErrChallengeUnknown
		case n == 1:
			out = c
			e := ev(c)
			if err := normalizeEvent(&e); err != nil {
				return err
			}
			return db.appendAudit(ctx, tx, &e)
		case c.UsedAt != nil:
			return scep.ErrChallengeUsed
		default:
			return scep.ErrChallengeExpired
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: consume SCEP challenge: %w", err)
	}
	return out, nil
}

// ReleaseSCEPChallenge makes a consumed challenge usable again.
func (db *DB) ReleaseSCEPChallenge(ctx context.Context, id string, usedAt time.Time) error {
	if _, err := db.write.ExecContext(ctx, db.d.rebind(sqlReleaseSCEPChallenge), id, db.timeArg(usedAt)); err != nil {
		return fmt.Errorf("store: release SCEP challenge: %w", err)
	}
	return nil
}

// PutSCEPTransaction records a transaction held for approval, pruning
// those created before pruneBefore; one already recorded is ErrConflict.
func (db *DB) PutSCEPTransaction(ctx context.Context, t *scep.Transaction, pruneBefore time.Time) error {
	if _, err := db.write.ExecContext(ctx, db.d.rebind(sqlPruneSCEPTxs), db.timeArg(pruneBefore)); err != nil {
		return fmt.Errorf("store: prune SCEP transactions: %w", err)
	}
	n, err := execAffected(ctx, db.write, db.d.rebind(sqlInsertSCEPTx), t.ProvisionerID, t.ID, t.RequestID, t.KeyHash, db.timeArg(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: SCEP transaction: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w (%w): SCEP transaction %q", ErrConflict, scep.ErrConflict, t.ID)
	}
	return nil
}

// GetSCEPTransaction returns a provisioner's transaction.
func (db *DB) GetSCEPTransaction(ctx context.Context, provID, txID string) (*scep.Transaction, error) {
	var t scep.Transaction
	err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetSCEPTx), provID, txID).Scan(&t.ProvisionerID, &t.ID, &t.RequestID, &t.KeyHash, timeScan{&t.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, scepNotFound("SCEP transaction", txID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: SCEP transaction: %w", err)
	}
	return &t, nil
}

// DeleteSCEPTransaction deletes a provisioner's transaction, if any.
func (db *DB) DeleteSCEPTransaction(ctx context.Context, provID, txID string) error {
	if _, err := db.write.ExecContext(ctx, db.d.rebind(sqlDeleteSCEPTx), provID, txID); err != nil {
		return fmt.Errorf("store: delete SCEP transaction: %w", err)
	}
	return nil
}
