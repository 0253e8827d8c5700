package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/web/report"
)

// Compliance is what the compliance report route needs: compliance.Reporter.
type Compliance interface {
	Build(ctx context.Context, since time.Time) (*compliance.Report, error)
}

// complianceRoutes are registered only when a Compliance is wired. The
// pattern is more specific than /api/v1/reports/{kind}, so it wins.
func (h *Handler) complianceRoutes() []Route {
	if h.d.Compliance == nil {
		return nil
	}
	rend, err := report.NewRenderer()
	handle := func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		if err != nil {
			return err
		}
		return h.complianceReport(w, r, p, rend)
	}
	return []Route{
		slow(route("GET", "/api/v1/reports/compliance", "report.compliance", handle, authz.PermReportRead)),
	}
}

// complianceReport answers ?format=json (default), csv or html, over the
// period from ?since (RFC 3339, default 90 days ago) to now.
func (h *Handler) complianceReport(w http.ResponseWriter, r *http.Request, who authz.Principal, rend *report.Renderer) error {
	if err := who.Allow(authz.PermReportRead, authz.Resource{}); err != nil {
		return err
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" && format != "html" {
		return badInput("format %q: want json, csv or html", format)
	}
	now := h.d.Clock.Now().UTC()
	since, err := parseTime("since", q.Get("since"), now.Add(-compliance.DefaultPeriod))
	if err != nil {
		return err
	}
	if !since.Before(now) {
		return badInput("since %s is not in the past", since.Format(time.RFC3339))
	}
	rep, err := h.d.Compliance.Build(r.Context(), since)
	if errors.Is(err, compliance.ErrTooLarge) {
		return fmt.Errorf("%w: %w", errBadInput, err)
	}
	if err != nil {
		return err
	}
	out := report.FromCompliance(rep)
	if h.d.Scans != nil {
		k, err := h.d.Scans.KPIs(r.Context(), who)
		if err != nil {
			return err
		}
		view := report.ScanKPIsView(k)
		out.Encryption = &view
	}
	var buf bytes.Buffer
	switch format {
	case "json":
		return writeJSON(w, http.StatusOK, out)
	case "csv":
		if err := report.WriteCSV(&buf, &out); err != nil {
			return err
		}
		w.Header().Set("Content-Type", report.ContentTypeCSV)
		w.Header().Set("Content-Disposition", `attachment; filename="certwright-compliance.csv"`)
	default:
		if err := rend.WriteHTML(&buf, &out); err != nil {
			return err
		}
		w.Header().Set("Content-Type", report.ContentTypeHTML)
		// The page's own style sheet, allowed by its hash; nothing else.
		w.Header().Set("Content-Security-Policy", report.ContentSecurityPolicy())
	}
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(buf.Bytes())
	return err
}
