package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/errtext"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// certificateView is everything the certificate page shows of one
// certificate.
type certificateView struct {
	C          *inventory.Certificate
	Row        certRow
	Revocation *inventory.Revocation
	// CanRevoke: the viewer may revoke it (and it is not revoked yet).
	CanRevoke bool
	Reasons   []string
	Notice    string
	Error     string
}

// findCertificate returns the certificate in the path if v's principal
// may read it; otherwise it answers the request (404 for a serial that is
// unknown or outside the viewer's scope alike, so a scope does not learn
// which serials exist beyond it) and returns nil.
func (h *Handler) findCertificate(w http.ResponseWriter, r *http.Request, v *visit) (*inventory.Certificate, map[string]string) {
	notFound := func() {
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "Certificate not found", Message: "There is no certificate with this serial that you may see."})
	}
	serial, err := pki.NormalizeSerial(r.PathValue("serial"))
	if err != nil {
		notFound()
		return nil, nil
	}
	names, err := h.caNames(r)
	if err != nil {
		h.unavailable(w, r, err)
		return nil, nil
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	c, err := h.d.Inventory.GetCertificate(ctx, serial)
	if err != nil {
		if errors.Is(err, authz.ErrNotFound) {
			notFound()
		} else {
			h.unavailable(w, r, err)
		}
		return nil, nil
	}
	if v.who.Allow(authz.PermCertRead, c.Resource(names[c.CAID])) != nil {
		notFound()
		return nil, nil
	}
	return c, names
}

// certificate shows one certificate, and the revoke form to a viewer who
// may revoke it.
func (h *Handler) certificate(w http.ResponseWriter, r *http.Request, v *visit) {
	c, names := h.findCertificate(w, r, v)
	if c == nil {
		return
	}
	notice := ""
	if r.URL.Query().Get("revoked") == "1" && c.Status == inventory.StatusRevoked {
		notice = "The certificate is revoked; its OCSP answer and the next CRL say so."
	}
	h.showCertificate(w, r, v, c, names, http.StatusOK, notice, "")
}

func (h *Handler) showCertificate(w http.ResponseWriter, r *http.Request, v *visit, c *inventory.Certificate, names map[string]string, status int, notice, problem string) {
	cv := &certificateView{C: c, Row: h.row(c, names, h.d.Clock.Now()), Notice: notice, Error: problem}
	if c.Status == inventory.StatusRevoked {
		ctx, cancel := h.storeContext(r)
		defer cancel()
		rev, err := h.d.Inventory.GetRevocation(ctx, c.Serial)
		switch {
		case err == nil:
			cv.Revocation = rev
		case !errors.Is(err, authz.ErrNotFound):
			h.unavailable(w, r, err)
			return
		}
	} else if v.who.Allow(authz.PermCertRevoke, c.Resource(names[c.CAID])) == nil {
		cv.CanRevoke, cv.Reasons = true, pki.ReasonNames()
	}
	h.render(w, r, status, "certificate", v, cv)
}

// certificatePEM downloads the certificate.
func (h *Handler) certificatePEM(w http.ResponseWriter, r *http.Request, v *visit) {
	c, _ := h.findCertificate(w, r, v)
	if c == nil {
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Serial+`.pem"`)
	_, _ = w.Write(pki.CertPEM(c.DER))
}

// revokeCertificate revokes the certificate through the same core call as
// the API, which checks the principal's permission and scope; the form
// must name a reason and be confirmed.
func (h *Handler) revokeCertificate(w http.ResponseWriter, r *http.Request, v *visit) {
	c, names := h.findCertificate(w, r, v)
	if c == nil {
		return
	}
	refuse := func(status int, msg string) {
		h.showCertificate(w, r, v, c, names, status, "", msg)
	}
	if r.PostFormValue("confirm") != "yes" {
		refuse(http.StatusBadRequest, "Tick the confirmation: a revocation cannot be undone.")
		return
	}
	reason, err := pki.ParseReason(strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		refuse(http.StatusBadRequest, "Choose a reason from the list ("+strings.Join(pki.ReasonNames(), ", ")+").")
		return
	}
	var inv time.Time
	if d := strings.TrimSpace(r.PostFormValue("invalidity_date")); d != "" {
		if inv, err = time.Parse("2006-01-02", d); err != nil {
			refuse(http.StatusBadRequest, "The invalidity date must be a date (YYYY-MM-DD), or empty.")
			return
		}
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	_, _, err = h.d.Revoker.Revoke(ctx, revoke.Request{Principal: v.who, Serial: c.Serial, Reason: reason, InvalidityDate: inv})
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		refuse(http.StatusForbidden, "You may not revoke this certificate: "+publicReason(err))
		return
	case errors.Is(err, revoke.ErrInvalid):
		refuse(http.StatusBadRequest, userReason(err))
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, "/certificates/"+c.Serial+"?revoked=1", http.StatusSeeOther)
}

// userReason is err's message for people: errtext.User's (no package
// prefixes), without the "invalid request: " a bad-input error starts
// with.
func userReason(err error) string {
	return strings.TrimPrefix(errtext.User(err), "invalid request: ")
}

// publicReason is the rule a refusal names, without its prefix: what the
// API tells the same caller.
func publicReason(err error) string {
	return strings.TrimPrefix(err.Error(), authz.ErrForbidden.Error()+": ")
}
