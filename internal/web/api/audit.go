package api

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// parseTime reads an RFC 3339 time query parameter; "" gives def.
func parseTime(field, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badInput("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", field, s)
	}
	return t.UTC(), nil
}

// period reads since and until; since defaults to 30 days before until.
func (h *Handler) period(r *http.Request) (since, until time.Time, err error) {
	q := r.URL.Query()
	if until, err = parseTime("until", q.Get("until"), h.d.Clock.Now().UTC()); err != nil {
		return
	}
	if since, err = parseTime("since", q.Get("since"), until.Add(-30*24*time.Hour)); err != nil {
		return
	}
	if !since.Before(until) {
		err = badInput("since %s is not before until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return
}

func eventView(e *audit.Event) apitypes.AuditEvent {
	return apitypes.AuditEvent{Seq: e.Seq, Time: e.Time, Principal: e.Principal, PrincipalID: e.PrincipalID, Source: e.Source, Action: e.Action,
		Target: e.Target, Outcome: string(e.Outcome), RequestID: e.RequestID, Details: e.Details,
		PrevHash: e.PrevHash.String(), Hash: e.Hash.String()}
}

// auditEvents streams the events of a period as JSON lines. The export is
// itself audited: who took a copy of the log, and of which period.
func (h *Handler) auditEvents(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	if err := who.Allow(authz.PermAuditRead, authz.Resource{}); err != nil {
		return err
	}
	q := r.URL.Query()
	since, err := parseTime("since", q.Get("since"), time.Time{})
	if err != nil {
		return err
	}
	until, err := parseTime("until", q.Get("until"), time.Time{})
	if err != nil {
		return err
	}
	if f := q.Get("format"); f != "" && f != "jsonl" {
		return badInput("format %q: the audit export is jsonl", f)
	}
	period := map[string]any{"since": since}
	if !until.IsZero() {
		period["until"] = until
	}
	if err := h.d.Auditor.AppendAudit(r.Context(), audit.New(who, h.d.Clock.Now(), "audit.export", "", period)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	err = h.d.Auditor.EachAuditEventBetween(r.Context(), since, until, func(e *audit.Event) error {
		return enc.Encode(eventView(e))
	})
	if err != nil {
		// Headers are gone; cut the stream short so the client sees an
		// incomplete last line rather than a clean end.
		h.d.Log.Error("audit export failed mid-stream", "err", err)
		return nil
	}
	return bw.Flush()
}

func (h *Handler) auditVerify(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	if err := who.Allow(authz.PermAuditRead, authz.Resource{}); err != nil {
		return err
	}
	start := time.Now()
	rep, err := h.d.Auditor.Verify(r.Context(), who)
	if err != nil {
		return err
	}
	out := apitypes.AuditVerifyResult{
		Intact: rep.Intact, Events: rep.Events, HeadSeq: rep.HeadSeq, HeadHash: rep.HeadHash.String(),
		Checkpoints: rep.Checkpoints, LastCheckpoint: rep.LastCheckpoint, Unanchored: rep.Unanchored,
		Anchors:    rep.Anchors,
		DurationMS: time.Since(start).Milliseconds(),
	}
	if p := rep.Problem; p != nil {
		out.Problem = &apitypes.AuditProblem{Seq: p.Seq, Kind: p.Kind, Message: p.Message}
		h.d.Log.Error("audit log verification failed", "seq", p.Seq, "kind", p.Kind, "problem", p.Message)
	}
	return writeJSON(w, http.StatusOK, out)
}

// ---- reports

func (h *Handler) report(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	kind := r.PathValue("kind")
	if kind != "issued" && kind != "revoked" {
		return badInput("report %q: want issued or revoked", kind)
	}
	if err := who.Allow(authz.PermReportRead, authz.Resource{}); err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		return badInput("format %q: want json or csv", format)
	}
	since, until, err := h.period(r)
	if err != nil {
		return err
	}
	names := map[string]string{}
	caName := func(id string) string {
		n, ok := names[id]
		if !ok {
			if c, err := h.d.CAs.Get(r.Context(), id); err == nil {
				n = c.Name
			}
			names[id] = n
		}
		return n
	}
	rep := apitypes.Report{Kind: kind, Since: since, Until: until, GeneratedAt: h.d.Clock.Now().UTC(), PerCA: []apitypes.ReportCA{}, Certificates: []apitypes.ReportEntry{}}
	const maxRows = 1_000_000
	add := func(e apitypes.ReportEntry) error {
		if len(rep.Certificates) >= maxRows {
			return badInput("the period holds more than %d certificates; ask for a shorter one", maxRows)
		}
		rep.Certificates = append(rep.Certificates, e)
		return nil
	}
	if kind == "issued" {
		err = h.d.Reports.EachIssued(r.Context(), since, until, func(c *inventory.Certificate) error {
			at := c.CreatedAt
			nb, na := c.NotBefore, c.NotAfter
			return add(apitypes.ReportEntry{Serial: c.Serial, CAID: c.CAID, CA: caName(c.CAID), Profile: c.Profile,
				Subject: c.Subject, SANs: c.SANs, Requester: c.Requester, IssuedAt: &at, NotBefore: &nb, NotAfter: &na})
		})
	} else {
		err = h.d.Reports.EachRevokedBetween(r.Context(), since, until, func(rv *inventory.Revocation, c *inventory.Certificate) error {
			at := rv.RevokedAt
			e := apitypes.ReportEntry{Serial: rv.Serial, CAID: rv.CAID, CA: caName(rv.CAID), RevokedAt: &at,
				Reason: rv.Reason.String(), RevokedBy: rv.RevokedBy}
			if !rv.InvalidityDate.IsZero() {
				d := rv.InvalidityDate
				e.InvalidityDate = &d
			}
			if c != nil {
				e.Profile, e.Subject, e.SANs = c.Profile, c.Subject, c.SANs
			} else if rv.CA {
				e.Profile = "(CA certificate)"
			}
			return add(e)
		})
	}
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range rep.Certificates {
		counts[e.CAID]++
	}
	for id, n := range counts {
		rep.PerCA = append(rep.PerCA, apitypes.ReportCA{CAID: id, CA: caName(id), Count: n})
	}
	slices.SortFunc(rep.PerCA, func(a, b apitypes.ReportCA) int { return strings.Compare(a.CA+a.CAID, b.CA+b.CAID) })
	rep.Total = len(rep.Certificates)
	if format == "json" {
		return writeJSON(w, http.StatusOK, rep)
	}
	return writeReportCSV(w, &rep)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvSafe defuses a cell a spreadsheet would run as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func writeReportCSV(w http.ResponseWriter, rep *apitypes.Report) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="certwright-`+rep.Kind+`.csv"`)
	cw := csv.NewWriter(w)
	if rep.Kind == "issued" {
		_ = cw.Write([]string{"serial", "ca", "ca_id", "profile", "subject", "sans", "requester", "issued_at", "not_before", "not_after"})
		for _, e := range rep.Certificates {
			_ = cw.Write([]string{e.Serial, csvSafe(e.CA), e.CAID, csvSafe(e.Profile), csvSafe(e.Subject), csvSafe(strings.Join(e.SANs, ";")),
				csvSafe(e.Requester), fmtTime(e.IssuedAt), fmtTime(e.NotBefore), fmtTime(e.NotAfter)})
		}
	} else {
		_ = cw.Write([]string{"serial", "ca", "ca_id", "profile", "subject", "sans", "revoked_at", "reason", "revoked_by", "invalidity_date"})
		for _, e := range rep.Certificates {
			_ = cw.Write([]string{e.Serial, csvSafe(e.CA), e.CAID, csvSafe(e.Profile), csvSafe(e.Subject), csvSafe(strings.Join(e.SANs, ";")),
				fmtTime(e.RevokedAt), e.Reason, csvSafe(e.RevokedBy), fmtTime(e.InvalidityDate)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// ---- managed keys

// exportKey hands a retained managed key to a machine principal. The
// issuance path checks kind, scope and profile, and audits the hand-out.
func (h *Handler) exportKey(w http.ResponseWriter, r *http.Request, who authz.Principal) error {
	s, err := pki.NormalizeSerial(r.PathValue("serial"))
	if err != nil {
		return badInput("%v", err)
	}
	pemKey, err := h.d.Issuer.ExportKey(r.Context(), who, s)
	if err != nil {
		return err
	}
	defer clear(pemKey) // the only copy of the key this process keeps
	w.Header().Set("Cache-Control", "no-store")
	return writePEM(w, pemKey)
}
