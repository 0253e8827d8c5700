package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/access"

	"github.com/certwright/certwright/internal/authz"
)

const (
	sqlUseSSO = `INSERT INTO sso_used (digest, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING`
	// At most this many expired rows go per new one, so that rows never
	// pile up and no insert waits on a long delete.
	sqlPruneSSOUsed = `DELETE FROM sso_used WHERE digest IN
		(SELECT digest FROM sso_used WHERE expires_at < ? LIMIT 100)`
	sqlBindingsFrom   = bindingSelect + ` WHERE b.principal_id = ? AND b.source = ? ORDER BY b.created_at, b.id`
	sqlGetPrincipalI  = `SELECT ` + principalColumns + ` FROM principals WHERE id = ?`
	sqlIdentityHolder = `SELECT i.principal_id, p.name FROM principal_identities i JOIN principals p ON p.id = i.principal_id
		WHERE i.kind = ? AND i.value = ?`
	// The principal's identities of a kind from a source but one value.
	sqlDropIdentitiesFrom = `DELETE FROM principal_identities WHERE principal_id = ? AND kind = ? AND source = ? AND value <> ?
		RETURNING value`
)

// UseSSOOnce records digest (something single sign-on accepts once: an
// ID token exchanged, a console sign-in completed) until expires, and
// reports whether it was new; false means it was used before, at this
// replica or another. Some of the rows expired by now are pruned first.
func (db *DB) UseSSOOnce(ctx context.Context, digest string, now, expires time.Time) (bool, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlPruneSSOUsed), db.timeArg(now)); err != nil {
			return err
		}
		var err error
		n, err = execAffected(ctx, tx, db.d.rebind(sqlUseSSO), digest, db.timeArg(expires))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: record a single sign-on as used: %w", err)
	}
	return n == 1, nil
}

// ApplySSOSignIn finds (or creates) the principal of in's identity, and
// unless it is disabled brings its bindings from in.Source to in.Bindings
// and its e-mail identity from in.Source to in.Email, and stores
// in.Token, appending in.Audit's events, all or nothing.
func (db *DB) ApplySSOSignIn(ctx context.Context, in *access.SSOApply) (*access.SSOApplied, error) {
	if in.Kind == "" || in.Value == "" || in.Source == "" || in.Audit == nil {
		return nil, errors.New("store: sign-in: identity, source and audit are required")
	}
	// email gives principal pid the e-mail identity in.Email from
	// in.Source unless another principal holds it, and removes its other
	// e-mail identities from in.Source.
	email := func(tx *sql.Tx, pid string, out *access.SSOApplied) error {
		if in.Email != "" {
			// Inserted first, then the holder read when that did nothing: no
			// window in which another sign-in could slip in between.
			n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertIdentity), authz.IdentityEmail, in.Email, pid, db.timeArg(in.At), in.Source)
			if err != nil {
				return err
			}
			if n == 1 {
				out.Email = access.SSOEmailAdded
			} else {
				var holder, name string
				if err := tx.QueryRowContext(ctx, db.d.rebind(sqlIdentityHolder), authz.IdentityEmail, in.Email).Scan(&holder, &name); err != nil {
					return err
				}
				out.Email = access.SSOEmailKept
				if holder != pid {
					out.Email, out.EmailHolder = access.SSOEmailHeld, name
				}
			}
		}
		rows, err := tx.QueryContext(ctx, db.d.rebind(sqlDropIdentitiesFrom), pid, authz.IdentityEmail, in.Source, in.Email)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			out.EmailsRemoved = append(out.EmailsRemoved, v)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.Sort(out.EmailsRemoved)
		return nil
	}
	var out access.SSOApplied
	err := db.accessTx(ctx, func(tx *sql.Tx) error {
		out = access.SSOApplied{}
		var pid string
		err := tx.QueryRowContext(ctx, db.d.rebind(sqlPrincipalIdentity), in.Kind, in.Value).Scan(&pid)
		switch {
		case errors.Is(err, sql.ErrNoRows) && in.Create == nil:
			return notFound("principal with identity", in.Kind+":"+in.Value)
		case errors.Is(err, sql.ErrNoRows):
			p := in.Create
			n, err := execAffected(ctx, tx, db.d.rebind(sqlInsertPrincipal), p.ID, p.Name, string(p.Kind), p.Description,
				db.timeArg(p.CreatedAt), p.CreatedBy, db.nullTimeArg(p.DisabledAt))
			if err != nil {
				return err
			}
			if n == 0 {
				return conflict("principal name", p.Name)
			}
			if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertIdentity), in.Kind, in.Value, p.ID, db.timeArg(p.CreatedAt), in.Source); err != nil {
				return err
			}
			pid, out.Created = p.ID, true
		case err != nil:
			return err
		}
		p, err := scanPrincipal(tx.QueryRowContext(ctx, db.d.rebind(sqlGetPrincipalI), pid))
		if err != nil {
			return err
		}
		out.Principal = p
		if p.DisabledAt == nil {
			have, err := db.bindings(ctx, tx, db.d.rebind(sqlBindingsFrom), p.ID, in.Source)
			if err != nil {
				return err
			}
			removed, added := planBindings(have, in)
			for _, b := range removed {
				if _, err := tx.ExecContext(ctx, db.d.rebind(sqlDeleteBinding), b.ID); err != nil {
					return err
				}
			}
			for _, b := range added {
				b.PrincipalID, b.Source = p.ID, in.Source
				var lists [3]string
				for i, l := range [][]string{b.Scope.CAs, b.Scope.Profiles, b.Scope.Names} {
					if lists[i], err = jsonList(slices.Clip(l)); err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertBinding), b.ID, b.PrincipalID, b.Role.Name,
					lists[0], lists[1], lists[2], db.timeArg(b.CreatedAt), b.CreatedBy, b.Source); err != nil {
					return err
				}
				out.Added = append(out.Added, b)
			}
			out.Removed = removed
			if err := email(tx, p.ID, &out); err != nil {
				return err
			}
			if t := in.Token; t != nil {
				t.PrincipalID = p.ID
				if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertToken), t.ID, t.PrincipalID, t.Description,
					nonNil(t.SecretHash), db.timeArg(t.CreatedAt), db.nullTimeArg(t.ExpiresAt),
					db.nullTimeArg(t.RevokedAt), db.nullTimeArg(t.LastUsedAt), t.Via); err != nil {
					return err
				}
			}
		}
		for _, ev := range in.Audit(&out) {
			if err := db.appendAudit(ctx, tx, &ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: sign-in of %s: %w", in.Value, err)
	}
	return &out, nil
}

// bindingKey identifies a binding by what it grants.
func bindingKey(b *authz.Binding) string {
	return strings.Join([]string{b.Role.Name, strings.Join(b.Scope.CAs, "\x00"), strings.Join(b.Scope.Profiles, "\x00"),
		strings.Join(b.Scope.Names, "\x00")}, "\x01")
}

// planBindings returns which of have (the principal's bindings from
// in.Source) go, and which of in.Bindings are new, each grant once.
func planBindings(have []resolvedBinding, in *access.SSOApply) (removed, added []authz.Binding) {
	want := map[string]bool{}
	for i := range in.Bindings {
		want[bindingKey(&in.Bindings[i])] = true
	}
	kept := map[string]bool{}
	for _, b := range have {
		k := bindingKey(&b.Binding)
		if want[k] && !kept[k] {
			kept[k] = true
			continue
		}
		removed = append(removed, b.Binding)
	}
	for _, b := range in.Bindings {
		if k := bindingKey(&b); !kept[k] {
			kept[k] = true
			added = append(added, b)
		}
	}
	return removed, added
}
