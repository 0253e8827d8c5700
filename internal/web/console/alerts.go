package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/lifecycle"
)

// alertRows is how many matching alerts a page shows; older ones are on
// the next page, which the store query starts where this one ended.
const alertRows = 100

// jobRunTimeout bounds a job run from the page, as the API's slow routes
// are bounded: a job outlasts one store read.
const jobRunTimeout = time.Minute

// Lengths past which text from elsewhere (a webhook's or an SMTP server's
// reply, an agent's report) is cut: shown in the table, and in its title.
const (
	shortText = 200
	longText  = 2000
)

// deliveryRow is one alert's delivery to one channel as the page shows it.
type deliveryRow struct {
	Channel string
	// State is delivered, failed (given up), retrying (an attempt failed,
	// another is due at When) or queued (not yet attempted, due at When).
	State    string
	Attempts int
	// When is the delivery time (delivered) or the next attempt; WhenText
	// says it for people.
	When     time.Time
	WhenText string
	// Error is the last attempt's error, cut to shortText; ErrorFull to
	// longText.
	Error, ErrorFull string
	// Unconfigured: the channel is no longer in the configuration.
	Unconfigured bool
}

// alertRow is one alert as the page shows it.
type alertRow struct {
	Kind, Severity, Threshold, Summary string
	Raised                             time.Time
	// Cert names the certificate (or CA) the alert is about; CertLink
	// opens it, when the viewer may read it.
	Cert, CertLink string
	Deliveries     []deliveryRow
	Undelivered    bool
}

// jobRow is one scheduled job as the page shows it.
type jobRow struct {
	Name, Interval string
	// Replica ran the last run (replica_name).
	Replica    string
	Ran        bool
	Started    time.Time
	Duration   string
	Outcome    string
	Detail     string
	DetailFull string
	// Next is about when the job runs next, counted from its last start
	// (its ticker counts from the server's start); NextText says it for
	// people, "due" once passed.
	Next     time.Time
	NextText string
	// Confirm is what running the job changes, when Run now must be
	// confirmed (jobConfirmations).
	Confirm string
}

// jobConfirmations are the jobs whose run issues or revokes certificates,
// each with what it does: their Run now form needs a confirmation. The
// others only read, raise alerts or deliver them (expiry-check,
// alert-delivery), which they do every few minutes anyway.
func jobConfirmations() map[string]string {
	return map[string]string{
		"renewal":   "issues a new certificate for every certificate due for renewal",
		"supersede": "revokes the certificates whose renewal is past its grace period (reason superseded)",
		"rotation":  "advances running rotations: renews and revokes the certificates they cover",
	}
}

type alertsView struct {
	// Kind and Undelivered are the filters; Kinds the kinds offered.
	Kind        string
	Undelivered bool
	Kinds       []string
	Rows        []alertRow
	// UndeliveredCount is how many alerts are not delivered everywhere
	// (a store count); Paged: this page is not the newest; Older links
	// the next page ("" on the last).
	UndeliveredCount int
	Paged            bool
	Older, Newest    string
	Channels         []string
	// NoAlerts says why the viewer is not shown alerts.
	NoAlerts string
	Jobs     []jobRow
	// CanRun: the viewer may run a job now.
	CanRun        bool
	Notice, Error string
	NoticeFailed  bool
}

// alerts shows the newest alerts with each channel's delivery, filtered by
// kind and by "undelivered only", and the scheduled jobs' last runs, with
// a "Run now" button for a viewer holding ca:manage. Both lists come from
// the lifecycle calls the API makes, which check the viewer's permission
// themselves: alerts cover every certificate, so they need cert:read with
// no scope; the jobs need cert:read.
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request, v *visit) {
	h.showAlerts(w, r, v, http.StatusOK, "")
}

func (h *Handler) showAlerts(w http.ResponseWriter, r *http.Request, v *visit, status int, problem string) {
	av := &alertsView{Error: problem, CanRun: v.who.Everywhere(authz.PermCAManage), Channels: h.d.Lifecycle.ChannelNames()}
	for _, k := range lifecycle.AlertKinds() {
		av.Kinds = append(av.Kinds, string(k))
	}
	var q url.Values
	if r.Method == http.MethodGet {
		q = r.URL.Query()
	}
	before, err := alertFilter(q, av)
	if err != nil {
		// Said at the top; the list below is then the newest, unfiltered.
		av.Error, status = err.Error(), http.StatusBadRequest
		av.Kind, av.Undelivered, before = "", false, lifecycle.AlertCursor{}
	}
	ctx, cancel := h.storeContext(r)
	defer cancel()
	aq := lifecycle.AlertQuery{Kind: lifecycle.AlertKind(av.Kind), Undelivered: av.Undelivered, Before: before, Limit: alertRows + 1}
	recs, err := h.d.Lifecycle.AlertPage(ctx, v.who, aq)
	if err == nil {
		av.UndeliveredCount, err = h.d.Lifecycle.CountUndelivered(ctx, v.who)
	}
	switch {
	case err == nil:
		if err := h.alertRows(r, v, av, recs); err != nil {
			h.unavailable(w, r, err)
			return
		}
		av.Paged = !before.At.IsZero()
		if len(recs) > alertRows {
			last := recs[alertRows-1].Alert
			av.Older = alertsLink(av, strconv.FormatInt(last.CreatedAt.UnixMicro(), 10)+"-"+last.ID)
		}
		if av.Paged {
			av.Newest = alertsLink(av, "")
		}
	case errors.Is(err, authz.ErrForbidden):
		av.NoAlerts = "Alerts concern certificates of every CA and profile, and your cert:read is limited to a scope, so they are not shown here."
	default:
		h.unavailable(w, r, err)
		return
	}
	jobs, err := h.d.Lifecycle.Jobs(ctx, v.who)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	now := h.d.Clock.Now()
	ran := q.Get("ran")
	confirm := jobConfirmations()
	for _, j := range jobs {
		row := jobView(j, now)
		row.Confirm = confirm[j.Name]
		av.Jobs = append(av.Jobs, row)
		if ran != "" && ran == j.Name && row.Ran {
			av.NoticeFailed = j.Outcome == lifecycle.OutcomeError
			if av.NoticeFailed {
				av.Notice = "Job " + j.Name + " ran and failed: " + row.Detail
			} else {
				av.Notice = "Job " + j.Name + " ran: " + row.Detail
			}
		}
	}
	h.render(w, r, status, "alerts", v, av)
}

// alertFilter reads the page's filters into av, and where the page
// starts (before, zero for the newest); its errors say what to fix.
func alertFilter(q url.Values, av *alertsView) (before lifecycle.AlertCursor, err error) {
	av.Kind = q.Get("kind")
	if av.Kind != "" && !slices.Contains(av.Kinds, av.Kind) {
		return before, fmt.Errorf("kind %q: choose one of %s, or any", clip(av.Kind, 100), strings.Join(av.Kinds, ", "))
	}
	switch u := q.Get("undelivered"); u {
	case "":
	case "1":
		av.Undelivered = true
	default:
		return before, fmt.Errorf("undelivered %q: give 1 to show only alerts not yet delivered to every channel, or nothing", clip(u, 100))
	}
	if b := q.Get("before"); b != "" {
		at, id, _ := strings.Cut(b, "-")
		us, err := strconv.ParseInt(at, 10, 64)
		if err != nil || us <= 0 || id == "" {
			return before, fmt.Errorf("before %q: follow the page's Older link, or leave it out for the newest alerts", clip(b, 100))
		}
		before = lifecycle.AlertCursor{At: time.UnixMicro(us).UTC(), ID: id}
	}
	return before, nil
}

// alertsLink is the alerts page with av's filters, starting before
// cursor ("": the newest).
func alertsLink(av *alertsView, cursor string) string {
	undelivered := ""
	if av.Undelivered {
		undelivered = "1"
	}
	return pageLink("/alerts", "kind", av.Kind, "undelivered", undelivered, "before", cursor)
}

// pageLink is path with the query of its key, value pairs whose value is
// not empty.
func pageLink(path string, pairs ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q.Set(pairs[i], pairs[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// alertRows fills av's rows from recs (the page's, newest first, and one
// more that says an older page exists).
func (h *Handler) alertRows(r *http.Request, v *visit, av *alertsView, recs []*lifecycle.AlertRecord) error {
	if len(recs) == 0 {
		return nil
	}
	// The store's CA names, as the certificate pages check the scope
	// with; the alert's copy may predate a rename.
	caNames, err := h.caNames(r)
	if err != nil {
		return err
	}
	now := h.d.Clock.Now()
	configured := map[string]bool{}
	for _, c := range av.Channels {
		configured[c] = true
	}
	for _, rec := range recs[:min(len(recs), alertRows)] {
		a := rec.Alert
		row := newAlertRow(rec, configured, now)
		if c := a.Cert; c != nil {
			if a.Kind == lifecycle.AlertCAExpiring {
				row.Cert = "CA " + c.CA
				if v.who.Allow(authz.PermCARead, authz.Resource{CAID: c.CAID, CAName: c.CA}) == nil {
					row.CertLink = "/cas"
				}
			} else {
				row.Cert = c.PrimaryName()
				res := authz.Resource{CAID: c.CAID, CAName: firstNonEmpty(caNames[c.CAID], c.CA), Profile: c.Profile, Names: c.SANs}
				if c.Serial != "" && v.who.Allow(authz.PermCertRead, res) == nil {
					row.CertLink = "/certificates/" + c.Serial
				}
			}
		}
		av.Rows = append(av.Rows, row)
	}
	return nil
}

// newAlertRow is rec as a table shows it, its deliveries judged at now
// (configured: the channels the configuration has).
func newAlertRow(rec *lifecycle.AlertRecord, configured map[string]bool, now time.Time) alertRow {
	a := rec.Alert
	row := alertRow{Kind: string(a.Kind), Severity: string(a.Severity), Threshold: a.Threshold, Summary: clip(a.Summary, longText), Raised: a.CreatedAt,
		Cert: a.Subject, Undelivered: len(rec.Deliveries) == 0}
	for _, d := range rec.Deliveries {
		dr := deliveryRow{Channel: d.Channel, Attempts: d.Attempts, Error: clip(d.LastError, shortText), ErrorFull: clip(d.LastError, longText),
			Unconfigured: !configured[d.Channel]}
		switch {
		case d.Status == lifecycle.DeliverySent:
			dr.State, dr.When = "delivered", d.SentAt
		case d.Status == lifecycle.DeliveryFailed:
			dr.State = "failed"
		case d.Attempts > 0:
			dr.State, dr.When = "retrying", d.NextAttemptAt
		default:
			dr.State, dr.When = "queued", d.NextAttemptAt
		}
		switch {
		case dr.State == "delivered":
			dr.WhenText = relative(now, dr.When)
		case dr.State != "failed" && !dr.When.After(now):
			dr.WhenText = "due"
		case dr.State != "failed":
			dr.WhenText = relativeNear(now, dr.When)
		}
		if dr.State != "delivered" {
			row.Undelivered = true
		}
		row.Deliveries = append(row.Deliveries, dr)
	}
	return row
}

// jobView describes a job's last run for people.
func jobView(j *lifecycle.JobState, now time.Time) jobRow {
	row := jobRow{Name: j.Name, Interval: humanInterval(j.Interval), Outcome: j.Outcome, Replica: j.Replica,
		Detail: clip(j.Detail, shortText), DetailFull: clip(j.Detail, longText)}
	if j.StartedAt.IsZero() {
		return row
	}
	row.Ran, row.Started = true, j.StartedAt
	if d := j.FinishedAt.Sub(j.StartedAt); !j.FinishedAt.IsZero() && d >= 0 {
		if d < time.Second {
			row.Duration = d.Round(time.Millisecond).String()
		} else {
			row.Duration = d.Round(100 * time.Millisecond).String()
		}
	}
	if j.Interval > 0 {
		row.Next = j.StartedAt.Add(j.Interval)
		row.NextText = "due"
		if row.Next.After(now) {
			row.NextText = relativeNear(now, row.Next)
		}
	}
	return row
}

// relativeNear is relative, but says a time within the next minute is in
// under a minute, not "now": retries and short intervals are seconds away.
func relativeNear(now, t time.Time) string {
	if d := t.Sub(now); d > 0 && d < time.Minute {
		return "in under a minute"
	}
	return relative(now, t)
}

// humanInterval says how often a job runs: "every 15s", "every 1h0m0s"
// shortened to "every 1h".
func humanInterval(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return "every " + s
}

// runJob runs a scheduled job now through the same call as the API, which
// needs ca:manage, then sends the browser back to the page, which says
// how the run ended. A job that issues or revokes needs the form's
// confirmation.
func (h *Handler) runJob(w http.ResponseWriter, r *http.Request, v *visit) {
	name := r.PathValue("name")
	if what, ok := jobConfirmations()[name]; ok && r.PostFormValue("confirm") != "yes" {
		h.showAlerts(w, r, v, http.StatusBadRequest, "Tick the confirmation to run "+name+" now: it "+what+".")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), jobRunTimeout)
	defer cancel()
	st, err := h.d.Lifecycle.RunJob(ctx, v.who, name)
	switch {
	case err == nil:
	case errors.Is(err, authz.ErrForbidden):
		h.showAlerts(w, r, v, http.StatusForbidden, "Refused: "+publicReason(err))
		return
	case errors.Is(err, lifecycle.ErrUnknownJob):
		h.showAlerts(w, r, v, http.StatusNotFound, "There is no job named "+clip(name, 100)+".")
		return
	default:
		h.unavailable(w, r, err)
		return
	}
	if st.Outcome == lifecycle.OutcomeSkipped {
		h.showAlerts(w, r, v, http.StatusConflict, "Job "+name+" is running right now; its outcome shows here when it ends.")
		return
	}
	http.Redirect(w, r, "/alerts?"+url.Values{"ran": {name}}.Encode()+"#jobs", http.StatusSeeOther)
}
