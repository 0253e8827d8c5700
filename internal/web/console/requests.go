package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
)

// requestRow is one held request as the approvals page shows it.
type requestRow struct {
	R *issue.ApprovalRequest
	// Own: the viewer made it, so the two-person rule keeps it from
	// deciding it. CanDecide: the viewer may approve or reject it.
	Own, CanDecide bool
}

type requestsView struct {
	Rows   []requestRow
	Status string
	Notice string
	Error  string
	// Serial is the certificate an approval just issued.
	Serial string
}

// requestStatuses are the statuses the page filters by ("" is all).
var requestStatuses = map[string]bool{"": true, issue.StatusPending: true, issue.StatusApproved: true, issue.StatusIssued: true,
	issue.StatusRejected: true, issue.StatusExpired: true, issue.StatusFailed: true}

// requests lists the requests held for approval that the viewer made or
// may decide, pending ones first by default. A viewer sees the approve
// and reject buttons only on a pending request its approve permission and
// scope cover and that it did not make itself (the two-person rule); the
// core checks both again on the decision.
func (h *Handler) requests(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showRequests(w, r, v, http.StatusOK, "", "")
}

func (h *Handler) showRequests(w http.ResponseWriter, r *http.Request, v *visit, status int, notice, problem string) {
	// Pending by default, and after a decision; "status=" (empty) is all.
	st := r.URL.Query().Get("status")
	if _, given := r.URL.Query()["status"]; r.Method != http.MethodGet || !given {
		st = issue.StatusPending
	}
	rv := &requestsView{Status: st, Notice: notice, Error: problem}
	if r.Method == http.MethodGet {
		switch r.URL.Query().Get("decided") {
		case "approved":
			rv.Notice = "Approved."
			if s, err := pki.NormalizeSerial(r.URL.Query().Get("serial")); err == nil {
				rv.Notice, rv.Serial = "Approved; the certificate was issued:", s
			}
		case "rejected":
			rv.Notice = "Rejected."
		}
	}
	if !requestStatuses[st] {
		rv.Error, rv.Status, status = "Status "+st+": choose pending, issued, rejected, expired or failed.", "pending", http.StatusBadRequest
		st = "pending"
	}
	names, err := h.caNames(r)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	ids := make(map[string]string, len(names))
	for id, name := range names {
		ids[name] = id
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	reqs, err := h.d.Approvals.ListRequests(ctx, v.who, st, 200)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	for _, q := range reqs {
		row := requestRow{R: q, Own: q.RequesterID == v.who.ID}
		res := authz.Resource{CAID: ids[q.CA], CAName: q.CA, Profile: q.Profile, Names: q.Names}
		row.CanDecide = q.Status == issue.StatusPending && !row.Own && v.who.Allow(authz.PermRequestApprove, res) == nil
		rv.Rows = append(rv.Rows, row)
	}
	h.render(w, r, status, "requests", v, rv)
}

// decide approves or rejects a held request through the core, which
// checks the approver's permission and scope and the two-person rule.
func (h *Handler) decide(approve bool) func(http.ResponseWriter, *http.Request, *visit) {
	return func(w http.ResponseWriter, r *http.Request, v *visit) {
		id := r.PathValue("id")
		comment := strings.TrimSpace(r.PostFormValue("comment"))
		ctx, cancel := h.storeContext(r)
		defer cancel()
		var (
			err     error
			serial  string
			decided *issue.ApprovalRequest
		)
		if approve {
			var res *issue.Result
			decided, res, err = h.d.Approvals.Approve(ctx, v.who, id, comment)
			if err == nil && res != nil && res.Cert != nil {
				serial = res.Cert.Serial
			}
		} else {
			decided, err = h.d.Approvals.Reject(ctx, v.who, id, comment)
		}
		switch {
		case err == nil:
		case errors.Is(err, authz.ErrForbidden):
			h.showRequests(w, r, v, http.StatusForbidden, "", "Refused: "+publicReason(err))
			return
		case errors.Is(err, authz.ErrNotFound):
			h.showRequests(w, r, v, http.StatusNotFound, "", "There is no such request that you may decide.")
			return
		case errors.Is(err, issue.ErrNotPending):
			h.showRequests(w, r, v, http.StatusConflict, "", "That request is no longer pending: someone decided it, or it expired.")
			return
		case approve && decided != nil && decided.Status == issue.StatusFailed:
			// Approved, but the issuance it replays failed (a lint, a
			// profile rule); the request records that.
			h.showRequests(w, r, v, http.StatusUnprocessableEntity, "", "Approved, but the certificate could not be issued: "+decided.Error)
			return
		case errors.Is(err, issue.ErrInvalid):
			h.showRequests(w, r, v, http.StatusBadRequest, "", userReason(err))
			return
		default:
			h.unavailable(w, r, err)
			return
		}
		msg := "rejected"
		if approve {
			msg = "approved"
		}
		q := "/requests?decided=" + msg
		if serial != "" {
			q += "&serial=" + serial
		}
		http.Redirect(w, r, q, http.StatusSeeOther)
	}
}
