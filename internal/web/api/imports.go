package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Importer is what the import route needs: compliance.Importer.
type Importer interface {
	Import(ctx context.Context, req compliance.ImportRequest) (*compliance.ImportResult, error)
}

// importRoutes are registered only when an Importer is wired.
func (h *Handler) importRoutes() []Route {
	if h.d.Imports == nil {
		return nil
	}
	return []Route{
		slow(route("POST", "/api/v1/certificates/import", "certificate.import", h.importCerts, authz.PermCertIssue)),
	}
}

// importCerts adds certificates issued elsewhere to the inventory. Every
// file is checked before anything is stored; a private key anywhere
// refuses the whole request.
func (h *Handler) importCerts(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.ImportRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	var files []compliance.ImportFile
	if strings.TrimSpace(req.PEM) != "" {
		files = append(files, compliance.ImportFile{Name: "pem", Data: []byte(req.PEM)})
	}
	for i, f := range req.Files {
		name := strings.TrimSpace(f.Name)
		if name == "" {
			name = fmt.Sprintf("files[%d]", i)
		}
		files = append(files, compliance.ImportFile{Name: name, Data: []byte(f.PEM)})
	}
	if len(files) == 0 {
		return badInput("pem or files is required: the certificates to import, as PEM")
	}
	res, err := h.d.Imports.Import(r.Context(), compliance.ImportRequest{Principal: p, Files: files, Tags: req.Tags, Owner: req.Owner})
	if errors.Is(err, compliance.ErrInvalid) {
		return fmt.Errorf("%w: %w", errBadInput, err)
	}
	if err != nil {
		return err
	}
	out := apitypes.ImportResult{Imported: make([]apitypes.Certificate, 0, len(res.Imported)), Skipped: make([]apitypes.ImportSkipped, 0, len(res.Skipped))}
	names := map[string]string{}
	for _, c := range res.Imported {
		out.Imported = append(out.Imported, h.certView(r, c, names))
	}
	for _, s := range res.Skipped {
		out.Skipped = append(out.Skipped, apitypes.ImportSkipped{Fingerprint: s.Fingerprint, Subject: s.Subject, Reason: s.Reason})
	}
	status := http.StatusOK
	if len(out.Imported) > 0 {
		status = http.StatusCreated
	}
	return writeJSON(w, status, out)
}
