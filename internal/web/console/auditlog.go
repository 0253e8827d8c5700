package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// The audit page shows auditPage events, newest first; filtered only by
// an action prefix (no index serves it), it looks among the newest
// auditScan events.
const (
	auditPage = 100
	auditScan = 100_000
	// auditDetails bounds the details shown of one event.
	auditDetails = 4096
)

type auditView struct {
	Events []auditRow
	Head   int64
	// The filters, as typed.
	Principal, Action, Target, From, To string
	// Window: the prefix-only search read the newest Window events.
	Window int64
	// Older links the next page.
	Older string
	// Report is a verification's result, shown above the log.
	Report *audit.Report
	// Last is the newest recorded verification; Checkpoint the newest
	// signed checkpoint.
	Last            *lastVerify
	Checkpoint      *audit.Checkpoint
	SinceCheckpoint int64
	Refused         string
	Error           string
}

type auditRow struct {
	*audit.Event
	// Details is the event's details, indented, cut at auditDetails.
	Details string
}

type lastVerify struct {
	By   string
	Time time.Time
	audit.Report
}

// auditQuery reads the page's filters; its errors say what to fix.
func auditQuery(q url.Values, av *auditView) (audit.Query, error) {
	aq := audit.Query{Principal: av.Principal, Target: av.Target, ActionPrefix: av.Action, Limit: auditPage + 1}
	if err := checkQuery(q); err != nil {
		return aq, err
	}
	for _, f := range []struct {
		name, v string
		dst     *time.Time
	}{{"from", av.From, &aq.Since}, {"to", av.To, &aq.Until}} {
		if f.v == "" {
			continue
		}
		t, err := parseWhen(f.v)
		if err != nil {
			return aq, fmt.Errorf("%s %q: give a UTC date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM)", f.name, clip(f.v, 40))
		}
		if f.name == "to" && len(f.v) == len(dayLayout) {
			t = t.AddDate(0, 0, 1) // the whole last day
		}
		*f.dst = t
	}
	if !aq.Since.IsZero() && !aq.Until.IsZero() && !aq.Since.Before(aq.Until) {
		return aq, errors.New("from must be before to")
	}
	for _, f := range []struct{ name, v string }{{"principal", av.Principal}, {"action", av.Action}, {"target", av.Target}} {
		if len(f.v) > 256 {
			return aq, fmt.Errorf("%s: at most 256 characters", f.name)
		}
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return aq, fmt.Errorf("before %q: follow the page's Older link", clip(b, 40))
		}
		aq.Before = n
	}
	return aq, nil
}

// parseWhen reads a UTC date or date and time, as a date or
// datetime-local input sends it.
func parseWhen(s string) (time.Time, error) {
	for _, l := range []string{dayLayout, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a date")
}

// auditLog shows the newest events, filtered by principal, action
// prefix, target and time, a page at a time, each with its details; the
// newest recorded verification and signed checkpoint; and the form that
// verifies the chain. Audit events are not scoped: reading them takes
// audit:read over everything, as in the API.
func (h *Handler) auditLog(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showAudit(w, r, v, nil)
}

func (h *Handler) showAudit(w http.ResponseWriter, r *http.Request, v *visit, rep *audit.Report) {
	q := r.URL.Query()
	av := &auditView{Principal: strings.TrimSpace(q.Get("principal")), Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), Report: rep}
	if err := v.who.Allow(authz.PermAuditRead, authz.Resource{}); err != nil {
		av.Refused = "Reading the audit log takes audit:read without a scope: " + publicReason(err)
		h.render(w, r, http.StatusForbidden, "audit", v, av)
		return
	}
	aq, err := auditQuery(q, av)
	if err != nil {
		av.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, "audit", v, av)
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	if av.Head, _, err = h.d.Audit.AuditHead(ctx); err != nil {
		h.unavailable(w, r, err)
		return
	}
	if aq.Principal == "" && aq.Target == "" && aq.Since.IsZero() && aq.Until.IsZero() && aq.ActionPrefix != "" {
		aq.Floor = max(1, av.Head-auditScan+1)
		av.Window = av.Head - aq.Floor + 1
	}
	evs, err := h.d.Audit.FindAuditEvents(ctx, aq)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	if len(evs) > auditPage {
		evs = evs[:auditPage]
		next := url.Values{}
		for k, vals := range q {
			if k != "before" {
				next[k] = vals
			}
		}
		next.Set("before", strconv.FormatInt(evs[len(evs)-1].Seq, 10))
		av.Older = "/audit?" + next.Encode()
	}
	for _, ev := range evs {
		av.Events = append(av.Events, auditRow{Event: ev, Details: detailsText(ev.Details)})
	}
	// Only a verification's own record: a refused request for one (the
	// API records it under the same action) has another target and is
	// denied, and its details are not a report.
	last, err := h.d.Audit.FindAuditEvents(ctx, audit.Query{Target: audit.VerifyTarget, Action: audit.ActionVerify, Limit: 1})
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	if len(last) == 1 && last[0].Outcome != audit.Denied {
		lv := &lastVerify{By: last[0].Principal, Time: last[0].Time}
		if json.Unmarshal(last[0].Details, &lv.Report) == nil {
			av.Last = lv
		}
	}
	switch cp, err := h.d.Audit.LastCheckpoint(ctx); {
	case err == nil:
		av.Checkpoint, av.SinceCheckpoint = cp, av.Head-cp.Seq
	case !errors.Is(err, authz.ErrNotFound):
		h.unavailable(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "audit", v, av)
}

// detailsText is an event's details (JSON) indented for people, with
// the characters json.Marshal escapes for HTML shown as themselves (the
// template escapes the text), cut at auditDetails.
func detailsText(d []byte) string {
	if len(d) == 0 || string(d) == "{}" || string(d) == "null" {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	var v any
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if dec.Decode(&v) != nil || enc.Encode(v) != nil {
		b.Reset()
		b.Write(d)
	}
	return clip(strings.TrimSpace(b.String()), auditDetails)
}

// auditVerify walks the whole chain, its checkpoints and the external
// anchor, as `certwright audit verify` does, and shows the result above
// the log (recorded in the log, as the API's is). It is a POST (with the
// CSRF token) because it reads every event: a page of another site must
// not be able to start one.
func (h *Handler) auditVerify(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := v.who.Allow(authz.PermAuditRead, authz.Resource{}); err != nil {
		h.showAudit(w, r, v, nil)
		return
	}
	rep, err := h.d.Audit.Verify(r.Context(), v.who)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	h.showAudit(w, r, v, rep)
}
