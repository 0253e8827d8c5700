package console

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
)

// Bounds of what the ACME pages show of text an ACME client chose (a
// contact, an identifier) or a validation met (a remote server's error):
// html/template escapes it, these keep it from flooding the page.
const (
	maxContacts    = 5
	maxContactLen  = 120
	maxNamesShown  = 5
	maxNameLen     = 253
	maxProblemText = 300
)

// clip shortens s to at most n characters, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// provisionerRow is one provisioner as the ACME pages show it.
type provisionerRow struct {
	P                     *acme.Provisioner
	Path                  string // its page
	Directory             string
	CanDisable, CanEnable bool
	CSRF                  string // for the forms
}

type acmeView struct {
	Rows []provisionerRow
}

// accountRow is one account; Contact is clipped, MoreContacts the
// contacts left out; OrdersCapped: Orders is where counting stopped.
type accountRow struct {
	ID, Status            string
	Contact               []string
	MoreContacts          int
	Orders                int
	OrdersCapped          bool
	Created, LastActivity time.Time
}

type orderRow struct {
	ID, AccountID, Status string
	Names                 []string
	MoreNames             int
	Created               time.Time
	Serial                string
	Problem               string
}

type failureRow struct {
	At                                time.Time
	AccountID, Identifier, Type, Kind string
	Detail                            string
}

type acmeProvisionerView struct {
	Row      provisionerRow
	Accounts []accountRow
	Orders   []orderRow
	Failures []failureRow
	Limit    int
	// CertLinks: the viewer may read certificates, so an order's links
	// to its certificate.
	CertLinks     bool
	Notice, Error string
}

func (h *Handler) provisionerRow(r *http.Request, v *visit, p *acme.Provisioner) provisionerRow {
	manage := v.who.Allow(authz.PermCAManage, authz.Resource{CAID: p.CAID, CAName: p.CAName}) == nil
	return provisionerRow{P: p, Path: "/acme-provisioners/" + url.PathEscape(p.Name), Directory: acme.DirectoryURL(r.Host, p.Name), CanDisable: manage && !p.Disabled(), CanEnable: manage && p.Disabled(), CSRF: v.csrf}
}

// acmeProvisioners lists the provisioners whose CA the viewer's ca:read
// covers, with their settings and directory URL; a viewer whose
// ca:manage covers the CA gets the disable or enable button.
func (h *Handler) acmeProvisioners(w http.ResponseWriter, r *http.Request, v *visit) {
	all, ok := h.acmeKind().readable(h, w, r, v)
	if !ok {
		return
	}
	av := &acmeView{}
	for _, p := range all {
		av.Rows = append(av.Rows, h.provisionerRow(r, v, p))
	}
	h.render(w, r, http.StatusOK, "acme", v, av)
}

// acmeKind is how the ACME pages read and change provisioners.
func (h *Handler) acmeKind() provisioners[*acme.Provisioner] {
	return provisioners[*acme.Provisioner]{
		label: "ACME", base: "/acme-provisioners", list: h.d.ACME.ListProvisioners, get: h.d.ACME.GetProvisioner,
		enable: h.d.ACME.EnableProvisioner, disable: h.d.ACME.DisableProvisioner,
		facts: func(p *acme.Provisioner) (string, authz.Resource) {
			return p.Name, authz.Resource{CAID: p.CAID, CAName: p.CAName}
		},
		notFound: acme.ErrNotFound, conflict: acme.ErrConflict, stops: "its clients get no certificate until it is enabled.",
	}
}

// acmeProvisioner shows one provisioner with its newest accounts, orders
// and failed validations.
func (h *Handler) acmeProvisioner(w http.ResponseWriter, r *http.Request, v *visit) {
	notice := ""
	switch r.URL.Query().Get("changed") {
	case "disabled":
		notice = "The provisioner is disabled: it takes no new account, order, challenge response or finalization until enabled; revocation and renewal information go on."
	case "enabled":
		notice = "The provisioner is enabled."
	}
	h.showProvisioner(w, r, v, http.StatusOK, notice, "")
}

func (h *Handler) showProvisioner(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string) {
	p, ok := h.acmeKind().find(h, w, r, v)
	if !ok {
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	act, err := h.d.ACME.ProvisionerActivity(ctx, v.who, p.Name)
	if err != nil {
		h.acmeFailed(w, r, v, err)
		return
	}
	pv := &acmeProvisionerView{Row: h.provisionerRow(r, v, p), Limit: acme.ActivityLimit, CertLinks: v.who.Can(authz.PermCertRead),
		Notice: notice, Error: problem}
	for _, a := range act.Accounts {
		row := accountRow{ID: a.ID, Status: a.Status, Orders: a.Orders, OrdersCapped: a.Orders >= acme.OrderCountCap,
			Created: a.CreatedAt, LastActivity: a.LastActivity}
		for i, c := range a.Contact {
			if i == maxContacts {
				row.MoreContacts = len(a.Contact) - i
				break
			}
			row.Contact = append(row.Contact, clip(c, maxContactLen))
		}
		pv.Accounts = append(pv.Accounts, row)
	}
	for _, o := range act.Orders {
		row := orderRow{ID: o.ID, AccountID: o.AccountID, Status: o.Status, Created: o.CreatedAt, Serial: o.CertSerial,
			Problem: problemText(o.Error)}
		for i, id := range o.Identifiers {
			if i == maxNamesShown {
				row.MoreNames = len(o.Identifiers) - i
				break
			}
			row.Names = append(row.Names, clip(id.Value, maxNameLen))
		}
		pv.Orders = append(pv.Orders, row)
	}
	for _, f := range act.Failures {
		ident := f.Identifier.Value
		if f.Wildcard {
			ident = "*." + ident
		}
		row := failureRow{At: f.At, AccountID: f.AccountID, Identifier: clip(ident, maxNameLen), Type: f.Type}
		if f.Error != nil {
			row.Kind, row.Detail = string(f.Error.Type), problemText(f.Error)
		}
		pv.Failures = append(pv.Failures, row)
	}
	h.render(w, r, status, "acme_provisioner", v, pv)
}

// problemText is a problem document's detail for people, clipped; its
// subproblems are counted, not shown.
func problemText(p *acme.Problem) string {
	if p == nil {
		return ""
	}
	s := p.Detail
	if s == "" {
		s = string(p.Type)
	}
	if n := len(p.Subproblems); n > 0 {
		s += " (" + plural(n, "subproblem") + ")"
	}
	return clip(s, maxProblemText)
}

// acmeFailed answers an ACME call's error: refused, or unavailable.
func (h *Handler) acmeFailed(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	if errors.Is(err, authz.ErrForbidden) {
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: "Refused: " + publicReason(err)})
		return
	}
	h.unavailable(w, r, err)
}

// acmeChange disables or enables a provisioner through the ACME service,
// which checks ca:manage over its CA; disabling needs the confirmation.
func (h *Handler) acmeChange(enable bool) func(http.ResponseWriter, *http.Request, *visit) {
	return h.acmeKind().change(h, enable, func(w http.ResponseWriter, r *http.Request, v *visit, status int, msg string) {
		h.showProvisioner(w, r, v, status, "", msg)
	})
}
