package console

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/est"
	"github.com/certwright/certwright/internal/inventory"
)

// EST is the operator side of EST, the API's calls: each checks the
// principal itself (ca:read to read; ca:manage over the provisioner's CA
// to disable or enable it; cert:issue over its CA and profile for the
// device identity to create a one-time enrolment secret).
type EST interface {
	ListProvisioners(ctx context.Context, p authz.Principal) ([]*est.Provisioner, error)
	GetProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	DisableProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	EnableProvisioner(ctx context.Context, p authz.Principal, name string) (*est.Provisioner, error)
	// CreateSecret returns the secret this once; only its hash is kept.
	CreateSecret(ctx context.Context, p authz.Principal, prov, identity string, ttl time.Duration) (*est.Secret, string, error)
	ListSecrets(ctx context.Context, p authz.Principal, prov string) ([]*est.Secret, error)
}

var _ EST = (*est.Service)(nil)

// Bounds of the EST provisioner page: the newest certificates and
// secrets it shows.
const (
	estCertsShown   = 20
	estSecretsShown = 50
)

// estSecretTTLs are the lifetimes the secret form offers (est.MaxSecretTTL
// at most); the first is the default.
var estSecretTTLs = []struct{ Value, Label string }{
	{"24h", "1 day"}, {"1h", "1 hour"}, {"168h", "7 days"}, {"720h", "30 days"},
}

// estRow is one EST provisioner as its pages show it. Path is its page
// (the disable and enable forms post under it).
type estRow struct {
	P                     *est.Provisioner
	Path                  string
	URLs                  []string
	Auth, Identity, Grace string
	CanDisable, CanEnable bool
	CSRF                  string
}

type estView struct {
	Rows []estRow
}

// estSecretRow is one enrolment secret as the page lists it: never the
// secret, which only its hash stands for in the store.
type estSecretRow struct {
	Identity, CreatedBy, Status, Class, UsedFrom string
	Created, Expires, Used                       time.Time
}

// estNewSecret is the secret just created, shown once.
type estNewSecret struct {
	Identity, Secret string
	Expires          time.Time
}

type estProvisionerView struct {
	Row estRow
	// Bootstrap names the manufacturer CAs of the IDevIDs it takes.
	Bootstrap []string
	// Certs are the newest certificates enrolled through the provisioner
	// that the viewer's cert:read covers (CertLinks: it holds cert:read);
	// AllCerts is the inventory filtered on the provisioner.
	Certs     []certRow
	CertLinks bool
	AllCerts  string
	// Secrets are the newest enrolment secrets; SecretsTotal counts them
	// all. CanSecret: the form to create one is shown; TTLs are its
	// lifetimes.
	Secrets      []estSecretRow
	SecretsTotal int
	CanSecret    bool
	TTLs         []struct{ Value, Label string }
	// Identity is the form's identity, kept when it was refused.
	Identity      string
	NewSecret     *estNewSecret
	Limit         int
	Notice, Error string
}

// estURLs are the base URLs devices enrol at: the provisioner's own path
// and, for the one named est.DefaultProvisioner, the unlabelled path too.
func estURLs(host, name string) []string {
	urls := []string{"https://" + host + "/.well-known/est/" + url.PathEscape(name) + "/"}
	if name == est.DefaultProvisioner {
		urls = append(urls, "https://"+host+"/.well-known/est/")
	}
	return urls
}

// estAuthText says how a provisioner's devices authenticate.
var estAuthText = map[string]string{
	est.AuthClientCert: "IDevID client certificate",
	est.AuthBasic:      "one-time secret (HTTP Basic)",
	est.AuthAny:        "IDevID client certificate or one-time secret",
	est.AuthBoth:       "IDevID client certificate and one-time secret",
}

// estIdentityText says where the identity of an IDevID comes from.
func estIdentityText(from string) string {
	if pat, ok := strings.CutPrefix(from, est.IdentitySANPrefix); ok {
		return "first DNS name matching " + pat
	}
	if suffix, ok := strings.CutPrefix(from, est.IdentitySerialPrefix); ok {
		return "subject serial number, as a name under " + suffix
	}
	if from == est.IdentitySerial {
		return "subject serial number"
	}
	return from
}

func (h *Handler) estRow(r *http.Request, v *visit, p *est.Provisioner) estRow {
	manage := v.who.Allow(authz.PermCAManage, authz.Resource{CAID: p.CAID, CAName: p.CAName}) == nil
	grace := "none"
	if p.ReenrollGrace > 0 {
		grace = span(p.ReenrollGrace)
	}
	return estRow{P: p, Path: "/est-provisioners/" + url.PathEscape(p.Name), URLs: estURLs(r.Host, p.Name),
		Auth: cmp.Or(estAuthText[p.Auth], p.Auth), Identity: estIdentityText(p.IdentityFrom), Grace: grace,
		CanDisable: manage && !p.Disabled(), CanEnable: manage && p.Disabled(), CSRF: v.csrf}
}

// estProvisioners lists the EST provisioners whose CA the viewer's
// ca:read covers; a viewer whose ca:manage covers the CA gets the disable
// or enable button.
func (h *Handler) estProvisioners(w http.ResponseWriter, r *http.Request, v *visit) {
	all, ok := h.estKind().readable(h, w, r, v)
	if !ok {
		return
	}
	ev := &estView{}
	for _, p := range all {
		ev.Rows = append(ev.Rows, h.estRow(r, v, p))
	}
	h.render(w, r, http.StatusOK, "est", v, ev)
}

// estKind is how the EST pages read and change provisioners.
func (h *Handler) estKind() provisioners[*est.Provisioner] {
	return provisioners[*est.Provisioner]{
		label: "EST", base: "/est-provisioners", list: h.d.EST.ListProvisioners, get: h.d.EST.GetProvisioner,
		enable: h.d.EST.EnableProvisioner, disable: h.d.EST.DisableProvisioner,
		facts: func(p *est.Provisioner) (string, authz.Resource) {
			return p.Name, authz.Resource{CAID: p.CAID, CAName: p.CAName}
		},
		notFound: est.ErrNotFound, conflict: est.ErrConflict, stops: "its devices cannot enrol until it is enabled.",
	}
}

// estProvisioner shows one provisioner with its enrolment URLs, the
// newest certificates devices enrolled through it and its secrets.
func (h *Handler) estProvisioner(w http.ResponseWriter, r *http.Request, v *visit) {
	notice := ""
	switch r.URL.Query().Get("changed") {
	case "disabled":
		notice = "The provisioner is disabled: it enrols no device until enabled; cacerts and csrattrs go on."
	case "enabled":
		notice = "The provisioner is enabled."
	}
	h.showEST(w, r, v, http.StatusOK, notice, "", nil)
}

func (h *Handler) showEST(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string, created *estNewSecret) {
	p, ok := h.estKind().find(h, w, r, v)
	if !ok {
		return
	}
	pv := &estProvisionerView{Row: h.estRow(r, v, p), Bootstrap: est.BootstrapSummary(p.BootstrapPEM), CertLinks: v.who.Can(authz.PermCertRead), Limit: estCertsShown,
		CanSecret: p.Auth != est.AuthClientCert && mayIssueOn(v.who, p), TTLs: estSecretTTLs,
		NewSecret: created, Notice: notice, Error: problem}
	if problem != "" {
		pv.Identity = strings.TrimSpace(r.PostFormValue("identity"))
	}
	q := url.Values{"requester": {"est:" + p.Name}, "sort": {inventory.OrderIssued.Name()}, "dir": {"desc"}}
	pv.AllCerts = "/certificates?" + q.Encode()
	ctx, cancel := h.storeContext(r)
	defer cancel()
	secrets, err := h.d.EST.ListSecrets(ctx, v.who, p.Name)
	if err != nil {
		h.acmeFailed(w, r, v, err)
		return
	}
	pv.SecretsTotal = len(secrets)
	slices.SortStableFunc(secrets, func(a, b *est.Secret) int { return b.CreatedAt.Compare(a.CreatedAt) })
	now := h.d.Clock.Now()
	for _, s := range secrets[:min(len(secrets), estSecretsShown)] {
		row := estSecretRow{Identity: s.Identity, CreatedBy: s.CreatedBy, Created: s.CreatedAt, Expires: s.ExpiresAt,
			Used: s.UsedAt, UsedFrom: s.UsedFrom, Status: "unused", Class: "ok"}
		switch {
		case !s.UsedAt.IsZero():
			row.Status, row.Class = "used", "used"
		case !now.Before(s.ExpiresAt):
			row.Status, row.Class = "expired", "expired"
		}
		pv.Secrets = append(pv.Secrets, row)
	}
	if pv.CertLinks {
		if pv.Certs, err = h.estCerts(ctx, r, v, p, now); err != nil {
			h.unavailable(w, r, err)
			return
		}
	}
	h.render(w, r, status, "est_provisioner", v, pv)
}

// estCerts are the newest certificates p enrolled that the viewer's
// cert:read covers. The requester is the provisioner's principal, "est:"
// and its name; its ID tells p from an earlier provisioner of that name.
func (h *Handler) estCerts(ctx context.Context, r *http.Request, v *visit, p *est.Provisioner, now time.Time) ([]certRow, error) {
	names, err := h.caNames(r)
	if err != nil {
		return nil, err
	}
	var rows []certRow
	f := inventory.Filter{Requester: "est:" + p.Name, Order: inventory.OrderIssued, Desc: true, Limit: estCertsShown}
	_, err = inventory.ScanVisible(ctx, h.d.Inventory.ListCertificates, f, inventory.ScanLimits{Page: inventory.ScanPage, Max: inventory.ScanMax}, func(c *inventory.Certificate) bool {
		if c.RequesterID != "est:"+p.ID || v.who.Allow(authz.PermCertRead, c.Resource(names[c.CAID])) != nil {
			return false
		}
		rows = append(rows, h.row(c, names, now))
		return true
	})
	return rows, err
}

// mayIssueOn reports whether one of who's cert:issue bindings covers p's
// CA and profile: then the secret form is shown, and the core checks the
// identity against the binding's names when it is posted.
func mayIssueOn(who authz.Principal, p *est.Provisioner) bool {
	res := authz.Resource{CAID: p.CAID, CAName: p.CAName, Profile: p.Profile}
	for _, b := range who.Bindings {
		b.Scope.Names = nil
		if (authz.Principal{Bindings: []authz.Binding{b}}).Allow(authz.PermCertIssue, res) == nil {
			return true
		}
	}
	return false
}

// estChange disables or enables a provisioner through the EST service,
// which checks ca:manage over its CA; disabling needs the confirmation.
func (h *Handler) estChange(enable bool) func(http.ResponseWriter, *http.Request, *visit) {
	return h.estKind().change(h, enable, func(w http.ResponseWriter, r *http.Request, v *visit, status int, msg string) {
		h.showEST(w, r, v, status, "", msg, nil)
	})
}

// createESTSecret creates a one-time enrolment secret through the EST
// service (which checks cert:issue over the provisioner's CA and profile
// for the identity, and audits the creation without the secret) and
// shows it this once, in the answer to the POST: never in a URL, and no
// cache may keep the page.
func (h *Handler) createESTSecret(w http.ResponseWriter, r *http.Request, v *visit) {
	p, ok := h.estKind().find(h, w, r, v)
	if !ok {
		return
	}
	refuse := func(status int, msg string) { h.showEST(w, r, v, status, "", msg, nil) }
	ttlText := r.PostFormValue("ttl")
	i := slices.IndexFunc(estSecretTTLs, func(t struct{ Value, Label string }) bool { return t.Value == ttlText })
	if i < 0 {
		refuse(http.StatusBadRequest, "Choose how long the secret stays valid: 1 hour, 1 day, 7 days or 30 days.")
		return
	}
	ttl, _ := time.ParseDuration(estSecretTTLs[i].Value)
	ctx, cancel := h.storeContext(r)
	defer cancel()
	sec, secret, err := h.d.EST.CreateSecret(ctx, v.who, p.Name, strings.TrimSpace(r.PostFormValue("identity")), ttl)
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		refuse(http.StatusForbidden, "Refused: "+publicReason(err))
		return
	case errors.Is(err, est.ErrInvalid):
		refuse(http.StatusBadRequest, userReason(err))
		return
	case errors.Is(err, est.ErrNotFound):
		h.render(w, r, http.StatusNotFound, "error", v, h.estKind().notFoundPage())
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.showEST(w, r, v, http.StatusCreated, "", "", &estNewSecret{Identity: sec.Identity, Secret: secret, Expires: sec.ExpiresAt})
}
