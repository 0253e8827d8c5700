package console

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inspect"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// caRow is one CA as the CA page shows it, at its depth in the hierarchy.
type caRow struct {
	CA    *ca.CA
	Depth int
	caHealth
	Subject, KeyAlg       string
	Issued                int
	Constraints           []string
	CanDisable, CanEnable bool
}

// caExpiryWarn is how near its expiry a CA is flagged: the default CA
// alert thresholds' second one (lifecycle's 180, 90, 30 and 7 days).
const caExpiryWarn = 90 * 24 * time.Hour

// caHealth is a CA's expiry and how current its revocation data is, as
// the CA page and the overview's CA health show them.
type caHealth struct {
	HasCert  bool
	NotAfter time.Time
	// ExpiresSoon: within caExpiryWarn (or expired).
	ExpiresSoon bool
	// Rev is how current the CA's revocation data is (nil: not loaded by
	// the revocation service yet); CRLStale and OCSPStale: its refresh
	// failed or is late, as the stale-revocation alert judges it.
	Rev                 *revoke.Freshness
	CRLStale, OCSPStale bool
}

// revocationState is the revocation service's freshness of each CA, by
// CA ID (memory only).
func (h *Handler) revocationState() map[string]*revoke.Freshness {
	fresh := map[string]*revoke.Freshness{}
	for _, f := range h.d.Revoker.Freshness() {
		fresh[f.CAID] = &f
	}
	return fresh
}

// healthOf is c's health at now; cert is its parsed certificate (nil:
// none yet).
func healthOf(c *ca.CA, cert *x509.Certificate, fresh map[string]*revoke.Freshness, now time.Time) caHealth {
	var hl caHealth
	if cert != nil {
		hl.HasCert, hl.NotAfter = true, cert.NotAfter
		hl.ExpiresSoon = cert.NotAfter.Sub(now) < caExpiryWarn
	}
	if f := fresh[c.ID]; f != nil {
		hl.Rev = f
		hl.CRLStale, hl.OCSPStale = f.Stale(now, revoke.StaleGrace)
	}
	return hl
}

// caNode is a CA at its depth in the hierarchy.
type caNode struct {
	CA    *ca.CA
	Depth int
}

// caTree orders all as the hierarchy reads: each root, then each CA under
// its parent (a CA whose parent is unknown counts as a root).
func caTree(all []*ca.CA) []caNode {
	children := map[string][]*ca.CA{}
	var roots []*ca.CA
	byID := map[string]bool{}
	for _, c := range all {
		byID[c.ID] = true
	}
	for _, c := range all {
		if c.ParentID == "" || !byID[c.ParentID] {
			roots = append(roots, c)
		} else {
			children[c.ParentID] = append(children[c.ParentID], c)
		}
	}
	var out []caNode
	var walk func(c *ca.CA, depth int)
	walk = func(c *ca.CA, depth int) {
		out = append(out, caNode{CA: c, Depth: depth})
		for _, k := range children[c.ID] {
			walk(k, depth+1)
		}
	}
	for _, c := range roots {
		walk(c, 0)
	}
	return out
}

type casView struct {
	Rows          []caRow
	Notice, Error string
	// Create is the form creating an intermediate, for a viewer whose
	// ca:manage covers a CA that can sign one (nil: none).
	Create *intermediateForm
}

// cas shows the CA hierarchy the viewer's ca:read covers, roots first and
// each CA under its parent, with status, key, validity, name constraints
// and how many certificates it issued; a viewer whose ca:manage covers a CA
// gets its disable or enable button, and the form creating an
// intermediate under it.
func (h *Handler) cas(w http.ResponseWriter, r *http.Request, v *visit) {
	notice := ""
	switch q := r.URL.Query(); q.Get("changed") {
	case "disabled":
		notice = "The CA is disabled: it issues nothing until enabled; its CRL and OCSP keep being served."
	case "enabled":
		notice = "The CA is enabled."
	case "created":
		// The link names the CA; the notice names it only when it is
		// one the viewer can read, so a crafted link announces nothing.
		if c := h.readableCA(r, v, q.Get("ca")); c != nil {
			notice = "Intermediate CA " + c.Name + " is created and issues from now on."
		}
	}
	h.showCAs(w, r, v, http.StatusOK, notice, "", nil)
}

// showCAs renders the CA page; form, when not nil, is the intermediate
// form as posted (shown again with a problem).
func (h *Handler) showCAs(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string, form *intermediateForm) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	all, err := h.d.CAs.List(ctx)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	issued, err := h.d.Inventory.CountsByCA(ctx)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	fresh := h.revocationState()
	now := h.d.Clock.Now()
	cv := &casView{Notice: notice, Error: problem}
	var parents []string
	for _, n := range caTree(all) {
		c := n.CA
		res := authz.Resource{CAID: c.ID, CAName: c.Name}
		if v.who.Allow(authz.PermCARead, res) != nil {
			continue
		}
		row := caRow{CA: c, Depth: n.Depth, Issued: issued[c.ID]}
		cert, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			cert = nil
		}
		row.caHealth = healthOf(c, cert, fresh, now)
		if cert != nil {
			row.Subject = cert.Subject.String()
			fam, bits, _ := pki.DescribeKey(cert.PublicKey)
			row.KeyAlg = string(fam)
			if bits > 0 {
				row.KeyAlg += " " + strconv.Itoa(bits)
			}
			row.Constraints = inspect.NameConstraintsOf(cert).Lines()
		}
		manage := v.who.Allow(authz.PermCAManage, res) == nil
		row.CanDisable = manage && c.Status == ca.StatusActive
		row.CanEnable = manage && c.Status == ca.StatusDisabled
		// A parent the core would take: managed by the viewer, issuing,
		// unexpired and allowing a CA below it (ca.CheckChild, the
		// core's check, with the default path length).
		if manage && c.CanIssue() == nil && cert != nil && now.Before(cert.NotAfter) && ca.CheckChild(cert, ca.DefaultIntermediatePathLen, cert.NotAfter) == nil {
			parents = append(parents, c.Name)
		}
		cv.Rows = append(cv.Rows, row)
	}
	if len(parents) > 0 {
		if form == nil {
			form = newIntermediateForm()
		}
		form.Parents, form.KeyAlgs = parents, pki.KeyAlgorithms()
		cv.Create = form
	}
	h.render(w, r, status, "cas", v, cv)
}

// readableCA returns CA name if it exists and v's principal may read it,
// else nil (a store error too: the caller only drops a notice).
func (h *Handler) readableCA(r *http.Request, v *visit, name string) *ca.CA {
	if name == "" || len(name) > 100 {
		return nil
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	c, err := h.d.CAs.Get(ctx, name)
	if err != nil || v.who.Allow(authz.PermCARead, authz.Resource{CAID: c.ID, CAName: c.Name}) != nil {
		return nil
	}
	return c
}

// caCertificate downloads a CA's certificate.
func (h *Handler) caCertificate(w http.ResponseWriter, r *http.Request, v *visit) {
	c := h.findCA(w, r, v)
	if c == nil {
		return
	}
	if len(c.CertDER) == 0 {
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "No certificate", Message: "This CA has no certificate yet (it waits for its external signature)."})
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Name+`.pem"`)
	_, _ = w.Write(pki.CertPEM(c.CertDER))
}

// caCRL downloads a CA's current CRL, as the CRL distribution point
// serves it.
func (h *Handler) caCRL(w http.ResponseWriter, r *http.Request, v *visit) {
	c := h.findCA(w, r, v)
	if c == nil {
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	crl, err := h.d.Revoker.CRL(ctx, c.ID)
	if errors.Is(err, revoke.ErrNoCA) {
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "No CRL", Message: "This CA has no CRL: it issues nothing yet."})
		return
	}
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Name+`.crl"`)
	_, _ = w.Write(crl.DER)
}

// findCA returns the CA in the path if v's principal may read it, else
// answers 404 (unknown and out of scope alike) and returns nil.
func (h *Handler) findCA(w http.ResponseWriter, r *http.Request, v *visit) *ca.CA {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	name := r.PathValue("name")
	c, err := h.d.CAs.Get(ctx, name)
	if err != nil && !errors.Is(err, authz.ErrNotFound) {
		h.unavailable(w, r, err)
		return nil
	}
	// By name only, as the pages link to it.
	if err != nil || c.Name != name || v.who.Allow(authz.PermCARead, authz.Resource{CAID: c.ID, CAName: c.Name}) != nil {
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "CA not found", Message: "There is no CA of this name that you may see."})
		return nil
	}
	return c
}

// caChange disables or enables a CA through the CA manager, which checks
// ca:manage over it; disabling needs the form's confirmation.
func (h *Handler) caChange(enable bool) func(http.ResponseWriter, *http.Request, *visit) {
	return func(w http.ResponseWriter, r *http.Request, v *visit) {
		c := h.findCA(w, r, v)
		if c == nil {
			return
		}
		h.toggle(w, r, v, enable, stateChange{
			Unconfirmed: "Tick the confirmation to disable " + c.Name + ": it stops issuing at once.",
			Conflict:    ca.ErrTransition,
			Show:        func(status int, msg string) { h.showCAs(w, r, v, status, "", msg, nil) },
			Done:        "/cas",
			Run: func(ctx context.Context) (err error) {
				if enable {
					_, err = h.d.CAs.Enable(ctx, v.who, c.Name)
				} else {
					_, err = h.d.CAs.Disable(ctx, v.who, c.Name)
				}
				return err
			},
		})
	}
}

// stateChange is a disable or enable form's change of one CA or
// provisioner, found already (see toggle).
type stateChange struct {
	// Unconfirmed says why disabling needs the form's confirmation.
	Unconfirmed string
	// Run makes the change through the core, which checks the viewer's
	// permission over the target itself.
	Run func(ctx context.Context) error
	// Conflict is the core's error for a change the target's state does
	// not allow (a 409); NotFound, when set, its error for a target gone
	// meanwhile (a 404 with NotFoundPage).
	Conflict, NotFound error
	NotFoundPage       errorPage
	// Show answers a refusal on the page the form was on.
	Show func(status int, msg string)
	// Done is where the browser goes after the change, with
	// ?changed=disabled or enabled.
	Done string
}

// toggle runs a disable (enable false) or enable form's change: disabling
// needs the confirmation; a refusal is a 403 naming the rule and a
// conflict a 409 with the core's reason, both shown by c.Show.
func (h *Handler) toggle(w http.ResponseWriter, r *http.Request, v *visit, enable bool, c stateChange) {
	if !enable && r.PostFormValue("confirm") != "yes" {
		c.Show(http.StatusBadRequest, c.Unconfirmed)
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	err := c.Run(ctx)
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		c.Show(http.StatusForbidden, "Refused: "+publicReason(err))
		return
	case errors.Is(err, c.Conflict):
		c.Show(http.StatusConflict, userReason(err))
		return
	case c.NotFound != nil && errors.Is(err, c.NotFound):
		h.render(w, r, http.StatusNotFound, "error", v, c.NotFoundPage)
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	to := "disabled"
	if enable {
		to = "enabled"
	}
	http.Redirect(w, r, c.Done+"?changed="+to, http.StatusSeeOther)
}
