package console

import (
	"bytes"
	"errors"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
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
	Since, Until time.Time
	Summary      compliance.Counts
	KPIs         []report.KPIRow
	Rows         []complianceRow
	// NonCompliant is how many there are; Rows holds the first
	// complianceRows, soonest to expire first.
	NonCompliant int
	Error        string
}

// buildReport builds the compliance report as the API does by default
// (report:read with no scope; the period's default length), or answers
// the refusal or the error and returns nil.
func (h *Handler) buildReport(w http.ResponseWriter, r *http.Request, v *visit) *compliance.Report {
	if err := v.who.Allow(authz.PermReportRead, authz.Resource{}); err != nil {
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: "The compliance report covers every certificate, so it needs report:read with no scope. " + publicReason(err)})
		return nil
	}
	rep, err := h.d.Compliance.Build(r.Context(), h.d.Clock.Now().UTC().Add(-compliance.DefaultPeriod))
	if errors.Is(err, compliance.ErrTooLarge) {
		// As the API answers it: the report is refused, not cut short.
		h.render(w, r, http.StatusBadRequest, "compliance", v, &complianceView{Error: err.Error()})
		return nil
	}
	if err != nil {
		h.unavailable(w, r, err)
		return nil
	}
	return rep
}

// compliance shows the compliance report's counts and KPIs and its
// non-compliant certificates with the rules they fail, linking to each
// certificate and to the whole report.
func (h *Handler) compliance(w http.ResponseWriter, r *http.Request, v *visit) {
	rep := h.buildReport(w, r, v)
	if rep == nil {
		return
	}
	cv := &complianceView{Since: rep.Since, Until: rep.Until, Summary: rep.Summary.Counts, NonCompliant: rep.Summary.NonCompliant,
		KPIs: report.KPIRows(report.KPIsView(rep.KPIs))}
	// The report's rows are soonest to expire first.
	for _, row := range rep.Rows {
		if row.Status != compliance.StatusNonCompliant {
			continue
		}
		if len(cv.Rows) == complianceRows {
			break
		}
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
	h.render(w, r, http.StatusOK, "compliance", v, cv)
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
	var buf bytes.Buffer
	if err := h.report.WriteHTML(&buf, &out); err != nil {
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", report.ContentTypeHTML)
	w.Header().Set("Content-Disposition", `attachment; filename="certwright-compliance-`+rep.GeneratedAt.Format("2006-01-02")+`.html"`)
	_, _ = w.Write(buf.Bytes())
}
