package console

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/errtext"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// certListed bounds each list on the certificate page (alerts, agent
// reports, audit events): the newest this many, read by index.
const certListed = 20

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

	// Chain is the issuing CA first, up to the root; ChainProblem says
	// why there is none.
	Chain        []chainLink
	ChainProblem string
	// Renewal is the renewal window as ACME's renewal-info and the agents'
	// renewal-info give it.
	Renewal *lifecycle.RenewalInfo
	Alerts  []alertRow
	// Deploys are the agents' reports about this certificate.
	Deploys []deployReport
	// Events are its audit events, for a viewer with audit:read (CanAudit).
	Events   []*audit.Event
	CanAudit bool
	// More* say a list was cut at Listed.
	MoreAlerts, MoreDeploys, MoreEvents bool
	Listed                              int
	// CanRenewNow: the viewer may move its renewal window to now (an ACME
	// client or agent renews it); CanRenew: it may renew it here (the
	// server holds the key).
	CanRenewNow, CanRenew bool
}

// chainLink is one certificate of the issuing chain.
type chainLink struct {
	Subject  string
	NotAfter time.Time
	// CA is the name of the CA here whose certificate it is ("" for an
	// external issuer); Root: it is self-issued.
	CA   string
	Root bool
}

// deployReport is what an agent reported about deploying the certificate
// (the details of its alert.deploy_failed audit event).
type deployReport struct {
	At                       time.Time
	By, Host, Entry, Problem string
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
	q := r.URL.Query()
	switch {
	case q.Get("revoked") == "1" && c.Status == inventory.StatusRevoked:
		notice = "The certificate is revoked; its OCSP answer and the next CRL say so."
	case q.Get("renew_now") == "1" && !c.RenewNowAt.IsZero():
		notice = "Its renewal window now ends now: its ACME client, agent or the server's renewal job renews it at its next check."
	case q.Get("renewed") == "1" && c.Replaces != "":
		notice = "Renewed: this is the new certificate, with a new key the server holds."
	}
	h.showCertificate(w, r, v, c, names, http.StatusOK, notice, "")
}

func (h *Handler) showCertificate(w http.ResponseWriter, r *http.Request, v *visit, c *inventory.Certificate, names map[string]string, status int, notice, problem string) {
	now := h.d.Clock.Now()
	cv := &certificateView{C: c, Row: h.row(c, names, now), Notice: notice, Error: problem, Listed: certListed}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	if err := h.certificateDetails(ctx, v, c, names[c.CAID], cv); err != nil {
		h.unavailable(w, r, err)
		return
	}
	if c.Status == inventory.StatusRevoked {
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

// certificateDetails fills in cv's chain, renewal window, alerts, agent
// reports, audit events and the renewal actions the viewer may take.
func (h *Handler) certificateDetails(ctx context.Context, v *visit, c *inventory.Certificate, caName string, cv *certificateView) error {
	chain, err := h.chain(ctx, c)
	switch {
	case err != nil:
		cv.ChainProblem = "The issuing chain could not be built: " + userReason(err)
	case len(chain) == 0:
		cv.ChainProblem = "No issuing chain is known: the certificate was imported without one."
	default:
		if cv.Chain, err = h.chainLinks(ctx, chain); err != nil {
			return err
		}
	}
	if cv.Renewal, err = h.d.Lifecycle.RenewalInfo(ctx, v.who, c.Serial); err != nil {
		return fmt.Errorf("console: renewal window of %s: %w", c.Serial, err)
	}
	recs, err := h.d.Lifecycle.CertificateAlerts(ctx, v.who, c.Serial, certListed+1)
	if err != nil {
		return fmt.Errorf("console: alerts of %s: %w", c.Serial, err)
	}
	recs, cv.MoreAlerts = cut(recs, certListed)
	configured := map[string]bool{}
	for _, ch := range h.d.Lifecycle.ChannelNames() {
		configured[ch] = true
	}
	// A channel's reply (a webhook's or an SMTP server's error) may name
	// internal endpoints: it is for those who see every alert.
	everything := v.who.Everywhere(authz.PermCertRead)
	for _, rec := range recs {
		row := newAlertRow(rec, configured, h.d.Clock.Now())
		if !everything {
			for i := range row.Deliveries {
				row.Deliveries[i].Error, row.Deliveries[i].ErrorFull = "", ""
			}
		}
		cv.Alerts = append(cv.Alerts, row)
	}
	// An agent's report is about this certificate, which the viewer may
	// read: its alert says as much; the event has it in fields.
	reports, err := h.d.Audit.FindAuditEvents(ctx, audit.Query{Target: c.Serial, Action: "alert.deploy_failed", Limit: certListed + 1})
	if err != nil {
		return err
	}
	reports, cv.MoreDeploys = cut(reports, certListed)
	for _, ev := range reports {
		var d struct{ Host, Entry, Error string }
		_ = json.Unmarshal(ev.Details, &d)
		cv.Deploys = append(cv.Deploys, deployReport{At: ev.Time, By: ev.Principal, Host: d.Host, Entry: d.Entry, Problem: d.Error})
	}
	// The audit log is not scoped: as in the API, it takes audit:read
	// over everything.
	if cv.CanAudit = v.who.Allow(authz.PermAuditRead, authz.Resource{}) == nil; cv.CanAudit {
		evs, err := h.d.Audit.FindAuditEvents(ctx, audit.Query{Target: c.Serial, Limit: certListed + 1})
		if err != nil {
			return err
		}
		cv.Events, cv.MoreEvents = cut(evs, certListed)
	}
	open := c.Status != inventory.StatusRevoked && c.RenewedBy == "" && !cv.Row.Expired
	// The resource acme.Service.RenewNow checks for a selector of CA,
	// profile and serial.
	renewNowRes := authz.Resource{CAID: c.CAID, CAName: caName, Profile: c.Profile}
	cv.CanRenewNow = open && lifecycle.Managed(c) && v.who.Allow(authz.PermCertRevoke, renewNowRes) == nil
	cv.CanRenew = c.ManagedKey != nil && c.RenewedBy == "" && !c.Source.External() && !c.ServerOwned() &&
		v.who.Allow(authz.PermCertIssue, c.Resource(caName)) == nil
	return nil
}

// cut keeps the first n of s and says whether there were more.
func cut[T any](s []T, n int) ([]T, bool) {
	if len(s) > n {
		return s[:n], true
	}
	return s, false
}

// chain is c's issuing chain, nearest first: its CA's, as the API's PEM
// download builds it, or an imported certificate's chain as given.
func (h *Handler) chain(ctx context.Context, c *inventory.Certificate) ([]*x509.Certificate, error) {
	if c.CAID != "" {
		return h.d.Chains.Chain(ctx, c.CAID)
	}
	out := make([]*x509.Certificate, 0, len(c.Chain))
	for _, der := range c.Chain {
		cc, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("console: chain of %s: %w", c.Serial, err)
		}
		out = append(out, cc)
	}
	return out, nil
}

// chainLinks names each certificate of chain by the CA here it belongs to.
func (h *Handler) chainLinks(ctx context.Context, chain []*x509.Certificate) ([]chainLink, error) {
	cas, err := h.d.CAs.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]chainLink, len(chain))
	for i, cc := range chain {
		out[i] = chainLink{Subject: cc.Subject.String(), NotAfter: cc.NotAfter, Root: bytes.Equal(cc.RawIssuer, cc.RawSubject)}
		for _, a := range cas {
			if bytes.Equal(a.CertDER, cc.Raw) {
				out[i].CA = a.Name
			}
		}
	}
	return out, nil
}

// renewNow moves the certificate's renewal window to now through the
// API's acme/renew-now call (cert:revoke over its CA and profile; audited
// as acme.renew_now): its ACME client or agent renews it at its next
// check.
func (h *Handler) renewNow(w http.ResponseWriter, r *http.Request, v *visit) {
	c, names := h.findCertificate(w, r, v)
	if c == nil {
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	sel := acme.RenewSelector{Selector: inventory.Selector{CAID: c.CAID, Profile: c.Profile}, Serial: c.Serial}
	serials, err := h.d.ACME.RenewNow(ctx, v.who, sel)
	switch {
	case err == nil && len(serials) == 0:
		h.showCertificate(w, r, v, c, names, http.StatusBadRequest, "", "Nothing to renew: only a valid certificate that has not expired gets a new renewal window.")
		return
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		h.showCertificate(w, r, v, c, names, http.StatusForbidden, "", "You may not ask for this certificate's renewal: "+publicReason(err))
		return
	case errors.Is(err, acme.ErrInvalid):
		h.showCertificate(w, r, v, c, names, http.StatusBadRequest, "", userReason(err))
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, "/certificates/"+c.Serial+"?renew_now=1", http.StatusSeeOther)
}

// renewCertificate renews a certificate whose key the server holds,
// through the same call as `certwright cert renew` and the API's renew
// (cert:issue over it, checked by the issuer; audited as its issuance),
// and opens the new certificate.
func (h *Handler) renewCertificate(w http.ResponseWriter, r *http.Request, v *visit) {
	c, names := h.findCertificate(w, r, v)
	if c == nil {
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	res, err := h.d.Lifecycle.RenewByHand(ctx, v.who, c.Serial, false)
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		h.showCertificate(w, r, v, c, names, http.StatusForbidden, "", "You may not renew this certificate: "+publicReason(err))
		return
	case errors.Is(err, lifecycle.ErrConflict):
		h.showCertificate(w, r, v, c, names, http.StatusConflict, "", userReason(err))
		return
	case errors.Is(err, lifecycle.ErrInvalid), errors.Is(err, issue.ErrInvalid):
		h.showCertificate(w, r, v, c, names, http.StatusBadRequest, "", userReason(err))
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, "/certificates/"+res.Cert.Serial+"?renewed=1", http.StatusSeeOther)
}

// certificatePEM downloads the certificate and, with chain, its issuing
// chain without the root, as the API's PEM download with chain=true.
func (h *Handler) certificatePEM(chain bool) func(http.ResponseWriter, *http.Request, *visit) {
	return func(w http.ResponseWriter, r *http.Request, v *visit) {
		c, _ := h.findCertificate(w, r, v)
		if c == nil {
			return
		}
		out, name := pki.CertPEM(c.DER), c.Serial+".pem"
		if chain {
			ctx, cancel := h.storeContext(r)
			defer cancel()
			certs, err := h.chain(ctx, c)
			if err != nil {
				h.unavailable(w, r, err)
				return
			}
			intermediates, _ := issue.SplitChain(certs)
			for _, cc := range intermediates {
				out = append(out, pki.CertPEM(cc.Raw)...)
			}
			name = c.Serial + "-chain.pem"
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		_, _ = w.Write(out)
	}
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
