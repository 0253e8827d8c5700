package lifecycle

import (
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// Delivery states.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // gave up
)

// Delivery is one alert's delivery to one channel.
type Delivery struct {
	AlertID       string    `json:"alert_id"`
	Channel       string    `json:"channel"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
	SentAt        time.Time `json:"sent_at,omitzero"`
	// Alert is filled by the store when it hands out due deliveries.
	Alert *Alert `json:"-"`
	// ClaimedBy is the claim the delivery was handed out under ("" for
	// none): its update applies only while the claim is still this one.
	ClaimedBy string `json:"-"`
}

// AlertQuery selects a page of alerts, newest first.
type AlertQuery struct {
	// Kind: only alerts of this kind ("" any); Undelivered: only those
	// not delivered to every channel they were routed to (or routed to
	// none).
	Kind        AlertKind
	Undelivered bool
	// Before: only alerts older than this one (zero: from the newest).
	Before AlertCursor
	Limit  int
}

// AlertCursor is where a page of alerts ends: the last alert's creation
// time and ID.
type AlertCursor struct {
	At time.Time
	ID string
}

// AlertRecord is a stored alert with its deliveries.
type AlertRecord struct {
	Alert      Alert      `json:"alert"`
	Deliveries []Delivery `json:"deliveries"`
}

// Job outcomes.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
	// OutcomeSkipped: another replica held the lock, or (a scheduled
	// run) ran the job less than an interval ago. Never recorded.
	OutcomeSkipped = "skipped"
)

// JobState is a scheduled job's last run and its cursor.
type JobState struct {
	Name       string    `json:"name"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail"`
	// Replica is the replica_name of the replica that ran it.
	Replica string `json:"replica,omitempty"`
	// Cursor is job-defined: the expiry check keeps the "now" of its last
	// complete run, so the next run looks only at what crossed since.
	Cursor time.Time `json:"cursor,omitzero"`
	// Interval is how often the job runs (from configuration, not stored).
	Interval time.Duration `json:"interval"`
	// Idle is set by a run that found nothing to do: it is logged at
	// debug rather than info (not stored).
	Idle bool `json:"-"`
	// RecentRuns is how many runs the history holds of the last
	// RecentRunsWindow (Scheduler.Jobs sets it; not stored); nil when
	// the history could not be read.
	RecentRuns *int `json:"-"`
}

// RecentRunsWindow is the period JobState.RecentRuns counts.
const RecentRunsWindow = time.Hour

// The run history keeps each job's runs of the last RunHistoryAge, at
// most RunHistoryMax of them: enough to see one run per interval across
// replicas, bounded for the 10-second jobs (8,640 runs a day each).
const (
	RunHistoryAge = 7 * 24 * time.Hour
	RunHistoryMax = 1000
)

// JobRun is one recorded run of a job, written with the job's last run
// (JobState) by the same store call. A skipped run is not recorded.
type JobRun struct {
	Job        string
	Replica    string
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    string
	Detail     string
}

// JobRunQuery selects recorded runs: those of Job ("" for every job)
// started at or after Since, newest first, at most Limit.
type JobRunQuery struct {
	Job   string
	Since time.Time
	Limit int
}

// Rotation states.
const (
	RotationRunning = "running"
	RotationDone    = "done"
)

// Rotation item methods and states.
const (
	// MethodReissue: the server holds (or may reuse) the key and re-issues.
	MethodReissue = "reissue"
	// MethodSignal: the holder (agent, ACME client) replaces it when told
	// through its renewal window.
	MethodSignal = "signal"
	// MethodServer: the server's own TLS certificate; the server
	// re-issues it and serves the new one at once.
	MethodServer = "server"

	ItemPending  = "pending"
	ItemReplaced = "replaced"
	ItemRevoked  = "revoked"
	ItemFailed   = "failed"
)

// Rotation is an emergency replacement of every certificate a selector
// matches: re-issue or signal, then revoke the old ones after Grace.
type Rotation struct {
	ID       string             `json:"id"`
	Selector inventory.Selector `json:"selector"`
	// ToCA, when set, is the CA re-issued certificates come from.
	ToCA       string        `json:"to_ca,omitempty"`
	Reason     string        `json:"reason"` // revocation reason name
	Grace      time.Duration `json:"grace"`
	Status     string        `json:"status"`
	CreatedBy  string        `json:"created_by"`
	CreatedAt  time.Time     `json:"created_at"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
}

// RevokeAt is when the old certificates are revoked.
func (r *Rotation) RevokeAt() time.Time { return r.CreatedAt.Add(r.Grace) }

// RotationItem is one certificate of a rotation.
type RotationItem struct {
	Serial    string    `json:"serial"`
	Method    string    `json:"method"`
	Status    string    `json:"status"`
	NewSerial string    `json:"new_serial,omitempty"`
	Error     string    `json:"error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}
