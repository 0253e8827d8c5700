package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/est"
)

var _ est.Store = (*DB)(nil)

// Statements for EST provisioners and enrolment secrets.
const (
	estProvisionerSelect = `SELECT p.id, p.name, p.ca_id, COALESCE(c.name, ''), p.profile, p.auth, p.bootstrap_pem,
		p.identity_from, p.server_keygen, p.reenroll_grace, p.created_at, p.created_by, p.disabled_at, p.disabled_by,
		p.allowed_identities FROM est_provisioners p LEFT JOIN cas c ON c.id = p.ca_id`
	sqlInsertESTProvisioner = `INSERT INTO est_provisioners (id, name, ca_id, profile, auth, bootstrap_pem,
		identity_from, server_keygen, reenroll_grace, created_at, created_by, allowed_identities)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetESTProvisioner = estProvisionerSelect + ` WHERE p.id = ? OR p.name = ?
		ORDER BY CASE WHEN p.id = ? THEN 0 ELSE 1 END LIMIT 1`
	sqlListESTProvisioners  = estProvisionerSelect + ` ORDER BY p.name`
	sqlESTProvisionerExists = `SELECT COUNT(*) FROM est_provisioners WHERE id = ?`
	sqlUpdateESTProvisioner = `UPDATE est_provisioners SET ca_id = ?, profile = ?, auth = ?, bootstrap_pem = ?,
		identity_from = ?, server_keygen = ?, reenroll_grace = ?, allowed_identities = ? WHERE id = ?`
	sqlSetESTProvisionerDisabled = `UPDATE est_provisioners SET disabled_at = ?, disabled_by = ? WHERE id = ?`
	sqlDeleteESTSecretsOf        = `DELETE FROM est_secrets WHERE provisioner_id = ?`
	sqlDeleteESTProvisioner      = `DELETE FROM est_provisioners WHERE id = ? AND disabled_at IS NOT NULL`

	estSecretColumns   = `id, provisioner_id, identity, secret_hash, created_at, created_by, expires_at, used_at, used_from, revoked_at, revoked_by`
	sqlInsertESTSecret = `INSERT INTO est_secrets (` + estSecretColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '', NULL, '')`
	sqlGetESTSecret    = `SELECT ` + estSecretColumns + ` FROM est_secrets WHERE id = ?`
	sqlListESTSecrets  = `SELECT ` + estSecretColumns + ` FROM est_secrets WHERE provisioner_id = ? ORDER BY created_at, id`
	// One statement decides which of racing requests consumes a secret:
	// the row is updated only while unused and unexpired.
	sqlUseESTSecret = `UPDATE est_secrets SET used_at = ?, used_from = ?, use_token = ?
		WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?`
	// A secret is revoked only while unused and not revoked already.
	sqlRevokeESTSecret = `UPDATE est_secrets SET revoked_at = ?, revoked_by = ?
		WHERE id = ? AND provisioner_id = ? AND used_at IS NULL AND revoked_at IS NULL`
	sqlReleaseESTSecret = `UPDATE est_secrets SET used_at = NULL, used_from = '', use_token = ''
		WHERE id = ? AND use_token = ? AND use_token <> ''`
)

// CreateESTProvisioner stores p and appends ev; ErrConflict when the ID
// or the name is taken.
func (db *DB) CreateESTProvisioner(ctx context.Context, p *est.Provisioner, ev audit.Event) error {
	if p.ID == "" || p.Name == "" {
		return errors.New("store: create EST provisioner: ID and name are required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create EST provisioner %q: %w", p.Name, err)
	}
	err := db.estTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertESTProvisioner), p.ID, p.Name, p.CAID, p.Profile, p.Auth,
			p.BootstrapPEM, p.IdentityFrom, p.ServerKeyGen, int64(p.ReenrollGrace/time.Second), db.timeArg(p.CreatedAt), p.CreatedBy,
			strings.Join(p.AllowedIdentities, "\n"))
		if err != nil {
			return err
		}
		if n == 0 {
			var ids int
			if err := tx.QueryRowContext(ctx, db.d.rebind(sqlESTProvisionerExists), p.ID).Scan(&ids); err != nil {
				return err
			}
			if ids > 0 {
				return conflict("EST provisioner ID", p.ID)
			}
			return conflict("EST provisioner name", p.Name)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create EST provisioner %q: %w", p.Name, err)
	}
	return nil
}

// GetESTProvisioner returns the provisioner whose ID or, failing that,
// name is idOrName.
func (db *DB) GetESTProvisioner(ctx context.Context, idOrName string) (*est.Provisioner, error) {
	p, err := scanESTProvisioner(db.read.QueryRowContext(ctx, db.d.rebind(sqlGetESTProvisioner), idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("EST provisioner", idOrName)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get EST provisioner %q: %w", idOrName, err)
	}
	return p, nil
}

// ListESTProvisioners returns every EST provisioner by name.
func (db *DB) ListESTProvisioners(ctx context.Context) ([]*est.Provisioner, error) {
	rows, err := db.read.QueryContext(ctx, sqlListESTProvisioners)
	if err != nil {
		return nil, fmt.Errorf("store: list EST provisioners: %w", err)
	}
	out, err := collect(rows, scanESTProvisioner)
	if err != nil {
		return nil, fmt.Errorf("store: list EST provisioners: %w", err)
	}
	if out == nil {
		out = []*est.Provisioner{}
	}
	return out, nil
}

func scanESTProvisioner(s scanner) (*est.Provisioner, error) {
	var p est.Provisioner
	var grace int64
	var allowed string
	if err := s.Scan(&p.ID, &p.Name, &p.CAID, &p.CAName, &p.Profile, &p.Auth, &p.BootstrapPEM, &p.IdentityFrom,
		&p.ServerKeyGen, &grace, timeScan{&p.CreatedAt}, &p.CreatedBy, zeroTimeScan{&p.DisabledAt}, &p.DisabledBy, &allowed); err != nil {
		return nil, err
	}
	if allowed != "" {
		p.AllowedIdentities = strings.Split(allowed, "\n")
	}
	p.ReenrollGrace = time.Duration(grace) * time.Second
	return &p, nil
}

// UpdateESTProvisioner writes p's policy (never its disabled state) and
// appends ev.
func (db *DB) UpdateESTProvisioner(ctx context.Context, p *est.Provisioner, ev audit.Event) error {
	return db.estWriteOr(ctx, db.estTx, "update EST provisioner "+p.Name, notFound("EST provisioner", p.Name), ev, sqlUpdateESTProvisioner, p.CAID, p.Profile, p.Auth,
		p.BootstrapPEM, p.IdentityFrom, p.ServerKeyGen, int64(p.ReenrollGrace/time.Second), strings.Join(p.AllowedIdentities, "\n"), p.ID)
}

// SetESTProvisionerDisabled disables (at non-zero) or enables provisioner
// id and appends ev.
func (db *DB) SetESTProvisionerDisabled(ctx context.Context, id string, at time.Time, by string, ev audit.Event) error {
	var atArg any
	if !at.IsZero() {
		atArg = db.timeArg(at)
	}
	return db.estWriteOr(ctx, db.estTx, "set EST provisioner "+id+" disabled", notFound("EST provisioner", id), ev, sqlSetESTProvisionerDisabled, atArg, by, id)
}

// estWriteOr runs one single-row write with its audit event in inTx
// (estTx for a provisioner, so that the provisioner caches of this and,
// announced, every replica drop what they hold); no row is none.
func (db *DB) estWriteOr(ctx context.Context, inTx func(context.Context, func(*sql.Tx) error) error, what string, none error,
	ev audit.Event, q string, args ...any) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	err := inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(q), args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return none
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// DeleteESTProvisioner deletes disabled provisioner id and its secrets,
// with the audit event ev makes of the number of secrets deleted.
func (db *DB) DeleteESTProvisioner(ctx context.Context, id string, ev func(secrets int) audit.Event) error {
	err := db.estTx(ctx, func(tx *sql.Tx) error {
		secrets, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteESTSecretsOf), id)
		if err != nil {
			return err
		}
		n, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteESTProvisioner), id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: EST provisioner %s is gone or enabled", ErrConflict, id)
		}
		e := ev(int(secrets))
		if err := normalizeEvent(&e); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &e)
	})
	if err != nil {
		return fmt.Errorf("store: delete EST provisioner %s: %w", id, err)
	}
	return nil
}

// CreateESTSecret stores s (its hash) and appends ev.
func (db *DB) CreateESTSecret(ctx context.Context, s *est.Secret, ev audit.Event) error {
	if s.ID == "" || s.ProvisionerID == "" || len(s.Hash) == 0 {
		return errors.New("store: create EST secret: ID, provisioner and hash are required")
	}
	// Secrets are read afresh at every use, never cached: no generation
	// to move.
	return db.estWriteOr(ctx, db.inTx, "create EST secret "+s.ID, notFound("EST record", s.ID), ev, sqlInsertESTSecret,
		s.ID, s.ProvisionerID, s.Identity, s.Hash, db.timeArg(s.CreatedAt), s.CreatedBy, db.timeArg(s.ExpiresAt))
}

// GetESTSecret returns secret id.
func (db *DB) GetESTSecret(ctx context.Context, id string) (*est.Secret, error) {
	s, err := scanESTSecret(db.read.QueryRowContext(ctx, db.d.rebind(sqlGetESTSecret), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("EST secret", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get EST secret %q: %w", id, err)
	}
	return s, nil
}

// ListESTSecrets returns a provisioner's secrets, oldest first.
func (db *DB) ListESTSecrets(ctx context.Context, provisionerID string) ([]*est.Secret, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(sqlListESTSecrets), provisionerID)
	if err != nil {
		return nil, fmt.Errorf("store: list EST secrets: %w", err)
	}
	out, err := collect(rows, scanESTSecret)
	if err != nil {
		return nil, fmt.Errorf("store: list EST secrets: %w", err)
	}
	if out == nil {
		out = []*est.Secret{}
	}
	return out, nil
}

func scanESTSecret(s scanner) (*est.Secret, error) {
	var sec est.Secret
	if err := s.Scan(&sec.ID, &sec.ProvisionerID, &sec.Identity, &sec.Hash, timeScan{&sec.CreatedAt}, &sec.CreatedBy,
		timeScan{&sec.ExpiresAt}, zeroTimeScan{&sec.UsedAt}, &sec.UsedFrom, zeroTimeScan{&sec.RevokedAt}, &sec.RevokedBy); err != nil {
		return nil, err
	}
	return &sec, nil
}

// UseESTSecret consumes secret id at now, with ev, unless it is used or
// expired (ErrConflict): one conditional UPDATE, so of racing requests on
// any replica exactly one wins.
func (db *DB) UseESTSecret(ctx context.Context, id string, now time.Time, from, token string, ev audit.Event) error {
	return db.estWriteOr(ctx, db.inTx, "use EST secret "+id, fmt.Errorf("%w: EST secret %s is used, revoked or expired", ErrConflict, id), ev,
		sqlUseESTSecret, db.timeArg(now), from, token, id, db.timeArg(now))
}

// ReleaseESTSecret makes secret id unused again, appending ev, if the
// enrolment holding token consumed it; otherwise it does nothing.
func (db *DB) ReleaseESTSecret(ctx context.Context, id, token string, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: release EST secret %s: %w", id, err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlReleaseESTSecret), id, token)
		if err != nil || n == 0 {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: release EST secret %s: %w", id, err)
	}
	return nil
}

// RevokeESTSecret revokes unused secret id of provisioner provID at now,
// with ev; ErrConflict when it is used or revoked already.
func (db *DB) RevokeESTSecret(ctx context.Context, id, provID string, now time.Time, by string, ev audit.Event) error {
	return db.estWriteOr(ctx, db.inTx, "revoke EST secret "+id, fmt.Errorf("%w: EST secret %s is used or revoked already", ErrConflict, id), ev,
		sqlRevokeESTSecret, db.timeArg(now), by, id, provID)
}
