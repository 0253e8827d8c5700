package cli

import (
	"context"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// ImportCertificates adds certificates issued elsewhere to the inventory.
func (c *client) ImportCertificates(ctx context.Context, req apitypes.ImportRequest) (apitypes.ImportResult, error) {
	var out apitypes.ImportResult
	err := c.postJSON(ctx, "/api/v1/certificates/import", req, &out)
	return out, err
}

// ComplianceReport fetches the compliance report in format (json, csv or
// html) as the server renders it; a zero since leaves the period to the
// server (90 days).
func (c *client) ComplianceReport(ctx context.Context, since time.Time, format string) ([]byte, error) {
	q := timeRange(since, time.Time{})
	q.Set("format", format)
	return c.request(ctx, http.MethodGet, "/api/v1/reports/compliance", q, nil, "", nil)
}
