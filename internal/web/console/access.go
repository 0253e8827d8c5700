package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// Access administers principals, their tokens and bindings, and roles.
// Every call checks the caller's permission and that nobody grants, or
// acts on a principal holding, more than the caller holds itself
// (access.Service, the API's own).
type Access interface {
	ListPrincipals(ctx context.Context, who authz.Principal) ([]*authz.PrincipalRecord, error)
	GetPrincipal(ctx context.Context, who authz.Principal, idOrName string) (*authz.PrincipalRecord, error)
	CreatePrincipal(ctx context.Context, who authz.Principal, name string, kind authz.Kind, description string) (*authz.PrincipalRecord, error)
	Disable(ctx context.Context, who authz.Principal, idOrName string) (*authz.PrincipalRecord, error)
	CreateToken(ctx context.Context, who authz.Principal, idOrName, description string, ttl time.Duration) (string, *authz.Token, error)
	ListTokens(ctx context.Context, who authz.Principal, idOrName string) ([]*authz.Token, error)
	RevokeToken(ctx context.Context, who authz.Principal, id string) (*authz.Token, error)
	ListIdentities(ctx context.Context, who authz.Principal, principalID string) ([]*authz.Identity, error)
	ListRoles(ctx context.Context, who authz.Principal) ([]*authz.Role, error)
	CreateRole(ctx context.Context, who authz.Principal, r authz.Role) (*authz.Role, error)
	DeleteRole(ctx context.Context, who authz.Principal, name string) error
	CheckGrant(ctx context.Context, who authz.Principal, roleName string, scope authz.Scope) (*authz.Role, error)
	Bind(ctx context.Context, who authz.Principal, idOrName, roleName string, scope authz.Scope) (*authz.Binding, error)
	Unbind(ctx context.Context, who authz.Principal, id string) (*authz.Binding, error)
	ListBindings(ctx context.Context, who authz.Principal, idOrName string) ([]*authz.Binding, error)
}

// principalRow is one principal as the access page lists it.
type principalRow struct {
	P            *authz.PrincipalRecord
	Bindings     []*authz.Binding
	ActiveTokens int
}

type accessView struct {
	Principals []principalRow
	Roles      []*authz.Role
	// Manage: the viewer holds principal:manage, so the forms to create
	// principals and roles, and custom roles' delete buttons, are shown.
	Manage      bool
	Permissions []authz.Permission
	// Form keeps what a refused create form held, to show it again.
	Form          url.Values
	Notice, Error string
}

// principalView is one principal's page.
type principalView struct {
	P          *authz.PrincipalRecord
	Bindings   []*authz.Binding
	Identities []*authz.Identity
	Tokens     []*authz.Token
	Roles      []*authz.Role
	// Act: the viewer may change this principal (principal:manage, and it
	// holds at least what the principal holds); Self: it is the viewer.
	Act, Self bool
	// NewToken is a token just minted, shown on this page once.
	NewToken      string
	Notice, Error string
}

// accessChanges are the notices a redirect after a change shows.
var accessChanges = map[string]string{
	"principal-disabled": "The principal is disabled: its tokens are revoked and its console sessions end.",
	"token-revoked":      "The token is revoked: it no longer authenticates, and console sessions signed in with it end.",
	"bound":              "The role is bound.",
	"unbound":            "The binding is removed.",
	"role-created":       "The role is created.",
	"role-deleted":       "The role is deleted.",
}

// accessPage lists every principal with its roles and live tokens, and the
// roles; a principal:manage holder gets the forms that create them.
func (h *Handler) accessPage(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showAccess(w, r, v, http.StatusOK, accessChanges[r.URL.Query().Get("changed")], "", nil)
}

func (h *Handler) showAccess(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string, form url.Values) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	av := &accessView{Notice: notice, Error: problem, Form: form, Permissions: authz.Permissions(),
		Manage: v.who.Allow(authz.PermPrincipalAdmin, authz.Resource{}) == nil}
	ps, err := h.d.Access.ListPrincipals(ctx, v.who)
	if err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	bs, err := h.d.Access.ListBindings(ctx, v.who, "")
	if err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	ts, err := h.d.Access.ListTokens(ctx, v.who, "")
	if err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	if av.Roles, err = h.d.Access.ListRoles(ctx, v.who); err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	byPrincipal := map[string][]*authz.Binding{}
	for _, b := range bs {
		byPrincipal[b.PrincipalID] = append(byPrincipal[b.PrincipalID], b)
	}
	live := map[string]int{}
	now := h.d.Clock.Now()
	for _, t := range ts {
		if tokenLive(t, now) {
			live[t.PrincipalID]++
		}
	}
	for _, p := range ps {
		av.Principals = append(av.Principals, principalRow{P: p, Bindings: byPrincipal[p.ID], ActiveTokens: live[p.ID]})
	}
	h.render(w, r, status, "access", v, av)
}

func tokenLive(t *authz.Token, now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// principalPage shows one principal: its bindings, client-certificate
// identities and tokens, with the actions the viewer may take on it.
func (h *Handler) principalPage(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showPrincipal(w, r, v, r.PathValue("name"), http.StatusOK, accessChanges[r.URL.Query().Get("changed")], "", "")
}

func (h *Handler) showPrincipal(w http.ResponseWriter, r *http.Request, v *visit, name string, status int, notice, problem, newToken string) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	p, err := h.d.Access.GetPrincipal(ctx, v.who, name)
	if err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	pv := &principalView{P: p, Notice: notice, Error: problem, NewToken: newToken, Self: p.ID == v.who.ID}
	if pv.Bindings, err = h.d.Access.ListBindings(ctx, v.who, p.ID); err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	if pv.Identities, err = h.d.Access.ListIdentities(ctx, v.who, p.ID); err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	if pv.Tokens, err = h.d.Access.ListTokens(ctx, v.who, p.ID); err != nil {
		h.accessFailed(w, r, v, err)
		return
	}
	// Newest first: the one just minted, or the one in use, on top.
	slices.SortStableFunc(pv.Tokens, func(a, b *authz.Token) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if v.who.Allow(authz.PermPrincipalAdmin, authz.Resource{}) == nil {
		target := authz.Principal{ID: p.ID, Name: p.Name, Kind: p.Kind}
		for _, b := range pv.Bindings {
			target.Bindings = append(target.Bindings, *b)
		}
		pv.Act = access.MayActOn(v.who, target) == nil
		if pv.Act {
			if pv.Roles, err = h.d.Access.ListRoles(ctx, v.who); err != nil {
				h.accessFailed(w, r, v, err)
				return
			}
		}
	}
	h.render(w, r, status, "principal", v, pv)
}

// createPrincipal creates a principal, optionally bound to a role within
// a scope and with a first token, which the page then shows once. The
// grant is checked before anything is created, so a refused role leaves
// no principal behind.
func (h *Handler) createPrincipal(w http.ResponseWriter, r *http.Request, v *visit) {
	form := url.Values{}
	for _, k := range []string{"name", "kind", "description", "role", "cas", "profiles", "names", "token", "expires"} {
		form.Set(k, strings.TrimSpace(r.PostFormValue(k)))
	}
	refuse := func(status int, msg string) { h.showAccess(w, r, v, status, "", msg, form) }
	name, role := form.Get("name"), form.Get("role")
	scope := scopeFromForm(form)
	ttl, err := tokenLifetime(form.Get("expires"))
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	if role == "" && !scope.Empty() {
		refuse(http.StatusBadRequest, "A scope is set but no role: choose the role the scope limits, or clear the scope.")
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	if role != "" {
		if _, err := h.d.Access.CheckGrant(ctx, v.who, role, scope); err != nil {
			h.accessRefused(w, r, v, err, refuse)
			return
		}
	}
	p, err := h.d.Access.CreatePrincipal(ctx, v.who, name, authz.Kind(form.Get("kind")), form.Get("description"))
	if err != nil {
		h.accessRefused(w, r, v, err, refuse)
		return
	}
	notice := "Principal " + p.Name + " is created."
	if role != "" {
		if _, err := h.d.Access.Bind(ctx, v.who, p.ID, role, scope); err != nil {
			h.accessRefused(w, r, v, err, func(status int, msg string) {
				h.showPrincipal(w, r, v, p.ID, status, notice, "The role was not bound: "+msg, "")
			})
			return
		}
	}
	tok := ""
	if form.Get("token") == "yes" {
		if tok, _, err = h.d.Access.CreateToken(ctx, v.who, p.ID, "created with the principal", ttl); err != nil {
			h.accessRefused(w, r, v, err, func(status int, msg string) {
				h.showPrincipal(w, r, v, p.ID, status, notice, "No token was minted: "+msg, "")
			})
			return
		}
	}
	h.showPrincipal(w, r, v, p.ID, http.StatusCreated, notice, "", tok)
}

// createToken mints a token for the principal and shows it once.
func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, v *visit) {
	name := r.PathValue("name")
	refuse := func(status int, msg string) { h.showPrincipal(w, r, v, name, status, "", msg, "") }
	ttl, err := tokenLifetime(strings.TrimSpace(r.PostFormValue("expires")))
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	tok, rec, err := h.d.Access.CreateToken(ctx, v.who, name, strings.TrimSpace(r.PostFormValue("description")), ttl)
	if err != nil {
		h.accessRefused(w, r, v, err, refuse)
		return
	}
	h.showPrincipal(w, r, v, rec.PrincipalID, http.StatusCreated, "", "", tok)
}

// revokeToken revokes a token, after the form's confirmation.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request, v *visit) {
	id := r.PathValue("id")
	if !isTokenID(id) {
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "Token not found", Message: "There is no token with this ID."})
		return
	}
	back := strings.TrimSpace(r.PostFormValue("principal"))
	if r.PostFormValue("confirm") != "yes" {
		h.showPrincipal(w, r, v, back, http.StatusBadRequest, "", "Tick the confirmation to revoke the token: whatever uses it stops authenticating at once.", "")
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	t, err := h.d.Access.RevokeToken(ctx, v.who, id)
	if err != nil {
		h.accessRefused(w, r, v, err, func(status int, msg string) { h.showPrincipal(w, r, v, back, status, "", msg, "") })
		return
	}
	http.Redirect(w, r, "/access/principals/"+url.PathEscape(t.Principal)+"?changed=token-revoked", http.StatusSeeOther)
}

// isTokenID: a token ID is the 16 hex digits after cwt_.
func isTokenID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// disablePrincipal disables a principal (its tokens revoked with it),
// after the form's confirmation.
func (h *Handler) disablePrincipal(w http.ResponseWriter, r *http.Request, v *visit) {
	name := r.PathValue("name")
	refuse := func(status int, msg string) { h.showPrincipal(w, r, v, name, status, "", msg, "") }
	if r.PostFormValue("confirm") != "yes" {
		refuse(http.StatusBadRequest, "Tick the confirmation to disable "+name+": it stops authenticating at once and its tokens are revoked.")
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	p, err := h.d.Access.Disable(ctx, v.who, name)
	if err != nil {
		h.accessRefused(w, r, v, err, refuse)
		return
	}
	http.Redirect(w, r, "/access/principals/"+url.PathEscape(p.Name)+"?changed=principal-disabled", http.StatusSeeOther)
}

// bind grants the principal a role within a scope.
func (h *Handler) bind(w http.ResponseWriter, r *http.Request, v *visit) {
	name := r.PathValue("name")
	refuse := func(status int, msg string) { h.showPrincipal(w, r, v, name, status, "", msg, "") }
	form := url.Values{}
	for _, k := range []string{"cas", "profiles", "names"} {
		form.Set(k, r.PostFormValue(k))
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	b, err := h.d.Access.Bind(ctx, v.who, name, strings.TrimSpace(r.PostFormValue("role")), scopeFromForm(form))
	if err != nil {
		h.accessRefused(w, r, v, err, refuse)
		return
	}
	http.Redirect(w, r, "/access/principals/"+url.PathEscape(b.Principal)+"?changed=bound", http.StatusSeeOther)
}

// unbind removes a binding.
func (h *Handler) unbind(w http.ResponseWriter, r *http.Request, v *visit) {
	back := strings.TrimSpace(r.PostFormValue("principal"))
	ctx, cancel := h.storeContext(r)
	defer cancel()
	b, err := h.d.Access.Unbind(ctx, v.who, r.PathValue("id"))
	if err != nil {
		h.accessRefused(w, r, v, err, func(status int, msg string) { h.showPrincipal(w, r, v, back, status, "", msg, "") })
		return
	}
	http.Redirect(w, r, "/access/principals/"+url.PathEscape(b.Principal)+"?changed=unbound", http.StatusSeeOther)
}

// createRole defines a custom role from the permissions ticked.
func (h *Handler) createRole(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := r.ParseForm(); err != nil {
		h.showAccess(w, r, v, http.StatusBadRequest, "", "The form could not be read.", nil)
		return
	}
	role := authz.Role{Name: strings.TrimSpace(r.PostForm.Get("role_name")), Description: strings.TrimSpace(r.PostForm.Get("role_description"))}
	for _, p := range r.PostForm["permission"] {
		role.Permissions = append(role.Permissions, authz.Permission(p))
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	if _, err := h.d.Access.CreateRole(ctx, v.who, role); err != nil {
		h.accessRefused(w, r, v, err, func(status int, msg string) { h.showAccess(w, r, v, status, "", msg, nil) })
		return
	}
	http.Redirect(w, r, "/access?changed=role-created", http.StatusSeeOther)
}

// deleteRole removes a custom role no binding uses.
func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	if err := h.d.Access.DeleteRole(ctx, v.who, r.PathValue("name")); err != nil {
		h.accessRefused(w, r, v, err, func(status int, msg string) { h.showAccess(w, r, v, status, "", msg, nil) })
		return
	}
	http.Redirect(w, r, "/access?changed=role-deleted", http.StatusSeeOther)
}

// accessRefused answers an access change the core refused: a 403 naming
// the rule, a 404, a 400 or 409 with the core's reason, shown by show on
// the page the form was on; anything else is the server's failure.
func (h *Handler) accessRefused(w http.ResponseWriter, r *http.Request, v *visit, err error, show func(status int, msg string)) {
	switch {
	case errors.Is(err, authz.ErrForbidden):
		show(http.StatusForbidden, "Refused: "+publicReason(err))
	case errors.Is(err, authz.ErrNotFound), errors.Is(err, access.ErrNotFound):
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "Not found", Message: "There is no such principal, token, role or binding."})
	case errors.Is(err, access.ErrInvalid):
		show(http.StatusBadRequest, userReason(err))
	case errors.Is(err, store.ErrConflict):
		show(http.StatusConflict, userReason(err))
	case errors.Is(err, access.ErrCertificatesNotRevoked):
		h.d.Log.Error("console: person certificates not revoked", "path", r.URL.Path, "err", err)
		show(http.StatusInternalServerError, userReason(err))
	default:
		h.unavailable(w, r, err)
	}
}

// accessFailed answers a page read the core refused or could not do.
func (h *Handler) accessFailed(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	switch {
	case errors.Is(err, authz.ErrForbidden):
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: "Refused: " + publicReason(err)})
	case errors.Is(err, authz.ErrNotFound), errors.Is(err, access.ErrNotFound):
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "Not found", Message: "There is no principal of this name."})
	default:
		h.unavailable(w, r, err)
	}
}

// scopeFromForm reads a scope's CAs, profiles and name patterns, each a
// list separated by commas or spaces; all empty is no scope (everything).
func scopeFromForm(f url.Values) authz.Scope {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	}
	return authz.Scope{CAs: split(f.Get("cas")), Profiles: split(f.Get("profiles")), Names: split(f.Get("names"))}
}

// tokenLifetime reads a token form's expiry ("90d", "12h"; "" is none).
func tokenLifetime(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := inventory.ParseWindow(s)
	if err != nil || d <= 0 {
		return 0, errors.New("Expiry " + strings.ToValidUTF8(s, "") + ": give a duration such as 90d or 12h, or none.")
	}
	return d, nil
}
