package console

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/pki"
)

// Scans is what the endpoint pages need: discovery.Monitor, the API's
// scan calls. Each checks the principal itself: reading needs cert:read
// or report:read with no scope, running a scan ca:manage with no scope
// (and is audited as scan.run, refused or not).
type Scans interface {
	Endpoints(ctx context.Context, p authz.Principal, q discovery.EndpointQuery) ([]*discovery.Endpoint, error)
	Endpoint(ctx context.Context, p authz.Principal, address string, limit int) (*discovery.EndpointHistory, error)
	RunNow(ctx context.Context, p authz.Principal, targets []string) (discovery.Result, error)
	KPIs(ctx context.Context, p authz.Principal) (*discovery.KPIs, error)
	// Allowed is scan.allow, which the Scan now form names.
	Allowed() discovery.AllowList
}

// Bounds of the endpoint pages: the rows of one list page, the history
// one endpoint page shows, and the targets of one Scan now (the API's).
const (
	endpointRows   = 100
	endpointEvents = 100
	maxScanTargets = 256
	// maxAddress bounds an endpoint address in a path: a DNS name and a
	// port.
	maxAddress = 300
)

// encryptionInfo says how each encryption reads on the pages; Plaintext
// ones are flagged.
var encryptionInfo = map[discovery.Encryption]struct{ label, class string }{
	discovery.EncImplicitTLS: {"TLS", "encrypted"},
	discovery.EncSTARTTLS:    {"STARTTLS, required", "encrypted"},
	discovery.EncOptional:    {"optional: plaintext allowed", "plaintext"},
	discovery.EncNone:        {"none: plaintext", "plaintext"},
	discovery.EncUnknown:     {"unknown", "unknown"},
}

// servedStatuses are the reconciliation statuses of a served certificate,
// as the status filter offers them, with their class and meaning.
var servedStatuses = []servedStatus{
	{discovery.StatusManaged, "ok", "managed here, current"},
	{discovery.StatusStale, "warning", "stale: renewed, the old one still served"},
	{discovery.StatusRevoked, "error", "revoked, still served"},
	{discovery.StatusExpired, "error", "expired, still served"},
	{discovery.StatusUnmanaged, "warning", "unmanaged: known only from scans"},
}

type servedStatus struct {
	status       discovery.Status
	class, label string
}

// gradeOrder is the order of the grade chart's bars, best first.
var gradeOrder = []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M"}

// statusOption is one choice of a filter's select.
type statusOption struct{ Value, Label string }

// gradeView is an endpoint's grade: Class colours it (good A, fair B,
// bad below), Title holds its reasons for the pointer.
type gradeView struct {
	Letter, Class, Title, RulesVersion string
	Score                              int
	Reasons                            []discovery.Reason
}

// versionTag is one TLS version an endpoint accepted; Old: before TLS 1.2.
type versionTag struct {
	Name string
	Old  bool
}

// endpointRow is one endpoint as the list (and the top of its page)
// shows it.
type endpointRow struct {
	Address, Href, Protocol string
	// Encryption is the value, EncLabel says it for people, EncClass is
	// plaintext for none and optional.
	Encryption, EncLabel, EncClass string
	Versions                       []versionTag
	// VersionsPartial: not every version was tried; only the
	// negotiated one is known.
	VersionsPartial bool
	Grade           *gradeView
	// Status is the served certificate's reconciliation ("" when none
	// was served); CertLink opens it, when the viewer may read it.
	Status, StatusClass, StatusLabel string
	Serial, Subject, CertLink        string
	LastSeen                         time.Time
	Gone                             bool
	Misses                           int
	LastError                        string
}

// shareView is a KPI share: Pct of Of endpoints for which it is known.
type shareView struct {
	Pct   string
	N, Of int
}

// statusCount is how many endpoints serve a certificate in a status.
type statusCount struct {
	Status, Class, Label, Href string
	N                          int
}

// scanKPIView is the summary at the top of the endpoints page.
type scanKPIView struct {
	GeneratedAt                    time.Time
	Endpoints, Gone, Exposed       int
	Plaintext, Optional, Unmanaged int
	Encrypted, TLS12, Strong       shareView
	Remediated                     int
	MeanTimeToRemediate            string
	ByStatus                       []statusCount
	Grades                         *chart
}

type endpointsView struct {
	// Encryption, Status and Gone are the filters, After where the page
	// starts.
	Encryption, Status string
	Gone               bool
	After              string
	Encryptions        []statusOption
	Statuses           []statusOption
	KPIs               *scanKPIView
	Rows               []endpointRow
	// Next links the next page ("" on the last); First the first.
	Next, First string
	// CanScan: the viewer may run a scan now; Allowed is scan.allow;
	// Targets what the form holds.
	CanScan          bool
	Allowed, Targets string
	Notice, Error    string
}

// chainCert is one certificate of the chain an endpoint served.
type chainCert struct {
	Subject, Issuer, Fingerprint string
	NotAfter                     time.Time
	Expired, Unparsed            bool
}

// historyRow is one change of an endpoint, said in words.
type historyRow struct {
	At         time.Time
	Kind, Text string
}

// servedAtRow is one endpoint serving the same certificate.
type servedAtRow struct {
	Endpoint, Href      string
	FirstSeen, LastSeen time.Time
	This                bool
}

// endpointView is everything an endpoint's page shows.
type endpointView struct {
	Row endpointRow
	// IP is the address connected to; Host the name the target gave;
	// ServerName the SNI sent.
	IP, Host, ServerName       string
	Negotiated, Suite          string
	Suites                     []string
	SuitesComplete, WeakSuites bool
	ForwardSecrecy             string
	HSTS                       *discovery.HSTS
	Findings                   []discovery.Finding
	Match                      *discovery.Match
	// Successor renewed the served certificate (stale); SuccessorLink
	// opens it when the viewer may read it.
	Successor, SuccessorLink string
	Chain                    []chainCert
	// History is the newest Listed changes; MoreHistory: there are older.
	History                []historyRow
	MoreHistory            bool
	Listed                 int
	ServedAt               []servedAtRow
	FirstSeen, LastScanned time.Time
	// ExposedSince is when it was found plaintext or weak (Exposure).
	ExposedSince time.Time
	Exposure     string
	// ScanError is why the latest scan could not tell more.
	ScanError string
	CanScan   bool
}

// endpointHref is the console page of the endpoint at address.
func endpointHref(address string) string { return "/endpoints/" + url.PathEscape(address) }

// endpoints lists the scanned endpoints under the encryption KPIs,
// filtered by encryption and served-certificate status as the API's
// list is, with the Scan now form for a viewer with unscoped ca:manage.
func (h *Handler) endpoints(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showEndpoints(w, r, v, http.StatusOK, &endpointsView{})
}

// showEndpoints renders the list with ev's notice, error and targets
// already set; a POST (Scan now) shows the first page, unfiltered.
func (h *Handler) showEndpoints(w http.ResponseWriter, r *http.Request, v *visit, status int, ev *endpointsView) {
	ev.CanScan = v.who.Everywhere(authz.PermCAManage)
	if ev.CanScan {
		ev.Allowed = h.d.Scans.Allowed().String()
	}
	for _, e := range discovery.Encryptions() {
		ev.Encryptions = append(ev.Encryptions, statusOption{Value: string(e), Label: encryptionInfo[e].label})
	}
	for _, s := range servedStatuses {
		ev.Statuses = append(ev.Statuses, statusOption{Value: string(s.status), Label: s.label})
	}
	q := url.Values{}
	if r.Method == http.MethodGet {
		q = r.URL.Query()
	}
	eq, err := endpointFilter(q, ev)
	if err != nil {
		// Said at the top; the list below is then the first page,
		// unfiltered.
		ev.Error, status = err.Error(), http.StatusBadRequest
		ev.Encryption, ev.Status, ev.Gone, ev.After = "", "", false, ""
		eq = discovery.EndpointQuery{Limit: endpointRows + 1}
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	k, err := h.d.Scans.KPIs(ctx, v.who)
	if errors.Is(err, authz.ErrForbidden) {
		msg := "The scanned endpoints are every address the scans reached, whatever CA issued what they serve, so they need cert:read or report:read with no scope. " + publicReason(err)
		if ev.Notice != "" {
			msg = ev.Notice + " " + msg
		}
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: msg})
		return
	}
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	eps, err := h.d.Scans.Endpoints(ctx, v.who, eq)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	ev.KPIs = kpiView(k)
	linkCerts := v.who.Everywhere(authz.PermCertRead)
	for _, ep := range eps[:min(len(eps), endpointRows)] {
		row := newEndpointRow(ep)
		if linkCerts && row.Serial != "" {
			row.CertLink = "/certificates/" + url.PathEscape(row.Serial)
		}
		ev.Rows = append(ev.Rows, row)
	}
	if len(eps) > endpointRows {
		ev.Next = endpointsLink(ev, eps[endpointRows-1].Address)
	}
	if ev.After != "" {
		ev.First = endpointsLink(ev, "")
	}
	h.render(w, r, status, "endpoints", v, ev)
}

// endpointFilter reads the list's filters into ev and returns the query
// of its page; its errors say what to fix.
func endpointFilter(q url.Values, ev *endpointsView) (discovery.EndpointQuery, error) {
	eq := discovery.EndpointQuery{Limit: endpointRows + 1}
	if err := checkQuery(q); err != nil {
		return eq, err
	}
	ev.Encryption, ev.Status, ev.After = q.Get("encryption"), q.Get("status"), q.Get("after")
	if ev.Encryption != "" && !slices.Contains(discovery.Encryptions(), discovery.Encryption(ev.Encryption)) {
		return eq, fmt.Errorf("encryption %q: choose implicit-tls, starttls, optional, none or unknown, or any", clip(ev.Encryption, 100))
	}
	if ev.Status != "" && !slices.ContainsFunc(servedStatuses, func(s servedStatus) bool { return string(s.status) == ev.Status }) {
		return eq, fmt.Errorf("status %q: choose managed, stale, revoked, expired or unmanaged, or any", clip(ev.Status, 100))
	}
	switch g := q.Get("gone"); g {
	case "":
	case "1":
		ev.Gone = true
	default:
		return eq, fmt.Errorf("gone %q: give 1 to include the endpoints that disappeared, or nothing", clip(g, 100))
	}
	eq.Encryption, eq.Status, eq.Gone, eq.After = discovery.Encryption(ev.Encryption), discovery.Status(ev.Status), ev.Gone, ev.After
	return eq, nil
}

// endpointsLink is the list with ev's filters, starting after address
// ("": the first page).
func endpointsLink(ev *endpointsView, after string) string {
	gone := ""
	if ev.Gone {
		gone = "1"
	}
	return pageLink("/endpoints", "encryption", ev.Encryption, "status", ev.Status, "gone", gone, "after", after)
}

// newEndpointRow is ep as the list shows it.
func newEndpointRow(ep *discovery.Endpoint) endpointRow {
	o := &ep.Latest
	enc := encryptionInfo[o.Encryption]
	if enc.label == "" {
		enc.label, enc.class = string(o.Encryption), "unknown"
	}
	row := endpointRow{Address: ep.Address, Href: endpointHref(ep.Address), Protocol: o.Protocol,
		Encryption: string(o.Encryption), EncLabel: enc.label, EncClass: enc.class,
		VersionsPartial: !o.VersionsComplete, LastSeen: ep.LastSeen, Gone: ep.Gone, Misses: ep.Misses, LastError: clip(ep.LastError, shortText)}
	versions := o.Versions
	if len(versions) == 0 && o.Negotiated != "" {
		versions = []string{o.Negotiated}
	}
	for _, ver := range versions {
		row.Versions = append(row.Versions, versionTag{Name: ver, Old: !discovery.ModernVersion(ver)})
	}
	if g := o.Grade; g != nil {
		gv := &gradeView{Letter: g.Letter, Score: g.Score, RulesVersion: g.RulesVersion, Reasons: g.Reasons, Class: "good"}
		switch {
		case g.Weak():
			gv.Class = "bad"
		case !strings.HasPrefix(g.Letter, "A"):
			gv.Class = "fair"
		}
		msgs := make([]string, 0, len(g.Reasons))
		for _, rs := range g.Reasons {
			msgs = append(msgs, rs.Message)
		}
		gv.Title = clip(strings.Join(msgs, "\n"), longText)
		if gv.Title == "" {
			gv.Title = "No rule lowered the grade."
		}
		row.Grade = gv
	}
	if m := ep.Match; m != nil {
		row.Status, row.Serial, row.Subject = string(m.Status), m.Serial, m.Subject
		row.StatusClass, row.StatusLabel = "warning", string(m.Status)
		for _, s := range servedStatuses {
			if s.status == m.Status {
				row.StatusClass, row.StatusLabel = s.class, s.label
			}
		}
	}
	return row
}

// kpiView is the summary of k.
func kpiView(k *discovery.KPIs) *scanKPIView {
	share := func(n, of int, v float64) shareView {
		s := shareView{N: n, Of: of, Pct: "n/a"}
		if of > 0 {
			s.Pct = strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
		}
		return s
	}
	kv := &scanKPIView{GeneratedAt: k.GeneratedAt, Endpoints: k.Endpoints, Gone: k.Gone, Exposed: k.Exposed,
		Plaintext: k.ByEncryption[discovery.EncNone], Optional: k.ByEncryption[discovery.EncOptional], Unmanaged: k.Unmanaged,
		Encrypted: share(k.Encrypted, k.EncryptionKnown, k.EncryptedShare), TLS12: share(k.TLS12Only, k.TLS12Known, k.TLS12OnlyShare),
		Strong: share(k.StrongOnly, k.StrongKnown, k.StrongOnlyShare), Remediated: k.Remediated, MeanTimeToRemediate: "n/a"}
	if k.Remediated > 0 {
		kv.MeanTimeToRemediate = span(time.Duration(k.MeanTimeToRemediate * float64(time.Second)))
	}
	for _, s := range servedStatuses {
		kv.ByStatus = append(kv.ByStatus, statusCount{Status: string(s.status), Class: s.class, Label: s.label, N: k.ByStatus[s.status],
			Href: "/endpoints?" + url.Values{"status": {string(s.status)}}.Encode()})
	}
	letters := slices.Clone(gradeOrder)
	var extra []string
	for l := range k.Grades {
		if !slices.Contains(letters, l) {
			extra = append(extra, l)
		}
	}
	slices.Sort(extra)
	letters = append(letters, extra...)
	values := make([][]int, len(letters))
	for i, l := range letters {
		values[i] = []int{k.Grades[l]}
	}
	kv.Grades = barChart("grades", "Grades", "Endpoints by the grade of their latest scan, best first (T: certificate not trusted, M: name mismatch).",
		[]string{"endpoints"}, letters, letters, nil, values)
	kv.Grades.EmptyText = "No endpoint has been graded yet."
	return kv
}

// endpoint shows one endpoint: its grade and the reasons, its findings,
// the chain it served, its history and where its certificate is also
// served.
func (h *Handler) endpoint(w http.ResponseWriter, r *http.Request, v *visit) {
	addr := r.PathValue("address")
	notFound := func() {
		h.render(w, r, http.StatusNotFound, "error", v, errorPage{Title: "Endpoint not found", Message: "No scan has found an endpoint at this address; the endpoints page lists those known."})
	}
	if addr == "" || len(addr) > maxAddress || !utf8.ValidString(addr) || strings.IndexFunc(addr, unicode.IsControl) >= 0 {
		notFound()
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	hist, err := h.d.Scans.Endpoint(ctx, v.who, addr, endpointEvents+1)
	switch {
	case errors.Is(err, authz.ErrForbidden):
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Not allowed", Message: "The scanned endpoints need cert:read or report:read with no scope. " + publicReason(err)})
		return
	case errors.Is(err, discovery.ErrNotFound):
		notFound()
		return
	case err != nil:
		h.unavailable(w, r, err)
		return
	}
	ep := hist.Endpoint
	o := &ep.Latest
	now := h.d.Clock.Now()
	pv := &endpointView{Row: newEndpointRow(ep), IP: o.Address, Host: o.Host, ServerName: o.ServerName, Negotiated: o.Negotiated,
		Suite: o.Suite, Suites: o.Suites, SuitesComplete: o.SuitesComplete, WeakSuites: o.WeakSuites, ForwardSecrecy: string(o.ForwardSecrecy),
		HSTS: o.HSTS, Findings: o.Findings, Match: ep.Match, FirstSeen: ep.FirstSeen, LastScanned: ep.LastScanned,
		ExposedSince: ep.ExposedSince, Exposure: discovery.Exposure(o), ScanError: clip(o.Error, longText), CanScan: v.who.Everywhere(authz.PermCAManage), Listed: endpointEvents}
	if m := ep.Match; m != nil {
		if pv.Row.CertLink, err = h.certLink(ctx, v, m.Serial); err != nil {
			h.unavailable(w, r, err)
			return
		}
		if m.Successor != "" {
			pv.Successor = m.Successor
			if pv.SuccessorLink, err = h.certLink(ctx, v, m.Successor); err != nil {
				h.unavailable(w, r, err)
				return
			}
		}
	}
	for _, der := range o.Chain {
		pv.Chain = append(pv.Chain, newChainCert(der, now))
	}
	for _, e := range hist.Events[:min(len(hist.Events), endpointEvents)] {
		pv.History = append(pv.History, historyRow{At: e.At, Kind: string(e.Kind), Text: describeEvent(e)})
	}
	pv.MoreHistory = len(hist.Events) > endpointEvents
	for _, s := range hist.Sightings {
		pv.ServedAt = append(pv.ServedAt, servedAtRow{Endpoint: s.Endpoint, Href: endpointHref(s.Endpoint), FirstSeen: s.FirstSeen, LastSeen: s.LastSeen,
			This: s.Endpoint == ep.Address})
	}
	h.render(w, r, http.StatusOK, "endpoint", v, pv)
}

// certLink is the console page of the certificate serial when the viewer
// may read it, else "" (an unknown serial too).
func (h *Handler) certLink(ctx context.Context, v *visit, serial string) (string, error) {
	link := "/certificates/" + url.PathEscape(serial)
	switch {
	case serial == "" || !v.who.Can(authz.PermCertRead):
		return "", nil
	case v.who.Everywhere(authz.PermCertRead):
		return link, nil
	}
	c, err := h.d.Inventory.GetCertificate(ctx, serial)
	if errors.Is(err, authz.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	cas, err := h.d.CAs.List(ctx)
	if err != nil {
		return "", err
	}
	name := ""
	for _, ca := range cas {
		if ca.ID == c.CAID {
			name = ca.Name
		}
	}
	if v.who.Allow(authz.PermCertRead, c.Resource(name)) != nil {
		return "", nil
	}
	return link, nil
}

// newChainCert describes one certificate a peer served (DER that may not
// parse: it is the peer's).
func newChainCert(der []byte, now time.Time) chainCert {
	cc := chainCert{Fingerprint: pki.Fingerprint(der)}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		cc.Unparsed, cc.Subject = true, "a certificate that does not parse: "+clip(err.Error(), shortText)
		return cc
	}
	cc.Subject, cc.Issuer = clip(c.Subject.String(), shortText), clip(c.Issuer.String(), shortText)
	cc.NotAfter, cc.Expired = c.NotAfter, !now.Before(c.NotAfter)
	return cc
}

// shortFingerprint is a fingerprint's first 16 hex digits, "none" for no
// certificate.
func shortFingerprint(fp string) string {
	if fp == "" {
		return "none"
	}
	return clip(fp, 17)
}

// describeEvent says one change of an endpoint in words; From and To
// come from scans (encryptions, grades, fingerprints, a dial error).
func describeEvent(e discovery.Event) string {
	orNone := func(s string) string {
		if s == "" {
			return "none"
		}
		return s
	}
	switch e.Kind {
	case discovery.EventAppeared:
		if e.From == "gone" {
			return "reappeared after it had disappeared; encryption " + orNone(e.To)
		}
		return "first found; encryption " + orNone(e.To)
	case discovery.EventDisappeared:
		return "disappeared: missed by the scans in a row (" + clip(orNone(e.To), shortText) + ")"
	case discovery.EventCertChanged:
		return "served certificate changed from " + shortFingerprint(e.From) + " to " + shortFingerprint(e.To)
	case discovery.EventGradeChanged:
		return "grade changed from " + orNone(e.From) + " to " + orNone(e.To)
	case discovery.EventEncryptionChanged:
		return "encryption changed from " + orNone(e.From) + " to " + orNone(e.To)
	case discovery.EventExposed:
		return "found " + orNone(e.To) + ": needs remediation"
	case discovery.EventRemediated:
		s := "remediated"
		if !e.Since.IsZero() {
			s += " after " + span(e.At.Sub(e.Since))
		}
		if e.To == "gone" {
			s += ", by disappearing"
		}
		return s
	}
	return string(e.Kind) + " " + orNone(e.From) + " → " + orNone(e.To)
}

// scanTargets splits the form's targets at commas and white space.
func scanTargets(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// runScan scans now, through the API's call (which needs ca:manage with
// no scope and audits scan.run, refused or not): the targets the form
// names, each within scan.allow, or the configured ones when it names
// none. The page then shows the result above the list.
func (h *Handler) runScan(w http.ResponseWriter, r *http.Request, v *visit) {
	raw := r.PostFormValue("targets")
	targets := scanTargets(raw)
	ev := &endpointsView{Targets: clip(raw, maxParam)}
	if len(targets) > maxScanTargets {
		ev.Error = fmt.Sprintf("%d targets: give at most %d in one scan (use CIDR ranges).", len(targets), maxScanTargets)
		h.showEndpoints(w, r, v, http.StatusBadRequest, ev)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), jobRunTimeout)
	defer cancel()
	res, err := h.d.Scans.RunNow(ctx, v.who, targets)
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		h.render(w, r, http.StatusForbidden, "error", v, errorPage{Title: "Scan refused", Message: "Refused: " + publicReason(err)})
		return
	case errors.Is(err, discovery.ErrNotAllowed):
		ev.Error = "Not scanned: " + userReason(err) + "."
		h.showEndpoints(w, r, v, http.StatusForbidden, ev)
		return
	case errors.Is(err, discovery.ErrInvalid):
		ev.Error = "Not scanned: " + userReason(err) + "."
		h.showEndpoints(w, r, v, http.StatusBadRequest, ev)
		return
	case errors.Is(err, context.DeadlineExceeded):
		ev.Error = "The scan did not finish within " + span(jobRunTimeout) + "; scan fewer targets here, or let the scheduled scan job cover them."
		h.showEndpoints(w, r, v, http.StatusGatewayTimeout, ev)
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	what := "the configured targets"
	if len(targets) > 0 {
		what = strings.Join(targets[:min(len(targets), 5)], ", ")
		if len(targets) > 5 {
			what += fmt.Sprintf(" and %d more", len(targets)-5)
		}
	}
	ev.Notice, ev.Targets = "Scanned "+what+": "+res.Summary()+".", ""
	h.showEndpoints(w, r, v, http.StatusOK, ev)
}
