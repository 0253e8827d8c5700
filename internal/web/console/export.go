package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
)

// Bounds of one export: rows written, and rows read to find them (a
// viewer whose scope covers few of many certificates).
const (
	exportMaxRows = 100_000
	exportMaxScan = 1_000_000
	exportTimeout = time.Minute
)

// exportRow is one certificate in an export.
type exportRow struct {
	Serial    string    `json:"serial"`
	Names     []string  `json:"names"`
	Subject   string    `json:"subject"`
	Status    string    `json:"status"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	CA        string    `json:"ca"`
	Profile   string    `json:"profile"`
	Source    string    `json:"source"`
	Owner     string    `json:"owner,omitempty"`
	Requester string    `json:"requester"`
	SHA256    string    `json:"sha256_fingerprint"`
}

// exportCertificates writes the inventory page's current view (its
// filters and order, every page of it) as CSV or JSON, limited to the
// viewer's scope and to exportMaxRows rows; the X-Certwright-Export header
// says "complete" or why it stopped.
func (h *Handler) exportCertificates(w http.ResponseWriter, r *http.Request, v *visit) {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "csv" && format != "json" {
		h.render(w, r, http.StatusBadRequest, "error", v, errorPage{Title: "Unknown format", Message: "Export as csv or json."})
		return
	}
	names, err := h.caNames(r)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	now := h.d.Clock.Now()
	f, err := certFilter(q, names, now)
	if err != nil {
		h.render(w, r, http.StatusBadRequest, "error", v, errorPage{Title: "Bad filter", Message: err.Error()})
		return
	}
	f.After, f.AfterKey, f.AfterTime = "", "", time.Time{} // the whole view, not the page
	// An export reads many pages: it gets exportTimeout in all rather than
	// one page's store deadline, and says so if it stops there.
	ctx, cancel := context.WithTimeout(r.Context(), exportTimeout)
	defer cancel()
	var rows []exportRow
	scanned, status := 0, "complete"
scan:
	for {
		f.Limit = inventory.ScanPage
		page, err := h.d.Inventory.ListCertificates(ctx, f)
		if err != nil {
			if ctx.Err() != nil && len(rows) > 0 {
				status = "stopped after " + exportTimeout.String() + ": narrow the filter"
				break
			}
			h.unavailable(w, r, err)
			return
		}
		for _, c := range page {
			if v.who.Allow(authz.PermCertRead, c.Resource(names[c.CAID])) != nil {
				continue
			}
			if len(rows) == exportMaxRows {
				status = "stopped at 100000 rows: narrow the filter"
				break scan
			}
			row := h.row(c, names, now)
			rows = append(rows, exportRow{Serial: c.Serial, Names: c.SANs, Subject: c.Subject, Status: row.Status,
				NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), CA: row.CA, Profile: c.Profile, Source: string(c.Source),
				Owner: c.Owner, Requester: c.Requester, SHA256: c.Fingerprint})
		}
		scanned += len(page)
		if len(page) < f.Limit {
			break
		}
		if scanned >= exportMaxScan {
			status = "stopped after reading 1000000 certificates: narrow the filter"
			break
		}
		f.Continue(page[len(page)-1])
	}
	w.Header().Set("X-Certwright-Export", status)
	stamp := now.UTC().Format("20060102T150405Z")
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="certificates-`+stamp+`.json"`)
		if rows == nil {
			rows = []exportRow{}
		}
		_ = json.NewEncoder(w).Encode(rows)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="certificates-`+stamp+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"serial", "names", "subject", "status", "not_before", "not_after", "ca", "profile", "source", "owner", "requester", "sha256_fingerprint"})
	for _, x := range rows {
		_ = cw.Write([]string{x.Serial, cell(strings.Join(x.Names, " ")), cell(x.Subject), x.Status, x.NotBefore.Format(time.RFC3339),
			x.NotAfter.Format(time.RFC3339), cell(x.CA), cell(x.Profile), x.Source, cell(x.Owner), cell(x.Requester), x.SHA256})
	}
	cw.Flush()
}

// cell keeps a value a requester chose (a name, a subject, an owner) from
// being read as a formula by a spreadsheet that opens the CSV: one that
// starts with =, +, -, @, a tab or a carriage return gets a leading
// apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
