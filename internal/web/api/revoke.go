package api

import (
	"bytes"
	"context"
	"encoding/pem"
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
	ImportCRL(ctx context.Context, p authz.Principal, ca string, der []byte) (*revoke.ImportedCRL, error)
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

// importCRL uploads an offline root's CRL: {"crl_pem": "-----BEGIN X509 CRL-----..."}.
func (h *Handler) importCRL(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.ImportCRLRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	b, rest := pem.Decode([]byte(req.CRLPEM))
	if b == nil || b.Type != "X509 CRL" {
		return badInput("crl_pem: want one PEM \"X509 CRL\" block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return badInput("crl_pem: one CRL only; found more after the first")
	}
	res, err := h.d.Revoker.ImportCRL(r.Context(), p, r.PathValue("ca"), b.Bytes)
	if err != nil {
		return err
	}
	revoked := res.RevokedCAs
	if revoked == nil {
		revoked = []string{}
	}
	return writeJSON(w, http.StatusOK, apitypes.ImportedCRL{
		CA: res.CAName, CAID: res.CAID, Number: res.Number, ThisUpdate: res.ThisUpdate, NextUpdate: res.NextUpdate,
		Entries: res.Entries, CRLURL: h.caURLs(res.CAID).CRL, RevokedCAs: revoked,
	})
}
