package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/est"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ESTAdmin is the operator side of EST (the device side is web/estapi's).
type ESTAdmin interface {
	CreateProvisioner(ctx context.Context, p authz.Principal, spec est.ProvisionerSpec) (*est.Provisioner, error)
	ListProvisioners(ctx context.Context, p authz.Principal) ([]*est.Provisioner, error)
	GetProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	UpdateProvisioner(ctx context.Context, p authz.Principal, name string, u est.ProvisionerUpdate) (*est.Provisioner, []est.Change, error)
	DisableProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	EnableProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	DeleteProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	CreateSecret(ctx context.Context, p authz.Principal, prov, identity string, ttl time.Duration) (*est.Secret, string, error)
	ListSecrets(ctx context.Context, p authz.Principal, prov string) ([]*est.Secret, error)
	RevokeSecret(ctx context.Context, p authz.Principal, prov, id string) (*est.Secret, error)
}

var _ ESTAdmin = (*est.Service)(nil)

// estRoutes are registered when EST is wired. Reading needs ca:read;
// changing a provisioner ca:manage over its CA; a secret, cert:issue over
// what the device will get (the core checks the scopes).
func (h *Handler) estRoutes() []Route {
	if h.d.EST == nil {
		return nil
	}
	const caRead, caManage = authz.PermCARead, authz.PermCAManage
	return []Route{
		route("POST", "/api/v1/est/provisioners", "est.provisioner.create", h.createESTProvisioner, caManage),
		route("GET", "/api/v1/est/provisioners", "est.provisioner.list", h.listESTProvisioners, caRead),
		route("GET", "/api/v1/est/provisioners/{name}", "est.provisioner.show", h.showESTProvisioner, caRead),
		route("PATCH", "/api/v1/est/provisioners/{name}", "est.provisioner.update", h.updateESTProvisioner, caManage),
		route("POST", "/api/v1/est/provisioners/{name}/disable", "est.provisioner.disable", h.estState(ESTAdmin.DisableProvisioner), caManage),
		route("POST", "/api/v1/est/provisioners/{name}/enable", "est.provisioner.enable", h.estState(ESTAdmin.EnableProvisioner), caManage),
		route("DELETE", "/api/v1/est/provisioners/{name}", "est.provisioner.delete", h.estState(ESTAdmin.DeleteProvisioner), caManage),
		route("POST", "/api/v1/est/provisioners/{name}/secrets", "est.secret.create", h.createESTSecret, authz.PermCertIssue),
		route("GET", "/api/v1/est/provisioners/{name}/secrets", "est.secret.list", h.listESTSecrets, caRead),
		route("POST", "/api/v1/est/provisioners/{name}/secrets/{id}/revoke", "est.secret.revoke", h.revokeESTSecret, authz.PermCertIssue),
	}
}

// ESTURL is where devices find provisioner name on host: the unlabelled
// path for the default provisioner.
func ESTURL(host, name string) string {
	if name == est.DefaultProvisioner {
		return "https://" + host + "/.well-known/est/"
	}
	return "https://" + host + "/.well-known/est/" + url.PathEscape(name) + "/"
}

func estView(r *http.Request, p *est.Provisioner) apitypes.ESTProvisioner {
	v := apitypes.ESTProvisioner{
		ID: p.ID, Name: p.Name, CAID: p.CAID, CA: p.CAName, Profile: p.Profile, Auth: p.Auth,
		BootstrapCAs: est.BootstrapSummary(p.BootstrapPEM), IdentityFrom: p.IdentityFrom, ServerKeyGen: p.ServerKeyGen,
		ReenrollGrace: p.ReenrollGrace.String(), URL: ESTURL(r.Host, p.Name),
		CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy, Disabled: p.Disabled(), DisabledBy: p.DisabledBy,
		AllowedIdentities: p.AllowedIdentities,
	}
	if p.Disabled() {
		t := p.DisabledAt
		v.DisabledAt = &t
	}
	return v
}

// parseDuration reads an optional Go duration field.
func parseDuration(field, s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, badInput("%s %q: give a duration such as 24h or 168h", field, s)
	}
	return d, nil
}

func (h *Handler) createESTProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateESTProvisionerRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	grace, err := parseDuration("reenroll_grace", req.ReenrollGrace)
	if err != nil {
		return err
	}
	prov, err := h.d.EST.CreateProvisioner(r.Context(), p, est.ProvisionerSpec{
		Name: strings.TrimSpace(req.Name), CA: req.CA, Profile: req.Profile, Auth: req.Auth, BootstrapPEM: req.BootstrapPEM,
		IdentityFrom: req.IdentityFrom, ServerKeyGen: req.ServerKeyGen, ReenrollGrace: grace, AllowedIdentities: req.AllowedIdentities,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, estView(r, prov))
}

func (h *Handler) listESTProvisioners(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	provs, err := h.d.EST.ListProvisioners(r.Context(), p)
	if err != nil {
		return err
	}
	out := apitypes.ESTProvisionerList{Provisioners: make([]apitypes.ESTProvisioner, 0, len(provs))}
	for _, prov := range provs {
		out.Provisioners = append(out.Provisioners, estView(r, prov))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showESTProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	prov, err := h.d.EST.GetProvisioner(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, estView(r, prov))
}

func (h *Handler) updateESTProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.UpdateESTProvisionerRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	u := est.ProvisionerUpdate{CA: req.CA, Profile: req.Profile, Auth: req.Auth, BootstrapPEM: req.BootstrapPEM,
		IdentityFrom: req.IdentityFrom, ServerKeyGen: req.ServerKeyGen, AllowedIdentities: req.AllowedIdentities}
	if req.ReenrollGrace != nil {
		g, err := parseDuration("reenroll_grace", *req.ReenrollGrace)
		if err != nil {
			return err
		}
		u.ReenrollGrace = &g
	}
	prov, changes, err := h.d.EST.UpdateProvisioner(r.Context(), p, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	out := apitypes.UpdatedESTProvisioner{Provisioner: estView(r, prov), Changes: make([]apitypes.ProvisionerChange, 0, len(changes))}
	for _, c := range changes {
		out.Changes = append(out.Changes, apitypes.ProvisionerChange{Field: c.Field, From: c.From, To: c.To})
	}
	return writeJSON(w, http.StatusOK, out)
}

// estState serves disable, enable and delete.
func (h *Handler) estState(op func(ESTAdmin, context.Context, authz.Principal, string) (*est.Provisioner, error)) func(http.ResponseWriter, *http.Request, authz.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		prov, err := op(h.d.EST, r.Context(), p, r.PathValue("name"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, estView(r, prov))
	}
}

func (h *Handler) createESTSecret(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateESTSecretRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	ttl, err := parseDuration("ttl", req.TTL)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	sec, secret, err := h.d.EST.CreateSecret(r.Context(), p, name, strings.TrimSpace(req.Identity), ttl)
	if err != nil {
		return err
	}
	// The secret is shown this once; no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, apitypes.NewESTSecret{
		ID: sec.ID, Provisioner: name, Identity: sec.Identity, Secret: secret, ExpiresAt: sec.ExpiresAt, URL: ESTURL(r.Host, name),
	})
}

func (h *Handler) revokeESTSecret(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	sec, err := h.d.EST.RevokeSecret(r.Context(), p, r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, estSecretView(sec, h.d.Clock.Now()))
}

// estSecretView is a stored secret as the API shows it.
func estSecretView(s *est.Secret, now time.Time) apitypes.ESTSecret {
	v := apitypes.ESTSecret{ID: s.ID, Identity: s.Identity, CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy, ExpiresAt: s.ExpiresAt, UsedFrom: s.UsedFrom, Status: "unused"}
	switch {
	case !s.RevokedAt.IsZero():
		t := s.RevokedAt
		v.RevokedAt, v.RevokedBy, v.Status = &t, s.RevokedBy, "revoked"
	case !s.UsedAt.IsZero():
		t := s.UsedAt
		v.UsedAt, v.Status = &t, "used"
	case !now.Before(s.ExpiresAt):
		v.Status = "expired"
	}
	return v
}

func (h *Handler) listESTSecrets(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	secs, err := h.d.EST.ListSecrets(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	now := h.d.Clock.Now()
	out := apitypes.ESTSecretList{Secrets: make([]apitypes.ESTSecret, 0, len(secs))}
	for _, s := range secs {
		out.Secrets = append(out.Secrets, estSecretView(s, now))
	}
	return writeJSON(w, http.StatusOK, out)
}
