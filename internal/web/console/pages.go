package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
)

// expiryWindows are the overview's "expiring within" windows, in days.
var expiryWindows = []int{7, 14, 30, 60, 90}

// parsePages parses every page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"exact": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		// machine is a <time> element's datetime: an HTML global date and
		// time (RFC 3339 in UTC), where "UTC" spelled out is not valid.
		"machine":  func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") },
		"day":      func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"relative": relative,
		"list":     func(v ...string) []string { return v },
		"add":      func(a, b int) int { return a + b },
		"sub":      func(a, b int) int { return a - b },
		"thousands": func(n any) string {
			switch n := n.(type) {
			case int:
				return thousands(n)
			case int64:
				return thousands(int(n))
			default:
				return fmt.Sprint(n)
			}
		},
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

// utcDay is the midnight (UTC) that begins t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// relative says how far t is from now for people: "in 12 days", "3 hours ago".
func relative(now, t time.Time) string {
	d := t.Sub(now)
	future := d >= 0
	if !future {
		d = -d
	}
	if d < time.Minute {
		return "now"
	}
	s := span(d)
	if future {
		return "in " + s
	}
	return s + " ago"
}

// span says a duration for people: "40 minutes", "3 hours", "2 days".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// page is what the layout renders around a view.
type page struct {
	Title    string
	Nav      string // the current section
	Who      string
	CSRF     string
	Now      time.Time
	SignedIn bool
	// CanAudit: the viewer may read the audit log (its link is shown);
	// CanRequests: it may request or approve (the approvals link).
	CanAudit, CanRequests, CanCAs, CanCerts, CanAccess bool
	// CanCompliance: it may read the compliance report (report:read with
	// no scope, as the API's). The ACME and EST links go with CanCAs: all
	// need ca:read somewhere.
	CanCompliance bool
	// CanEndpoints: it may read the scanned endpoints (cert:read or
	// report:read with no scope, as the API's).
	CanEndpoints bool
	View         any
}

type errorPage struct{ Title, Message string }

// render writes the page name with view, inside the layout; v is nil
// outside a session.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *visit, view any) {
	t := h.pages[name]
	p := page{View: view, Now: h.d.Clock.Now()}
	switch view := view.(type) {
	case errorPage:
		p.Title = view.Title
	case loginView:
		p.Title = "Sign in"
	case continueView:
		p.Title = "Signed in"
	case *overviewView:
		p.Title, p.Nav = "Overview", "overview"
	case *certificatesView:
		p.Title, p.Nav = "Certificates", "certificates"
	case *certificateView:
		p.Title, p.Nav = "Certificate "+view.Row.Name, "certificates"
	case *auditView:
		p.Title, p.Nav = "Audit log", "audit"
	case *requestsView:
		p.Title, p.Nav = "Approvals", "requests"
	case *casView:
		p.Title, p.Nav = "Certificate authorities", "cas"
	case *accessView:
		p.Title, p.Nav = "Access", "access"
	case *principalView:
		p.Title, p.Nav = "Principal "+view.P.Name, "access"
	case *alertsView:
		p.Title, p.Nav = "Alerts and jobs", "alerts"
	case *acmeView:
		p.Title, p.Nav = "ACME provisioners", "acme"
	case *acmeProvisionerView:
		p.Title, p.Nav = "ACME provisioner "+view.Row.P.Name, "acme"
	case *estView:
		p.Title, p.Nav = "EST provisioners", "est"
	case *estProvisionerView:
		p.Title, p.Nav = "EST provisioner "+view.Row.P.Name, "est"
	case *complianceView:
		p.Title, p.Nav = "Compliance", "compliance"
	case *endpointsView:
		p.Title, p.Nav = "Endpoints", "endpoints"
	case *endpointView:
		p.Title, p.Nav = "Endpoint "+view.Row.Address, "endpoints"
	}
	if v != nil {
		p.SignedIn, p.Who, p.CSRF = true, v.who.Name, v.csrf
		p.CanAudit = v.who.Allow(authz.PermAuditRead, authz.Resource{}) == nil
		p.CanRequests = v.who.Can(authz.PermCertIssue) || v.who.Can(authz.PermRequestApprove)
		p.CanCAs = v.who.Can(authz.PermCARead)
		p.CanCerts = v.who.Can(authz.PermCertRead)
		p.CanAccess = v.who.Allow(authz.PermPrincipalRead, authz.Resource{}) == nil
		p.CanCompliance = v.who.Allow(authz.PermReportRead, authz.Resource{}) == nil
		p.CanEndpoints = v.who.Everywhere(authz.PermCertRead) || v.who.Everywhere(authz.PermReportRead)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		h.d.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// certRow is one certificate as a table shows it.
type certRow struct {
	Serial, Name, CA, Profile, Status, Source string
	NotBefore, NotAfter                       time.Time
	Expired                                   bool
}

func (h *Handler) row(c *inventory.Certificate, caNames map[string]string, now time.Time) certRow {
	name := c.Subject
	if len(c.SANs) > 0 {
		name = c.SANs[0]
		if len(c.SANs) > 1 {
			name += fmt.Sprintf(" (+%d)", len(c.SANs)-1)
		}
	}
	status := string(c.Status)
	expired := !now.Before(c.NotAfter)
	if c.Status == inventory.StatusValid && expired {
		status = "expired"
	}
	return certRow{Serial: c.Serial, Name: name, CA: firstNonEmpty(caNames[c.CAID], c.CAID), Profile: c.Profile, Status: status,
		Source: string(c.Source), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Expired: expired}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// caNames maps CA IDs to names.
func (h *Handler) caNames(r *http.Request) (map[string]string, error) {
	ctx, cancel := h.storeContext(r)
	defer cancel()
	cas, err := h.d.CAs.List(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cas))
	for _, c := range cas {
		m[c.ID] = c.Name
	}
	return m, nil
}

// windowCount is one "expiring within" figure of the overview.
type windowCount struct {
	Days  int
	Count int
	Link  string
}

type overviewView struct {
	Valid, Expired, Revoked int
	Windows                 []windowCount
	Soonest                 []certRow
	// Scoped: counted over the certificates the viewer's scope covers,
	// read row by row; Partial: that read stopped at its bound.
	Scoped, Partial bool
	Scanned         int
	NoAccess        bool
	// Pending is the requests held for approval the viewer may see (its
	// own and those it may decide); ShowPending: it may see some;
	// PendingPartial: the count stopped at its bound.
	Pending                     int
	ShowPending, PendingPartial bool
	// Undelivered is how many alerts are not delivered everywhere;
	// ShowUndelivered: the viewer may read alerts.
	Undelivered     int
	ShowUndelivered bool
	// Health is the CA health section (nil: the viewer reads no CA).
	Health *healthView
	// Charts: the expiry timeline, days left and the activity per day.
	Charts []*chart
	// Compliance is the newest compliance summary, for a viewer with
	// unscoped report:read once one was built.
	Compliance *compliance.Snapshot
}

// overview is the risk header: how many certificates are valid, expired
// and revoked, how many expire within each window, and the soonest to
// expire. A viewer whose cert:read is unscoped gets the store's summary
// (kept per CA, profile and day of expiry, cheap at any size); a scoped
// one gets counts over what its scope covers, read row by row up to
// inventory.ScanMax rows.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, v *visit) {
	var err error
	if !v.who.Can(authz.PermCertRead) {
		ov := &overviewView{NoAccess: true}
		if ov.Health, err = h.health(r, v); err != nil {
			h.unavailable(w, r, err)
			return
		}
		h.render(w, r, http.StatusOK, "overview", v, ov)
		return
	}
	names, err := h.caNames(r)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	now := h.d.Clock.Now()
	today := utcDay(now)
	ov := &overviewView{}
	if ov.Health, err = h.health(r, v); err != nil {
		h.unavailable(w, r, err)
		return
	}
	bounds := make([]time.Time, len(expiryWindows))
	for i, d := range expiryWindows {
		bounds[i] = now.Add(time.Duration(d) * 24 * time.Hour)
	}
	counts := make([]int, len(expiryWindows))
	visible := func(c *inventory.Certificate) bool {
		return v.who.Allow(authz.PermCertRead, c.Resource(names[c.CAID])) == nil
	}
	if v.who.Everywhere(authz.PermCertRead) {
		c, err := h.d.Inventory.InventoryCounts(ctx, now, bounds)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		ov.Valid, ov.Expired, ov.Revoked, counts = c.Valid, c.Expired, c.Revoked, c.Expiring
		days, err := h.d.Inventory.ValidByExpiryDay(ctx, now)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		since := today.AddDate(0, 0, -(activityDays - 1))
		issued, err := h.d.Inventory.IssuedByDay(ctx, since)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		revoked, err := h.d.Inventory.RevokedByDay(ctx, since)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		ov.Charts = []*chart{expiryTimeline(days, today, names), daysLeft(days, today), activity(issued, revoked, today, true)}
	} else {
		ov.Scoped = true
		var expiring, issued []inventory.DayCount
		since := today.AddDate(0, 0, -(activityDays - 1))
		f := inventory.Filter{Limit: inventory.ScanMax}
		resume, err := inventory.ScanVisible(ctx, h.d.Inventory.ListCertificates, f, inventory.ScanLimits{Page: inventory.ScanPage, Max: inventory.ScanMax}, func(c *inventory.Certificate) bool {
			ov.Scanned++
			if !visible(c) {
				return false
			}
			if c.Source == inventory.SourceIssued && !c.CreatedAt.Before(since) {
				issued = append(issued, inventory.DayCount{Day: utcDay(c.CreatedAt), CAID: c.CAID, N: 1})
			}
			if c.Status == inventory.StatusValid && !c.NotAfter.Before(today) {
				expiring = append(expiring, inventory.DayCount{Day: utcDay(c.NotAfter), CAID: c.CAID, Renewed: c.RenewedBy != "", N: 1})
			}
			switch {
			case c.Status == inventory.StatusRevoked:
				ov.Revoked++
			case !now.Before(c.NotAfter):
				ov.Expired++
			default:
				ov.Valid++
				for i, b := range bounds {
					if c.RenewedBy == "" && !c.NotAfter.After(b) {
						counts[i]++
					}
				}
			}
			return true
		})
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		ov.Partial = resume != nil || ov.Scanned >= inventory.ScanMax
		ov.Charts = []*chart{expiryTimeline(expiring, today, names), daysLeft(expiring, today), activity(issued, nil, today, false)}
	}
	for i, d := range expiryWindows {
		ov.Windows = append(ov.Windows, windowCount{Days: d, Count: counts[i], Link: "/certificates?" + url.Values{"within": {strconv.Itoa(d)}, "status": {"valid"}, "current": {"1"}, "sort": {"expiry"}}.Encode()})
	}
	if v.who.Can(authz.PermCertIssue) || v.who.Can(authz.PermRequestApprove) {
		ov.Pending, ov.PendingPartial, err = h.d.Approvals.CountRequests(ctx, v.who, issue.StatusPending)
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		ov.ShowPending = true
	}
	// Alerts cover every certificate: only for cert:read with no scope,
	// as the alerts page.
	if v.who.Allow(authz.PermCertRead, authz.Resource{}) == nil {
		if ov.Undelivered, err = h.d.Lifecycle.CountUndelivered(ctx, v.who); err != nil {
			h.unavailable(w, r, err)
			return
		}
		ov.ShowUndelivered = true
	}
	// Non-compliant and weak keys: the compliance summary's (its job
	// evaluates every certificate; the overview only reads the result).
	if v.who.Allow(authz.PermReportRead, authz.Resource{}) == nil {
		snap, err := h.d.Compliance.LatestSnapshot(ctx)
		switch {
		case err == nil:
			ov.Compliance = snap
		case !errors.Is(err, authz.ErrNotFound):
			h.unavailable(w, r, err)
			return
		}
	}
	// The soonest to expire, of those not revoked and not yet renewed.
	f := inventory.Filter{Order: inventory.OrderExpiry, UnexpiredAt: now, Current: true, Limit: 10}
	if _, err := inventory.ScanVisible(ctx, h.d.Inventory.ListCertificates, f, inventory.ScanLimits{Page: inventory.ScanPage, Max: inventory.ScanMax}, func(c *inventory.Certificate) bool {
		if !visible(c) {
			return false
		}
		ov.Soonest = append(ov.Soonest, h.row(c, names, now))
		return true
	}); err != nil {
		h.unavailable(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "overview", v, ov)
}

// pageSize is the rows of one inventory page.
const pageSize = 100

type certificatesView struct {
	Rows                                                     []certRow
	Name, Owner, Tag, Requester, CA, Profile, Status, Source string
	Within, Sort, Dir                                        string
	Current                                                  bool
	CAs                                                      []string
	Next                                                     string
	Stopped                                                  bool // the scan bound ended the page early
	Error                                                    string
	Scoped                                                   bool
	// ExportCSV and ExportJSON download the whole view.
	ExportCSV, ExportJSON string
	// Columns are the table's headers, each a link sorting by it.
	Columns []sortColumn
	// Views are the viewer's saved views; Query is this view's filter,
	// which the save form posts.
	Views    []viewLink
	Query    string
	MaxViews int
}

// sortColumn is one header of the inventory's table: Href sorts by it
// (the other way when it is the order already), Sort is its aria-sort.
type sortColumn struct {
	Label, Href, Sort string
}

// columns are the inventory table's columns and the order each sorts by.
var columns = []struct {
	label string
	order inventory.Order
}{
	{"Name", inventory.OrderName}, {"Status", inventory.OrderStatus}, {"Issued", inventory.OrderIssued},
	{"Expires", inventory.OrderExpiry}, {"CA", inventory.OrderCA}, {"Profile", inventory.OrderProfile},
	{"Source", inventory.OrderSource}, {"Serial", inventory.OrderSerial},
}

// filterKeys are the inventory page's query parameters that make its
// view: what a saved view keeps, and every link of the page carries on
// (the page position, after, aside).
var filterKeys = []string{"name", "owner", "tag", "requester", "ca", "profile", "status", "source", "within",
	"expires_from", "expires_to", "current", "sort", "dir"}

// viewQuery is q's view: its filterKeys that are set, nothing else.
func viewQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range filterKeys {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// certificates is the inventory: every certificate the viewer's scope
// covers, filtered, in the order of any column either way, a page at a
// time.
func (h *Handler) certificates(w http.ResponseWriter, r *http.Request, v *visit) {
	q := r.URL.Query()
	cv := &certificatesView{Name: q.Get("name"), Owner: q.Get("owner"), Tag: q.Get("tag"), Requester: q.Get("requester"),
		CA: q.Get("ca"), Profile: q.Get("profile"), Status: q.Get("status"), Source: q.Get("source"),
		Within: q.Get("within"), Sort: q.Get("sort"), Dir: q.Get("dir"), Current: q.Get("current") == "1",
		Scoped: !v.who.Everywhere(authz.PermCertRead), MaxViews: maxViews}
	names, err := h.caNames(r)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	// The CA filter offers only CAs the viewer may read about (the API's
	// CA list needs ca:read too).
	for id, name := range names {
		if v.who.Allow(authz.PermCARead, authz.Resource{CAID: id, CAName: name}) == nil {
			cv.CAs = append(cv.CAs, name)
		}
	}
	slices.Sort(cv.CAs)
	ctx, cancel := h.storeContext(r)
	defer cancel()
	views, err := h.d.Views.ListViews(ctx, v.who.ID, maxViews)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	for _, sv := range views {
		cv.Views = append(cv.Views, viewLink{ID: sv.ID, Name: sv.Name, Href: "/certificate-views/" + url.PathEscape(sv.ID)})
	}
	now := h.d.Clock.Now()
	f, err := certFilter(q, names, now)
	if err != nil {
		cv.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, "certificates", v, cv)
		return
	}
	view := viewQuery(q)
	cv.Query = view.Encode()
	for _, c := range columns {
		link, col := viewQuery(view), sortColumn{Label: c.label}
		link.Set("sort", c.order.Name())
		link.Del("dir")
		if f.Order == c.order {
			col.Sort = "ascending"
			if f.Desc {
				col.Sort = "descending"
			} else {
				link.Set("dir", "desc")
			}
		}
		col.Href = "/certificates?" + link.Encode()
		cv.Columns = append(cv.Columns, col)
	}
	// A serial or a SHA-256 fingerprint typed into the name box (a name
	// never looks like one: it has a dot or is not all hex) opens that
	// certificate, if the viewer may see it.
	if n := strings.TrimSpace(cv.Name); len(n) >= 16 && !strings.Contains(n, ".") {
		if c := h.jumpTo(ctx, n); c != nil && v.who.Allow(authz.PermCertRead, c.Resource(names[c.CAID])) == nil {
			http.Redirect(w, r, "/certificates/"+c.Serial, http.StatusSeeOther)
			return
		}
	}
	var last *inventory.Certificate
	resume, err := inventory.ScanVisible(ctx, h.d.Inventory.ListCertificates, f, inventory.ScanLimits{Page: inventory.ScanPage, Max: inventory.ScanMax}, func(c *inventory.Certificate) bool {
		if v.who.Allow(authz.PermCertRead, c.Resource(names[c.CAID])) != nil {
			return false
		}
		cv.Rows = append(cv.Rows, h.row(c, names, now))
		last = c
		return true
	})
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	cv.Stopped = resume != nil
	exp := viewQuery(view)
	exp.Set("format", "csv")
	cv.ExportCSV = "/certificates/export?" + exp.Encode()
	exp.Set("format", "json")
	cv.ExportJSON = "/certificates/export?" + exp.Encode()
	if len(cv.Rows) == f.Limit && last != nil {
		next := viewQuery(view)
		next.Set("after", inventory.Position(f.Order, last))
		cv.Next = "/certificates?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "certificates", v, cv)
}

// jumpTo is the certificate whose serial or SHA-256 fingerprint (hex,
// colons allowed) s is, or nil.
func (h *Handler) jumpTo(ctx context.Context, s string) *inventory.Certificate {
	if serial, err := pki.NormalizeSerial(s); err == nil {
		if c, err := h.d.Inventory.GetCertificate(ctx, serial); err == nil {
			return c
		}
	}
	fp := strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		return nil
	}
	if cs, err := h.d.Inventory.ListCertificates(ctx, inventory.Filter{Fingerprint: fp, Limit: 1}); err == nil && len(cs) == 1 {
		return cs[0]
	}
	return nil
}

// maxText bounds the owner, tag and requester searched by.
const maxText = 256

// maxParam bounds any one query parameter of a console page.
const maxParam = 1024

// checkQuery refuses a query with a value that is not text a database
// takes (invalid UTF-8, a NUL) or longer than maxParam, naming it.
func checkQuery(q url.Values) error {
	for k, vals := range q {
		for _, v := range vals {
			if len(v) > maxParam || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				return fmt.Errorf("%s: give text of at most %d characters, without control bytes", clip(k, 40), maxParam)
			}
		}
	}
	return nil
}

// certFilter reads the inventory page's query; its errors say what to fix.
func certFilter(q url.Values, caIDs map[string]string, now time.Time) (inventory.Filter, error) {
	f := inventory.Filter{Limit: pageSize}
	if err := checkQuery(q); err != nil {
		return f, err
	}
	if s := q.Get("sort"); s != "" {
		o, err := inventory.ParseOrder(s)
		if err != nil {
			return f, fmt.Errorf("sort %q: choose %s", s, strings.Join(inventory.OrderNames(), ", "))
		}
		f.Order = o
	}
	switch d := q.Get("dir"); d {
	case "", "asc":
	case "desc":
		f.Desc = true
	default:
		return f, fmt.Errorf("dir %q: choose asc or desc", d)
	}
	if n := strings.TrimSpace(q.Get("name")); n != "" {
		if len(n) > 253 {
			return f, fmt.Errorf("name: at most 253 characters")
		}
		f.SAN = n
	}
	for _, t := range []struct {
		key, what string
		dst       *string
	}{{"owner", "owner", &f.Owner}, {"tag", "tag", &f.Tag}, {"requester", "requester", &f.Requester}} {
		if s := strings.TrimSpace(q.Get(t.key)); s != "" {
			if len(s) > maxText {
				return f, fmt.Errorf("%s: at most %d characters", t.what, maxText)
			}
			*t.dst = s
		}
	}
	if p := strings.TrimSpace(q.Get("profile")); p != "" {
		f.Profile = p
	}
	if c := q.Get("ca"); c != "" {
		for id, name := range caIDs {
			if name == c || id == c {
				f.CAID = id
			}
		}
		if f.CAID == "" {
			return f, fmt.Errorf("CA %q: there is no such CA", c)
		}
	}
	if s := q.Get("status"); s != "" {
		if err := f.SetStatus(s, now); err != nil {
			return f, fmt.Errorf("status %q: choose valid, expired or revoked", s)
		}
	}
	if s := q.Get("source"); s != "" {
		src, err := inventory.ParseSource(s)
		if err != nil {
			return f, fmt.Errorf("source %q: choose issued, acme or imported", s)
		}
		f.Source = src
	}
	if d := q.Get("within"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 3650 {
			return f, fmt.Errorf("expiring within %q: give a number of days from 1 to 3650", d)
		}
		// As `cert list --expiring-within`: expired ones included,
		// unless status narrows it.
		f.ExpiringBefore = now.Add(time.Duration(n) * 24 * time.Hour)
	}
	// A span of UTC days of expiry, as the overview's charts link to
	// their bars: from the first day's start to the last day's start.
	for _, k := range []string{"expires_from", "expires_to"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		d, err := time.Parse(dayLayout, v)
		if err != nil {
			return f, fmt.Errorf("%s %q: give a date as YYYY-MM-DD", k, v)
		}
		if k == "expires_to" {
			if f.ExpiringBefore.IsZero() || d.Before(f.ExpiringBefore) {
				f.ExpiringBefore = d
			}
		} else if from := d.Add(-time.Microsecond); from.After(f.UnexpiredAt) {
			// UnexpiredAt keeps NotAfter after it: the day's first
			// instant (the store keeps microseconds) included.
			f.UnexpiredAt = from
		}
	}
	switch c := q.Get("current"); c {
	case "":
	case "1":
		f.Current = true
	default:
		return f, fmt.Errorf("current %q: give 1 to leave out certificates already renewed, or nothing", c)
	}
	if a := q.Get("after"); a != "" {
		if err := f.SetPosition(a); err != nil {
			return f, fmt.Errorf("after: %v (follow the page's Next link)", err)
		}
	}
	return f, nil
}
