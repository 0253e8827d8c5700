package console

import (
	"net/http"
	"strings"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// auditPage is how many events the audit page shows, newest first; it
// reads at most auditScan events to fill them when filtered.
const (
	auditPage = 100
	auditScan = 10000
)

type auditView struct {
	Events            []*audit.Event
	Head              int64
	Principal, Action string
	// Target: only events with this target, the newest auditPage of them
	// (by index, however long the log).
	Target string
	// Window is how many events were read.
	Window  int64
	Report  *audit.Report
	Verify  bool // the page shows a verification's result
	Refused string
}

// auditLog shows the newest events, optionally only those of a principal
// or whose action starts with a prefix, and the form that verifies the
// chain. Audit events are not scoped: reading them takes audit:read over
// everything, as in the API.
func (h *Handler) auditLog(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showAudit(w, r, v, nil)
}

func (h *Handler) showAudit(w http.ResponseWriter, r *http.Request, v *visit, rep *audit.Report) {
	q := r.URL.Query()
	av := &auditView{Principal: strings.TrimSpace(q.Get("principal")), Action: strings.TrimSpace(q.Get("action")), Target: strings.TrimSpace(q.Get("target")),
		Report: rep, Verify: rep != nil}
	if err := v.who.Allow(authz.PermAuditRead, authz.Resource{}); err != nil {
		av.Refused = "Reading the audit log takes audit:read without a scope: " + publicReason(err)
		h.render(w, r, http.StatusForbidden, "audit", v, av)
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	head, _, err := h.d.Audit.AuditHead(ctx)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	av.Head = head
	if av.Target != "" {
		evs, err := h.d.Audit.AuditEventsByTarget(ctx, av.Target, "", auditPage)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		for _, ev := range evs {
			if (av.Principal == "" || ev.Principal == av.Principal) && strings.HasPrefix(ev.Action, av.Action) {
				av.Events = append(av.Events, ev)
			}
		}
		h.render(w, r, http.StatusOK, "audit", v, av)
		return
	}
	from := max(1, head-auditScan+1)
	if av.Principal == "" && av.Action == "" {
		from = max(1, head-auditPage+1)
	}
	av.Window = head - from + 1
	var events []*audit.Event
	err = h.d.Audit.EachAuditEvent(ctx, from, func(ev *audit.Event) error {
		if av.Principal != "" && ev.Principal != av.Principal {
			return nil
		}
		if av.Action != "" && !strings.HasPrefix(ev.Action, av.Action) {
			return nil
		}
		c := *ev
		c.Details = append([]byte(nil), ev.Details...)
		events = append(events, &c)
		if len(events) > auditPage {
			events = events[1:]
		}
		return nil
	})
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	for i := len(events) - 1; i >= 0; i-- {
		av.Events = append(av.Events, events[i])
	}
	h.render(w, r, http.StatusOK, "audit", v, av)
}

// auditVerify walks the whole chain, its checkpoints and the external
// anchor, as `certwright audit verify` does, and shows the result above
// the log. It is a POST (with the CSRF token) because it reads every
// event: a page of another site must not be able to start one.
func (h *Handler) auditVerify(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := v.who.Allow(authz.PermAuditRead, authz.Resource{}); err != nil {
		h.showAudit(w, r, v, nil)
		return
	}
	rep, err := h.d.Audit.Verify(r.Context())
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	h.showAudit(w, r, v, rep)
}
