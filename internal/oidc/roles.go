package oidc

import (
	"cmp"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/authz"
)

// Mapped is a role binding an identity's groups select through the
// provider's roles mappings. Groups are the identity's groups that map to
// it (several mappings may give the same role and scope).
type Mapped struct {
	Role   string
	Scope  authz.Scope
	Groups []string
}

// RoleBindings returns the bindings the identity's groups select, one per
// distinct role and scope, ordered by role and then scope. The caller
// replaces the principal's claim-derived bindings with them at every
// sign-in, so a binding goes when its group does.
func (r *Registry) RoleBindings(provider string, id *Identity) []Mapped {
	p, ok := r.providers[provider]
	if !ok || id == nil {
		return nil
	}
	byKey := map[string]*Mapped{}
	for _, m := range p.cfg.Roles {
		if !slices.Contains(id.Groups, m.Group) {
			continue
		}
		sc := m.Scope.AuthzScope()
		key := m.Role + "\x00" + scopeKey(sc)
		if b, ok := byKey[key]; ok {
			if !slices.Contains(b.Groups, m.Group) {
				b.Groups = append(b.Groups, m.Group)
			}
			continue
		}
		byKey[key] = &Mapped{Role: m.Role, Scope: sc, Groups: []string{m.Group}}
	}
	out := make([]Mapped, 0, len(byKey))
	for _, b := range byKey {
		slices.Sort(b.Groups)
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Mapped) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(scopeKey(a.Scope), scopeKey(b.Scope)))
	})
	return out
}

// scopeKey is a canonical text of a scope: two scopes listing the same
// CAs, profiles and names in another order are one.
func scopeKey(s authz.Scope) string {
	part := func(l []string) string {
		l = slices.Clone(l)
		slices.Sort(l)
		return strings.Join(slices.Compact(l), "\x01")
	}
	return part(s.CAs) + "\x00" + part(s.Profiles) + "\x00" + part(s.Names)
}
