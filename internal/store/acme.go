package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
)

var _ acme.Store = (*DB)(nil)

// Statements for ACME state (RFC 8555), written with ? placeholders and
// rebound per dialect.
const (
	provisionerSelect = `SELECT p.id, p.name, p.ca_id, COALESCE(c.name, ''), p.profile, p.challenges, p.allow_names,
		p.require_eab, p.terms_of_service, p.website, p.created_at, p.created_by, p.allow_subject_fields,
		p.disabled_at, p.disabled_by
		FROM acme_provisioners p LEFT JOIN cas c ON c.id = p.ca_id`
	sqlInsertProvisioner = `INSERT INTO acme_provisioners (id, name, ca_id, profile, challenges, allow_names,
		require_eab, terms_of_service, website, created_at, created_by, allow_subject_fields)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// An ID match wins over a name match, as for CAs and principals.
	sqlGetProvisioner = provisionerSelect + ` WHERE p.id = ? OR p.name = ?
		ORDER BY CASE WHEN p.id = ? THEN 0 ELSE 1 END LIMIT 1`
	sqlListProvisioners  = provisionerSelect + ` ORDER BY p.name`
	sqlProvisionerExists = `SELECT COUNT(*) FROM acme_provisioners WHERE id = ?`
	// The policy an operator may change; disabled_at is written on its own
	// (sqlSetProvisionerDisabled), so an update racing a disable cannot
	// enable the provisioner again.
	sqlUpdateProvisioner = `UPDATE acme_provisioners SET ca_id = ?, profile = ?, challenges = ?, allow_names = ?,
		require_eab = ?, allow_subject_fields = ?, terms_of_service = ?, website = ? WHERE id = ?`
	sqlSetProvisionerDisabled = `UPDATE acme_provisioners SET disabled_at = ?, disabled_by = ? WHERE id = ?`
	// Only a disabled provisioner is deleted.
	sqlDeleteProvisioner    = `DELETE FROM acme_provisioners WHERE id = ? AND disabled_at IS NOT NULL`
	sqlDeactivateAccountsOf = `UPDATE acme_accounts SET status = '` + acme.StatusDeactivated + `'
		WHERE provisioner_id = ? AND status = '` + acme.StatusValid + `'`
	sqlEndOrdersOf = `UPDATE acme_orders SET status = '` + acme.StatusInvalid + `', error = ?, updated_at = ?
		WHERE provisioner_id = ? AND status IN ('` + acme.StatusPending + `', '` + acme.StatusReady + `')`
	sqlRevokeEABKeysOf = `UPDATE acme_eab_keys SET revoked_at = ?, revoked_by = ? WHERE provisioner_id = ? AND revoked_at IS NULL`

	sqlInsertNonceKey = `INSERT INTO acme_nonce_key (id, key) VALUES (1, ?) ON CONFLICT DO NOTHING`
	sqlGetNonceKey    = `SELECT key FROM acme_nonce_key WHERE id = 1`
	sqlUseNonce       = `INSERT INTO acme_nonces_used (id, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING`
	sqlPurgeNonces    = `DELETE FROM acme_nonces_used WHERE expires_at < ?`

	accountColumns = `id, provisioner_id, key_thumbprint, key_jwk, contact, status, terms_agreed, eab_key_id,
		principal_id, created_at, created_ip`
	sqlInsertAccount = `INSERT INTO acme_accounts (` + accountColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetAccount          = `SELECT ` + accountColumns + ` FROM acme_accounts WHERE id = ?`
	sqlAccountByThumbprint = `SELECT ` + accountColumns + ` FROM acme_accounts WHERE provisioner_id = ? AND key_thumbprint = ?`
	sqlAccountExists       = `SELECT COUNT(*) FROM acme_accounts WHERE id = ?`
	// Another account of the same provisioner holding the thumbprint.
	sqlThumbprintHeld = `SELECT COUNT(*) FROM acme_accounts o JOIN acme_accounts a ON a.provisioner_id = o.provisioner_id
		WHERE a.id = ? AND o.key_thumbprint = ? AND o.id <> a.id`
	// Conditional on the account as the request saw it: still valid, and
	// still under the key the request was verified with.
	sqlUpdateAccount = `UPDATE acme_accounts SET contact = ?, status = ?, key_thumbprint = ?, key_jwk = ?
		WHERE id = ? AND status = '` + acme.StatusValid + `' AND key_thumbprint = ?`
	sqlAccountState  = `SELECT status, key_thumbprint FROM acme_accounts WHERE id = ?`
	sqlCountAccounts = `SELECT COUNT(*) FROM acme_accounts WHERE provisioner_id = ? AND created_ip = ? AND created_at >= ?`

	eabSelect = `SELECT k.id, k.provisioner_id, k.principal_id, COALESCE(p.name, ''), k.description, k.sealed,
		k.created_at, k.created_by, k.account_id, k.bound_at, k.revoked_at, k.revoked_by
		FROM acme_eab_keys k LEFT JOIN principals p ON p.id = k.principal_id`
	sqlInsertEABKey = `INSERT INTO acme_eab_keys (id, provisioner_id, principal_id, description, sealed, created_at,
		created_by, account_id, bound_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetEABKey     = eabSelect + ` WHERE k.id = ?`
	sqlListEABKeys   = eabSelect + ` ORDER BY k.created_at, k.id`
	sqlListEABKeysOf = eabSelect + ` WHERE k.provisioner_id = ? ORDER BY k.created_at, k.id`
	sqlBindEABKey    = `UPDATE acme_eab_keys SET account_id = ?, bound_at = ?
		WHERE id = ? AND account_id IS NULL AND revoked_at IS NULL AND provisioner_id = ?`
	sqlEABKeyRevoked = `SELECT revoked_at IS NOT NULL FROM acme_eab_keys WHERE id = ? AND provisioner_id = ?`
	// One statement revokes the key and reads the account it bound, so a
	// binding that commits first is seen and one that commits later fails.
	sqlRevokeEABKey = `UPDATE acme_eab_keys SET revoked_at = ?, revoked_by = ?
		WHERE id = ? AND revoked_at IS NULL RETURNING COALESCE(account_id, '')`
	sqlDeactivateAccount = `UPDATE acme_accounts SET status = '` + acme.StatusDeactivated + `'
		WHERE id = ? AND status = '` + acme.StatusValid + `'`

	orderColumns = `id, account_id, provisioner_id, status, identifiers, not_before, not_after, expires, authz_ids,
		error, cert_serial, replaces, created_at, updated_at`
	sqlInsertOrder = `INSERT INTO acme_orders (` + orderColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetOrder    = `SELECT ` + orderColumns + ` FROM acme_orders WHERE id = ?`
	sqlUpdateOrder = `UPDATE acme_orders SET status = ?, error = ?, cert_serial = ?, updated_at = ?
		WHERE id = ? AND status = ?`
	sqlOrderStatus  = `SELECT status FROM acme_orders WHERE id = ?`
	sqlListOrderIDs = `SELECT id FROM acme_orders WHERE account_id = ? ORDER BY created_at, id LIMIT ?`
	// The page continues after order a, which must be the account's.
	sqlListOrderIDsAfter = `SELECT o.id FROM acme_orders o JOIN acme_orders a ON a.id = ? AND a.account_id = o.account_id
		WHERE o.account_id = ? AND (o.created_at, o.id) > (a.created_at, a.id)
		ORDER BY o.created_at, o.id LIMIT ?`
	sqlOrderByCert    = `SELECT ` + orderColumns + ` FROM acme_orders WHERE cert_serial = ? ORDER BY created_at, id LIMIT 1`
	sqlOrderReplacing = `SELECT ` + orderColumns + ` FROM acme_orders
		WHERE replaces = ? AND status <> '` + acme.StatusInvalid + `' ORDER BY created_at, id LIMIT 1`
	sqlCountOrders = `SELECT COUNT(*) FROM acme_orders WHERE account_id = ? AND created_at >= ?`
	// The two columns a certificate download needs, from the serial's
	// index alone: no revocation join, no wide row decode.
	sqlCertificateDER = `SELECT ca_id, der FROM certificates WHERE serial = ?`

	sqlInsertAuthz = `INSERT INTO acme_authorizations (id, account_id, provisioner_id, ident_type, ident_value,
		wildcard, status, expires, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlInsertChallenge = `INSERT INTO acme_challenges (id, authz_id, position, type, token, status, validated, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	// authzSelect reads authorizations each with its challenges, one row
	// per challenge (NULLs for an authorization without any); callers
	// append the condition on a and authzOrder. One statement reads a
	// consistent snapshot of both tables.
	authzSelect = `SELECT a.id, a.account_id, a.provisioner_id, a.ident_type, a.ident_value, a.wildcard, a.status,
		a.expires, a.created_at, c.id, c.type, c.token, c.status, c.validated, c.error
		FROM acme_authorizations a LEFT JOIN acme_challenges c ON c.authz_id = a.id`
	authzOrder = ` ORDER BY a.id, c.position`
	// sqlGetAuthz reads one authorization, as GetAuthorizations does for
	// one ID (the query of several IDs is built at run time).
	sqlGetAuthz = authzSelect + ` WHERE a.id IN (?)` + authzOrder
	// The account's valid authorization for the identifier expiring last.
	sqlReusableAuthz = authzSelect + ` WHERE a.id = (SELECT id FROM acme_authorizations
		WHERE account_id = ? AND ident_type = ? AND ident_value = ? AND status = '` + acme.StatusValid + `'
		AND expires > ? AND wildcard = ? ORDER BY expires DESC, id LIMIT 1)` + authzOrder
	sqlUpdateAuthz      = `UPDATE acme_authorizations SET status = ?, expires = ? WHERE id = ? AND status = ?`
	sqlAuthzStatus      = `SELECT status FROM acme_authorizations WHERE id = ?`
	sqlUpdateChallenge  = `UPDATE acme_challenges SET status = ?, validated = ?, error = ? WHERE id = ? AND status = ?`
	sqlUpdateChallengeA = `UPDATE acme_challenges SET status = ?, validated = ?, error = ? WHERE id = ? AND authz_id = ?`
	sqlChallengeStatus  = `SELECT status FROM acme_challenges WHERE id = ?`
	sqlCountPending     = `SELECT COUNT(*) FROM acme_authorizations
		WHERE account_id = ? AND status = '` + acme.StatusPending + `' AND expires > ?`
	sqlCountFailed = `SELECT COUNT(*) FROM acme_challenges c JOIN acme_authorizations a ON a.id = c.authz_id
		WHERE c.status = '` + acme.StatusInvalid + `' AND c.validated >= ? AND a.account_id = ?`
)

// CreateProvisioner stores p and appends ev. It returns ErrConflict when
// the ID or the name is taken.
func (db *DB) CreateProvisioner(ctx context.Context, p *acme.Provisioner, ev audit.Event) error {
	if p.ID == "" || p.Name == "" {
		return errors.New("store: create ACME provisioner: ID and name are required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create ACME provisioner %q: %w", p.Name, err)
	}
	challenges, allow, err := provisionerLists(p)
	if err != nil {
		return fmt.Errorf("store: create ACME provisioner %q: %w", p.Name, err)
	}
	err = db.acmeTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertProvisioner), p.ID, p.Name, p.CAID, p.Profile,
			challenges, allow, p.RequireEAB, p.TermsOfService, p.Website, db.timeArg(p.CreatedAt), p.CreatedBy, p.AllowSubjectFields)
		if err != nil {
			return err
		}
		if n == 0 {
			var ids int
			if err := tx.QueryRowContext(ctx, db.d.rebind(sqlProvisionerExists), p.ID).Scan(&ids); err != nil {
				return err
			}
			if ids > 0 {
				return conflict("ACME provisioner ID", p.ID)
			}
			return conflict("ACME provisioner name", p.Name)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create ACME provisioner %q: %w", p.Name, err)
	}
	return nil
}

// provisionerLists encodes p's challenges and allowed names as stored.
func provisionerLists(p *acme.Provisioner) (challenges, allow string, err error) {
	if challenges, err = jsonList(p.Challenges); err != nil {
		return "", "", err
	}
	allow, err = jsonList(p.AllowNames)
	return challenges, allow, err
}

// GetProvisioner returns the provisioner whose ID or, failing that, name
// is idOrName.
func (db *DB) GetProvisioner(ctx context.Context, idOrName string) (*acme.Provisioner, error) {
	p, err := scanProvisioner(db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetProvisioner), idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("ACME provisioner", idOrName)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get ACME provisioner %q: %w", idOrName, err)
	}
	return p, nil
}

// ListProvisioners returns every provisioner by name.
func (db *DB) ListProvisioners(ctx context.Context) ([]*acme.Provisioner, error) {
	rows, err := db.read.QueryContext(ctx, sqlListProvisioners)
	if err != nil {
		return nil, fmt.Errorf("store: list ACME provisioners: %w", err)
	}
	out, err := collect(rows, scanProvisioner)
	if err != nil {
		return nil, fmt.Errorf("store: list ACME provisioners: %w", err)
	}
	if out == nil {
		out = []*acme.Provisioner{}
	}
	return out, nil
}

func scanProvisioner(s scanner) (*acme.Provisioner, error) {
	var p acme.Provisioner
	var challenges, allow string
	if err := s.Scan(&p.ID, &p.Name, &p.CAID, &p.CAName, &p.Profile, &challenges, &allow, &p.RequireEAB,
		&p.TermsOfService, &p.Website, timeScan{&p.CreatedAt}, &p.CreatedBy, &p.AllowSubjectFields,
		zeroTimeScan{&p.DisabledAt}, &p.DisabledBy); err != nil {
		return nil, err
	}
	var err error
	if p.Challenges, err = readList(challenges); err != nil {
		return nil, fmt.Errorf("ACME provisioner %q challenges: %w", p.ID, err)
	}
	if p.AllowNames, err = readList(allow); err != nil {
		return nil, fmt.Errorf("ACME provisioner %q allowed names: %w", p.ID, err)
	}
	return &p, nil
}

// readList decodes a JSON array of strings, never to nil.
func readList(s string) ([]string, error) {
	out := []string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// EnsureNonceKey stores candidate as the nonce MAC key unless a key is
// stored, and returns the stored key.
func (db *DB) EnsureNonceKey(ctx context.Context, candidate []byte) ([]byte, error) {
	if len(candidate) == 0 {
		return nil, errors.New("store: ensure ACME nonce key: the candidate key is empty")
	}
	var key []byte
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertNonceKey), candidate); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, sqlGetNonceKey).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("store: ensure ACME nonce key: %w", err)
	}
	return key, nil
}

// UseNonce records nonce id as used until expires, reporting false when it
// was used before. It runs on every ACME request: one statement
// (group-committed on SQLite) and no audit event.
func (db *DB) UseNonce(ctx context.Context, id string, expires time.Time) (bool, error) {
	n, err := db.execWrite(ctx, db.d.rebind(sqlUseNonce), id, db.timeArg(expires))
	if err != nil {
		return false, fmt.Errorf("store: use ACME nonce: %w", err)
	}
	return n == 1, nil
}

// PurgeNonces forgets the used nonces that expired before before and
// returns how many.
func (db *DB) PurgeNonces(ctx context.Context, before time.Time) (int64, error) {
	n, err := execAffected(ctx, db.write, db.d.rebind(sqlPurgeNonces), db.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("store: purge ACME nonces: %w", err)
	}
	return n, nil
}

// CreateAccount stores a, binds the external account key a.EABKeyID to it
// when set, and appends ev, in one transaction. It returns ErrConflict when
// the ID or the key thumbprint (on the provisioner) is taken or the
// external account key is bound already, and ErrNotFound when the
// provisioner has no such external account key.
func (db *DB) CreateAccount(ctx context.Context, a *acme.Account, ev audit.Event) error {
	if a.ID == "" || a.ProvisionerID == "" || a.KeyThumbprint == "" {
		return errors.New("store: create ACME account: ID, provisioner and key thumbprint are required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create ACME account %q: %w", a.ID, err)
	}
	contact, err := jsonList(a.Contact)
	if err != nil {
		return fmt.Errorf("store: create ACME account %q: %w", a.ID, err)
	}
	err = db.acmeTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertAccount), a.ID, a.ProvisionerID, a.KeyThumbprint,
			nonNil(a.KeyJWK), contact, a.Status, a.TermsAgreed, nullIfBlank(a.EABKeyID), nullIfBlank(a.PrincipalID),
			db.timeArg(a.CreatedAt), a.CreatedIP)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := db.accountExists(ctx, tx, a.ID); err == nil {
				return conflict("ACME account ID", a.ID)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			return conflict("ACME account key thumbprint", a.KeyThumbprint)
		}
		if a.EABKeyID != "" {
			n, err := execAffected(ctx, tx, db.d.rebind(sqlBindEABKey), a.ID, db.timeArg(a.CreatedAt), a.EABKeyID, a.ProvisionerID)
			if err != nil {
				return err
			}
			if n == 0 {
				var revoked bool
				err := tx.QueryRowContext(ctx, db.d.rebind(sqlEABKeyRevoked), a.EABKeyID, a.ProvisionerID).Scan(&revoked)
				if errors.Is(err, sql.ErrNoRows) {
					return notFound("external account key", a.EABKeyID)
				}
				if err != nil {
					return err
				}
				if revoked {
					return fmt.Errorf("%w: external account key %q is revoked", ErrConflict, a.EABKeyID)
				}
				return fmt.Errorf("%w: external account key %q is bound already", ErrConflict, a.EABKeyID)
			}
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create ACME account %q: %w", a.ID, err)
	}
	return nil
}

// accountExists returns ErrNotFound unless account id exists.
func (db *DB) accountExists(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, db.d.rebind(sqlAccountExists), id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound("ACME account", id)
	}
	return nil
}

// GetAccount returns the account with the given ID.
func (db *DB) GetAccount(ctx context.Context, id string) (*acme.Account, error) {
	a, err := scanAccount(db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetAccount), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("ACME account", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get ACME account %q: %w", id, err)
	}
	return a, nil
}

// AccountByThumbprint returns the provisioner's account whose key has the
// given RFC 7638 thumbprint.
func (db *DB) AccountByThumbprint(ctx context.Context, provisionerID, thumbprint string) (*acme.Account, error) {
	a, err := scanAccount(db.rd.QueryRowContext(ctx, db.d.rebind(sqlAccountByThumbprint), provisionerID, thumbprint))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("ACME account with key thumbprint", thumbprint)
	}
	if err != nil {
		return nil, fmt.Errorf("store: ACME account by thumbprint %q: %w", thumbprint, err)
	}
	return a, nil
}

// UpdateAccount writes a's contact, status, key thumbprint and JWK and
// appends ev, provided the stored account is valid and its key thumbprint
// is fromKey; otherwise it returns an error wrapping acme.ErrStale that
// says what changed. It returns ErrConflict when another account of the
// provisioner holds the thumbprint, and ErrNotFound for an unknown ID.
func (db *DB) UpdateAccount(ctx context.Context, a *acme.Account, fromKey string, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: update ACME account %q: %w", a.ID, err)
	}
	contact, err := jsonList(a.Contact)
	if err != nil {
		return fmt.Errorf("store: update ACME account %q: %w", a.ID, err)
	}
	err = db.acmeTx(ctx, func(tx *sql.Tx) error {
		var held int
		if err := tx.QueryRowContext(ctx, db.d.rebind(sqlThumbprintHeld), a.ID, a.KeyThumbprint).Scan(&held); err != nil {
			return err
		}
		if held > 0 {
			return conflict("ACME account key thumbprint", a.KeyThumbprint)
		}
		n, err := execAffected(ctx, tx, db.d.rebind(sqlUpdateAccount), contact, a.Status, a.KeyThumbprint, nonNil(a.KeyJWK),
			a.ID, fromKey)
		if db.d.uniqueViolation(err) {
			// Another account took the key since the check.
			return conflict("ACME account key thumbprint", a.KeyThumbprint)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			var status, key string
			err := tx.QueryRowContext(ctx, db.d.rebind(sqlAccountState), a.ID).Scan(&status, &key)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return notFound("ACME account", a.ID)
			case err != nil:
				return err
			case status != acme.StatusValid:
				return fmt.Errorf("%w: ACME account %q is %s", acme.ErrStale, a.ID, status)
			default:
				return fmt.Errorf("%w: ACME account %q changed its key", acme.ErrStale, a.ID)
			}
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: update ACME account %q: %w", a.ID, err)
	}
	return nil
}

// CountAccountsSince counts the accounts the provisioner created from ip
// at or after since.
func (db *DB) CountAccountsSince(ctx context.Context, provisionerID, ip string, since time.Time) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, db.d.rebind(sqlCountAccounts), provisionerID, ip, db.timeArg(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count ACME accounts: %w", err)
	}
	return n, nil
}

func scanAccount(s scanner) (*acme.Account, error) {
	var a acme.Account
	var contact string
	var eab, principal sql.NullString
	if err := s.Scan(&a.ID, &a.ProvisionerID, &a.KeyThumbprint, &a.KeyJWK, &contact, &a.Status, &a.TermsAgreed,
		&eab, &principal, timeScan{&a.CreatedAt}, &a.CreatedIP); err != nil {
		return nil, err
	}
	var err error
	if a.Contact, err = readList(contact); err != nil {
		return nil, fmt.Errorf("ACME account %q contact: %w", a.ID, err)
	}
	a.KeyJWK = nonNil(a.KeyJWK)
	a.EABKeyID, a.PrincipalID = eab.String, principal.String
	return &a, nil
}

// nullIfBlank maps "" to NULL, for optional references.
func nullIfBlank(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateEABKey stores k and appends ev. It returns ErrConflict when the ID
// is taken.
func (db *DB) CreateEABKey(ctx context.Context, k *acme.EABKey, ev audit.Event) error {
	if k.ID == "" || k.ProvisionerID == "" {
		return errors.New("store: create external account key: ID and provisioner are required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create external account key %q: %w", k.ID, err)
	}
	err := db.acmeTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertEABKey), k.ID, k.ProvisionerID, k.PrincipalID, k.Description,
			nonNil(k.Sealed), db.timeArg(k.CreatedAt), k.CreatedBy, nullIfBlank(k.AccountID), db.zeroNullTimeArg(k.BoundAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("external account key", k.ID)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create external account key %q: %w", k.ID, err)
	}
	return nil
}

// GetEABKey returns the external account key with the given ID, its
// principal's name filled in.
func (db *DB) GetEABKey(ctx context.Context, id string) (*acme.EABKey, error) {
	k, err := scanEABKey(db.read.QueryRowContext(ctx, db.d.rebind(sqlGetEABKey), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("external account key", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get external account key %q: %w", id, err)
	}
	return k, nil
}

// ListEABKeys returns the external account keys of a provisioner, or of
// every provisioner when provisionerID is "", in order of creation.
func (db *DB) ListEABKeys(ctx context.Context, provisionerID string) ([]*acme.EABKey, error) {
	q, args := sqlListEABKeys, []any(nil)
	if provisionerID != "" {
		q, args = sqlListEABKeysOf, []any{provisionerID}
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list external account keys: %w", err)
	}
	out, err := collect(rows, scanEABKey)
	if err != nil {
		return nil, fmt.Errorf("store: list external account keys: %w", err)
	}
	if out == nil {
		out = []*acme.EABKey{}
	}
	return out, nil
}

func scanEABKey(s scanner) (*acme.EABKey, error) {
	var k acme.EABKey
	var account sql.NullString
	if err := s.Scan(&k.ID, &k.ProvisionerID, &k.PrincipalID, &k.PrincipalName, &k.Description, &k.Sealed,
		timeScan{&k.CreatedAt}, &k.CreatedBy, &account, zeroTimeScan{&k.BoundAt}, zeroTimeScan{&k.RevokedAt}, &k.RevokedBy); err != nil {
		return nil, err
	}
	k.Sealed = nonNil(k.Sealed)
	k.AccountID = account.String
	return &k, nil
}

// problemJSON is how a problem document is stored: acme.Problem leaves its
// type out of JSON (the edge writes it as a URN), the store keeps it.
type problemJSON struct {
	Type        acme.ErrorType   `json:"type"`
	Detail      string           `json:"detail"`
	Identifier  *acme.Identifier `json:"identifier,omitempty"`
	Subproblems []*problemJSON   `json:"subproblems,omitempty"`
}

func toProblemJSON(p *acme.Problem) *problemJSON {
	if p == nil {
		return nil
	}
	out := &problemJSON{Type: p.Type, Detail: p.Detail, Identifier: p.Identifier}
	for _, sp := range p.Subproblems {
		out.Subproblems = append(out.Subproblems, toProblemJSON(sp))
	}
	return out
}

func (j *problemJSON) problem() *acme.Problem {
	if j == nil {
		return nil
	}
	out := &acme.Problem{Type: j.Type, Detail: j.Detail, Identifier: j.Identifier}
	for _, sp := range j.Subproblems {
		out.Subproblems = append(out.Subproblems, sp.problem())
	}
	return out
}

// problemArg encodes p for a nullable JSON column.
func problemArg(p *acme.Problem) (any, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(toProblemJSON(p))
	if err != nil {
		return nil, fmt.Errorf("problem document: %w", err)
	}
	return string(b), nil
}

// readProblem decodes a nullable JSON problem column.
func readProblem(s sql.NullString) (*acme.Problem, error) {
	if !s.Valid {
		return nil, nil
	}
	var j problemJSON
	if err := json.Unmarshal([]byte(s.String), &j); err != nil {
		return nil, fmt.Errorf("problem document: %w", err)
	}
	return j.problem(), nil
}

// CreateOrder stores o and, in the same transaction, each authorization
// in authzs with its challenges (an order may also point at existing
// authorizations, which are not in authzs). It returns ErrConflict when
// an ID is taken.
func (db *DB) CreateOrder(ctx context.Context, o *acme.Order, authzs []*acme.Authorization) error {
	if o.ID == "" || o.AccountID == "" {
		return errors.New("store: create ACME order: ID and account are required")
	}
	idents := o.Identifiers
	if idents == nil {
		idents = []acme.Identifier{}
	}
	identsJSON, err := json.Marshal(idents)
	if err != nil {
		return fmt.Errorf("store: create ACME order %q: %w", o.ID, err)
	}
	authzIDs, err := jsonList(o.AuthzIDs)
	if err != nil {
		return fmt.Errorf("store: create ACME order %q: %w", o.ID, err)
	}
	problem, err := problemArg(o.Error)
	if err != nil {
		return fmt.Errorf("store: create ACME order %q: %w", o.ID, err)
	}
	type challengeRow struct {
		args []any
		id   string
	}
	var chRows []challengeRow
	for _, a := range authzs {
		if a.ID == "" {
			return fmt.Errorf("store: create ACME order %q: an authorization has no ID", o.ID)
		}
		for i, c := range a.Challenges {
			p, err := problemArg(c.Error)
			if err != nil {
				return fmt.Errorf("store: create ACME order %q: challenge %q: %w", o.ID, c.ID, err)
			}
			chRows = append(chRows, challengeRow{id: c.ID, args: []any{c.ID, a.ID, i, c.Type, c.Token, c.Status,
				db.zeroNullTimeArg(c.Validated), p}})
		}
	}
	err = db.groupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ptx := db.wr.tx(tx)
		n, err := execAffected(ctx, ptx, db.d.rebind(sqlInsertOrder), o.ID, o.AccountID, o.ProvisionerID, o.Status,
			string(identsJSON), db.zeroNullTimeArg(o.NotBefore), db.zeroNullTimeArg(o.NotAfter), db.timeArg(o.Expires),
			authzIDs, problem, nullIfBlank(o.CertSerial), nullIfBlank(o.Replaces), db.timeArg(o.CreatedAt),
			db.timeArg(o.UpdatedAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("ACME order", o.ID)
		}
		insertAuthz := ptx.bind(ctx, db.d.rebind(sqlInsertAuthz))
		for _, a := range authzs {
			n, err := execBoundAffected(ctx, insertAuthz, a.ID, a.AccountID, a.ProvisionerID, a.Identifier.Type,
				a.Identifier.Value, a.Wildcard, a.Status, db.timeArg(a.Expires), db.timeArg(a.CreatedAt))
			if err != nil {
				return err
			}
			if n == 0 {
				return conflict("ACME authorization", a.ID)
			}
		}
		insertChallenge := ptx.bind(ctx, db.d.rebind(sqlInsertChallenge))
		for _, c := range chRows {
			n, err := execBoundAffected(ctx, insertChallenge, c.args...)
			if err != nil {
				return err
			}
			if n == 0 {
				return conflict("ACME challenge", c.id)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create ACME order %q: %w", o.ID, err)
	}
	return nil
}

// GetOrder returns the order with the given ID.
func (db *DB) GetOrder(ctx context.Context, id string) (*acme.Order, error) {
	return db.getOrder(ctx, sqlGetOrder, "ACME order", id)
}

// OrderByCertificate returns the order that produced the certificate with
// the given serial.
func (db *DB) OrderByCertificate(ctx context.Context, serial string) (*acme.Order, error) {
	return db.getOrder(ctx, sqlOrderByCert, "ACME order of certificate", serial)
}

// CertificateDER returns the issuing CA and the DER of the certificate
// with the given serial; an unknown serial is ErrNotFound.
func (db *DB) CertificateDER(ctx context.Context, serial string) (string, []byte, error) {
	var caID string
	var der []byte
	err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlCertificateDER), serial).Scan(&caID, &der)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, notFound("certificate serial", serial)
	}
	if err != nil {
		return "", nil, fmt.Errorf("store: get certificate %s: %w", serial, err)
	}
	return caID, der, nil
}

// OrderReplacing returns the oldest order, not invalid, that replaces the
// certificate with ARI certificate ID certID.
func (db *DB) OrderReplacing(ctx context.Context, certID string) (*acme.Order, error) {
	return db.getOrder(ctx, sqlOrderReplacing, "ACME order replacing", certID)
}

// getOrder runs a one-order query whose single parameter is key.
func (db *DB) getOrder(ctx context.Context, q, what, key string) (*acme.Order, error) {
	o, err := scanOrder(db.rd.QueryRowContext(ctx, db.d.rebind(q), key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(what, key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s %q: %w", what, key, err)
	}
	return o, nil
}

// UpdateOrder writes o's status, error, certificate serial and updated
// time provided the stored status is from; otherwise it returns an error
// wrapping ErrConflict that names the current status. An unknown ID is
// ErrNotFound.
func (db *DB) UpdateOrder(ctx context.Context, o *acme.Order, from string) error {
	problem, err := problemArg(o.Error)
	if err != nil {
		return fmt.Errorf("store: update ACME order %q: %w", o.ID, err)
	}
	n, err := db.execWrite(ctx, db.d.rebind(sqlUpdateOrder), o.Status, problem, nullIfBlank(o.CertSerial),
		db.timeArg(o.UpdatedAt), o.ID, from)
	if err == nil && n == 0 {
		err = db.casFailed(ctx, sqlOrderStatus, "ACME order", o.ID, from)
	}
	if err != nil {
		return fmt.Errorf("store: update ACME order %q: %w", o.ID, err)
	}
	return nil
}

// casFailed explains why a compare-and-set update of what id from status
// from touched no row: ErrNotFound, or ErrConflict naming the current
// status. statusQuery selects the status by ID.
func (db *DB) casFailed(ctx context.Context, statusQuery, what, id, from string) error {
	var status string
	err := db.write.QueryRowContext(ctx, db.d.rebind(statusQuery), id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what, id)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s %q is %s, not %s", ErrConflict, what, id, status, from)
}

// ListOrderIDs returns up to limit of the account's order IDs in order of
// creation (ties by ID), starting after order after ("" for the first
// page). An after that is not one of the account's orders gives an empty
// page. A limit of zero or less means DefaultListLimit; more than
// MaxListLimit is capped.
func (db *DB) ListOrderIDs(ctx context.Context, accountID, after string, limit int) ([]string, error) {
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	q, args := sqlListOrderIDs, []any{accountID, limit}
	if after != "" {
		q, args = sqlListOrderIDsAfter, []any{after, accountID, limit}
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list ACME orders of %q: %w", accountID, err)
	}
	out, err := collect(rows, func(s scanner) (string, error) {
		var id string
		err := s.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list ACME orders of %q: %w", accountID, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// CountOrdersSince counts the account's orders created at or after since.
func (db *DB) CountOrdersSince(ctx context.Context, accountID string, since time.Time) (int, error) {
	var n int
	if err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlCountOrders), accountID, db.timeArg(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count ACME orders of %q: %w", accountID, err)
	}
	return n, nil
}

func scanOrder(s scanner) (*acme.Order, error) {
	var o acme.Order
	var idents, authzIDs string
	var problem, serial, replaces sql.NullString
	if err := s.Scan(&o.ID, &o.AccountID, &o.ProvisionerID, &o.Status, &idents, zeroTimeScan{&o.NotBefore},
		zeroTimeScan{&o.NotAfter}, timeScan{&o.Expires}, &authzIDs, &problem, &serial, &replaces,
		timeScan{&o.CreatedAt}, timeScan{&o.UpdatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(idents), &o.Identifiers); err != nil {
		return nil, fmt.Errorf("ACME order %q identifiers: %w", o.ID, err)
	}
	if o.Identifiers == nil {
		o.Identifiers = []acme.Identifier{}
	}
	var err error
	if o.AuthzIDs, err = readList(authzIDs); err != nil {
		return nil, fmt.Errorf("ACME order %q authorizations: %w", o.ID, err)
	}
	if o.Error, err = readProblem(problem); err != nil {
		return nil, fmt.Errorf("ACME order %q error: %w", o.ID, err)
	}
	o.CertSerial, o.Replaces = serial.String, replaces.String
	return &o, nil
}

// GetAuthorizations returns the authorizations with the given IDs, in the
// order of ids, each with its challenges in order. Any unknown ID is
// ErrNotFound. It runs on every order and authorization request: one
// statement reads them all.
func (db *DB) GetAuthorizations(ctx context.Context, ids ...string) ([]*acme.Authorization, error) {
	if len(ids) == 0 {
		return []*acme.Authorization{}, nil
	}
	uniq := slices.Clone(ids)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	args := make([]any, len(uniq))
	for i, id := range uniq {
		args[i] = id
	}
	// For one ID, the common case, this is sqlGetAuthz, prepared.
	q := authzSelect + ` WHERE a.id IN (` + params(len(uniq)) + `)` + authzOrder
	rows, err := db.rd.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: get ACME authorizations: %w", err)
	}
	found, err := scanAuthzs(rows)
	if err != nil {
		return nil, fmt.Errorf("store: get ACME authorizations: %w", err)
	}
	byID := make(map[string]*acme.Authorization, len(found))
	for _, a := range found {
		byID[a.ID] = a
	}
	out := make([]*acme.Authorization, len(ids))
	for i, id := range ids {
		if out[i] = byID[id]; out[i] == nil {
			return nil, notFound("ACME authorization", id)
		}
	}
	return out, nil
}

// ReusableAuthorization returns the account's valid authorization for
// ident with the given wildcard flag that expires after t, the one
// expiring last when there are several.
func (db *DB) ReusableAuthorization(ctx context.Context, accountID string, ident acme.Identifier, wildcard bool, t time.Time) (*acme.Authorization, error) {
	rows, err := db.rd.QueryContext(ctx, db.d.rebind(sqlReusableAuthz), accountID, ident.Type, ident.Value,
		db.timeArg(t), wildcard)
	if err != nil {
		return nil, fmt.Errorf("store: reusable ACME authorization: %w", err)
	}
	found, err := scanAuthzs(rows)
	if err != nil {
		return nil, fmt.Errorf("store: reusable ACME authorization: %w", err)
	}
	if len(found) == 0 {
		return nil, notFound("reusable ACME authorization for", ident.Type+":"+ident.Value)
	}
	return found[0], nil
}

// scanAuthzs reads authzSelect rows, ordered by authorization, and closes
// rows.
func scanAuthzs(rows *sql.Rows) ([]*acme.Authorization, error) {
	defer rows.Close()
	var out []*acme.Authorization
	for rows.Next() {
		var (
			a                     acme.Authorization
			chID, chType, chToken sql.NullString
			chStatus, chErr       sql.NullString
			validated             time.Time
		)
		if err := rows.Scan(&a.ID, &a.AccountID, &a.ProvisionerID, &a.Identifier.Type, &a.Identifier.Value,
			&a.Wildcard, &a.Status, timeScan{&a.Expires}, timeScan{&a.CreatedAt},
			&chID, &chType, &chToken, &chStatus, zeroTimeScan{&validated}, &chErr); err != nil {
			return nil, err
		}
		cur := a.ID
		if n := len(out); n == 0 || out[n-1].ID != cur {
			a.Challenges = []acme.Challenge{}
			out = append(out, &a)
		}
		if !chID.Valid {
			continue
		}
		p, err := readProblem(chErr)
		if err != nil {
			return nil, fmt.Errorf("ACME challenge %q error: %w", chID.String, err)
		}
		last := out[len(out)-1]
		last.Challenges = append(last.Challenges, acme.Challenge{ID: chID.String, AuthzID: cur, Type: chType.String,
			Token: chToken.String, Status: chStatus.String, Validated: validated, Error: p})
	}
	return out, rows.Err()
}

// UpdateAuthorization writes a's status and each of its challenges'
// status, validated time and error, and appends evs, in one transaction,
// provided the stored status is from; otherwise it returns an error
// wrapping ErrConflict that names the current status, and appends nothing.
// An unknown authorization or challenge is ErrNotFound.
func (db *DB) UpdateAuthorization(ctx context.Context, a *acme.Authorization, from string, evs ...audit.Event) error {
	ptrs := make([]*audit.Event, len(evs))
	for i := range evs {
		ptrs[i] = &evs[i]
		if err := normalizeEvent(ptrs[i]); err != nil {
			return err
		}
	}
	chArgs := make([][]any, len(a.Challenges))
	for i, c := range a.Challenges {
		p, err := problemArg(c.Error)
		if err != nil {
			return fmt.Errorf("store: update ACME authorization %q: challenge %q: %w", a.ID, c.ID, err)
		}
		chArgs[i] = []any{c.Status, db.zeroNullTimeArg(c.Validated), p, c.ID, a.ID}
	}
	err := db.groupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ptx := db.wr.tx(tx)
		n, err := execAffected(ctx, ptx, db.d.rebind(sqlUpdateAuthz), a.Status, db.timeArg(a.Expires), a.ID, from)
		if err != nil {
			return err
		}
		if n == 0 {
			var status string
			err := tx.QueryRowContext(ctx, db.d.rebind(sqlAuthzStatus), a.ID).Scan(&status)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("ACME authorization", a.ID)
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: ACME authorization %q is %s, not %s", ErrConflict, a.ID, status, from)
		}
		update := ptx.bind(ctx, db.d.rebind(sqlUpdateChallengeA))
		for i, args := range chArgs {
			n, err := execBoundAffected(ctx, update, args...)
			if err != nil {
				return err
			}
			if n == 0 {
				return notFound("ACME challenge of the authorization", a.Challenges[i].ID)
			}
		}
		return db.appendAudit(ctx, tx, ptrs...)
	})
	if err != nil {
		return fmt.Errorf("store: update ACME authorization %q: %w", a.ID, err)
	}
	return nil
}

// UpdateChallenge writes c's status, validated time and error provided the
// stored status is from; otherwise it returns an error wrapping
// ErrConflict that names the current status. An unknown ID is ErrNotFound.
func (db *DB) UpdateChallenge(ctx context.Context, c *acme.Challenge, from string) error {
	p, err := problemArg(c.Error)
	if err != nil {
		return fmt.Errorf("store: update ACME challenge %q: %w", c.ID, err)
	}
	n, err := db.execWrite(ctx, db.d.rebind(sqlUpdateChallenge), c.Status, db.zeroNullTimeArg(c.Validated), p, c.ID, from)
	if err == nil && n == 0 {
		err = db.casFailed(ctx, sqlChallengeStatus, "ACME challenge", c.ID, from)
	}
	if err != nil {
		return fmt.Errorf("store: update ACME challenge %q: %w", c.ID, err)
	}
	return nil
}

// CountPendingAuthorizations counts the account's pending authorizations
// that expire after now.
func (db *DB) CountPendingAuthorizations(ctx context.Context, accountID string, now time.Time) (int, error) {
	var n int
	if err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlCountPending), accountID, db.timeArg(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count pending ACME authorizations of %q: %w", accountID, err)
	}
	return n, nil
}

// CountFailedValidationsSince counts the account's challenges that became
// invalid at or after since.
func (db *DB) CountFailedValidationsSince(ctx context.Context, accountID string, since time.Time) (int, error) {
	var n int
	if err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlCountFailed), db.timeArg(since), accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count failed ACME validations of %q: %w", accountID, err)
	}
	return n, nil
}

// MarkRenewNow sets renew_now_at to at on every certificate that matches
// every non-empty field of sel (SAN and SPKISHA256 case-insensitively, as
// RevokeMatching does), has status valid and has not expired at at, and
// appends ev, in one transaction. It returns the serials marked, in order:
// an empty, non-nil slice when nothing matches (ev is appended all the
// same). An empty selector is an error.
func (db *DB) MarkRenewNow(ctx context.Context, sel acme.RenewSelector, at time.Time, ev audit.Event) ([]string, error) {
	if sel.Selector.Empty() && sel.Serial == "" {
		return nil, errors.New("store: renew-now needs a selector")
	}
	if err := normalizeEvent(&ev); err != nil {
		return nil, fmt.Errorf("store: renew-now: %w", err)
	}
	where, args := db.matchWhere(sel.Selector, at)
	if sel.Serial != "" {
		where += " AND serial = ?"
		args = append(args, sel.Serial)
	}
	q := db.d.rebind(`UPDATE certificates SET renew_now_at = ? WHERE ` + where + ` RETURNING serial`)
	args = append([]any{db.timeArg(at)}, args...)
	var out []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(s scanner) (string, error) {
			var serial string
			err := s.Scan(&serial)
			return serial, err
		})
		if err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return nil, fmt.Errorf("store: renew-now: %w", err)
	}
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out, nil
}
