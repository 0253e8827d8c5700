package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// SCEPAdmin is the operator side of SCEP: provisioners and one-time
// challenges (the device side is web/scepweb's).
type SCEPAdmin interface {
	CreateProvisioner(ctx context.Context, p authz.Principal, spec scep.ProvisionerSpec) (*scep.Provisioner, error)
	ListProvisioners(ctx context.Context, p authz.Principal) ([]*scep.Provisioner, error)
	GetProvisioner(ctx context.Context, p authz.Principal, name string) (*scep.Provisioner, error)
	UpdateProvisioner(ctx context.Context, p authz.Principal, name string, u scep.Update) (*scep.Provisioner, error)
	DeleteProvisioner(ctx context.Context, p authz.Principal, name string) (*scep.Provisioner, error)
	CreateChallenge(ctx context.Context, p authz.Principal, name string, ttl time.Duration, identity string) (*scep.NewChallenge, error)
	RotateRA(ctx context.Context, p authz.Principal, name string) (*scep.Provisioner, error)
	RAExpiry(ctx context.Context, prov *scep.Provisioner) (time.Time, error)
}

var _ SCEPAdmin = (*scep.Service)(nil)

// scepRoutes are the SCEP administration routes.
func (h *Handler) scepRoutes() []Route {
	const caRead, caManage = authz.PermCARead, authz.PermCAManage
	return []Route{
		route("POST", "/api/v1/scep/provisioners", "scep.provisioner.create", h.createSCEPProvisioner, caManage),
		route("GET", "/api/v1/scep/provisioners", "scep.provisioner.list", h.listSCEPProvisioners, caRead),
		route("GET", "/api/v1/scep/provisioners/{name}", "scep.provisioner.show", h.showSCEPProvisioner, caRead),
		route("PATCH", "/api/v1/scep/provisioners/{name}", "scep.provisioner.update", h.updateSCEPProvisioner, caManage),
		route("POST", "/api/v1/scep/provisioners/{name}/disable", "scep.provisioner.disable", h.scepState(true), caManage),
		route("POST", "/api/v1/scep/provisioners/{name}/enable", "scep.provisioner.enable", h.scepState(false), caManage),
		route("DELETE", "/api/v1/scep/provisioners/{name}", "scep.provisioner.delete", h.deleteSCEPProvisioner, caManage),
		route("POST", "/api/v1/scep/provisioners/{name}/rotate-ra", "scep.ra.rotate", h.rotateSCEPRA, caManage),
		route("POST", "/api/v1/scep/provisioners/{name}/challenges", "scep.challenge.create", h.createSCEPChallenge, authz.PermCertIssue),
	}
}

// scepURL is where devices reach provisioner name: the plain-HTTP base
// relying parties use, as SCEP runs over HTTP.
func (h *Handler) scepURL(r *http.Request, name string) string {
	base := strings.TrimRight(h.d.PublicHTTPURL, "/")
	if base == "" {
		base = "https://" + r.Host
	}
	return base + "/scep/" + url.PathEscape(name)
}

func (h *Handler) scepView(r *http.Request, p *scep.Provisioner) apitypes.SCEPProvisioner {
	return apitypes.SCEPProvisioner{
		ID: p.ID, Name: p.Name, CAID: p.CAID, CA: p.CAName, Profile: p.Profile, Challenge: p.Challenge,
		AllowLegacyCrypto: p.AllowLegacyCrypto, Principal: p.PrincipalName, RASerial: p.RASerial, RASHA256: p.RASHA256, URL: h.scepURL(r, p.Name),
		CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy, Disabled: p.Disabled(), DisabledAt: p.DisabledAt, DisabledBy: p.DisabledBy,
	}
}

func (h *Handler) createSCEPProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateSCEPProvisionerRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	spec := scep.ProvisionerSpec{Name: strings.TrimSpace(req.Name), CA: req.CA, Profile: req.Profile, Challenge: req.Challenge,
		AllowLegacyCrypto: req.AllowLegacyCrypto}
	if req.StaticChallenge != "" {
		spec.StaticSecret = []byte(req.StaticChallenge)
	}
	prov, err := h.d.SCEP.CreateProvisioner(r.Context(), p, spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, h.scepView(r, prov))
}

func (h *Handler) listSCEPProvisioners(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	provs, err := h.d.SCEP.ListProvisioners(r.Context(), p)
	if err != nil {
		return err
	}
	out := apitypes.SCEPProvisionerList{Provisioners: make([]apitypes.SCEPProvisioner, 0, len(provs))}
	for _, prov := range provs {
		out.Provisioners = append(out.Provisioners, h.scepView(r, prov))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showSCEPProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	prov, err := h.d.SCEP.GetProvisioner(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return h.writeSCEPWithRA(w, r, prov)
}

func (h *Handler) rotateSCEPRA(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	prov, err := h.d.SCEP.RotateRA(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return h.writeSCEPWithRA(w, r, prov)
}

// writeSCEPWithRA answers with prov and when its RA certificate expires.
func (h *Handler) writeSCEPWithRA(w http.ResponseWriter, r *http.Request, prov *scep.Provisioner) error {
	notAfter, err := h.d.SCEP.RAExpiry(r.Context(), prov)
	if err != nil {
		return err
	}
	v := h.scepView(r, prov)
	v.RANotAfter = &notAfter
	return writeJSON(w, http.StatusOK, v)
}

func (h *Handler) updateSCEPProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.UpdateSCEPProvisionerRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	u := scep.Update{Profile: req.Profile, AllowLegacyCrypto: req.AllowLegacyCrypto}
	if req.StaticChallenge != nil {
		u.StaticSecret = []byte(*req.StaticChallenge)
	}
	prov, err := h.d.SCEP.UpdateProvisioner(r.Context(), p, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.scepView(r, prov))
}

// scepState serves disable (true) and enable (false).
func (h *Handler) scepState(disable bool) func(http.ResponseWriter, *http.Request, authz.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		prov, err := h.d.SCEP.UpdateProvisioner(r.Context(), p, r.PathValue("name"), scep.Update{Disabled: &disable})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, h.scepView(r, prov))
	}
}

func (h *Handler) deleteSCEPProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	prov, err := h.d.SCEP.DeleteProvisioner(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h.scepView(r, prov))
}

func (h *Handler) createSCEPChallenge(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateSCEPChallengeRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return badInput("ttl %q: want a duration such as 1h or 30m", req.TTL)
		}
		ttl = d
	}
	name := r.PathValue("name")
	c, err := h.d.SCEP.CreateChallenge(r.Context(), p, name, ttl, strings.TrimSpace(req.Identity))
	if err != nil {
		return err
	}
	// The challenge is shown this once; no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, apitypes.SCEPChallenge{
		Challenge: c.Challenge, ID: c.ID, Provisioner: name, Identity: c.Identity, ExpiresAt: c.ExpiresAt, URL: h.scepURL(r, name), RASHA256: c.RASHA256,
	})
}
