package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// Lifecycle is what the lifecycle routes need: renewal, alerts, rotations
// and the scheduled jobs.
type Lifecycle interface {
	RenewalInfo(ctx context.Context, p authz.Principal, serial string) (*lifecycle.RenewalInfo, error)
	RenewByHand(ctx context.Context, p authz.Principal, serial string, reuseKey bool) (*issue.Result, error)
	ReportDeployFailure(ctx context.Context, p authz.Principal, host, entry, serial, msg string) error
	Alerts(ctx context.Context, p authz.Principal, limit int) ([]*lifecycle.AlertRecord, error)
	ChannelNames() []string
	SendTest(ctx context.Context, p authz.Principal, channel string) error
	StartRotation(ctx context.Context, req lifecycle.RotationRequest) (*lifecycle.Rotation, []lifecycle.RotationItem, error)
	Rotation(ctx context.Context, p authz.Principal, id string) (*lifecycle.Rotation, []lifecycle.RotationItem, error)
	Rotations(ctx context.Context, p authz.Principal) ([]*lifecycle.Rotation, error)
	Jobs(ctx context.Context, p authz.Principal) ([]*lifecycle.JobState, error)
	RunJob(ctx context.Context, p authz.Principal, name string) (*lifecycle.JobState, error)
	JobRuns(ctx context.Context, p authz.Principal, q lifecycle.JobRunQuery) ([]lifecycle.JobRun, error)
}

func (h *Handler) lifecycleRoutes() []Route {
	const (
		certRead, certIssue, certRevoke = authz.PermCertRead, authz.PermCertIssue, authz.PermCertRevoke
	)
	return []Route{
		route("GET", "/api/v1/certificates/{serial}/renewal-info", "certificate.renewal_info", h.renewalInfo, certRead, certIssue),
		slow(route("POST", "/api/v1/certificates/{serial}/renew", "certificate.renew", h.renewCert, certIssue)),
		route("GET", "/api/v1/alerts", "alert.list", h.listAlerts, certRead),
		route("POST", "/api/v1/alerts/test", "alert.test", h.testAlert, authz.PermPrincipalAdmin),
		route("POST", "/api/v1/alerts/deploy-failed", "alert.deploy_failed", h.deployFailed, certIssue),
		slow(route("POST", "/api/v1/rotations", "rotation.start", h.startRotation, certRevoke)),
		route("GET", "/api/v1/rotations", "rotation.list", h.listRotations, certRead, certRevoke),
		route("GET", "/api/v1/rotations/{id}", "rotation.show", h.showRotation, certRead, certRevoke),
		route("GET", "/api/v1/jobs", "job.list", h.listJobs, certRead),
		route("GET", "/api/v1/jobs/runs", "job.runs", h.listJobRuns, certRead),
		slow(route("POST", "/api/v1/jobs/{name}/run", "job.run", h.runJob, authz.PermCAManage)),
	}
}

func (h *Handler) renewalInfo(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	info, err := h.d.Lifecycle.RenewalInfo(r.Context(), p, strings.ToLower(r.PathValue("serial")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apitypes.RenewalInfo{
		Serial: info.Serial, NotAfter: info.NotAfter, WindowStart: info.WindowStart, WindowEnd: info.WindowEnd,
		RenewNow: info.RenewNow, Reason: info.Reason, RenewedBy: info.RenewedBy, Revoked: info.Revoked,
		ServerTime: h.d.Clock.Now().UTC(),
	})
}

func (h *Handler) renewCert(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.RenewRequest
	if err := h.decodeOptional(r, &req); err != nil {
		return err
	}
	res, err := h.d.Lifecycle.RenewByHand(r.Context(), p, strings.ToLower(r.PathValue("serial")), req.ReuseKey)
	if err != nil {
		return err
	}
	// A renewed server-held key stays on the server: machines fetch it
	// with key export; nobody gets it in this answer.
	res.Key = nil
	out, err := h.issued(r, res)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

// decodeOptional decodes a JSON body when there is one.
func (h *Handler) decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return h.decode(r, v)
}

func (h *Handler) listAlerts(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	limit, err := queryLimit(r.URL.Query(), 100, 1000)
	if err != nil {
		return err
	}
	recs, err := h.d.Lifecycle.Alerts(r.Context(), p, limit)
	if err != nil {
		return err
	}
	out := apitypes.AlertList{Alerts: make([]apitypes.Alert, 0, len(recs)), Channels: h.d.Lifecycle.ChannelNames()}
	for _, rec := range recs {
		a := rec.Alert
		v := apitypes.Alert{ID: a.ID, Kind: string(a.Kind), Severity: string(a.Severity), Subject: a.Subject, Threshold: a.Threshold,
			Summary: a.Summary, Detail: a.Detail, DaysLeft: a.DaysLeft, CreatedAt: a.CreatedAt, Deliveries: []apitypes.AlertDelivery{}}
		if a.Cert != nil {
			v.Serial = a.Cert.Serial
		}
		for _, d := range rec.Deliveries {
			dv := apitypes.AlertDelivery{Channel: d.Channel, Status: d.Status, Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastError: d.LastError}
			if !d.SentAt.IsZero() {
				t := d.SentAt
				dv.SentAt = &t
			}
			v.Deliveries = append(v.Deliveries, dv)
		}
		out.Alerts = append(out.Alerts, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) testAlert(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.AlertTestRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if req.Channel == "" {
		return badInput("channel is required")
	}
	if err := h.d.Lifecycle.SendTest(r.Context(), p, req.Channel); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"channel": req.Channel, "status": "sent"})
}

func (h *Handler) deployFailed(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.DeployFailure
	if err := h.decode(r, &req); err != nil {
		return err
	}
	if req.Entry == "" || req.Host == "" || req.Error == "" || req.Serial == "" {
		return badInput("serial, entry, host and error are required")
	}
	if err := h.d.Lifecycle.ReportDeployFailure(r.Context(), p, req.Host, req.Entry, strings.ToLower(req.Serial), req.Error); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]string{"status": "reported"})
}

func (h *Handler) startRotation(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	var req apitypes.RotationRequest
	if err := h.decode(r, &req); err != nil {
		return err
	}
	sel := inventory.Selector{Profile: req.Profile, SPKISHA256: strings.ToLower(req.SPKISHA256)}
	if req.CA != "" {
		c, err := h.d.CAs.Get(r.Context(), req.CA)
		if err != nil {
			return err
		}
		sel.CAID = c.ID
	}
	var grace time.Duration
	if req.Grace != "" {
		d, err := inventory.ParseWindow(req.Grace)
		if err != nil {
			return badInput("grace: %v", err)
		}
		grace = d
	}
	rot, items, err := h.d.Lifecycle.StartRotation(r.Context(), lifecycle.RotationRequest{
		Principal: p, Selector: sel, ToCA: req.ToCA, Reason: req.Reason, Grace: grace,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/rotations/"+rot.ID)
	return writeJSON(w, http.StatusCreated, rotationView(rot, items, true))
}

func rotationView(r *lifecycle.Rotation, items []lifecycle.RotationItem, withItems bool) apitypes.Rotation {
	v := apitypes.Rotation{
		ID: r.ID, CAID: r.Selector.CAID, Profile: r.Selector.Profile, SPKISHA256: r.Selector.SPKISHA256, ToCA: r.ToCA,
		Reason: r.Reason, Grace: inventory.FormatWindow(r.Grace), Status: r.Status, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, RevokeAt: r.RevokeAt(), Counts: map[string]int{},
	}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		v.FinishedAt = &t
	}
	for _, it := range items {
		v.Counts[it.Status]++
		if withItems {
			v.Items = append(v.Items, apitypes.RotationItem{Serial: it.Serial, Method: it.Method, Status: it.Status,
				NewSerial: it.NewSerial, Error: it.Error, UpdatedAt: it.UpdatedAt})
		}
	}
	return v
}

func (h *Handler) listRotations(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	rs, err := h.d.Lifecycle.Rotations(r.Context(), p)
	if err != nil {
		return err
	}
	out := apitypes.RotationList{Rotations: make([]apitypes.Rotation, 0, len(rs))}
	for _, rot := range rs {
		out.Rotations = append(out.Rotations, rotationView(rot, nil, false))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showRotation(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	rot, items, err := h.d.Lifecycle.Rotation(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rotationView(rot, items, true))
}

func jobView(j *lifecycle.JobState) apitypes.Job {
	v := apitypes.Job{Name: j.Name, Interval: inventory.FormatWindow(j.Interval), Outcome: j.Outcome, Detail: j.Detail, Replica: j.Replica}
	if !j.StartedAt.IsZero() {
		t := j.StartedAt
		v.StartedAt = &t
	}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt
		v.FinishedAt = &t
	}
	return v
}

func (h *Handler) listJobs(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	js, err := h.d.Lifecycle.Jobs(r.Context(), p)
	if err != nil {
		return err
	}
	out := apitypes.JobList{Jobs: make([]apitypes.Job, 0, len(js))}
	for _, j := range js {
		v := jobView(j)
		v.RunsLastHour = j.RecentRuns
		out.Jobs = append(out.Jobs, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

// Job run listing defaults: the last hour, the newest 100 runs.
const (
	jobRunsSince = time.Hour
	jobRunsLimit = 100
)

// listJobRuns lists the recorded runs of one job (job=NAME) or of every
// job, newest first: since=DURATION (back from now) or an RFC 3339 time,
// limit=N.
func (h *Handler) listJobRuns(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q := r.URL.Query()
	since, err := sinceParam(q.Get("since"), h.d.Clock.Now().UTC().Add(-jobRunsSince), h.d.Clock.Now())
	if err != nil {
		return err
	}
	limit, err := queryLimit(q, jobRunsLimit, lifecycle.RunHistoryMax)
	if err != nil {
		return err
	}
	job := q.Get("job")
	runs, err := h.d.Lifecycle.JobRuns(r.Context(), p, lifecycle.JobRunQuery{Job: job, Since: since, Limit: limit})
	if err != nil {
		return err
	}
	out := apitypes.JobRunList{Job: job, Since: since, Limit: limit, Runs: make([]apitypes.JobRun, 0, len(runs))}
	for _, run := range runs {
		v := apitypes.JobRun{Job: run.Job, Replica: run.Replica, StartedAt: run.StartedAt, Outcome: run.Outcome, Detail: run.Detail}
		if !run.FinishedAt.IsZero() {
			t := run.FinishedAt
			v.FinishedAt = &t
		}
		out.Runs = append(out.Runs, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

// sinceParam reads a since parameter: a duration back from now ("1h",
// "30m", "7d", as inventory.ParseWindow reads it) or an RFC 3339 time;
// def when it is empty.
func sinceParam(s string, def, now time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if d, err := inventory.ParseWindow(s); err == nil {
		return now.Add(-d).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, badInput("since %q: want a duration back from now such as 30m, 1h or 7d, or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
}

// queryLimit reads the limit parameter: a whole number from 1 to max; def
// when it is absent.
func queryLimit(q url.Values, def, max int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badInput("limit %q: want a whole number from 1 to %d (default %d)", s, max, def)
	}
	return n, nil
}

func (h *Handler) runJob(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	st, err := h.d.Lifecycle.RunJob(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobView(st))
}
