package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

var _ authz.Store = (*DB)(nil)

// Statements for principals, their tokens, identities and bindings, and
// custom roles, written with ? placeholders and rebound per dialect.
const (
	principalColumns = `id, name, kind, description, created_at, created_by, disabled_at`

	sqlInsertPrincipal = `INSERT INTO principals (` + principalColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`
	sqlGetPrincipalByID = `SELECT ` + principalColumns + ` FROM principals WHERE id = ?`
	// An ID match wins over a name match, as for CAs.
	sqlGetPrincipal = `SELECT ` + principalColumns + ` FROM principals WHERE id = ? OR name = ?
		ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1`
	sqlListPrincipals   = `SELECT ` + principalColumns + ` FROM principals ORDER BY name`
	sqlDisablePrincipal = `UPDATE principals SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL`
	sqlPrincipalExists  = `SELECT COUNT(*) FROM principals WHERE id = ?`
	sqlRevokeAllTokens  = `UPDATE api_tokens SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL`

	tokenSelect = `SELECT t.id, t.principal_id, p.name, t.description, t.secret_hash, t.created_at,
		t.expires_at, t.revoked_at, t.last_used_at, t.via
		FROM api_tokens t JOIN principals p ON p.id = t.principal_id`
	sqlInsertToken = `INSERT INTO api_tokens (id, principal_id, description, secret_hash, created_at,
		expires_at, revoked_at, last_used_at, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetToken     = tokenSelect + ` WHERE t.id = ?`
	sqlListTokens   = tokenSelect + ` ORDER BY t.created_at, t.id`
	sqlListTokensOf = tokenSelect + ` WHERE t.principal_id = ? ORDER BY t.created_at, t.id`
	sqlRevokeToken  = `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`
	sqlTouchToken   = `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`
	identitySelect  = `SELECT i.kind, i.value, i.principal_id, p.name, i.created_at, i.source
		FROM principal_identities i JOIN principals p ON p.id = i.principal_id`
	sqlInsertIdentity = `INSERT INTO principal_identities (kind, value, principal_id, created_at, source)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlDeleteIdentity    = `DELETE FROM principal_identities WHERE kind = ? AND value = ?`
	sqlListIdentities    = identitySelect + ` ORDER BY p.name, i.kind, i.value`
	sqlListIdentitiesOf  = identitySelect + ` WHERE i.principal_id = ? ORDER BY i.kind, i.value`
	sqlPrincipalIdentity = `SELECT principal_id FROM principal_identities WHERE kind = ? AND value = ?`

	roleColumns   = `name, description, permissions, created_at`
	sqlInsertRole = `INSERT INTO roles (` + roleColumns + `) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetRole    = `SELECT ` + roleColumns + ` FROM roles WHERE name = ?`
	sqlListRoles  = `SELECT ` + roleColumns + ` FROM roles ORDER BY name`
	sqlDeleteRole = `DELETE FROM roles WHERE name = ?`
	sqlRoleInUse  = `SELECT COUNT(*) FROM role_bindings WHERE role = ?`
	bindingSelect = `SELECT b.id, b.principal_id, p.name, b.role, b.cas, b.profiles, b.names, b.created_at, b.created_by, b.source,
		r.description, r.permissions, r.created_at
		FROM role_bindings b JOIN principals p ON p.id = b.principal_id LEFT JOIN roles r ON r.name = b.role`
	sqlInsertBinding = `INSERT INTO role_bindings (id, principal_id, role, cas, profiles, names, created_at, created_by, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlGetBinding    = bindingSelect + ` WHERE b.id = ?`
	sqlDeleteBinding = `DELETE FROM role_bindings WHERE id = ?`
	sqlListBindings  = bindingSelect + ` ORDER BY p.name, b.created_at, b.id`
	sqlBindingsOf    = bindingSelect + ` WHERE b.principal_id = ? ORDER BY b.created_at, b.id`
)

// querier is a pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreatePrincipal stores p and appends ev. It returns ErrConflict when the
// ID or the name is taken.
func (db *DB) CreatePrincipal(ctx context.Context, p *authz.PrincipalRecord, ev audit.Event) error {
	if p.ID == "" || p.Name == "" {
		return errors.New("store: create principal: ID and name are required")
	}
	if !p.Kind.Valid() {
		return fmt.Errorf("store: create principal %q: unknown kind %q", p.Name, p.Kind)
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertPrincipal), p.ID, p.Name, string(p.Kind), p.Description,
			db.timeArg(p.CreatedAt), p.CreatedBy, db.nullTimeArg(p.DisabledAt))
		if err != nil {
			return err
		}
		if n == 0 {
			err := db.principalExists(ctx, tx, p.ID)
			if errors.Is(err, ErrNotFound) {
				return conflict("principal name", p.Name)
			}
			if err != nil {
				return err
			}
			return conflict("principal ID", p.ID)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create principal %q: %w", p.Name, err)
	}
	return nil
}

// GetPrincipal returns the principal whose ID or, failing that, name is
// idOrName.
func (db *DB) GetPrincipal(ctx context.Context, idOrName string) (*authz.PrincipalRecord, error) {
	p, err := scanPrincipal(db.read.QueryRowContext(ctx, db.d.rebind(sqlGetPrincipal), idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("principal", idOrName)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get principal %q: %w", idOrName, err)
	}
	return p, nil
}

// ListPrincipals returns every principal by name.
func (db *DB) ListPrincipals(ctx context.Context) ([]*authz.PrincipalRecord, error) {
	rows, err := db.read.QueryContext(ctx, sqlListPrincipals)
	if err != nil {
		return nil, fmt.Errorf("store: list principals: %w", err)
	}
	out, err := collect(rows, scanPrincipal)
	if err != nil {
		return nil, fmt.Errorf("store: list principals: %w", err)
	}
	return out, nil
}

// DisablePrincipal marks the principal disabled at at and revokes, at the
// same time, every token of it not yet revoked. Disabling a disabled
// principal revokes only what is left unrevoked, and with nothing left
// changes nothing and appends no event.
func (db *DB) DisablePrincipal(ctx context.Context, id string, at time.Time, ev audit.Event) error {
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		disabled, err := execAffected(ctx, tx, db.d.rebind(sqlDisablePrincipal), db.timeArg(at), id)
		if err != nil {
			return err
		}
		if disabled == 0 {
			if err := db.principalExists(ctx, tx, id); err != nil {
				return err
			}
		}
		revoked, err := execAffected(ctx, tx, db.d.rebind(sqlRevokeAllTokens), db.timeArg(at), id)
		if err != nil {
			return err
		}
		if disabled == 0 && revoked == 0 {
			return nil
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: disable principal %q: %w", id, err)
	}
	return nil
}

// principalExists returns ErrNotFound unless principal id exists.
func (db *DB) principalExists(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.QueryRowContext(ctx, db.d.rebind(sqlPrincipalExists), id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound("principal", id)
	}
	return nil
}

// LoadPrincipal returns principal id with its bindings, each binding's
// role resolved: built-in roles from code, custom ones from the roles
// table. A binding naming a role that no longer exists grants nothing and
// is left out. It runs on every authenticated request: two indexed
// queries.
func (db *DB) LoadPrincipal(ctx context.Context, id string) (*authz.Principal, *authz.PrincipalRecord, error) {
	rec, err := scanPrincipal(db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetPrincipalByID), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("principal", id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: load principal %q: %w", id, err)
	}
	bs, err := db.bindings(ctx, db.rd, db.d.rebind(sqlBindingsOf), id)
	if err != nil {
		return nil, nil, fmt.Errorf("store: load principal %q: %w", id, err)
	}
	p := &authz.Principal{ID: rec.ID, Name: rec.Name, Kind: rec.Kind, Bindings: make([]authz.Binding, 0, len(bs))}
	for _, b := range bs {
		if b.known {
			p.Bindings = append(p.Bindings, b.Binding)
		}
	}
	return p, rec, nil
}

func scanPrincipal(s scanner) (*authz.PrincipalRecord, error) {
	var p authz.PrincipalRecord
	var kind string
	if err := s.Scan(&p.ID, &p.Name, &kind, &p.Description, timeScan{&p.CreatedAt}, &p.CreatedBy,
		nullTimeScan{&p.DisabledAt}); err != nil {
		return nil, err
	}
	p.Kind = authz.Kind(kind)
	return &p, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CreateToken stores t and appends ev. It returns ErrConflict when the ID
// is taken and ErrNotFound when the principal does not exist.
func (db *DB) CreateToken(ctx context.Context, t *authz.Token, ev audit.Event) error {
	if t.ID == "" || t.PrincipalID == "" {
		return errors.New("store: create token: ID and principal are required")
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		if err := db.principalExists(ctx, tx, t.PrincipalID); err != nil {
			return err
		}
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertToken), t.ID, t.PrincipalID, t.Description,
			nonNil(t.SecretHash), db.timeArg(t.CreatedAt), db.nullTimeArg(t.ExpiresAt),
			db.nullTimeArg(t.RevokedAt), db.nullTimeArg(t.LastUsedAt), t.Via)
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("token", t.ID)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create token %q: %w", t.ID, err)
	}
	return nil
}

// GetToken returns the token with the given ID, its principal's name
// filled in.
func (db *DB) GetToken(ctx context.Context, id string) (*authz.Token, error) {
	t, err := scanToken(db.rd.QueryRowContext(ctx, db.d.rebind(sqlGetToken), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens returns the tokens of a principal, or of every principal when
// principalID is "", in order of creation.
func (db *DB) ListTokens(ctx context.Context, principalID string) ([]*authz.Token, error) {
	q, args := sqlListTokens, []any(nil)
	if principalID != "" {
		q, args = sqlListTokensOf, []any{principalID}
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	out, err := collect(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken marks token id revoked at at, appends ev and returns the
// token as now stored. A token already revoked is returned unchanged and no
// event is appended.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time, ev audit.Event) (*authz.Token, error) {
	var t *authz.Token
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlRevokeToken), db.timeArg(at), id)
		if err != nil {
			return err
		}
		t, err = scanToken(tx.QueryRowContext(ctx, db.d.rebind(sqlGetToken), id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("token", id)
		}
		if err != nil || n == 0 {
			return err
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke token %q: %w", id, err)
	}
	return t, nil
}

// TouchToken records that token id was used at at. It appends no audit
// event: the request the token authenticated is audited itself.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	n, err := execAffected(ctx, db.wr, db.d.rebind(sqlTouchToken), db.timeArg(at), id)
	if err != nil {
		return fmt.Errorf("store: touch token %q: %w", id, err)
	}
	if n == 0 {
		return notFound("token", id)
	}
	return nil
}

func scanToken(s scanner) (*authz.Token, error) {
	var t authz.Token
	if err := s.Scan(&t.ID, &t.PrincipalID, &t.Principal, &t.Description, &t.SecretHash, timeScan{&t.CreatedAt},
		nullTimeScan{&t.ExpiresAt}, nullTimeScan{&t.RevokedAt}, nullTimeScan{&t.LastUsedAt}, &t.Via); err != nil {
		return nil, err
	}
	return &t, nil
}

// AddIdentity maps a client-certificate name to a principal and appends
// ev. It returns ErrConflict when the name is mapped already and
// ErrNotFound when the principal does not exist.
func (db *DB) AddIdentity(ctx context.Context, i *authz.Identity, ev audit.Event) error {
	if i.Kind == "" || i.Value == "" || i.PrincipalID == "" {
		return errors.New("store: add identity: kind, value and principal are required")
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		if err := db.principalExists(ctx, tx, i.PrincipalID); err != nil {
			return err
		}
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertIdentity), i.Kind, i.Value, i.PrincipalID, db.timeArg(i.CreatedAt), i.Source)
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("identity", i.Kind+":"+i.Value)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: add identity %s:%s: %w", i.Kind, i.Value, err)
	}
	return nil
}

// RemoveIdentity removes a client-certificate name mapping and appends ev.
func (db *DB) RemoveIdentity(ctx context.Context, kind, value string, ev audit.Event) error {
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteIdentity), kind, value)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("identity", kind+":"+value)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: remove identity %s:%s: %w", kind, value, err)
	}
	return nil
}

// ListIdentities returns the identities of a principal by kind and value,
// or of every principal by principal name when principalID is "".
func (db *DB) ListIdentities(ctx context.Context, principalID string) ([]*authz.Identity, error) {
	q, args := sqlListIdentities, []any(nil)
	if principalID != "" {
		q, args = sqlListIdentitiesOf, []any{principalID}
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list identities: %w", err)
	}
	out, err := collect(rows, scanIdentity)
	if err != nil {
		return nil, fmt.Errorf("store: list identities: %w", err)
	}
	return out, nil
}

func scanIdentity(s scanner) (*authz.Identity, error) {
	var i authz.Identity
	err := s.Scan(&i.Kind, &i.Value, &i.PrincipalID, &i.Principal, timeScan{&i.CreatedAt}, &i.Source)
	return &i, err
}

// PrincipalByIdentity returns the ID of the principal a client-certificate
// name maps to.
func (db *DB) PrincipalByIdentity(ctx context.Context, kind, value string) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, db.d.rebind(sqlPrincipalIdentity), kind, value).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("identity", kind+":"+value)
	}
	if err != nil {
		return "", fmt.Errorf("store: principal by identity %s:%s: %w", kind, value, err)
	}
	return id, nil
}

// CreateRole stores a custom role and appends ev. It returns ErrConflict
// when the name is taken, by another custom role or a built-in one.
func (db *DB) CreateRole(ctx context.Context, r *authz.Role, ev audit.Event) error {
	if r.Name == "" {
		return errors.New("store: create role: name is required")
	}
	if _, ok := authz.BuiltinRole(r.Name); ok {
		return fmt.Errorf("store: create role %q: %w", r.Name, conflict("built-in role", r.Name))
	}
	perms, err := json.Marshal(nonNilPerms(r.Permissions))
	if err != nil {
		return fmt.Errorf("store: create role %q: %w", r.Name, err)
	}
	err = db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertRole), r.Name, r.Description, string(perms), db.timeArg(r.CreatedAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("role", r.Name)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create role %q: %w", r.Name, err)
	}
	return nil
}

func nonNilPerms(p []authz.Permission) []authz.Permission {
	if p == nil {
		return []authz.Permission{}
	}
	return p
}

// GetRole returns the built-in or custom role called name.
func (db *DB) GetRole(ctx context.Context, name string) (*authz.Role, error) {
	if r, ok := authz.BuiltinRole(name); ok {
		return &r, nil
	}
	r, err := scanRole(db.read.QueryRowContext(ctx, db.d.rebind(sqlGetRole), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("role", name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get role %q: %w", name, err)
	}
	return r, nil
}

// ListRoles returns the built-in roles in their fixed order, then the
// custom roles by name.
func (db *DB) ListRoles(ctx context.Context) ([]*authz.Role, error) {
	var out []*authz.Role
	for _, r := range authz.BuiltinRoles() {
		out = append(out, &r)
	}
	rows, err := db.read.QueryContext(ctx, sqlListRoles)
	if err != nil {
		return nil, fmt.Errorf("store: list roles: %w", err)
	}
	custom, err := collect(rows, scanRole)
	if err != nil {
		return nil, fmt.Errorf("store: list roles: %w", err)
	}
	return append(out, custom...), nil
}

// DeleteRole deletes a custom role and appends ev. It returns ErrConflict
// while any binding uses the role, and for a built-in role.
func (db *DB) DeleteRole(ctx context.Context, name string, ev audit.Event) error {
	if _, ok := authz.BuiltinRole(name); ok {
		return fmt.Errorf("store: delete role %q: %w: built-in roles cannot be deleted", name, ErrConflict)
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, db.d.rebind(sqlDeleteRole), name)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("role", name)
		}
		var used int
		if err := tx.QueryRowContext(ctx, db.d.rebind(sqlRoleInUse), name).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return fmt.Errorf("%w: role %q is still used by %d binding%s", ErrConflict, name, used, plural(used))
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: delete role %q: %w", name, err)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func scanRole(s scanner) (*authz.Role, error) {
	var r authz.Role
	var perms string
	if err := s.Scan(&r.Name, &r.Description, &perms, timeScan{&r.CreatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return nil, fmt.Errorf("role %q permissions: %w", r.Name, err)
	}
	return &r, nil
}

// CreateBinding stores a role binding and appends ev. Only b.Role.Name is
// stored: the role's permissions are resolved when the binding is read. It
// returns ErrConflict when the ID is taken and ErrNotFound when the
// principal does not exist.
func (db *DB) CreateBinding(ctx context.Context, b *authz.Binding, ev audit.Event) error {
	if b.ID == "" || b.PrincipalID == "" || b.Role.Name == "" {
		return errors.New("store: create binding: ID, principal and role are required")
	}
	var lists [3]string
	for i, l := range [][]string{b.Scope.CAs, b.Scope.Profiles, b.Scope.Names} {
		s, err := jsonList(l)
		if err != nil {
			return fmt.Errorf("store: create binding %q: %w", b.ID, err)
		}
		lists[i] = s
	}
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		if err := db.principalExists(ctx, tx, b.PrincipalID); err != nil {
			return err
		}
		n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertBinding), b.ID, b.PrincipalID, b.Role.Name,
			lists[0], lists[1], lists[2], db.timeArg(b.CreatedAt), b.CreatedBy, b.Source)
		if err != nil {
			return err
		}
		if n == 0 {
			return conflict("binding", b.ID)
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create binding %q: %w", b.ID, err)
	}
	return nil
}

// DeleteBinding deletes a role binding, appends ev and returns the binding
// as it was.
func (db *DB) DeleteBinding(ctx context.Context, id string, ev audit.Event) (*authz.Binding, error) {
	var out *authz.Binding
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		bs, err := db.bindings(ctx, tx, db.d.rebind(sqlGetBinding), id)
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			return notFound("binding", id)
		}
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlDeleteBinding), id); err != nil {
			return err
		}
		out = &bs[0].Binding
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete binding %q: %w", id, err)
	}
	return out, nil
}

// ListBindings returns the bindings of a principal in order of creation,
// or of every principal by principal name when principalID is "". A
// binding naming a role that no longer exists has a Role with that name
// and no permissions.
func (db *DB) ListBindings(ctx context.Context, principalID string) ([]*authz.Binding, error) {
	q, args := sqlListBindings, []any(nil)
	if principalID != "" {
		q, args = sqlBindingsOf, []any{principalID}
	}
	bs, err := db.bindings(ctx, db.read, db.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list bindings: %w", err)
	}
	out := make([]*authz.Binding, len(bs))
	for i := range bs {
		out[i] = &bs[i].Binding
	}
	return out, nil
}

// resolvedBinding is a binding read back, and whether its role exists.
type resolvedBinding struct {
	authz.Binding
	known bool
}

// bindings runs a bindingSelect query and resolves each row's role.
func (db *DB) bindings(ctx context.Context, q querier, query string, args ...any) ([]resolvedBinding, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []resolvedBinding
	for rows.Next() {
		var (
			b           resolvedBinding
			role        string
			lists       [3]string
			desc, perms sql.NullString
			roleCreated *time.Time
		)
		if err := rows.Scan(&b.ID, &b.PrincipalID, &b.Principal, &role, &lists[0], &lists[1], &lists[2],
			timeScan{&b.CreatedAt}, &b.CreatedBy, &b.Source, &desc, &perms, nullTimeScan{&roleCreated}); err != nil {
			return nil, err
		}
		for i, dst := range []*[]string{&b.Scope.CAs, &b.Scope.Profiles, &b.Scope.Names} {
			if err := json.Unmarshal([]byte(lists[i]), dst); err != nil {
				return nil, fmt.Errorf("binding %q scope: %w", b.ID, err)
			}
			if len(*dst) == 0 {
				*dst = nil
			}
		}
		switch r, ok := authz.BuiltinRole(role); {
		case ok:
			b.Role, b.known = r, true
		case perms.Valid:
			b.Role = authz.Role{Name: role, Description: desc.String}
			if roleCreated != nil {
				b.Role.CreatedAt = *roleCreated
			}
			if err := json.Unmarshal([]byte(perms.String), &b.Role.Permissions); err != nil {
				return nil, fmt.Errorf("role %q permissions: %w", role, err)
			}
			b.known = true
		default:
			b.Role = authz.Role{Name: role}
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
