package apitypes

import "time"

// RenewRequest renews a certificate the server holds the key of.
type RenewRequest struct {
	// ReuseKey certifies the same key again (the profile must allow it).
	ReuseKey bool `json:"reuse_key,omitempty"`
}

// DeployFailure is an agent's report that deploying a certificate failed.
type DeployFailure struct {
	Entry  string `json:"entry"`
	Host   string `json:"host"`
	Serial string `json:"serial,omitempty"`
	Error  string `json:"error"`
}

// AlertTestRequest names the channel a test alert goes to.
type AlertTestRequest struct {
	Channel string `json:"channel"`
}

// AlertDelivery is one alert's delivery to one channel.
type AlertDelivery struct {
	Channel       string     `json:"channel"`
	Status        string     `json:"status"` // pending, sent, failed
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	LastError     string     `json:"last_error,omitempty"`
	SentAt        *time.Time `json:"sent_at,omitempty"`
}

// Alert is a raised alert and where it went.
type Alert struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Severity   string          `json:"severity"`
	Subject    string          `json:"subject"`
	Threshold  string          `json:"threshold,omitempty"`
	Summary    string          `json:"summary"`
	Detail     string          `json:"detail"`
	Serial     string          `json:"serial,omitempty"`
	DaysLeft   float64         `json:"days_left"`
	CreatedAt  time.Time       `json:"created_at"`
	Deliveries []AlertDelivery `json:"deliveries"`
}

// AlertList is the newest alerts and the configured channels.
type AlertList struct {
	Alerts   []Alert  `json:"alerts"`
	Channels []string `json:"channels"`
}

// RotationRequest starts an emergency rotation. Exactly the set selector
// fields must match.
type RotationRequest struct {
	CA         string `json:"ca,omitempty"` // name or ID
	Profile    string `json:"profile,omitempty"`
	SPKISHA256 string `json:"spki_sha256,omitempty"`
	ToCA       string `json:"to_ca,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Grace is how long the old certificates stay valid, e.g. "24h" (default).
	Grace string `json:"grace,omitempty"`
}

// RotationItem is one certificate of a rotation.
type RotationItem struct {
	Serial    string    `json:"serial"`
	Method    string    `json:"method"` // reissue, signal, or server (the server's own TLS certificate)
	Status    string    `json:"status"` // pending, replaced, revoked, failed
	NewSerial string    `json:"new_serial,omitempty"`
	Error     string    `json:"error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Rotation is an emergency rotation and its progress.
type Rotation struct {
	ID         string         `json:"id"`
	CAID       string         `json:"ca_id,omitempty"`
	Profile    string         `json:"profile,omitempty"`
	SPKISHA256 string         `json:"spki_sha256,omitempty"`
	ToCA       string         `json:"to_ca,omitempty"`
	Reason     string         `json:"reason"`
	Grace      string         `json:"grace"`
	Status     string         `json:"status"` // running, done
	CreatedBy  string         `json:"created_by"`
	CreatedAt  time.Time      `json:"created_at"`
	RevokeAt   time.Time      `json:"revoke_at"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
	Counts     map[string]int `json:"counts"` // by item status
	Items      []RotationItem `json:"items,omitempty"`
}

// RotationList is the recent rotations.
type RotationList struct {
	Rotations []Rotation `json:"rotations"`
}

// Job is a scheduled job's last run.
type Job struct {
	Name       string     `json:"name"`
	Interval   string     `json:"interval"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Outcome    string     `json:"outcome"`
	Detail     string     `json:"detail"`
	// Replica is the replica_name of the replica that ran it last.
	Replica string `json:"replica,omitempty"`
	// RunsLastHour is how many runs the run history holds of the last
	// hour, across replicas (in the job list only).
	RunsLastHour *int `json:"runs_last_hour,omitempty"`
}

// JobList is every scheduled job.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// JobRun is one recorded run of a scheduled job.
type JobRun struct {
	Job        string     `json:"job"`
	Replica    string     `json:"replica"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Outcome    string     `json:"outcome"`
	Detail     string     `json:"detail"`
}

// JobRunList is the recorded runs GET /api/v1/jobs/runs selected, newest
// first: of Job ("" for every job) started at or after Since, at most
// Limit.
type JobRunList struct {
	Job   string    `json:"job,omitempty"`
	Since time.Time `json:"since"`
	Limit int       `json:"limit"`
	Runs  []JobRun  `json:"runs"`
}
