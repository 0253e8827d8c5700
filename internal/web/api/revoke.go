package api

import (
	"context"
	"net/http"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Revoker records revocations.
type Revoker interface {
	Revoke(ctx context.Context, req revoke.Request) (*inventory.Revocation, bool, error)
	RevokeMatching(ctx context.Context, req revoke.BulkRequest) ([]*inventory.Revocation, error)
	RevokeCA(ctx context.Context, req revoke.CARequest) (*inventory.Revocation, bool, error)
}

func revocationView(r *inventory.Revocation, created bool) *apitypes.Revocation {
	v := &apitypes.Revocation{
		Serial: r.Serial, CAID: r.CAID, RevokedAt: r.RevokedAt, Reason: r.Reason.String(),
		RevokedBy: r.RevokedBy, NotAfter: r.NotAfter, CA: r.CA, AlreadyRevoked: !created,
	}
	if !r.InvalidityDate.IsZero() {
		d := r.InvalidityDate
		v.InvalidityDate = &d
	}
	return v
}

// reasonAndDate validates the shared fields of the revocation bodies.
func reasonAndDate(reason string, invalidity *time.Time, required bool) (pki.Reason, time.Time, error) {
	var rs pki.Reason
	if reason == "" {
		if required {
			return 0, time.Time{}, badInput("reason is required (one of %v)", pki.ReasonNames())
		}
	} else {
		v, err := pki.ParseReason(reason)
		if err != nil {
			return 0, time.Time{}, badInput("%v", err)
		}
		rs = v
	}
	var d time.Time
	if invalidity != nil {
		d = *invalidity
	}
	return rs, d, nil
}

func (h *Handler) revokeCert(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	serial, err := pki.NormalizeSerial(r.PathValue("serial"))
	if err != nil {
		return badInput("%v", err)
	}
	var body apitypes.RevokeRequest
	if err := h.decode(r, &body); err != nil {
		return err
	}
	reason, inv, err := reasonAndDate(body.Reason, body.InvalidityDate, true)
	if err != nil {
		return err
	}
	rec, created, err := h.d.Revoker.Revoke(r.Context(), revoke.Request{Principal: p, Serial: serial, Reason: reason, InvalidityDate: inv})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, revocationView(rec, created))
}

func (h *Handler) revokeCA(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var body apitypes.RevokeRequest
	if err := h.decode(r, &body); err != nil {
		return err
	}
	reason, inv, err := reasonAndDate(body.Reason, body.InvalidityDate, false)
	if err != nil {
		return err
	}
	rec, created, err := h.d.Revoker.RevokeCA(r.Context(), revoke.CARequest{Principal: p, CA: r.PathValue("ca"), Reason: reason, InvalidityDate: inv})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, revocationView(rec, created))
}

func (h *Handler) revokeBulk(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var body apitypes.BulkRevokeRequest
	if err := h.decode(r, &body); err != nil {
		return err
	}
	reason, inv, err := reasonAndDate(body.Reason, body.InvalidityDate, true)
	if err != nil {
		return err
	}
	sel := inventory.Selector{CAID: body.Selector.CA, Profile: body.Selector.Profile, SAN: body.Selector.SAN, SPKISHA256: body.Selector.SPKISHA256}
	if sel.SPKISHA256 != "" {
		if !isHex(sel.SPKISHA256, 64) {
			return badInput("selector spki_sha256 %q: want 64 hex digits (SHA-256 of the SubjectPublicKeyInfo)", sel.SPKISHA256)
		}
	}
	recs, err := h.d.Revoker.RevokeMatching(r.Context(), revoke.BulkRequest{Principal: p, Selector: sel, Reason: reason, InvalidityDate: inv, DryRun: body.DryRun})
	if err != nil {
		return err
	}
	out := apitypes.BulkRevokeResult{DryRun: body.DryRun, Count: len(recs), Serials: make([]string, len(recs))}
	for i, rec := range recs {
		out.Serials[i] = rec.Serial
	}
	return writeJSON(w, http.StatusOK, out)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
