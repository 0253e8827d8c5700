package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func scopeView(s authz.Scope) apitypes.Scope {
	return apitypes.Scope{CAs: s.CAs, Profiles: s.Profiles, Names: s.Names}
}

func scopeFrom(s apitypes.Scope) authz.Scope {
	return authz.Scope{CAs: s.CAs, Profiles: s.Profiles, Names: s.Names}
}

func bindingView(b *authz.Binding) apitypes.Binding {
	return apitypes.Binding{ID: b.ID, Principal: b.Principal, Role: b.Role.Name, Scope: scopeView(b.Scope), CreatedAt: b.CreatedAt, CreatedBy: b.CreatedBy, Source: b.Source}
}

func tokenView(t *authz.Token) apitypes.Token {
	return apitypes.Token{ID: t.ID, Principal: t.Principal, Description: t.Description, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt, Via: t.Via}
}

func roleView(r *authz.Role) apitypes.Role {
	perms := make([]string, len(r.Permissions))
	for i, p := range r.Permissions {
		perms[i] = string(p)
	}
	return apitypes.Role{Name: r.Name, Description: r.Description, Permissions: perms, Builtin: r.Builtin}
}

// principalView is a principal with its bindings, identities and tokens.
func (h *Handler) principalView(r *http.Request, who authz.Principal, p *authz.PrincipalRecord) (apitypes.Principal, error) {
	v := apitypes.Principal{ID: p.ID, Name: p.Name, Kind: string(p.Kind), Description: p.Description,
		CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy, DisabledAt: p.DisabledAt,
		Bindings: []apitypes.Binding{}, Identities: []apitypes.Identity{}, Tokens: []apitypes.Token{}}
	bs, err := h.d.Access.ListBindings(r.Context(), who, p.ID)
	if err != nil {
		return v, err
	}
	for _, b := range bs {
		v.Bindings = append(v.Bindings, bindingView(b))
	}
	ids, err := h.d.Access.ListIdentities(r.Context(), who, p.ID)
	if err != nil {
		return v, err
	}
	for _, i := range ids {
		v.Identities = append(v.Identities, apitypes.Identity{Kind: i.Kind, Value: i.Value, CreatedAt: i.CreatedAt, Source: i.Source})
	}
	ts, err := h.d.Access.ListTokens(r.Context(), who, p.ID)
	if err != nil {
		return v, err
	}
	for _, t := range ts {
		v.Tokens = append(v.Tokens, tokenView(t))
	}
	return v, nil
}

func (h *Handler) listPrincipals(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	ps, err := h.d.Access.ListPrincipals(r.Context(), who)
	if err != nil {
		return err
	}
	out := apitypes.PrincipalList{Principals: make([]apitypes.Principal, 0, len(ps))}
	for _, p := range ps {
		v, err := h.principalView(r, who, p)
		if err != nil {
			return err
		}
		out.Principals = append(out.Principals, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showPrincipal(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	p, err := h.d.Access.GetPrincipal(r.Context(), who, r.PathValue("name"))
	if err != nil {
		return err
	}
	v, err := h.principalView(r, who, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// parseLifetime reads a token lifetime such as 90d or 12h; "" is none.
func parseLifetime(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := inventory.ParseWindow(s)
	if err != nil || d <= 0 {
		return 0, badInput("%s %q: want a duration such as 90d or 12h", field, s)
	}
	return d, nil
}

func (h *Handler) createPrincipal(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	var req apitypes.CreatePrincipalRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	ttl, err := parseLifetime("token_expires_in", req.TokenExpiresIn)
	if err != nil {
		return err
	}
	if req.TokenExpiresIn != "" && !req.Token {
		return badInput("token_expires_in is set but token is false")
	}
	if req.Role == "" && !scopeEmpty(req.Scope) {
		return badInput("scope is set but no role is given")
	}
	// Check the grant before creating anything, so a bad or escalating
	// role leaves no principal behind.
	if req.Role != "" {
		if _, err := h.d.Access.CheckGrant(r.Context(), who, req.Role, scopeFrom(req.Scope)); err != nil {
			return err
		}
	}
	p, err := h.d.Access.CreatePrincipal(r.Context(), who, req.Name, authz.Kind(req.Kind), req.Description)
	if err != nil {
		return err
	}
	res := apitypes.CreatePrincipalResult{}
	if req.Role != "" {
		if _, err := h.d.Access.Bind(r.Context(), who, p.ID, req.Role, scopeFrom(req.Scope)); err != nil {
			return err
		}
	}
	if req.Token {
		tok, rec, err := h.d.Access.CreateToken(r.Context(), who, p.ID, "created with the principal", ttl)
		if err != nil {
			return err
		}
		res.Token = &apitypes.NewToken{Token: tok, Record: tokenView(rec)}
	}
	if res.Principal, err = h.principalView(r, who, p); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, res)
}

func scopeEmpty(s apitypes.Scope) bool { return len(s.CAs)+len(s.Profiles)+len(s.Names) == 0 }

func (h *Handler) disablePrincipal(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	p, err := h.d.Access.Disable(r.Context(), who, r.PathValue("name"))
	if err != nil {
		return err
	}
	v, err := h.principalView(r, who, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	ts, err := h.d.Access.ListTokens(r.Context(), who, r.PathValue("name"))
	if err != nil {
		return err
	}
	out := apitypes.TokenList{Tokens: make([]apitypes.Token, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenView(t))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	var req apitypes.CreateTokenRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	ttl, err := parseLifetime("expires_in", req.ExpiresIn)
	if err != nil {
		return err
	}
	tok, rec, err := h.d.Access.CreateToken(r.Context(), who, r.PathValue("name"), req.Description, ttl)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, apitypes.NewToken{Token: tok, Record: tokenView(rec)})
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	id := r.PathValue("id")
	if len(id) != 16 || !isHex(id, 16) {
		return badInput("token id %q: want the 16 hex digits after cwt_ (see token list)", id)
	}
	t, err := h.d.Access.RevokeToken(r.Context(), who, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tokenView(t))
}

// signOut ends the caller's own sign-in: the token of this request is
// revoked, with the person certificates it asked for.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	t, err := h.d.Access.SignOut(r.Context(), who)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tokenView(t))
}

func (h *Handler) addIdentity(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	var req apitypes.Identity
	if err := h.decode(r, &req); err != nil {
		return err
	}
	i, err := h.d.Access.AddIdentity(r.Context(), who, r.PathValue("name"), req.Kind, req.Value)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, apitypes.Identity{Kind: i.Kind, Value: i.Value, CreatedAt: i.CreatedAt})
}

func (h *Handler) removeIdentity(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	var req apitypes.Identity
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if err := h.d.Access.RemoveIdentity(r.Context(), who, r.PathValue("name"), req.Kind, req.Value); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listRoles(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	rs, err := h.d.Access.ListRoles(r.Context(), who)
	if err != nil {
		return err
	}
	out := apitypes.RoleList{Roles: make([]apitypes.Role, 0, len(rs))}
	for _, rl := range rs {
		out.Roles = append(out.Roles, roleView(rl))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createRole(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	var req apitypes.Role
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if req.Builtin {
		return badInput("builtin cannot be set: built-in roles are defined by the server")
	}
	perms := make([]authz.Permission, len(req.Permissions))
	for i, p := range req.Permissions {
		perms[i] = authz.Permission(strings.TrimSpace(p))
	}
	rl, err := h.d.Access.CreateRole(r.Context(), who, authz.Role{Name: req.Name, Description: req.Description, Permissions: perms})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, roleView(rl))
}

func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	if err := h.d.Access.DeleteRole(r.Context(), who, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listBindings(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	bs, err := h.d.Access.ListBindings(r.Context(), who, r.URL.Query().Get("principal"))
	if err != nil {
		return err
	}
	out := apitypes.BindingList{Bindings: make([]apitypes.Binding, 0, len(bs))}
	for _, b := range bs {
		out.Bindings = append(out.Bindings, bindingView(b))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createBinding(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	var req apitypes.CreateBindingRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if req.Principal == "" || req.Role == "" {
		return badInput("principal and role are required")
	}
	b, err := h.d.Access.Bind(r.Context(), who, req.Principal, req.Role, scopeFrom(req.Scope))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, bindingView(b))
}

func (h *Handler) deleteBinding(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	if _, err := h.d.Access.Unbind(r.Context(), who, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- approval requests

func requestView(a *issue.ApprovalRequest, pem string) apitypes.ApprovalRequest {
	return apitypes.ApprovalRequest{
		ID: a.ID, Requester: a.Requester, CA: a.CA, Profile: a.Profile, Names: a.Names, Status: a.Status,
		CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt, DecidedBy: a.DecidedBy, DecidedAt: a.DecidedAt,
		Comment: a.Comment, Serial: a.Serial, Error: a.Error, CertificatePEM: pem,
	}
}

// certChainPEM is a certificate and the intermediates above it.
func (h *Handler) certChainPEM(r *http.Request, serial string) (string, error) {
	c, err := h.d.Inventory.GetCertificate(r.Context(), serial)
	if err != nil {
		return "", err
	}
	out := pki.CertPEM(c.DER)
	chain, err := h.d.Issuer.Chain(r.Context(), c.CAID)
	if err != nil {
		return "", err
	}
	intermediates, _ := issue.SplitChain(chain)
	for _, cc := range intermediates {
		out = append(out, pki.CertPEM(cc.Raw)...)
	}
	return string(out), nil
}

func (h *Handler) listRequests(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	status := r.URL.Query().Get("status")
	if status == "all" {
		status = ""
	}
	limit := 1000
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return badInput("limit %q: want 1 to 1000", l)
		}
		limit = n
	}
	rs, err := h.d.Approvals.ListRequests(r.Context(), who, status, limit)
	if err != nil {
		return err
	}
	out := apitypes.ApprovalRequestList{Requests: make([]apitypes.ApprovalRequest, 0, len(rs))}
	for _, a := range rs {
		out.Requests = append(out.Requests, requestView(a, ""))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showRequest(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	a, err := h.d.Approvals.GetRequest(r.Context(), who, r.PathValue("id"))
	if err != nil {
		return err
	}
	pem := ""
	if a.Serial != "" {
		if pem, err = h.certChainPEM(r, a.Serial); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, requestView(a, pem))
}

func (h *Handler) decide(approve bool) func(http.ResponseWriter, *http.Request, authz.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
		var d apitypes.Decision
		if err := h.decode(r, &d); err != nil {
			return err
		}
		id := r.PathValue("id")
		if !approve {
			a, err := h.d.Approvals.Reject(r.Context(), who, id, d.Comment)
			if err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, requestView(a, ""))
		}
		a, res, err := h.d.Approvals.Approve(r.Context(), who, id, d.Comment)
		if err != nil && a == nil {
			return err
		}
		pem := ""
		if res != nil && res.Cert != nil {
			if pem, err = h.certChainPEM(r, res.Cert.Serial); err != nil {
				return err
			}
		}
		// An approval whose issuance failed is answered with the request,
		// status failed and the reason: the decision itself stands.
		return writeJSON(w, http.StatusOK, requestView(a, pem))
	}
}
