package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ACMEAdmin is the operator side of ACME: provisioners, external account
// binding keys and ARI renewal (the client side is web/acmeapi's).
type ACMEAdmin interface {
	CreateProvisioner(ctx context.Context, p authz.Principal, spec acme.ProvisionerSpec) (*acme.Provisioner, error)
	ListProvisioners(ctx context.Context, p authz.Principal) ([]*acme.Provisioner, error)
	GetProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, error)
	CreateEABKey(ctx context.Context, p authz.Principal, prov, principal, description string) (*acme.EABKey, []byte, error)
	ListEABKeys(ctx context.Context, p authz.Principal, prov string) ([]*acme.EABKey, error)
	UpdateProvisioner(ctx context.Context, p authz.Principal, name string, u acme.ProvisionerUpdate) (*acme.Provisioner, []acme.Change, error)
	DisableProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, error)
	EnableProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, error)
	DeleteProvisioner(ctx context.Context, p authz.Principal, name string) (*acme.Provisioner, acme.DeleteCounts, error)
	RevokeEABKey(ctx context.Context, p authz.Principal, keyID string) (*acme.EABKey, bool, error)
	RenewNow(ctx context.Context, p authz.Principal, sel acme.RenewSelector) ([]string, error)
}

var _ ACMEAdmin = (*acme.Service)(nil)

func provisionerView(r *http.Request, p *acme.Provisioner) apitypes.Provisioner {
	v := apitypes.Provisioner{
		ID: p.ID, Name: p.Name, CAID: p.CAID, CA: p.CAName, Profile: p.Profile,
		Challenges: p.Challenges, AllowNames: p.AllowNames, RequireEAB: p.RequireEAB, AllowSubjectFields: p.AllowSubjectFields,
		TermsOfService: p.TermsOfService, Website: p.Website, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy,
		DirectoryURL: acme.DirectoryURL(r.Host, p.Name), Disabled: p.Disabled(), DisabledBy: p.DisabledBy,
	}
	if p.Disabled() {
		t := p.DisabledAt
		v.DisabledAt = &t
	}
	if v.Challenges == nil {
		v.Challenges = []string{}
	}
	if v.AllowNames == nil {
		v.AllowNames = []string{}
	}
	return v
}

func eabKeyView(k *acme.EABKey) apitypes.EABKey {
	v := apitypes.EABKey{
		ID: k.ID, ProvisionerID: k.ProvisionerID, PrincipalID: k.PrincipalID, Principal: k.PrincipalName,
		Description: k.Description, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, AccountID: k.AccountID,
	}
	if !k.BoundAt.IsZero() {
		t := k.BoundAt
		v.BoundAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		v.RevokedAt, v.RevokedBy = &t, k.RevokedBy
	}
	return v
}

func (h *Handler) createProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateProvisionerRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	prov, err := h.d.ACME.CreateProvisioner(r.Context(), p, acme.ProvisionerSpec{
		Name: strings.TrimSpace(req.Name), CA: req.CA, Profile: req.Profile,
		Challenges: req.Challenges, AllowNames: req.AllowNames, RequireEAB: req.RequireEAB,
		AllowSubjectFields: req.AllowSubjectFields, TermsOfService: req.TermsOfService, Website: req.Website,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, provisionerView(r, prov))
}

func (h *Handler) listProvisioners(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	provs, err := h.d.ACME.ListProvisioners(r.Context(), p)
	if err != nil {
		return err
	}
	out := apitypes.ProvisionerList{Provisioners: make([]apitypes.Provisioner, 0, len(provs))}
	for _, prov := range provs {
		out.Provisioners = append(out.Provisioners, provisionerView(r, prov))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	prov, err := h.d.ACME.GetProvisioner(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, provisionerView(r, prov))
}

func (h *Handler) createEABKey(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.CreateEABKeyRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	prov := r.PathValue("name")
	key, hmacKey, err := h.d.ACME.CreateEABKey(r.Context(), p, prov, strings.TrimSpace(req.Principal), req.Description)
	if err != nil {
		return err
	}
	principal := key.PrincipalName
	if principal == "" {
		principal = key.PrincipalID
	}
	// The HMAC key is shown this once; no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, apitypes.NewEABKey{
		KeyID: key.ID, HMACKey: base64.RawURLEncoding.EncodeToString(hmacKey),
		Provisioner: prov, Principal: principal, DirectoryURL: acme.DirectoryURL(r.Host, prov),
	})
}

func (h *Handler) listEABKeys(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	keys, err := h.d.ACME.ListEABKeys(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	out := apitypes.EABKeyList{Keys: make([]apitypes.EABKey, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, eabKeyView(k))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) renewNow(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.RenewNowRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	// The CA goes as given, ID or name: the Service resolves it.
	sel := acme.RenewSelector{Selector: inventory.Selector{
		CAID: strings.TrimSpace(req.CA), Profile: strings.TrimSpace(req.Profile),
		SAN: strings.TrimSpace(req.SAN), SPKISHA256: strings.ToLower(strings.TrimSpace(req.SPKISHA256)),
	}}
	if sel.SPKISHA256 != "" && !isHex(sel.SPKISHA256, 64) {
		return badInput("spki_sha256 %q: want 64 hex digits (SHA-256 of the SubjectPublicKeyInfo)", req.SPKISHA256)
	}
	if s := strings.TrimSpace(req.Serial); s != "" {
		serial, err := pki.NormalizeSerial(s)
		if err != nil {
			return badInput("serial: %v", err)
		}
		sel.Serial = serial
	}
	if sel.Empty() && sel.Serial == "" {
		return badInput("give at least one of ca, profile, san, spki_sha256 and serial")
	}
	serials, err := h.d.ACME.RenewNow(r.Context(), p, sel)
	if err != nil {
		return err
	}
	if serials == nil {
		serials = []string{}
	}
	return writeJSON(w, http.StatusOK, apitypes.RenewNowResult{Count: len(serials), Serials: serials})
}

func (h *Handler) updateProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.UpdateProvisionerRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	prov, changes, err := h.d.ACME.UpdateProvisioner(r.Context(), p, r.PathValue("name"), acme.ProvisionerUpdate{
		CA: req.CA, Profile: req.Profile, Challenges: req.Challenges, AllowNames: req.AllowNames,
		RequireEAB: req.RequireEAB, AllowSubjectFields: req.AllowSubjectFields,
		TermsOfService: req.TermsOfService, Website: req.Website,
	})
	if err != nil {
		return err
	}
	out := apitypes.UpdatedProvisioner{Provisioner: provisionerView(r, prov), Changes: make([]apitypes.ProvisionerChange, 0, len(changes))}
	for _, c := range changes {
		out.Changes = append(out.Changes, apitypes.ProvisionerChange{Field: c.Field, From: c.From, To: c.To})
	}
	return writeJSON(w, http.StatusOK, out)
}

// provisionerState serves disable and enable.
func (h *Handler) provisionerState(op func(ACMEAdmin, context.Context, authz.Principal, string) (*acme.Provisioner, error)) func(http.ResponseWriter, *http.Request, authz.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		prov, err := op(h.d.ACME, r.Context(), p, r.PathValue("name"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, provisionerView(r, prov))
	}
}

func (h *Handler) deleteProvisioner(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	prov, counts, err := h.d.ACME.DeleteProvisioner(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apitypes.DeletedProvisioner{
		Provisioner: provisionerView(r, prov), AccountsDeactivated: counts.Accounts, OrdersEnded: counts.Orders, EABKeysRevoked: counts.EABKeys,
	})
}

func (h *Handler) revokeEABKey(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	k, deactivated, err := h.d.ACME.RevokeEABKey(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apitypes.RevokedEABKey{EABKey: eabKeyView(k), AccountDeactivated: deactivated})
}
