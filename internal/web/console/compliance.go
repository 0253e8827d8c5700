package console

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/web/report"
)

// complianceRows bounds the non-compliant certificates the page lists;
// the HTML report lists every one.
const complianceRows = 100

// complianceRow is a non-compliant certificate with the rules it fails.
type complianceRow struct {
	Serial, Name, Source, CA string
	NotAfter                 time.Time
	Failed                   []compliance.Finding
}

type complianceView struct {
	Since, Until, GeneratedAt time.Time
	Took                      time.Duration
	Summary                   compliance.Counts
	WeakKeys, WeakSignatures  int
	KPIs                      []report.KPIRow
	// Rows are the first complianceRows non-compliant certificates,
	// soonest to expire first, of Summary.NonCompliant.
	Rows []complianceRow
	// None: no summary was built yet.
	None bool
	// CanRebuild: the viewer may run the summary's job now.
	CanRebuild bool
	Job        string
	Notice     string
	Error      string
}

// mayReport answers a viewer without unscoped report:read and returns
// false: the compliance report covers every certificate.
func (h *Handler) mayReport(w http.ResponseWriter, r *http.Request, v *visit) bool {
	if err := v.who.Allow(authz.PermReportRead, authz.Resource{}); err != nil {
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: "The compliance report covers every certificate, so it needs report:read with no scope. " + publicReason(err)})
		return false
	}
	return true
}

// buildReport builds the compliance report as the API does by default
// (the period's default length), or answers the refusal or the error and
// returns nil.
func (h *Handler) buildReport(w http.ResponseWriter, r *http.Request, v *visit) *compliance.Report {
	if !h.mayReport(w, r, v) {
		return nil
	}
	rep, err := h.d.Compliance.Build(r.Context(), h.d.Clock.Now().UTC().Add(-compliance.DefaultPeriod))
	if errors.Is(err, compliance.ErrTooLarge) {
		// As the API answers it: the report is refused, not cut short.
		h.render(w, r, http.StatusBadRequest, "error", v, errorPage{Title: "Report too large",
			Message: userReason(err) + ". The compliance page shows the summary, built at any size."})
		return nil
	}
	if err != nil {
		h.unavailable(w, r, err)
		return nil
	}
	return rep
}

// compliance shows the newest compliance summary — the report's counts
// and KPIs and its first non-compliant certificates with the rules they
// fail — which a scheduled job builds, so the page costs one read at any
// inventory size; the whole report is a download.
func (h *Handler) compliance(w http.ResponseWriter, r *http.Request, v *visit) {
	if !h.mayReport(w, r, v) {
		return
	}
	cv := &complianceView{Job: h.d.Compliance.JobName(), CanRebuild: v.who.Everywhere(authz.PermCAManage)}
	if r.URL.Query().Get("rebuilt") == "1" {
		cv.Notice = "The summary was rebuilt just now."
	}
	h.showCompliance(w, r, v, http.StatusOK, cv)
}

func (h *Handler) showCompliance(w http.ResponseWriter, r *http.Request, v *visit, status int, cv *complianceView) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	snap, err := h.d.Compliance.LatestSnapshot(ctx)
	switch {
	case errors.Is(err, authz.ErrNotFound):
		cv.None = true
		h.render(w, r, status, "compliance", v, cv)
		return
	case err != nil:
		h.unavailable(w, r, err)
		return
	}
	cv.Since, cv.Until, cv.GeneratedAt, cv.Took = snap.Since, snap.Until, snap.GeneratedAt, snap.Took.Round(time.Millisecond)
	cv.Summary, cv.WeakKeys, cv.WeakSignatures = snap.Summary.Counts, snap.WeakKeys, snap.WeakSignatures
	cv.KPIs = report.KPIRows(report.KPIsView(snap.KPIs))
	for _, row := range snap.NonCompliant[:min(len(snap.NonCompliant), complianceRows)] {
		cr := complianceRow{Serial: row.Serial, Name: row.Subject, Source: string(row.Source), CA: firstNonEmpty(row.CA, row.Issuer), NotAfter: row.NotAfter}
		if len(row.Names) > 0 {
			cr.Name = row.Names[0]
		}
		for _, f := range row.Findings {
			if f.Severity == compliance.SeverityError {
				cr.Failed = append(cr.Failed, f)
			}
		}
		cv.Rows = append(cv.Rows, cr)
	}
	h.render(w, r, status, "compliance", v, cv)
}

// rebuildCompliance runs the summary's job now, as the jobs page's Run
// now does (ca:manage, checked by the scheduler, and audited).
func (h *Handler) rebuildCompliance(w http.ResponseWriter, r *http.Request, v *visit) {
	if !h.mayReport(w, r, v) {
		return
	}
	job := h.d.Compliance.JobName()
	cv := &complianceView{Job: job, CanRebuild: true}
	ctx, cancel := context.WithTimeout(r.Context(), jobRunTimeout)
	defer cancel()
	st, err := h.d.Lifecycle.RunJob(ctx, v.who, job)
	switch {
	case errors.Is(err, authz.ErrForbidden):
		cv.CanRebuild, cv.Error = false, "Refused: "+publicReason(err)
		h.showCompliance(w, r, v, http.StatusForbidden, cv)
		return
	case err != nil:
		h.unavailable(w, r, err)
		return
	case st.Outcome == lifecycle.OutcomeSkipped:
		cv.Error = "The summary is being rebuilt right now; reload this page in a moment."
		h.showCompliance(w, r, v, http.StatusConflict, cv)
		return
	case st.Outcome == lifecycle.OutcomeError:
		cv.Error = "The rebuild failed: " + clip(st.Detail, 300) + " The previous summary is shown."
		h.showCompliance(w, r, v, http.StatusInternalServerError, cv)
		return
	}
	http.Redirect(w, r, "/compliance?rebuilt=1", http.StatusSeeOther)
}

// complianceReport downloads the API's HTML report. It is a download,
// not a console page: its inline style sheet (allowed by its hash under
// the API's policy) is refused by the console's style-src 'self'.
func (h *Handler) complianceReport(w http.ResponseWriter, r *http.Request, v *visit) {
	rep := h.buildReport(w, r, v)
	if rep == nil {
		return
	}
	out := report.FromCompliance(rep)
	// The scanned endpoints' encryption KPIs, as the API's report has
	// them, for whoever may read them (cert:read or report:read, no scope).
	if k, err := h.d.Scans.KPIs(r.Context(), v.who); err == nil {
		view := report.ScanKPIsView(k)
		out.Encryption = &view
	} else if !errors.Is(err, authz.ErrForbidden) {
		h.unavailable(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := h.report.WriteHTML(&buf, &out); err != nil {
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", report.ContentTypeHTML)
	w.Header().Set("Content-Disposition", `attachment; filename="certwright-compliance-`+rep.GeneratedAt.Format("2006-01-02")+`.html"`)
	_, _ = w.Write(buf.Bytes())
}
